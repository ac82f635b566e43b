"""From per-sample scores to per-unit scores (a recording's windows -> one score)."""

from __future__ import annotations

import pandas as pd

AGGREGATES = ("mean", "median", "max")


def aggregate_units(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    """One row per ``unit``: its aggregated ``score`` (and class probabilities), its label
    and descriptive columns."""
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {how!r}")
    if frame["unit"].is_unique:
        return frame.reset_index(drop=True)
    values = ["score"] + [c for c in frame.columns if c.startswith("prob_")]
    described = [c for c in frame.columns if c not in values and c != "window"]
    first = frame.groupby("unit", sort=True)[described].first().drop(columns="unit")
    scores = frame.groupby("unit", sort=True)[values].agg(how)
    return first.join(scores).reset_index()

