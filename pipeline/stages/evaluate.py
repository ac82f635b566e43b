"""Stage 5: calibrate the final model's decision threshold on its validation scores only
(``models/<study>/threshold.json``, which ``pipeline predict`` uses; ``pipeline/calibration.py``
says how each method works), score the test set once and write the study's metrics, plots
and figures. Calibrating here rather than in a stage of its own saves a process and a
DVC stage per study, and the threshold is written by the command that uses it.

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
breakdown per group (``by_group.json``, by the study's ``group_column``: per device for
ICBHI, per kind of sound for HLS-CMDS). ``reports/figures/<study>/``: PNG figures (ROC,
score histogram, confusion). A study's ``evaluation`` hook adds its own metrics and
figures (``with_evaluation``); a study without a threshold (the index's ``unthresholded``
group, e.g. mnist_ae) gets the hook's alone.

A study of several seeds (``train.seeds``) is evaluated as its seed ensemble, the model
that ``pipeline predict`` uses; each member is then evaluated alone the same way (its own
thresholds, its own pooling), and ``seed_spread`` holds each headline figure's mean and
standard deviation over the members (``auroc_seed_sd``, ...): how far one seed's figure
moves with the seed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from sklearn.metrics import classification_report

from pipeline.calibration import calibrate
from pipeline import evaluations, paths, plots
from pipeline.metrics import aggregate_units, per_group_metrics, pr_table, roc_table
from pipeline.unit_scores import write_unit_scores
from pipeline.cross_validation import fold_summary, pool, spread
from pipeline.errors import PipelineError
from pipeline.io import write_csv, write_json, write_parquet
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.objectives import Objective, ranking
from pipeline.studies import Samples, Study, fold_numbers, get_study
from pipeline.models.ensemble import SeedEnsemble
from pipeline.training_noise import SEED_FIGURES
from pipeline.training import TrainConfig, load_checkpoint, predict_scores, resolve_device

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
_SHORT = {"auroc_ci_low": "auroc_lo", "auroc_ci_high": "auroc_hi", "sensitivity_ci_low": "sens_lo",
          "sensitivity_ci_high": "sens_hi", "specificity_ci_low": "spec_lo",
          "specificity_ci_high": "spec_hi", "specificity_target": "spec_target",
          "auroc_mean": "cv_auroc_mean", "auroc_std": "cv_auroc_std"}


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
    spread = metrics.get("seed_spread", {})
    if spread:
        out["seeds"] = len(spread["seeds"])
    for name, short in SEED_FIGURES.items():
        for stat in ("mean", "sd"):
            if f"{name}_seed_{stat}" in spread:
                out[f"{short}_seed_{stat}"] = spread[f"{name}_seed_{stat}"]
    return {study.name: out}


def plural(noun: str) -> str:
    return noun if noun.endswith("s") else f"{noun}s"


@dataclass
class TestSet:
    """The test split scored once: per-sample scores next to their metadata, the model's
    (key None) and, for a seed ensemble, each seed member's; the class names; data counts."""
    scores: dict[int | None, pd.DataFrame]
    classes: tuple[str, ...]
    counts: dict


def score_test(study: Study, params: dict, objective: Objective) -> TestSet:
    """The model's test scores by ``objective``; a seed ensemble's members each score once,
    and the ensemble's scores are theirs combined (what ``predict_scores`` gives)."""
    model, checkpoint = load_checkpoint(study.model_dir / "model.pt", study.name)
    data = study.samples(["train", "val", "test"], params)
    test = data["test"]
    trained_on = tuple(checkpoint.get("classes", test.classes))
    if trained_on != tuple(test.classes):
        raise PipelineError(f"the model was trained for classes {trained_on}, the test set has "
                            f"{tuple(test.classes)} (re-run train)", study.model_dir / "model.pt")
    device = resolve_device(TrainConfig.from_params(study.params(params, "train")).device)
    x = Scaler.from_state(checkpoint["scaler"]).transform(test.x, in_place=True)  # test.x is ours
    log.info("%s: scoring %d test samples (%d %s) on %s", study.name, len(x),
             test.meta["unit"].nunique(), plural(study.unit), device.type)

    def scored(member) -> pd.DataFrame:  # one seed member (a torch module)
        return objective.score_table(predict_scores(member.to(device), objective, x, device), test.meta)

    if isinstance(model, SeedEnsemble):
        members = {seed: scored(member) for seed, member in zip(model.seeds, model.members, strict=True)}
        scores = {None: objective.ensemble_table(list(members.values()), model.scales), **members}
    else:
        scores = {None: scored(model)}
    return TestSet(scores, tuple(test.classes), data_counts(data))


def breakdown(y: np.ndarray, predicted: np.ndarray, groups: pd.Series) -> dict:
    """Counts, accuracy, sensitivity, specificity and (Se + Sp) / 2 per group."""
    table = per_group_metrics(y, predicted, groups.astype(str))
    return {row.pop("group"): row for row in table.to_dict(orient="records")}


