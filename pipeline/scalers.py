"""Input scalers fitted on the training split only, saved inside the checkpoint."""

from __future__ import annotations

import numpy as np


class Scaler:
    """``minmax``: per feature to [0, 1] (the workshop's MinMaxScaler); ``standard``: one
    global mean and std (spectrogram arrays); ``none``: identity."""

    KINDS = ("minmax", "standard", "none")

    def __init__(self, kind: str = "none", offset=0.0, scale=1.0):
        if kind not in self.KINDS:
            raise ValueError(f"scaler must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.offset = np.asarray(offset, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)

    def fit(self, x: np.ndarray) -> Scaler:
        if self.kind == "minmax":
            low, high = x.min(axis=0), x.max(axis=0)
            span = high - low
            self.offset, self.scale = low, np.where(span > 0, span, 1.0).astype(np.float32)
        elif self.kind == "standard":
            std = float(x.std())
            self.offset = np.float32(x.mean())
            self.scale = np.float32(std if std > 0 else 1.0)
        return self

    def transform(self, x: np.ndarray, in_place: bool = False) -> np.ndarray:
        """Scaled float32 inputs, written into one new array, or into ``x`` itself when
        ``in_place`` (a float32 array its owner no longer needs: no second copy of the data)."""
        if in_place and x.dtype != np.float32:
            raise ValueError(f"in-place scaling needs float32 inputs, got {x.dtype}")
        out = x if in_place else np.empty(x.shape, dtype=np.float32)
        np.subtract(x, self.offset, out=out, dtype=np.float32)
        return np.divide(out, self.scale, out=out)

    def state(self) -> dict:
        return {"kind": self.kind, "offset": self.offset, "scale": self.scale}

    @classmethod
    def from_state(cls, state: dict) -> Scaler:
        return cls(state["kind"], state["offset"], state["scale"])
