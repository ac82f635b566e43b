"""Scores and metrics: per-unit scores from per-sample ones, decision metrics from labels,
scores and a threshold (abnormal = score > threshold), and classification metrics.

Ranking metrics come from sklearn.metrics. ``pauc`` is sklearn's partial AUROC for
FPR <= 0.1, McClish-standardised: 0.5 for a random ranking, 1 for a perfect one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score, precision_recall_curve, roc_auc_score, roc_curve,
)

from pipeline.bootstrap import percentile_interval, resample_weights, resampled_aurocs

log = logging.getLogger(__name__)
PAUC_MAX_FPR = 0.1


def _both_classes(y_true: np.ndarray) -> bool:
    return len(np.unique(y_true)) == 2


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    return {
        "tp": int((y_true & y_pred).sum()), "fp": int((~y_true & y_pred).sum()),
        "tn": int((~y_true & ~y_pred).sum()), "fn": int((y_true & ~y_pred).sum()),
    }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def auroc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of label 1 against 0; NaN with one class."""
    y_true = np.asarray(y_true).astype(int)
    if not _both_classes(y_true):
        return float("nan")
    return float(roc_auc_score(y_true, np.asarray(scores, dtype=float)))


def binary_report(y_true: np.ndarray, scores: np.ndarray, threshold: float,
                  ranked_by: np.ndarray | None = None) -> dict:
    """AUROC, pAUC, AUPRC (ranking by ``ranked_by``, by default ``scores``) and the
    sensitivity, specificity, F1 and accuracy of ``scores`` > ``threshold``."""
    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    c = confusion_counts(y_true, scores > threshold)
    order = scores if ranked_by is None else np.asarray(ranked_by, dtype=float)
    ranked = _both_classes(y_true)
    if not ranked:
        log.warning("only one class among %d samples: ranking metrics undefined", len(y_true))
    return {
        "auroc": auroc(y_true, order),
        "pauc": float(roc_auc_score(y_true, order, max_fpr=PAUC_MAX_FPR)) if ranked else float("nan"),
        "auprc": float(average_precision_score(y_true, order)) if ranked else float("nan"),
        "sensitivity": _ratio(c["tp"], c["tp"] + c["fn"]),
        "specificity": _ratio(c["tn"], c["tn"] + c["fp"]),
        "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
        "f1": _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]),
        "accuracy": _ratio(c["tp"] + c["tn"], len(y_true)),
        "n_normal": int((y_true == 0).sum()),
        "n_abnormal": int((y_true == 1).sum()),
        **c,
    }


def error_separation(y_true: np.ndarray, scores: np.ndarray) -> dict:
    """Mean score of each class and their ratio (the workshop's "4.8x higher")."""
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    normal, abnormal = scores[y_true == 0].mean(), scores[y_true == 1].mean()
    return {
        "mean_error_normal": float(normal),
        "mean_error_abnormal": float(abnormal),
        "separation": _ratio(abnormal, normal),
    }


def bootstrap_auroc_ci(y_true: np.ndarray, scores: np.ndarray, n_boot: int = 2000,
                       seed: int = 0, level: float = 0.95,
                       groups: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile interval of AUROC over seeded bootstrap resamples.

    Without ``groups``: stratified, positives and negatives resampled separately. With
    ``groups`` (one id per unit: a patient, a fold): a cluster bootstrap that draws whole
    groups with replacement, so units that move together are resampled together;
    resamples left with one class are skipped (and counted in the log).
    """
    return bootstrap_intervals(y_true, scores, None, n_boot, seed, level, groups)["auroc"]


def bootstrap_intervals(y_true: np.ndarray, scores: np.ndarray, hits: np.ndarray | None,
                        n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                        groups: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
    """Percentile intervals of AUROC and, given ``hits`` (per unit: was its decision right?),
    of sensitivity and specificity, all from the same seeded resamples (see
    ``bootstrap_auroc_ci``)."""
    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    if not _both_classes(y_true):
        nan = (float("nan"), float("nan"))
        return {"auroc": nan} if hits is None else {"auroc": nan, "sensitivity": nan,
                                                    "specificity": nan}
    values: dict[str, list[np.ndarray]] = {"auroc": [], "sensitivity": [], "specificity": []}
    if hits is not None:
        hits = np.asarray(hits, dtype=float)
        right = {"sensitivity": hits * (y_true == 1), "specificity": hits * (y_true == 0)}
        among = {"sensitivity": (y_true == 1).astype(float), "specificity": (y_true == 0).astype(float)}
    for weights in resample_weights(n_boot, seed, groups=groups, labels=y_true):
        values["auroc"].append(resampled_aurocs(y_true, scores, weights))
        if hits is not None:
            for name in right:
                with np.errstate(invalid="ignore", divide="ignore"):
                    values[name].append(weights @ right[name] / (weights @ among[name]))
    return {name: percentile_interval(np.concatenate(v), level, name)
            for name, v in values.items() if v}


def roc_table(y_true: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """ROC points (fpr, tpr, threshold); the infinite first threshold is made finite."""
    if not _both_classes(np.asarray(y_true)):
        return pd.DataFrame(columns=["fpr", "tpr", "threshold"])
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    thresholds = np.where(np.isfinite(thresholds), thresholds, np.max(scores) + 1e-9)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thresholds})


def pr_table(y_true: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """Precision-recall points (recall, precision, threshold), redundant points dropped.

    The last point (recall 0, precision 1) has no threshold: it gets one above every score.
    """
    if not _both_classes(np.asarray(y_true)):
        return pd.DataFrame(columns=["recall", "precision", "threshold"])
    precision, recall, thresholds = precision_recall_curve(y_true, scores, drop_intermediate=True)
    thresholds = np.append(thresholds, np.max(scores) + 1e-9)
    return pd.DataFrame({"recall": recall, "precision": precision, "threshold": thresholds})


def detection_by_type(frame: pd.DataFrame, type_columns: list[str], threshold: float) -> dict:
    """Share of abnormal units flagged, for each abnormal sound type they contain."""
    abnormal = frame[frame["label"] == 1]
    out = {}
    for column in type_columns:
        for sound_type, part in abnormal.groupby(column):
            if sound_type == "Normal":
                continue
            detected = int((part["score"] > threshold).sum())
            out[f"{column}:{sound_type}"] = {
                "n": len(part), "detected": detected, "rate": _ratio(detected, len(part)),
            }
    return out


# ---------------------------------------------------------------- per-unit scores
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


# ---------------------------------------------------------------- classification scores
# The ICBHI 2017 challenge (Rocha et al., 2019) defines, over respiratory cycles:
# specificity Sp = normal cycles classified normal / all normal cycles;
# sensitivity Se = abnormal cycles classified as their exact abnormal class / all abnormal
# cycles (so with two classes it is the plain sensitivity); score = (Se + Sp) / 2.


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
