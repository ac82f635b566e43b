"""Stage 6: score the test set once and write the study's metrics, plots and figures.

``metrics/<study>.json`` holds the study's headline numbers only (``Study.headline``,
under the study's name so that ``dvc exp show`` columns are short and unique);
``metrics/<study>/details.json`` every figure: decisions per unit under ``test`` (a
recording, for HLS-CMDS), per sample under ``test_windows`` where units hold several
samples, and the units each split holds under ``data``.
``metrics/<study>/scores.csv``: the per-unit test scores that ``pipeline compare`` reads.
Classifiers (ICBHI) report ``test.auroc`` (abnormal vs normal, ranked by 1 - p(normal)),
``sensitivity``, ``specificity`` and ``icbhi_score`` (the challenge's: with four classes
an abnormal cycle counts only when its exact class is predicted), ``accuracy``,
``f1_macro`` and counts; the decision is the calibrated threshold (binary) or the most
probable class (multiclass).
``metrics/<study>/``: ROC points and per-unit confusion rows with class names (DVC
plots), detection rate per abnormal type, sklearn's classification report, and a
breakdown per group (``by_<group_column>.json``: per device for ICBHI, per kind of
sound for HLS-CMDS). ``reports/<study>/``: PNG figures (ROC, score histogram, confusion).
A study's ``evaluation`` hook adds its own metrics and figures (``with_evaluation``); a
study without a threshold (``thresholded=False``, e.g. mnist_ae) gets the hook's alone.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from sklearn.metrics import accuracy_score, classification_report, f1_score, roc_auc_score

from pipeline import plots
from pipeline.classification_metrics import icbhi_score, per_group_metrics
from pipeline.compare import write_unit_scores
from pipeline.errors import PipelineError
from pipeline.io import read_json, write_csv, write_json, write_parquet
from pipeline.metrics import (
    binary_report, bootstrap_auroc_ci, confusion_counts, detection_by_type, error_separation,
    pr_table, roc_table,
)
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.scoring import aggregate_units
from pipeline.stages.train import score_frame
from pipeline.studies import Samples, Study, get_study
from pipeline.training import (
    Classification, Reconstruction, TrainConfig, load_checkpoint, predict_scores, resolve_device,
)

log = logging.getLogger(__name__)


def data_counts(data: dict[str, Samples]) -> dict:
    """Units (and samples, where a unit holds several) per split, as the study used them."""
    counts = {}
    for split, part in data.items():
        units = part.meta.groupby("unit", sort=False)["label"].first()
        counts[split] = {"units": len(units), "samples": len(part.meta),
                         **{f"label_{int(k)}": int(v) for k, v in units.value_counts().sort_index().items()}}
    return counts


# headline names are short: `dvc exp show` columns read `<study>.<name>` and must fit a terminal
_SHORT = {"auroc_ci_low": "auroc_lo", "auroc_ci_high": "auroc_hi"}


def headline(study: Study, metrics: dict) -> dict:
    """``{study: {name: value}}`` for each of ``study.headline`` (dotted keys) in ``metrics``,
    named by the key's last part (shortened by ``_SHORT``)."""
    out = {}
    for key in study.headline:
        node = metrics
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            name = key.rsplit(".", 1)[-1]
            out[_SHORT.get(name, name)] = node
    return {study.name: out}


def plural(noun: str) -> str:
    return noun if noun.endswith("s") else f"{noun}s"


def score_test(study: Study, params: dict) -> tuple[pd.DataFrame, tuple[str, ...], dict]:
    """Per-sample test scores next to their metadata, the class names and the data counts."""
    model, checkpoint = load_checkpoint(study.model_dir / "model.pt")
    data = study.load(["train", "val", "test"], params)
    test = data["test"]
    trained_on = tuple(checkpoint.get("classes", test.classes))
    if trained_on != tuple(test.classes):
        raise PipelineError(f"the model was trained for classes {trained_on}, the test set has "
                            f"{tuple(test.classes)} (re-run train)", study.model_dir / "model.pt")
    device = resolve_device(TrainConfig.from_params(study.params(params, "train")).device)
    objective = Reconstruction() if study.objective == "reconstruction" else Classification()
    x = Scaler.from_state(checkpoint["scaler"]).transform(test.x, in_place=True)  # test.x is ours
    log.info("%s: scoring %d test samples (%d %s) on %s", study.name, len(x),
             test.meta["unit"].nunique(), plural(study.unit), device.type)
    scores = predict_scores(model.to(device), objective, x, device)
    return score_frame(objective, scores, test.meta), tuple(test.classes), data_counts(data)


