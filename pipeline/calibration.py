"""Decision thresholds from validation scores only (evaluate calibrates each
cross-validation fold and each final model with it).

Autoencoders see only normal sounds in validation, so their threshold is a point of
the normal error distribution: ``percentile`` (its q-th percentile), ``gamma`` (the q-th
percentile of a gamma distribution fitted to the errors, as the DCASE 2023 Task 2
baseline does: steadier than the empirical percentile when validation is small) or
``mean_std`` (mean + k standard deviations). Classifiers have labelled validation data and may
use ``youden`` (maximise sensitivity + specificity - 1; the same point maximises the
ICBHI score (Se + Sp) / 2) or a ``fixed`` value. Scores are aggregated per unit
(``aggregate``) first, exactly as evaluate and predict aggregate them. Classifiers of
more than two classes decide by ``argmax`` of their class probabilities: nothing is
fitted, and ``threshold.json`` says so (``decision: argmax``, ``threshold: null``).
Scores with an ``inner_fold`` column were cross-fitted by the train stage
(``train.cross_fit``): the inner models' scores (``inner_fold`` > 0) are calibrated on,
and ``threshold.json`` names that ``source``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.metrics import AGGREGATES, aggregate_units

log = logging.getLogger(__name__)

METHODS = ("percentile", "gamma", "mean_std", "youden", "icbhi", "fixed")
MIN_GAMMA_UNITS = 3  # a gamma fit needs a spread of errors
MIN_UNITS = 10  # fewer validation units than this make any threshold a guess: say so


def threshold_from_normal(errors: np.ndarray, method: str, percentile: float = 95.0,
                          k: float = 3.0) -> float:
    errors = np.asarray(errors, dtype=float)
    if len(errors) == 0:
        raise PipelineError("no validation scores to calibrate on")
    if method in ("percentile", "gamma") and not 0 <= percentile <= 100:
        raise PipelineError(f"calibrate.percentile must be in [0, 100], got {percentile}")
    if method == "percentile":
        return float(np.percentile(errors, percentile))
    if method == "gamma":
        return gamma_quantile(errors, percentile / 100)
    if method == "mean_std":
        return float(errors.mean() + k * errors.std())
    raise PipelineError(f"calibrate.method {method!r} needs labelled validation data")


def gamma_quantile(errors: np.ndarray, q: float) -> float:
    """The ``q`` quantile of a gamma distribution fitted (maximum likelihood, location 0)
    to non-negative errors."""
    from scipy import stats

    if len(errors) < MIN_GAMMA_UNITS or np.ptp(errors) == 0:
        raise PipelineError(f"calibrate.method gamma needs at least {MIN_GAMMA_UNITS} distinct validation "
                            f"errors, got {len(errors)} (use percentile)")
    if (errors < 0).any():
        raise PipelineError("calibrate.method gamma needs non-negative errors (reconstruction errors)")
    shape, loc, scale = stats.gamma.fit(errors, floc=0)
    return float(stats.gamma.ppf(q, shape, loc=loc, scale=scale))


def threshold_youden(labels: np.ndarray, scores: np.ndarray) -> float:
    """The ROC point maximising tpr - fpr; ties go to the highest threshold."""
    from sklearn.metrics import roc_curve  # here: percentile calibration skips sklearn

    if len(np.unique(labels)) < 2:
        raise PipelineError("youden calibration needs both classes in the validation split")
    fpr, tpr, thresholds = roc_curve(labels, scores)
    best = int(np.argmax(tpr - fpr))
    # roc_curve flags score >= t; we flag score > t, so step just below t
    return float(np.nextafter(thresholds[best], -np.inf))


def threshold(frame: pd.DataFrame, method: str, cfg: dict) -> float:
    if method not in METHODS:
        raise PipelineError(f"calibrate.method must be one of {METHODS}, got {method!r}")
    if method == "fixed":
        return float(cfg["value"])
    if method in ("youden", "icbhi"):
        return threshold_youden(frame["label"].to_numpy(), frame["score"].to_numpy())
    return threshold_from_normal(frame["score"].to_numpy(), method,
                                 cfg.get("percentile", 95.0), cfg.get("k", 3.0))


def n_classes(scores: pd.DataFrame) -> int:
    """Classes a classifier scored (its ``prob_k`` columns); 2 for a one-score detector."""
    return max(2, sum(c.startswith("prob_") for c in scores.columns))


def calibration_scores(val_scores: pd.DataFrame) -> pd.DataFrame:
    """The per-sample scores a threshold rests on: with ``train.cross_fit``, the inner
    models' (``inner_fold`` > 0), not the model's own; else every validation score."""
    if "inner_fold" not in val_scores:
        return val_scores
    return val_scores[val_scores["inner_fold"] > 0].drop(columns="inner_fold")


def calibrate(val_scores: pd.DataFrame, cfg: dict) -> dict:
    """Thresholds for units (and for single windows, where units hold several)."""
    method, how = cfg["method"], cfg.get("aggregate", "mean")
    cross_fitted = "inner_fold" in val_scores
    val_scores = calibration_scores(val_scores)
    units = aggregate_units(val_scores, how)
    classes = n_classes(val_scores)
    if classes > 2:
        return {"decision": "argmax", "method": "argmax", "method_param": method,
                "note": "multiclass: the most probable class is predicted; calibrate.method "
                        "applies to binary tasks only",
                "n_classes": classes, "aggregate": how, "threshold": None, "n_val_units": len(units)}
    if len(units) < MIN_UNITS:
        log.warning("the threshold rests on only %d validation unit(s): expect it to be unstable",
                    len(units))
    result = {"decision": "threshold", "method": method, "aggregate": how,
              "threshold": threshold(units, method, cfg), "n_val_units": len(units)}
    if method in ("percentile", "gamma"):  # what the threshold promises on normal units
        result["specificity_target"] = cfg.get("percentile", 95.0) / 100
    if cross_fitted:
        result["source"] = ("cross-fitted: every training-side unit scored by an inner model "
                            "blind to its group (train.cross_fit)")
    if len(units) != len(val_scores):
        result["threshold_window"] = threshold(val_scores, method, cfg)
        result["n_val_windows"] = len(val_scores)
    return result


def read_calibration(path: Path) -> dict:
    """``threshold.json`` as ``evaluate`` wrote it. Anything else (not JSON, not an
    object, a key missing, a threshold that is not a finite number) is a PipelineError
    naming the file, before any audio or test set is read."""
    path = Path(path)
    again = "re-run `pipeline evaluate` for its study, or `dvc repro`"
    if not path.is_file():
        raise PipelineError(f"no calibration here ({again})", path)
    try:
        found = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise PipelineError(f"not valid JSON ({exc}); {again}", path) from None
    if not isinstance(found, dict):
        raise PipelineError(f"not a calibration (a JSON object expected, found {type(found).__name__}); "
                            f"{again}", path)
    missing = [key for key in ("decision", "aggregate", "threshold") if key not in found]
    if missing:
        raise PipelineError(f"not a calibration: {', '.join(missing)} missing; {again}", path)
    if found["decision"] not in ("threshold", "argmax"):
        raise PipelineError(f"decision must be threshold or argmax, got {found['decision']!r}; {again}", path)
    if found["aggregate"] not in AGGREGATES:
        raise PipelineError(f"aggregate must be one of {AGGREGATES}, got {found['aggregate']!r}; {again}",
                            path)
    value = found["threshold"]
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if found["decision"] == "threshold" and not number:
        raise PipelineError(f"threshold must be a finite number, got {value!r}; {again}", path)
    return found
