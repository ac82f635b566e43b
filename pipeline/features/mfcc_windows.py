"""MFCCs over fixed-length windows of a recording: one feature vector per window.

A 15 s recording with 3 s windows every 1.5 s gives 9 vectors. Each vector summarises
the window's MFCC frames by the mean and standard deviation of every coefficient
(``pooling: mean_std``: insensitive to where in the window a beat or breath falls), or
keeps every frame (``pooling: flatten``).

``normalise: recording`` then subtracts, from every window of a recording, each coefficient's
mean over all of that recording's windows and frames (cepstral mean normalisation): what
the recording position and the stethoscope's channel add to every frame alike goes, and
what changes within the recording stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pipeline.audio import read_audio, stream_audio
from pipeline.features.spectral import Backend, MelSettings, mfcc


# Windows featurised at once by predict (about 3 MB of 4 kHz audio for 3 s windows)
WINDOWS_PER_BLOCK = 64
NORMALISATIONS = ("none", "recording")  # features.normalise (the schema checks it agrees)


@dataclass(frozen=True)
class MFCCWindows:
    sample_rate: int
    window_s: float
    hop_s: float
    n_mfcc: int
    n_fft: int
    hop_length: int
    n_mels: int
    pooling: Literal["mean_std", "flatten"] = "mean_std"
    backend: Backend = "librosa"
    normalise: Literal["none", "recording"] = "none"

    def __post_init__(self) -> None:
        if self.hop_s <= 0 or self.window_s <= 0:
            raise ValueError(f"window_s and hop_s must be positive: {self}")
        if self.pooling not in ("mean_std", "flatten"):
            raise ValueError(f"pooling must be 'mean_std' or 'flatten', got {self.pooling!r}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be 'none' or 'recording', got {self.normalise!r}")

    @property
    def mel(self) -> MelSettings:
        return MelSettings(self.sample_rate, self.n_fft, self.hop_length, self.n_mels)

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop_s * self.sample_rate))


def frame_windows(y: np.ndarray, window: int, hop: int) -> np.ndarray:
    """(samples,) -> (n_windows, window): every full window starting at multiples of hop
    (a read-only view of ``y``, no copy)."""
    if len(y) < window:
        return np.empty((0, window), dtype=y.dtype)
    return np.lib.stride_tricks.sliding_window_view(y, window)[::hop]


def window_features(windows: np.ndarray, cfg: MFCCWindows) -> np.ndarray:
    """(n_windows, samples) -> (n_windows, n_features) float32."""
    coeffs = mfcc(windows, cfg.mel, cfg.n_mfcc, backend=cfg.backend)  # (n, n_mfcc, frames)
    if cfg.pooling == "flatten":
        return coeffs.reshape(len(coeffs), -1)
    return np.concatenate([coeffs.mean(axis=-1), coeffs.std(axis=-1)], axis=1)


def normalised(features: np.ndarray, cfg: MFCCWindows) -> np.ndarray:
    """One recording's window features (n_windows, n_features) as ``cfg.normalise`` says:
    unchanged, or with each coefficient's mean over the recording subtracted (with
    ``mean_std`` pooling, from the window means; the spreads stay)."""
    if cfg.normalise == "none" or not len(features):
        return features
    if cfg.pooling == "flatten":
        coeffs = features.reshape(len(features), cfg.n_mfcc, -1)
        return (coeffs - coeffs.mean(axis=(0, 2), keepdims=True)).reshape(len(features), -1)
    means = features[:, :cfg.n_mfcc]
    return np.concatenate([means - means.mean(axis=0), features[:, cfg.n_mfcc:]], axis=1)


def recording_windows(path: str | Path, cfg: MFCCWindows) -> np.ndarray:
    """Read one recording (checked: rate, mono, at least one window): (n_windows, samples)."""
    y, _ = read_audio(path, expected_sr=cfg.sample_rate, min_seconds=cfg.window_s)
    return frame_windows(y, cfg.window_samples, cfg.hop_samples)


def recording_feature_blocks(path: str | Path, cfg: MFCCWindows,
                             windows_per_block: int = WINDOWS_PER_BLOCK) -> Iterator[np.ndarray]:
    """One recording's window features (what ``pipeline predict`` scores), ``windows_per_block``
    windows at a time: ``normalised(window_features(recording_windows(...)))`` in parts,
    read block by block, so that memory stays flat in the recording's length. With
    ``normalise: recording`` the recording's mean needs every window first: its features
    (15 KB a window) are held until the last block, then yielded normalised, in blocks."""
    overlap = max(cfg.window_samples - cfg.hop_samples, 0)  # the samples that windows share
    blocks = stream_audio(path, blocksize=windows_per_block * cfg.hop_samples + overlap,
                          overlap=overlap, expected_sr=cfg.sample_rate, min_seconds=cfg.window_s)
    # block i starts at window i * windows_per_block: each window lies in exactly one block
    features = (window_features(windows, cfg) for block in blocks
                if len(windows := frame_windows(block, cfg.window_samples, cfg.hop_samples)))
    if cfg.normalise == "none":
        yield from features
        return
    parts = list(features)
    whole = normalised(np.concatenate(parts), cfg) if parts else np.empty((0, 0), np.float32)
    for first in range(0, len(whole), windows_per_block):
        yield whole[first:first + windows_per_block]