def decide(units: pd.DataFrame, calibration: dict) -> np.ndarray:
    """Predicted class ids: the most probable class (``argmax``) or score > threshold."""
    if calibration.get("decision") == "argmax":
        columns = sorted((c for c in units if c.startswith("prob_")), key=lambda c: int(c[5:]))
        return units[columns].to_numpy().argmax(axis=1)
    return (units["score"].to_numpy() > calibration["threshold"]).astype(int)


def decision_report(frame: pd.DataFrame, threshold: float) -> dict:
    y, s = frame["label"].to_numpy(), frame["score"].to_numpy()
    return {**binary_report(y, s, threshold), **error_separation(y, s)}


def evaluate_scores(samples: pd.DataFrame, calibration: dict, cfg: dict,
                    type_columns: tuple[str, ...]) -> tuple[dict, pd.DataFrame, dict]:
    """Metrics from per-sample test scores and the calibrated thresholds (pure)."""
    units = aggregate_units(samples, calibration["aggregate"])
    threshold = calibration["threshold"]
    test = decision_report(units, threshold)
    test["auroc_ci_low"], test["auroc_ci_high"] = bootstrap_auroc_ci(
        units["label"], units["score"], n_boot=cfg["bootstrap"], seed=cfg["seed"]
    )
    metrics = {"threshold": threshold, "test": test}
    if "threshold_window" in calibration:
        metrics["threshold_window"] = calibration["threshold_window"]
        metrics["test_windows"] = decision_report(samples, calibration["threshold_window"])
    present = [c for c in type_columns if c in units]
    return metrics, units, detection_by_type(units, present, threshold)


def classification_scores(samples: pd.DataFrame, calibration: dict, cfg: dict,
                          classes: tuple[str, ...], type_columns: tuple[str, ...] = ()
                          ) -> tuple[dict, pd.DataFrame, dict]:
    """Metrics of a classifier from per-sample test scores and its calibration (pure).

    Class 0 is normal. Sensitivity, specificity and the ICBHI score follow the challenge
    (exact abnormal class needed); AUROC ranks abnormal against normal by ``score``
    (1 - p(normal)). Returns the metrics, the unit table and detection per abnormal type.
    """
    units = aggregate_units(samples, calibration["aggregate"])
    y, predicted = units["label"].to_numpy().astype(int), decide(units, calibration)
    labels = list(range(len(classes)))
    abnormal, score = (y != 0).astype(int), units["score"].to_numpy(dtype=float)
    both = len(np.unique(abnormal)) == 2
    challenge = icbhi_score(y, predicted)
    test = {
        "auroc": float(roc_auc_score(abnormal, score)) if both else float("nan"),
        "sensitivity": challenge["sensitivity"],
        "specificity": challenge["specificity"],
        "icbhi_score": challenge["score"],
        "accuracy": float(accuracy_score(y, predicted)),
        "f1_macro": float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0)),
        "n": len(y),
        **{f"n_{name}": int((y == k).sum()) for k, name in enumerate(classes)},
    }
    test["auroc_ci_low"], test["auroc_ci_high"] = bootstrap_auroc_ci(
        abnormal, score, n_boot=cfg["bootstrap"], seed=cfg["seed"]
    )
    if len(classes) == 2:
        test.update(confusion_counts(y, predicted))
    metrics = {
        "task": "binary" if len(classes) == 2 else "multiclass",
        "decision": calibration.get("decision", "threshold"),
        "threshold": calibration["threshold"],
        "test": test,
    }
    flagged = units.assign(label=abnormal, score=(predicted != 0).astype(float))
    present = [c for c in type_columns if c in units]
    return metrics, units, detection_by_type(flagged, present, 0.5)


