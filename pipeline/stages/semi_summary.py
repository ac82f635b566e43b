"""Stage 7b: pool the semi-supervised grid (``icbhi_semi``) into one label-fraction curve.

Reads every cell's test scores and threshold (``icbhi.semi.method`` x
``icbhi.semi.label_fraction``, trained, calibrated and evaluated by the shared stages) and
writes:

- ``metrics/icbhi_semi.json``: per cell AUROC, ICBHI score, sensitivity and specificity,
  each with a 95% interval from a patient-cluster bootstrap (whole test patients are
  resampled, never single cycles), and per label fraction below 1 the share of the
  supervised AUROC gap (fraction -> 1.0) the best method closes;
- ``metrics/icbhi_semi/auroc_by_fraction.csv``: the curve as DVC plot data, one column per method;
- ``reports/icbhi_semi/label_fraction.png``: the same curve with its intervals;
- ``reports/audit/icbhi_semi.json``: per label fraction, which training patients keep
  their labels, and proof that unlabelled cycles come from training patients only.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from pipeline.calibration import read_calibration
from pipeline import paths, plots
from pipeline.errors import PipelineError
from pipeline.io import write_csv, write_json
from pipeline.bootstrap import percentile_interval, resample_weights, resampled_aurocs
from pipeline.params import load_params, lookup
from pipeline.datasets.icbhi.study import SEMI_STUDY
from pipeline.studies import get_study

CI_LEVEL = 0.95


def cell_name(method: str, fraction: float | int) -> str:
    """The study name of one grid cell, spelt as dvc.yaml's matrix spells the params value
    (``1.0`` stays ``1.0``, ``1`` stays ``1``)."""
    return f"{SEMI_STUDY}/{method}/{fraction}"


def _statistics(labels: np.ndarray, scores: np.ndarray, flagged: np.ndarray,
                weights: np.ndarray) -> dict[str, np.ndarray]:
    """AUROC, sensitivity, specificity and ICBHI score of each resample (a row of ``weights``
    counting how often each cycle is drawn); NaN where a resample lacks a class."""
    abnormal = weights * labels
    normal = weights * ~labels
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity = (abnormal * flagged).sum(axis=1) / abnormal.sum(axis=1)
        specificity = (normal * ~flagged).sum(axis=1) / normal.sum(axis=1)
    return {"auroc": resampled_aurocs(labels.astype(int), scores, weights), "sensitivity": sensitivity,
            "specificity": specificity, "icbhi_score": (sensitivity + specificity) / 2}


def cluster_bootstrap(frame: pd.DataFrame, threshold: float, n_boot: int, seed: int) -> dict[str, float]:
    """Point values and ``CI_LEVEL`` percentile intervals of the test statistics, resampling
    whole patients (``patient`` column) with replacement; ``label`` 1 = abnormal."""
    labels = frame["label"].to_numpy() != 0
    scores = frame["score"].to_numpy(dtype=float)
    flagged = scores > threshold
    weights = np.concatenate(list(resample_weights(n_boot, seed, groups=frame["patient"])))
    draws = _statistics(labels, scores, flagged, weights)
    point = _statistics(labels, scores, flagged, np.ones((1, len(frame))))
    result: dict[str, float] = {}
    for key, values in draws.items():
        result[key] = float(point[key][0])
        result[f"{key}_ci_low"], result[f"{key}_ci_high"] = percentile_interval(values, CI_LEVEL)
    result["n_test"], result["n_test_patients"] = len(frame), int(frame["patient"].nunique())
    return result


def gap_closed(cells: dict[str, dict], methods: list[str], fractions: list[float]) -> dict[str, dict]:
    """Per fraction f < 1: the best method's share of the AUROC gap between supervised at f
    and supervised at 1.0 (1 = the fully supervised AUROC reached; <= 0 = no help)."""
    if "supervised" not in methods or 1.0 not in fractions:
        return {}
    full = cells[f"supervised@{1.0}"]["auroc"]
    out = {}
    for fraction in (f for f in fractions if f < 1):
        base = cells[f"supervised@{fraction}"]["auroc"]
        others = [m for m in methods if m != "supervised"]
        if not others:
            continue
        best = max(others, key=lambda m: cells[f"{m}@{fraction}"]["auroc"])
        gap = full - base
        out[str(fraction)] = {
            "best_method": best, "supervised_auroc": base, "supervised_full_auroc": full,
            "best_auroc": cells[f"{best}@{fraction}"]["auroc"],
            "gap_closed": (cells[f"{best}@{fraction}"]["auroc"] - base) / gap if gap > 0 else float("nan"),
        }
    return out


def label_audit(params: dict, fractions: list[float | int]) -> dict:
    """Per fraction: labelled and unlabelled training patients, and their overlap with
    validation and test patients (must be none)."""
    audit: dict = {"fractions": {}}
    for fraction in fractions:
        cell = get_study(cell_name("supervised", fraction), params=params)
        data = cell.samples(["train", "val", "test"], params)
        train = data["train"].meta
        labelled = data["train"].y >= 0
        held = {name: set(data[name].meta["patient"]) for name in ("val", "test")}
        labelled_patients = set(train["patient"][labelled])
        unlabelled_patients = set(train["patient"][~labelled])
        entry = {
            "labelled_patients": sorted(labelled_patients),
            "unlabelled_patients": sorted(unlabelled_patients),
            "labelled_cycles": int(labelled.sum()), "unlabelled_cycles": int((~labelled).sum()),
            "labelled_cycle_share": float(labelled.mean()),
            "labelled_by_class": train["label4"][labelled].value_counts().sort_index().to_dict(),
            "overlap": {
                "labelled_and_unlabelled": len(labelled_patients & unlabelled_patients),
                **{f"unlabelled_and_{name}": len(unlabelled_patients & held[name]) for name in held},
                **{f"labelled_and_{name}": len(labelled_patients & held[name]) for name in held},
            },
        }
        if any(entry["overlap"].values()):
            raise PipelineError(f"label fraction {fraction}: patients overlap {entry['overlap']} "
                                "(the split or the label selection is broken)", paths.split_manifest("icbhi"))
        audit["fractions"][str(fraction)] = entry
    return audit


def summarise(params: dict) -> tuple[dict, pd.DataFrame, dict]:
    """The pooled metrics, the curve table (one column per method) and the label audit."""
    semi, evaluate = lookup(params, "icbhi.semi"), lookup(params, "icbhi.evaluate")
    methods = list(semi["method"])
    spelt = {float(f): f for f in semi["label_fraction"]}  # value -> as written in params.yaml
    fractions = sorted(spelt)
    cells = {}
    for method in methods:
        for fraction in fractions:
            name = cell_name(method, spelt[fraction])
            scores_path = paths.SCORES / name / "test.parquet"
            threshold_path = paths.MODELS / name / "threshold.json"
            for path in (scores_path, threshold_path):
                if not path.is_file():
                    raise PipelineError(f"missing: run `dvc repro` for the cell {name}", path)
            calibration = read_calibration(threshold_path)
            if calibration.get("decision") != "threshold":
                raise PipelineError("icbhi_semi pools binary decisions only",
                                    threshold_path)
            scores = pd.read_parquet(scores_path, columns=["patient", "label", "score"])
            threshold = calibration["threshold"]
            cells[f"{method}@{fraction}"] = {
                **cluster_bootstrap(scores, threshold, evaluate["bootstrap"], evaluate["seed"]),
                "threshold": threshold,
            }
    curve = pd.DataFrame({"label_fraction": fractions,
                          **{m: [cells[f"{m}@{f}"]["auroc"] for f in fractions] for m in methods}})
    metrics = {"methods": methods, "label_fractions": fractions,
               "gap_closed": gap_closed(cells, methods, fractions), "cells": cells}
    return metrics, curve, label_audit(params, [spelt[f] for f in fractions])


def command() -> None:
    """Pool the semi-supervised grid: metrics, the label-fraction curve and the label audit."""
    metrics, curve, audit = summarise(load_params())
    write_json(paths.audit_report(SEMI_STUDY), audit)
    write_csv(paths.METRICS / SEMI_STUDY / "auroc_by_fraction.csv", curve)
    plots.label_fraction_curve(metrics, paths.figures(SEMI_STUDY) / "label_fraction.png")
    write_json(paths.headline_metrics(SEMI_STUDY), metrics)
