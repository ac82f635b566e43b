"""Pooling the folds of a cross-validated study: every unit scored once, out of fold.

Each fold's model is calibrated on its own validation scores only (``calibration``), then
its test scores are put on one scale with the others: the **margin** to the fold's own
threshold (``Objective.margin``: ``log(error / threshold)`` for reconstruction errors,
``logit(score) - logit(threshold)`` for classifier probabilities). A margin above 0 is
exactly the fold's own decision, and within a fold margins rank units as the raw scores
do, so pooled decisions are the folds' decisions. A margin moves with the threshold,
though (a lower percentile shifts a fold's margins by its own amount), so the
threshold-free figures rank by another scale, ``ranking``: the fold's log-scale scores
(``Objective.log_scale``) minus the median of its normal calibration units, over their
interquartile range, statistics that no percentile or Youden point moves. Pooled AUROC is
then one figure whatever the operating point. Classifiers of several classes decide by
argmax and keep their raw scores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.calibration import calibrate, calibration_scores
from pipeline.metrics import aggregate_units, auroc
from pipeline.objectives import RANKING, SCORE, Objective

log = logging.getLogger(__name__)
MIN_NORMAL = 5  # fewer normal calibration units place a fold's median and spread loosely


@dataclass
class Pooled:
    samples: pd.DataFrame  # every fold's per-sample test scores as margins, with a ``fold`` column
    units: pd.DataFrame  # one row per unit (aggregated per fold, then made a margin)
    calibration: dict  # the pooled decision rule: margin > 0 (or argmax)
    folds: list[dict]  # per fold: its threshold, validation size and test figures


def fold_summary(k: int, objective: Objective, calibration: dict, units: pd.DataFrame) -> dict:
    """A fold's threshold and its own test figures (before pooling)."""
    y, predicted = units["label"].to_numpy().astype(int), objective.decide(units, calibration)
    hits = predicted == y
    return {
        "fold": k, "threshold": calibration["threshold"], "n_val_units": calibration["n_val_units"],
        "n_test_units": len(units),
        "auroc": auroc((y != 0).astype(int), units["score"].to_numpy()),
        "sensitivity": float(hits[y != 0].mean()) if (y != 0).any() else float("nan"),
        "specificity": float(hits[y == 0].mean()) if (y == 0).any() else float("nan"),
    }


def normal_scale(val: pd.DataFrame, how: str, objective: Objective) -> tuple[float, float]:
    """Median and interquartile range of a fold's normal calibration units, on the
    objective's log scale: where that fold's scores sit, whatever its threshold."""
    units = aggregate_units(calibration_scores(val), how)
    normal = objective.log_scale(units.loc[units["label"] == 0, SCORE])
    if len(normal) < MIN_NORMAL:
        log.warning("a fold's ranking scale rests on %d normal calibration unit(s)%s", len(normal),
                    "" if len(normal) else ": all its calibration units stand in")
    if not len(normal):
        normal = objective.log_scale(units[SCORE])
    q1, median, q3 = np.percentile(normal, [25, 50, 75])
    return float(median), float(q3 - q1) if q3 > q1 else 1.0  # all alike: shift only


def pool(folds: dict[int, tuple[pd.DataFrame, pd.DataFrame]], cfg: dict, objective: Objective) -> Pooled:
    """Calibrate each fold on its validation scores, then pool its test scores as margins.

    ``folds`` maps fold number to (validation, test) per-sample score tables; ``cfg`` is the
    study's calibrate section."""
    samples, units, summaries, calibrations = [], [], [], []
    for k, (val, test) in sorted(folds.items()):
        calibration = calibrate(val, cfg)
        fold_units = aggregate_units(test, calibration["aggregate"])
        summaries.append(fold_summary(k, objective, calibration, fold_units))
        calibrations.append(calibration)
        if calibration["decision"] == "threshold":
            median, iqr = normal_scale(val, calibration["aggregate"], objective)

            def ranked(scores: pd.Series, median=median, iqr=iqr) -> np.ndarray:
                return (objective.log_scale(scores) - median) / iqr

            fold_units = fold_units.assign(  # raw_score: the error itself, for the separation ratio
                raw_score=fold_units[SCORE],
                score=objective.margin(fold_units[SCORE], calibration["threshold"]),
                **{RANKING: ranked(fold_units[SCORE])})
            window = calibration.get("threshold_window")
            if window is not None:  # windows too rank on their units' scale (the units' median and IQR)
                test = test.assign(score=objective.margin(test[SCORE], window),
                                   **{RANKING: ranked(test[SCORE])})
        samples.append(test.assign(fold=k))
        units.append(fold_units.assign(fold=k))
    first = calibrations[0]
    pooled = {"decision": first["decision"], "method": f"{first['method']}, per fold",
              "aggregate": first["aggregate"], "scale": "margin to each fold's own threshold",
              "ranking": ("threshold-free figures: each fold's log-scale scores minus the median "
                          "of its normal calibration units, over their interquartile range"),
              "threshold": 0.0 if first["decision"] == "threshold" else None,
              "n_val_units": int(sum(c["n_val_units"] for c in calibrations))}
    if all("threshold_window" in c for c in calibrations):
        pooled["threshold_window"] = 0.0
    if "source" in first:  # cross-fitted calibration scores (train.cross_fit)
        pooled["source"] = first["source"]
    if "specificity_target" in first:
        pooled["specificity_target"] = first["specificity_target"]
    return Pooled(pd.concat(samples, ignore_index=True), pd.concat(units, ignore_index=True),
                  pooled, summaries)


def spread(folds: list[dict], names: tuple[str, ...] = ("auroc", "sensitivity", "specificity")) -> dict:
    """Mean and sample standard deviation (ddof 1) over the folds of each figure in ``names``."""
    out = {}
    for name in names:
        values = np.array([f[name] for f in folds], dtype=float)
        out[f"{name}_mean"] = float(np.nanmean(values))
        out[f"{name}_std"] = float(np.nanstd(values, ddof=1)) if len(values) > 1 else float("nan")
    return {"folds": len(folds), **out}