def with_evaluation(study: Study, params: dict, metrics: dict | None = None) -> dict:
    """``metrics`` with the study's own evaluation hook merged in (it also writes its figures)."""
    merged = dict(metrics or {})
    if study.evaluation is None:
        return merged
    hook = getattr(evaluations, study.evaluation)
    for key, value in hook(study, params, paths.figures(study.name)).items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if both else value
    return merged


def write_metrics(study: Study, metrics: dict) -> None:
    """The headline numbers to ``metrics/<study>.json``, everything to ``details.json``."""
    write_json(paths.METRICS / study.name / "details.json", metrics)
    write_json(paths.headline_metrics(study.name), headline(study, metrics))


@dataclass
class TestScores:
    """What evaluate assesses: per-sample and per-unit test scores with the decision rule."""
    samples: pd.DataFrame
    units: pd.DataFrame
    objective: Objective
    calibration: dict
    classes: tuple[str, ...]
    counts: dict  # units (and samples) per split, for metrics' ``data``
    score_name: str  # the x axis of the score histogram
    extra: dict = field(default_factory=dict)  # more metrics (cross-validation: ``cv``)
    folds: list[dict] = field(default_factory=list)  # cross-validation: each fold's own figures


def trained_scores(found: Path, study: Study) -> pd.DataFrame:
    if not found.is_file():
        raise PipelineError(f"{study.name} has not been trained (run `pipeline train {study.name}`, "
                            "or `dvc repro`)", found)
    return pd.read_parquet(found)


def calibrate_final(study: Study, params: dict) -> dict:
    """The final model's calibration on its validation scores only, written to
    ``models/<study>/threshold.json``."""
    calibration = calibrate(trained_scores(scores_path(study.name, "val", None), study),
                            study.params(params, "calibrate"))
    write_json(study.model_dir / "threshold.json", calibration, digits=None)
    return calibration


def scores_path(name: str, split: str, seed: int | None) -> Path:
    """Where a model's scores of ``split`` are: the study's own, or seed member ``seed``'s."""
    if seed is None:
        return paths.SCORES / name / f"{split}.parquet"
    return paths.member_scores(name, seed, split)


def single_model(study: Study, params: dict, tested: TestSet, seed: int | None = None) -> TestScores:
    """The study's model (or its seed member ``seed``) on its ``tested`` split, decided by
    its calibrated threshold (one fold)."""
    if seed is None:
        calibration = calibrate_final(study, params)
    else:
        calibration = calibrate(trained_scores(scores_path(study.name, "val", seed), study),
                                study.params(params, "calibrate"))
    objective = study.make_objective()
    samples = tested.scores[seed]
    units = aggregate_units(samples, calibration["aggregate"])
    return TestScores(samples, units, objective, calibration, tested.classes, tested.counts,
                      objective.score_name, folds=[fold_summary(1, objective, calibration, units)])


def out_of_fold(study: Study, params: dict, seed: int | None = None) -> TestScores:
    """Every fold's test scores, each fold calibrated on its own validation scores, pooled
    as margins to the fold's threshold (``pipeline/cross_validation.py``): the folds'
    models', or their seed member ``seed``'s."""
    scores: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = {}
    classes: set[tuple[str, ...]] = set()
    for k in fold_numbers(study.dataset):
        fold = study.fold(k)
        found = [scores_path(fold.name, split, seed) for split in ("val", "test")]
        for path in [*found, fold.model_dir / "model.pt"]:
            if not path.is_file():
                raise PipelineError(f"fold {k} has not been trained (run `pipeline train "
                                    f"{study.name}`, or `dvc repro`)", path)
        scores[k] = (pd.read_parquet(found[0]), pd.read_parquet(found[1]))
        classes.add(tuple(load_checkpoint(fold.model_dir / "model.pt", fold.name)[1]["classes"]))
    if len(classes) != 1:
        raise PipelineError(f"the folds were trained for different classes {sorted(classes)} "
                            "(re-run `dvc repro`)", study.fold_dir(paths.MODELS))
    objective = study.make_objective()
    pooled = pool(scores, study.params(params, "calibrate"), objective)
    log.info("%s: %d folds pooled, %d test %s scored out of fold", study.name, len(scores),
             len(pooled.units), plural(study.unit))
    counts = {"test": {"units": len(pooled.units), "samples": len(pooled.samples),
                       **{f"label_{int(k)}": int(v) for k, v in
                          pooled.units["label"].value_counts().sort_index().items()}}}
    calibration = pooled.calibration
    name = objective.margin_name if calibration["decision"] == "threshold" else objective.score_name
    return TestScores(pooled.samples, pooled.units, objective, calibration, classes.pop(), counts, name,
                      extra={"cv": spread(pooled.folds), "calibration": calibration},
                      folds=pooled.folds)


