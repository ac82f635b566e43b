"""Stage 6: score the test set once and write the study's metrics, plots and figures.

``metrics/<study>.json``: decisions per unit under ``test`` (a recording, for
HLS-CMDS), per sample under ``test_windows`` where units hold several samples.
``metrics/<study>/``: ROC points and per-unit confusion rows (DVC plots), detection
rate per abnormal type. ``reports/<study>/``: PNG figures.
A study's ``evaluation`` hook adds its own metrics and figures (``run_evaluation``); a
study without a threshold (``thresholded=False``, e.g. mnist_ae) gets the hook's alone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from pipeline import plots
from pipeline.io import read_json, write_csv, write_json, write_parquet
from pipeline.metrics import (
    binary_report, bootstrap_auroc_ci, detection_by_type, error_separation, roc_table,
)
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.scoring import aggregate_units
from pipeline.stages.train import score_frame
from pipeline.studies import Study, get_study
from pipeline.training import (
    Classification, Reconstruction, TrainConfig, load_checkpoint, predict_scores, resolve_device,
)


def score_test(study: Study, params: dict) -> pd.DataFrame:
    model, checkpoint = load_checkpoint(study.model_dir / "model.pt")
    test = study.load(["test"])["test"]
    device = resolve_device(TrainConfig.from_params(study.params(params, "train")).device)
    objective = Reconstruction() if study.objective == "reconstruction" else Classification()
    x = Scaler.from_state(checkpoint["scaler"]).transform(test.x)
    return score_frame(objective, predict_scores(model.to(device), objective, x, device), test.meta)


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


def run_evaluation(spec: Study, params: dict, metrics: dict | None = None) -> dict:
    """``metrics`` with the study's own evaluation merged in (written to metrics/<study>.json)."""
    merged = dict(metrics or {})
    for key, value in spec.evaluation(spec, params, Path("reports") / spec.name).items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if both else value
    write_json(Path("metrics") / f"{spec.name}.json", merged)
    return merged


def command(study: str = typer.Argument(..., help="study name, e.g. hls_ae")) -> None:
    """Evaluate STUDY on its test set: metrics, DVC plot data and figures."""
    spec = get_study(study)
    params = load_params()
    if not spec.thresholded:
        run_evaluation(spec, params)
        return
    calibration = read_json(spec.model_dir / "threshold.json")
    samples = score_test(spec, params)
    metrics, units, by_type = evaluate_scores(
        samples, calibration, spec.params(params, "evaluate"), spec.type_columns
    )
    plot_dir, figure_dir = Path("metrics") / study, Path("reports") / study
    roc = roc_table(units["label"], units["score"])
    write_parquet(Path("data/scores") / study / "test.parquet", samples)
    write_json(Path("metrics") / f"{study}.json", metrics)
    write_json(plot_dir / "roc.json", {"roc": roc.to_dict(orient="records")})
    write_json(plot_dir / "detection_by_type.json", by_type)
    names = {0: "normal", 1: "abnormal"}
    write_csv(plot_dir / "confusion.csv", pd.DataFrame({
        spec.unit: units["unit"],
        "actual": units["label"].map(names),
        "predicted": (units["score"] > metrics["threshold"]).astype(int).map(names),
    }))
    title = f"{study}: test {spec.unit}s"
    plots.score_histogram(units, metrics["threshold"], figure_dir / "score_histogram.png", title)
    plots.roc_figure(roc, metrics["test"]["auroc"], figure_dir / "roc.png", title)
    if spec.evaluation is not None:
        run_evaluation(spec, params, metrics)