def breakdown(y: np.ndarray, predicted: np.ndarray, groups: pd.Series) -> dict:
    """Counts, accuracy, sensitivity, specificity and (Se + Sp) / 2 per group."""
    table = per_group_metrics(y, predicted, groups.astype(str))
    return {row.pop("group"): row for row in table.to_dict(orient="records")}


def with_evaluation(spec: Study, params: dict, metrics: dict | None = None) -> dict:
    """``metrics`` with the study's own evaluation hook merged in (it also writes its figures)."""
    merged = dict(metrics or {})
    if spec.evaluation is None:
        return merged
    for key, value in spec.evaluation(spec, params, Path("reports") / spec.name).items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if both else value
    return merged


def write_metrics(study: Study, metrics: dict) -> None:
    """The headline numbers to ``metrics/<study>.json``, everything to ``details.json``."""
    write_json(Path("metrics") / study.name / "details.json", metrics)
    write_json(Path("metrics") / f"{study.name}.json", headline(study, metrics))


def command(study: str = typer.Argument(..., help="study name, e.g. hls_ae")) -> None:
    """Evaluate STUDY on its test set: metrics, DVC plot data and figures."""
    started = time.monotonic()
    spec = get_study(study)
    params = load_params()
    if not spec.thresholded:
        write_metrics(spec, with_evaluation(spec, params, {"data": data_counts(
            spec.load(["train", "val", "test"], params))}))
        log.info("%s: evaluated in %.0f s", study, time.monotonic() - started)
        return
    calibration = read_json(spec.model_dir / "threshold.json")
    samples, classes, counts = score_test(spec, params)
    cfg = spec.params(params, "evaluate")
    log.info("%s: metrics, with a %d-resample AUROC interval", study, cfg["bootstrap"])
    if spec.objective == "classification":
        metrics, units, by_type = classification_scores(samples, calibration, cfg, classes,
                                                        spec.type_columns)
        score_name = "P(abnormal) = 1 - P(normal)"
    else:
        metrics, units, by_type = evaluate_scores(samples, calibration, cfg, spec.type_columns)
        score_name = "reconstruction error"
    metrics["data"] = counts
    y, predicted = units["label"].to_numpy().astype(int), decide(units, calibration)
    abnormal = units.assign(label=(y != 0).astype(int))
    plot_dir, figure_dir = Path("metrics") / study, Path("reports") / study
    roc = roc_table(abnormal["label"], abnormal["score"])
    write_parquet(Path("data/scores") / study / "test.parquet", samples)
    write_unit_scores(study, units.assign(
        predicted=predicted, group=units[spec.bootstrap_group] if spec.bootstrap_group else pd.NA))
    write_json(plot_dir / "roc.json", {"roc": roc.to_dict(orient="records")})
    pr = pr_table(abnormal["label"], abnormal["score"])
    write_json(plot_dir / "pr.json", {"pr": pr.to_dict(orient="records")})
    write_json(plot_dir / "detection_by_type.json", by_type)
    names = np.asarray(classes, dtype=object)
    write_csv(plot_dir / "confusion.csv", pd.DataFrame({
        spec.unit: units["unit"], "actual": names[y], "predicted": names[predicted],
    }))
    write_json(plot_dir / "classification_report.json", classification_report(
        y, predicted, labels=list(range(len(classes))), target_names=list(classes),
        output_dict=True, zero_division=0,
    ))
    if spec.group_column is not None:
        write_json(plot_dir / f"by_{spec.group_column}.json",
                   breakdown(y, predicted, units[spec.group_column]))
    log.info("%s: figures -> %s", study, figure_dir)
    title = f"{study}: test {plural(spec.unit)}"
    plots.score_histogram(abnormal, metrics["threshold"], figure_dir / "score_histogram.png", title,
                          xlabel=score_name)
    plots.roc_figure(roc, metrics["test"]["auroc"], figure_dir / "roc.png", title)
    plots.confusion_matrix(y, predicted, classes, figure_dir / "confusion.png", title)
    write_metrics(spec, with_evaluation(spec, params, metrics))
    log.info("%s: evaluated in %.0f s", study, time.monotonic() - started)
