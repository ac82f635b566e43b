"""The ICBHI studies: SimpleCNN and CNN+GRU (``icbhi_cnn``, ``icbhi_crnn``) and the
semi-supervised grid (``icbhi_semi/<method>/<label fraction>``): the loader, the labels of
each task, and the cycles ``pipeline predict`` makes of a new recording."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.audio import read_audio_info
from pipeline.datasets.icbhi.adapter import LABEL4, drop_reason, parse_annotations
from pipeline.datasets.icbhi.prepare import CYCLE_INDEX, CYCLES
from pipeline.errors import PipelineError
from pipeline.features.cycles import CycleFeatures, recording_cycle_log_mels
from pipeline.splitting import hold_out_groups
from pipeline.params import lookup
from pipeline.studies import Samples, Study, indexed_array, partition_column


ICBHI_TASKS = {"binary": ("normal", "abnormal"), "multiclass": LABEL4}
ICBHI_META = ["cycle_id", "recording", "patient", "device", "label4"]


def icbhi_labels(index: pd.DataFrame, task: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class ids and class names for ``task``: binary (crackle and/or wheeze = abnormal) or
    multiclass (normal, crackle, wheeze, both: the challenge's four classes)."""
    if task not in ICBHI_TASKS:
        raise PipelineError(f"task must be binary or multiclass, got {task!r}")
    if task == "binary":
        return index["label_binary"].to_numpy(np.int64), ICBHI_TASKS[task]
    return index["label4"].map(LABEL4.index).to_numpy(np.int64), ICBHI_TASKS[task]


def _load_icbhi(study: Study, splits: list[str], params: dict) -> dict[str, Samples]:
    index = pd.read_parquet(paths.features("icbhi", CYCLE_INDEX))
    x = indexed_array(paths.features("icbhi", CYCLES), index["row"], "pipeline features icbhi")
    manifest = partition_column(paths.split_manifest("icbhi"), study.manifest_column, ["cycle_id"])
    split = index["cycle_id"].map(manifest.set_index("cycle_id")["split"])
    if split.isna().any():
        raise PipelineError(f"{int(split.isna().sum())} cycle(s) with features are in no split "
                            "(re-run `pipeline split icbhi`)", paths.split_manifest("icbhi"))
    y, classes = icbhi_labels(index, study.params(params, "train").get("task", "binary"))
    out = {}
    for name in splits:
        rows = np.flatnonzero(split.to_numpy() == name)
        meta = index.iloc[rows][ICBHI_META].reset_index(drop=True)
        out[name] = Samples(x=np.asarray(x[rows]), y=y[rows], classes=classes,
                            meta=meta.assign(label=y[rows], unit=meta["cycle_id"]))
    return out


PREDICT_BATCH = 256  # cycles featurised at once by predict: memory stays bounded for any count


def _unscorable(cycles: pd.DataFrame, duration: float, cfg: CycleFeatures) -> list[str | None]:
    """Why each annotated cycle cannot be scored (None: it can), as training drops them:
    past the end of the audio, shorter than ``min_cycle_s``, or no sample long."""
    reasons = []
    for start, end in zip(cycles["start"], cycles["end"], strict=True):
        reason = drop_reason(start, end, duration, cfg.min_cycle_s)
        if reason is None and round(end * cfg.sample_rate) <= round(start * cfg.sample_rate):
            reason = "empty_at_sample_rate"
        reasons.append(reason)
    return reasons


