"""Classification scores, including the ICBHI 2017 challenge score.

The challenge (Rocha et al., 2019) defines, over respiratory cycles:
specificity Sp = normal cycles classified normal / all normal cycles;
sensitivity Se = abnormal cycles classified as their exact abnormal class / all abnormal
cycles (so with two classes it is the plain sensitivity); score = (Se + Sp) / 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def _share(hits: np.ndarray) -> float:
    """Mean of a boolean array; NaN when it is empty (no cycles of that kind)."""
    return float(hits.mean()) if hits.size else float("nan")


def icbhi_score(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, normal_label: int = 0
) -> dict[str, float]:
    """``{sensitivity, specificity, score}``; NaN where a kind of cycle is absent."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and alike: {y_true.shape}, {y_pred.shape}")
    correct = y_true == y_pred
    normal = y_true == normal_label
    sensitivity, specificity = _share(correct[~normal]), _share(correct[normal])
    return {
        "sensitivity": sensitivity,
        "specificity": specificity,
        "score": (sensitivity + specificity) / 2,
    }


def per_group_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    groups: Sequence | np.ndarray,
    normal_label: int = 0,
) -> pd.DataFrame:
    """One row per group (e.g. recording device): counts, accuracy and the ICBHI scores."""
    frame = pd.DataFrame({"true": np.asarray(y_true), "pred": np.asarray(y_pred),
                          "group": np.asarray(groups)})
    rows = []
    for group, part in frame.groupby("group", sort=True):
        n_normal = int((part["true"] == normal_label).sum())
        rows.append({
            "group": group,
            "n": len(part),
            "n_normal": n_normal,
            "n_abnormal": len(part) - n_normal,
            "accuracy": float((part["true"] == part["pred"]).mean()),
            **icbhi_score(part["true"].to_numpy(), part["pred"].to_numpy(), normal_label),
        })
    return pd.DataFrame(rows, columns=["group", "n", "n_normal", "n_abnormal", "accuracy",
                                       "sensitivity", "specificity", "score"])
