"""Decision metrics from labels, scores and a threshold (abnormal = score > threshold).

Ranking metrics come from sklearn.metrics. ``pauc`` is sklearn's partial AUROC for
FPR <= 0.1, McClish-standardised: 0.5 for a random ranking, 1 for a perfect one.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score, precision_recall_curve, roc_auc_score, roc_curve,
)

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


def binary_report(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """AUROC, pAUC, AUPRC and the thresholded sensitivity, specificity, F1, accuracy."""
    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    c = confusion_counts(y_true, scores > threshold)
    ranked = _both_classes(y_true)
    if not ranked:
        log.warning("only one class among %d samples: ranking metrics undefined", len(y_true))
    return {
        "auroc": auroc(y_true, scores),
        "pauc": float(roc_auc_score(y_true, scores, max_fpr=PAUC_MAX_FPR)) if ranked else float("nan"),
        "auprc": float(average_precision_score(y_true, scores)) if ranked else float("nan"),
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


BOOT_BLOCK = 100  # resamples per array operation: bounds memory at 100 x n weights (fixed: same bytes)


def resampled_aurocs(y_true: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of each resample: row ``b`` of ``weights`` (B, n) counts how often each unit is drawn.

    The scores are ranked once; a resample's Mann-Whitney count is then read from cumulative
    weights of the negatives below (ties count half) each positive, for all rows at once.
    NaN where a resample holds a single class.
    """
    order = np.argsort(scores, kind="stable")
    ranked, positive = scores[order], y_true[order] == 1
    negatives = ranked[~positive]
    w = np.asarray(weights, dtype=float)[:, order]
    w_pos, w_neg = w[:, positive], w[:, ~positive]
    cum = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w_neg, axis=1)], axis=1)
    below = np.searchsorted(negatives, ranked[positive], side="left")
    up_to = np.searchsorted(negatives, ranked[positive], side="right")
    beaten = cum[:, below] + 0.5 * (cum[:, up_to] - cum[:, below])  # (B, n_pos)
    pairs = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, (w_pos * beaten).sum(axis=1) / pairs, np.nan)


def draw_counts(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """(draws, n): how often each of ``n`` items is drawn in each resample of size ``n``."""
    picks = rng.integers(0, n, size=(draws, n)) + n * np.arange(draws)[:, None]
    return np.bincount(picks.ravel(), minlength=draws * n).reshape(draws, n)


def _resample_weights(y_true: np.ndarray, n_boot: int, seed: int, groups: np.ndarray | None):
    """Blocks of (draws, n) resample counts: stratified (positives and negatives drawn
    separately) without ``groups``; with ``groups``, whole groups drawn with replacement."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y_true == 1), np.flatnonzero(y_true == 0)
    if groups is not None:
        codes, names = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
    for start in range(0, n_boot, BOOT_BLOCK):
        draws = min(BOOT_BLOCK, n_boot - start)
        if groups is None:
            weights = np.zeros((draws, len(y_true)))
            weights[:, pos] = draw_counts(rng, len(pos), draws)
            weights[:, neg] = draw_counts(rng, len(neg), draws)
        else:
            weights = draw_counts(rng, len(names), draws)[:, codes]
        yield weights


def _percentile_interval(values: np.ndarray, level: float, what: str) -> tuple[float, float]:
    undefined = int(np.isnan(values).sum())
    if undefined == len(values):
        return float("nan"), float("nan")
    if undefined:
        log.warning("%s: %d of %d resamples left it undefined (one class only): skipped",
                    what, undefined, len(values))
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


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
    for weights in _resample_weights(y_true, n_boot, seed, groups):
        values["auroc"].append(resampled_aurocs(y_true, scores, weights))
        if hits is not None:
            for name in right:
                with np.errstate(invalid="ignore", divide="ignore"):
                    values[name].append(weights @ right[name] / (weights @ among[name]))
    return {name: _percentile_interval(np.concatenate(v), level, name)
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
