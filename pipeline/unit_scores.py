"""``metrics/<study>/scores.csv``: a study's per-unit test scores, written by evaluate and
read by ``pipeline compare`` (a module of its own, so that neither depends on the other)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import paths
from pipeline.io import write_csv

SCORE_COLUMNS = ["unit", "group", "label", "predicted", "score"]


def scores_path(study: str) -> Path:
    return paths.METRICS / study / "scores.csv"


def write_unit_scores(study: str, frame: pd.DataFrame) -> None:
    """``metrics/<study>/scores.csv``, small enough for git: scores to 6 significant digits.

    ``frame`` has ``unit`` and ``score``; ``group`` (units resampled together), ``label``
    (0 = normal) and ``predicted`` are optional and left empty when absent.
    """
    table = pd.DataFrame({c: frame.get(c, pd.NA) for c in SCORE_COLUMNS})
    table["score"] = table["score"].map(lambda v: float(f"{v:.6g}"))
    for column in ("label", "predicted"):  # class ids (booleans too), empty where absent
        table[column] = pd.to_numeric(table[column]).astype("Int64")
    write_csv(scores_path(study), table.sort_values("unit", kind="stable"))