def seed_spread(study: Study, params: dict, evaluated: Callable[[int | None], TestScores]) -> dict:
    """Each of ``SEED_FIGURES`` for every seed member, ``evaluated`` alone, with their mean
    and standard deviation (ddof 1); empty for a study of one seed."""
    seeds = study.params(params, "train")["seeds"]
    if len(seeds) < 2:
        return {}
    points = {**study.params(params, "evaluate"), "bootstrap": 0}  # point figures, no intervals
    by_seed = {}
    for seed in seeds:
        scored = evaluated(seed)
        metrics, _ = scored.objective.assess(scored.units, scored.samples, scored.calibration, points,
                                             scored.classes, study.type_columns, study.bootstrap_group)
        by_seed[str(seed)] = {k: metrics["test"][k] for k in SEED_FIGURES if k in metrics["test"]}
        log.info("%s: seed %d alone: %s", study.name, seed,
                 "  ".join(f"{k} {v:.4f}" for k, v in by_seed[str(seed)].items()))
    names = tuple(by_seed[str(seeds[0])])
    stats = spread(list(by_seed.values()), names)
    return {"seeds": seeds, "by_seed": by_seed,
            **{f"{name}_seed_{stat}": stats[f"{name}_{key}"] for name in names
               for stat, key in (("mean", "mean"), ("sd", "std"))}}


def command(name: str = typer.Argument(..., metavar="study", help="study name, e.g. hls_ae")) -> None:
    """Calibrate STUDY's threshold on validation, evaluate it on test: metrics, plots, figures."""
    started = time.monotonic()
    params = load_params()
    study = get_study(name, params=params)
    if not study.thresholded:
        write_metrics(study, with_evaluation(study, params, {"data": data_counts(
            study.samples(["train", "val", "test"], params))}))
        log.info("%s: evaluated in %.0f s", name, time.monotonic() - started)
        return
    if study.cross_validated:
        calibrate_final(study, params)  # the final model's, for predict; the folds' decide here
        evaluated = partial(out_of_fold, study, params)
    else:
        evaluated = partial(single_model, study, params, score_test(study, params, study.make_objective()))
    scored = evaluated(None)
    samples, units, calibration, classes = scored.samples, scored.units, scored.calibration, scored.classes
    cfg = study.params(params, "evaluate")
    log.info("%s: metrics, with %d-resample intervals", name, cfg["bootstrap"])
    metrics, by_type = scored.objective.assess(units, samples, calibration, cfg, classes,
                                               study.type_columns, study.bootstrap_group)
    metrics.update(scored.extra, data=scored.counts)
    if seeds := seed_spread(study, params, evaluated):
        metrics["seed_spread"] = seeds
    y, predicted = units["label"].to_numpy().astype(int), scored.objective.decide(units, calibration)
    abnormal = units.assign(label=(y != 0).astype(int))
    plot_dir, figure_dir = paths.METRICS / name, paths.figures(name)
    ranked = ranking(units)  # pooled folds: the threshold-free scale (cross_validation.py)
    roc = roc_table(abnormal["label"], ranked)
    write_parquet(paths.SCORES / name / "test.parquet", samples)
    write_unit_scores(name, units.assign(
        score=ranked, predicted=predicted,
        group=units[study.bootstrap_group] if study.bootstrap_group else pd.NA))
    write_json(plot_dir / "roc.json", {"roc": roc.to_dict(orient="records")})
    pr = pr_table(abnormal["label"], ranked)
    write_json(plot_dir / "pr.json", {"pr": pr.to_dict(orient="records")})
    write_json(plot_dir / "detection_by_type.json", by_type)
    write_json(plot_dir / "folds.json", {str(f.pop("fold")): f for f in map(dict, scored.folds)})
    names = np.asarray(classes, dtype=object)
    write_csv(plot_dir / "confusion.csv", pd.DataFrame({
        study.unit: units["unit"], "actual": names[y], "predicted": names[predicted],
    }))
    write_json(plot_dir / "classification_report.json", classification_report(
        y, predicted, labels=list(range(len(classes))), target_names=list(classes),
        output_dict=True, zero_division=0,
    ))
    if study.group_column is not None:
        write_json(plot_dir / "by_group.json",
                   breakdown(y, predicted, units[study.group_column]))
    log.info("%s: figures -> %s", name, figure_dir)
    title = f"{name}: test {plural(study.unit)}" + (", out of fold" if "fold" in units else "")
    plots.score_histogram(abnormal, metrics["threshold"], figure_dir / "score_histogram.png", title,
                          xlabel=scored.score_name)
    plots.roc_figure(roc, metrics["test"]["auroc"], figure_dir / "roc.png", title)
    plots.confusion_matrix(y, predicted, classes, figure_dir / "confusion.png", title)
    write_metrics(study, with_evaluation(study, params, metrics))
    log.info("%s: evaluated in %.0f s", name, time.monotonic() - started)
