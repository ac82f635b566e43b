"""From per-sample scores to per-unit scores (a recording's windows -> one score)."""

from __future__ import annotations

import pandas as pd

AGGREGATES = ("mean", "median", "max")


def aggregate_units(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    """One row per ``unit``: its aggregated ``score``, its label and descriptive columns."""
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {how!r}")
    if frame["unit"].is_unique:
        return frame.reset_index(drop=True)
    described = [c for c in frame.columns if c not in ("score", "window") and not c.startswith("prob_")]
    first = frame.groupby("unit", sort=True)[described].first()
    score = frame.groupby("unit", sort=True)["score"].agg(how)
    return first.drop(columns="unit").assign(score=score).reset_index()