def _featurize_icbhi(path: Path, settings: dict) -> tuple[list[dict], Iterator[Samples]]:
    """Cycles from ``<name>.txt`` beside the audio when present (one unit each), otherwise
    consecutive cycle-length segments of the recording (one unit: the file).

    Returns the annotated cycles skipped (and why) and the samples in batches of
    ``PREDICT_BATCH`` cycles."""
    cfg = CycleFeatures(**settings)
    info = read_audio_info(path)
    annotation = path.with_suffix(".txt")
    skipped: list[dict] = []
    meta_columns = ["unit", "start", "end"]  # a cycle is shown with its times
    if annotation.is_file():
        cycles = parse_annotations(annotation)
        cycles["unit"] = [f"{path}#cycle{i}" for i in range(len(cycles))]
        reasons = _unscorable(cycles, info.duration, cfg)
        skipped = [{"file": str(path), "unit": unit, "start": start, "end": end, "reason": reason}
                   for unit, start, end, reason in zip(cycles["unit"], cycles["start"],
                                                       cycles["end"], reasons, strict=True)
                   if reason is not None]
        cycles = cycles[[reason is None for reason in reasons]].reset_index(drop=True)
        if cycles.empty:
            counts = pd.Series(reasons).value_counts()
            raise PipelineError(f"none of the {len(reasons)} annotated cycle(s) can be scored ("
                                + ", ".join(f"{n} {why}" for why, n in counts.items())
                                + f"; the audio is {info.duration:.2f} s long)", annotation)
    else:
        starts = np.arange(0.0, info.duration - cfg.cycle_s + 1e-9, cfg.cycle_s)
        if len(starts) == 0:
            raise PipelineError(f"{info.duration:.2f} s long, shorter than one {cfg.cycle_s:g} s "
                                "segment (or put an annotation file beside it)", path)
        cycles = pd.DataFrame({"start": starts, "end": starts + cfg.cycle_s, "unit": str(path)})
        meta_columns = ["unit"]  # the segments make one unit: the file

    def batches() -> Iterator[Samples]:
        for positions, x in recording_cycle_log_mels(path, cycles, cfg, batch=PREDICT_BATCH, info=info):
            meta = cycles.iloc[positions][meta_columns].reset_index(drop=True)
            # taken in start order; ``position`` puts the units back in the file's order
            yield Samples(x=x, y=np.zeros(len(x), np.int64), meta=meta.assign(position=positions))

    return skipped, batches()


def _spectrogram_inputs(x: np.ndarray) -> dict[str, Any]:
    return {"n_mels": int(x.shape[2]), "frames": int(x.shape[3])}


SEMI_STUDY = "icbhi_semi"


def labelled_training_rows(meta: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Rows of the training patients that keep their labels: a seeded set of whole patients
    holding about ``fraction`` of the training cycles, each class's share kept (all at 1)."""
    if not 0 < fraction <= 1:
        raise PipelineError(f"icbhi.semi.label_fraction values must be in (0, 1], got {fraction}")
    if fraction == 1:
        return np.ones(len(meta), dtype=bool)
    return hold_out_groups(meta, fraction, seed, group_column="patient", stratify="label4")


def _semi_loader(fraction: float) -> Callable[[Study, list[str], dict], dict[str, Samples]]:
    """The ICBHI loader with the labels of the unlabelled training patients hidden (-1)."""

    def load(study: Study, splits: list[str], params: dict) -> dict[str, Samples]:
        out = _load_icbhi(study, splits, params)
        if "train" in out:
            train = out["train"]
            keep = labelled_training_rows(train.meta, fraction, lookup(params, "icbhi.semi.seed"))
            y = np.where(keep, train.y, -1)
            out["train"] = Samples(x=train.x, y=y, classes=train.classes, meta=train.meta.assign(label=y))
        return out

    return load


def _semi_study(name: str) -> Study:
    """``icbhi_semi/<method>/<label fraction>``: one cell of the semi-supervised grid."""
    from pipeline.semi import METHODS, make_objective

    _, method, fraction = name.split("/")
    if method not in METHODS:
        raise PipelineError(f"unknown semi-supervised method {method!r}; known: {', '.join(METHODS)}")
    return Study(
        name=name, load=_semi_loader(float(fraction)), partition="official",
        model_inputs=_spectrogram_inputs, unit="cycle", type_columns=("label4",),
        group_column="device", featurize_file=_featurize_icbhi, semi_method=method,
        make_semi_objective=make_objective,
        headline=("test.auroc", "test.icbhi_score", "test.sensitivity", "test.specificity"),
    )


def study(name: str) -> Study | None:
    """The cell ``icbhi_semi/<method>/<fraction>`` of the semi-supervised grid (None: not one)."""
    if name.startswith(f"{SEMI_STUDY}/") and name.count("/") == 2:
        return _semi_study(name)
    return None


STUDIES = {
    f"icbhi_{model}": Study(
        name=f"icbhi_{model}", load=_load_icbhi, model_inputs=_spectrogram_inputs,
        unit="cycle", type_columns=("label4",), group_column="device", bootstrap_group="patient",
        featurize_file=_featurize_icbhi,
        headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high",
                  "test.icbhi_score", "test.sensitivity", "test.sensitivity_ci_low",
                  "test.sensitivity_ci_high", "test.specificity", "test.specificity_ci_low",
                  "test.specificity_ci_high", "test.accuracy", "test.f1_macro",
                  "cv.auroc_mean", "cv.auroc_std"),
    )
    for model in ("cnn", "crnn", "logreg", "hgb")  # logreg, hgb: the classical baselines
}
