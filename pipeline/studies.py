"""Studies: which dataset, which params, how samples are loaded, what a score means.

A study's params live under its ``root`` in params.yaml (``None``: top level, the
HLS-CMDS reference study); ``shared`` names sections that sit elsewhere, for studies of
one dataset sharing them (the ICBHI models share ``icbhi.task``, ``icbhi.calibrate``,
``icbhi.evaluate``). Every study loads a split as ``Samples``: inputs, labels, class
names, and per-sample metadata whose ``unit`` column names what a decision is made on
(a recording made of several windows, or the sample itself).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.audio import read_audio_info
from pipeline.datasets.icbhi import LABEL4, drop_reason, parse_annotations
from pipeline.datasets.mnist import novelty_split, stratified_holdout
from pipeline.errors import PipelineError
from pipeline.grouping import hold_out_groups
from pipeline.features.cycles import CycleFeatures, cycle_log_mels
from pipeline.features.mfcc_windows import MFCCWindows, recording_features
from pipeline.params import load_params, lookup
from pipeline.splitting import fold_names



@dataclass
class Samples:
    x: np.ndarray  # float32 inputs, first axis = samples; the loader's own writable copy
    y: np.ndarray  # int64 labels: 0 normal / 1 abnormal, or class ids
    meta: pd.DataFrame  # one row per sample, with `unit` and `label` columns
    classes: tuple[str, ...] = ("normal", "abnormal")  # name of each label; 0 is normal


@dataclass(frozen=True)
class Study:
    name: str
    dataset: str
    root: str | None
    objective: str  # "reconstruction" or "classification"
    # (splits, params, partition: the manifest column naming each unit's split) -> samples
    load: Callable[[list[str], dict, str], dict[str, Samples]]
    model_inputs: Callable[[np.ndarray], dict[str, Any]]  # data-dependent model kwargs
    unit: str = "sample"  # what `meta.unit` identifies, for reports
    type_columns: tuple[str, ...] = ()  # meta columns naming abnormal types, for detection rates
    features: str | None = None  # params section of the feature settings, kept in the checkpoint
    # a new recording -> (units skipped, with why; batches of samples with the training
    # features), for `pipeline predict`
    featurize_file: Callable[[Path, dict], tuple[list[dict], Iterator[Samples]]] | None = None
    headline: tuple[str, ...] = ()  # dotted metric keys for summary tables
    group_column: str | None = None  # meta column for the per-group breakdown (by_<column>.json)
    # meta column whose units `pipeline compare` resamples together (a patient); None: each unit alone
    bootstrap_group: str | None = None
    shared: Mapping[str, str] = field(default_factory=dict)  # section -> its dotted params key
    # the evaluate stage's study-specific part, named here and resolved by that stage (a name,
    # so that the study registry does not import the hooks): ``pipeline.evaluations.<name>``
    evaluation: str | None = None
    thresholded: bool = True  # False: no calibrate stage; evaluate runs `evaluation` alone
    semi_method: str | None = None  # semi-supervised method (pipeline/semi.py); train labels -1 = hidden
    # cross-validated: one model per fold of the split manifest (``<name>/folds/<k>``), pooled
    # by evaluate; the study itself is the final model, trained on the ``final`` partition
    cross_validated: bool = False
    partition: str = "split"  # the manifest column this study's loader reads

    def make_objective(self, labels: np.ndarray | None = None, n_classes: int | None = None):
        """The study's objective (``pipeline/objectives.py``); for training, weighted by the
        training ``labels`` where the kind weighs classes (none given: for scoring)."""
        from pipeline.objectives import OBJECTIVES

        return OBJECTIVES[self.objective].for_training(labels, n_classes)

    def samples(self, splits: list[str], params: dict) -> dict[str, Samples]:
        """The study's ``splits`` (train, val, test) of its partition, loaded."""
        return self.load(splits, params, self.partition)

    def fold(self, k: int) -> Study:
        """The study of fold ``k``: its model, scores and curves under ``<name>/folds/<k>``."""
        if not self.cross_validated:
            raise PipelineError(f"{self.name} is not cross-validated: it has no folds")
        return replace(self, name=f"{self.name}/folds/{k}", partition=f"fold{k}")

    def fold_dir(self, root: Path) -> Path:
        """``<root>/<name>/folds``: where the folds' models or scores live."""
        return root / self.name / "folds"

    def key(self, section: str) -> str:
        if section in self.shared:
            return self.shared[section]
        return section if self.root is None else f"{self.root}.{section}"

    def params(self, params: dict, section: str) -> Any:
        return lookup(params, self.key(section))

    @property
    def model_dir(self) -> Path:
        return paths.MODELS / self.name


def partition_column(path: Path, partition: str, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the split manifest at ``path`` with ``partition``'s column as ``split``."""
    import pyarrow.parquet as pq

    present = pq.read_schema(path).names
    if partition not in present:
        folds = fold_names(present)
        raise PipelineError(f"no partition {partition!r} in the split manifest (it holds "
                            f"{', '.join(folds) or 'no folds'}; re-run `pipeline split`, or check "
                            "the fold against the split's folds)", path)
    table = pd.read_parquet(path, columns=[*columns, partition])
    return table.rename(columns={partition: "split"})


def _load_hls(splits: list[str], params: dict, partition: str) -> dict[str, Samples]:
    features = pd.read_parquet(paths.FEATURES / "hls-cmds.parquet")
    manifest = partition_column(paths.split_manifest("hls-cmds"), partition, ["record", "group"])
    records = pd.read_parquet(
        paths.records("hls-cmds"), columns=["record", "kind", "heart_type", "lung_type", "label"]
    )
    table = features.merge(manifest, on="record").merge(records, on="record")
    columns = [c for c in features.columns if c.startswith("f")]
    out = {}
    for split in splits:
        part = table[table["split"] == split].reset_index(drop=True)
        meta = part[["record", "window", "kind", "heart_type", "lung_type", "label", "group"]]
        out[split] = Samples(
            x=part[columns].to_numpy(np.float32, copy=True),  # its own array: scaled in place
            y=part["label"].to_numpy(np.int64),
            meta=meta.assign(unit=part["record"]),
        )
    return out


def _featurize_hls(path: Path, settings: dict) -> tuple[list[dict], Iterator[Samples]]:
    x = recording_features(path, MFCCWindows(**settings))
    meta = pd.DataFrame({"unit": str(path), "window": np.arange(len(x))})
    return [], iter([Samples(x=x, y=np.zeros(len(x), np.int64), meta=meta)])


ICBHI_TASKS = {"binary": ("normal", "abnormal"), "multiclass": LABEL4}
ICBHI_META = ["cycle_id", "recording", "patient", "device", "label4"]


def npz_member(path: Path, name: str) -> np.ndarray:
    """Array ``name`` of an .npz, memory-mapped read-only when stored uncompressed (as
    ``write_npz`` stores it): a loader then reads only the rows it takes, with no full copy."""
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo(f"{name}.npy")
    if member.compress_type != zipfile.ZIP_STORED:
        with np.load(path) as arrays:
            return arrays[name]
    with open(path, "rb") as f:
        f.seek(member.header_offset + 26)  # the local header's name and extra-field lengths
        name_length, extra_length = struct.unpack("<HH", f.read(4))
        f.seek(name_length + extra_length, 1)
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(f)
        offset = f.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran_order else "C")


def _indexed_array(path: Path, positions: pd.Series, rerun: str) -> np.ndarray:
    """Array ``x`` of ``path`` (memory-mapped), checked to hold exactly one row per table row,
    in order. Index it with the rows wanted: that reads them into a new array."""
    x = npz_member(path, "x")
    if len(x) != len(positions) or not np.array_equal(positions, np.arange(len(x))):
        raise PipelineError(f"the arrays and the table describing them disagree (re-run `{rerun}`)",
                            path)
    return x


def icbhi_labels(index: pd.DataFrame, task: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class ids and class names for ``task``: binary (crackle and/or wheeze = abnormal) or
    multiclass (normal, crackle, wheeze, both: the challenge's four classes)."""
    if task not in ICBHI_TASKS:
        raise PipelineError(f"icbhi.task must be one of {sorted(ICBHI_TASKS)}, got {task!r}")
    if task == "binary":
        return index["label_binary"].to_numpy(np.int64), ICBHI_TASKS[task]
    return index["label4"].map(LABEL4.index).to_numpy(np.int64), ICBHI_TASKS[task]


def _load_icbhi(splits: list[str], params: dict, partition: str) -> dict[str, Samples]:
    index = pd.read_parquet(paths.FEATURES / "icbhi.parquet")
    x = _indexed_array(paths.FEATURES / "icbhi.npz", index["row"], "pipeline features icbhi")
    manifest = partition_column(paths.split_manifest("icbhi"), partition, ["cycle_id"])
    split = index["cycle_id"].map(manifest.set_index("cycle_id")["split"])
    if split.isna().any():
        raise PipelineError(f"{int(split.isna().sum())} cycle(s) with features are in no split "
                            "(re-run `pipeline split icbhi`)", paths.split_manifest("icbhi"))
    y, classes = icbhi_labels(index, lookup(params, "icbhi.task"))
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
    table = cycles.assign(audio_path=path.name, sample_rate=info.samplerate)

    def batches() -> Iterator[Samples]:
        for first in range(0, len(table), PREDICT_BATCH):
            part = table.iloc[first:first + PREDICT_BATCH].reset_index(drop=True)
            x = cycle_log_mels(part, path.parent, target_sr=cfg.sample_rate, cycle_s=cfg.cycle_s,
                               pad_mode=cfg.pad_mode, mel=cfg.mel, backend=cfg.backend)
            yield Samples(x=x, y=np.zeros(len(x), np.int64), meta=part[meta_columns])

    return skipped, batches()


def _spectrogram_inputs(x: np.ndarray) -> dict[str, Any]:
    return {"n_mels": int(x.shape[2]), "frames": int(x.shape[3])}


_ICBHI_SHARED = {"task": "icbhi.task", "features": "icbhi.features", "calibrate": "icbhi.calibrate",
                 "evaluate": "icbhi.evaluate"}

SEMI_STUDY = "icbhi_semi"


def labelled_training_rows(meta: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Rows of the training patients that keep their labels: a seeded set of whole patients
    holding about ``fraction`` of the training cycles, each class's share kept (all at 1)."""
    if not 0 < fraction <= 1:
        raise PipelineError(f"icbhi.semi.label_fraction values must be in (0, 1], got {fraction}")
    if fraction == 1:
        return np.ones(len(meta), dtype=bool)
    return hold_out_groups(meta, fraction, seed, group_column="patient", stratify="label4")


def _semi_loader(fraction: float) -> Callable[[list[str], dict], dict[str, Samples]]:
    """The ICBHI loader with the labels of the unlabelled training patients hidden (-1)."""

    def load(splits: list[str], params: dict, partition: str) -> dict[str, Samples]:
        out = _load_icbhi(splits, params, partition)
        if "train" in out:
            train = out["train"]
            keep = labelled_training_rows(train.meta, fraction, lookup(params, "icbhi.semi.seed"))
            y = np.where(keep, train.y, -1)
            out["train"] = Samples(x=train.x, y=y, classes=train.classes, meta=train.meta.assign(label=y))
        return out

    return load


def semi_study(name: str) -> Study:
    """``icbhi_semi/<method>/<label fraction>``: one cell of the semi-supervised grid."""
    from pipeline.semi import METHODS

    _, method, fraction = name.split("/")
    if method not in METHODS:
        raise PipelineError(f"unknown semi-supervised method {method!r}; known: {', '.join(METHODS)}")
    return Study(
        name=name, dataset="icbhi", root="icbhi.semi", objective="classification",
        load=_semi_loader(float(fraction)), partition="official", model_inputs=_spectrogram_inputs,
        unit="cycle",
        type_columns=("label4",), group_column="device", features="features",
        featurize_file=_featurize_icbhi, shared=_ICBHI_SHARED, semi_method=method,
        headline=("test.auroc", "test.icbhi_score", "test.sensitivity", "test.specificity"),
    )


# ---------------------------------------------------------------- autoencoder studies
# Loaders take ``params`` (read from params.yaml when not given): the MNIST studies read
# how many training images to use and, for novelty, which digit is held out.
def _given(params: dict | None) -> dict:
    return load_params() if params is None else params


def _mnist_table() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    manifest = pd.read_parquet(paths.split_manifest("mnist"))
    with np.load(paths.FEATURES / "mnist.npz") as arrays:
        images = {name: arrays[f"{name}_images"] for name in ("train", "test")}
    for name, array in images.items():
        rows = manifest[manifest["set"] == name]
        if len(rows) != len(array) or rows["index"].max() >= len(array):
            raise PipelineError(f"{len(rows)} {name} images in the manifest, {len(array)} in the "
                                "features (re-run `pipeline split mnist`)", paths.split_manifest("mnist"))
    return manifest, images


def _at_most(rows: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A seeded, digit-stratified subset of ``limit`` rows (all of them when None or enough)."""
    if limit is None or limit >= len(rows):
        return rows
    _, keep = stratified_holdout(rows["digit"].to_numpy(), int(limit), seed)
    return rows.iloc[keep]


def _image_samples(rows: pd.DataFrame, images: dict[str, np.ndarray], y: np.ndarray) -> Samples:
    """Images scaled to [0, 1] as (N, 1, 28, 28) float32, in the order of ``rows``."""
    x = np.empty((len(rows), 1, 28, 28), np.float32)
    for name, array in images.items():
        mine = (rows["set"] == name).to_numpy()
        x[mine, 0] = array[rows.loc[mine, "index"].to_numpy()] / np.float32(255)
    meta = rows[["image", "digit"]].reset_index(drop=True)
    return Samples(x=x, y=y.astype(np.int64), meta=meta.assign(label=y, unit=meta["image"]))


def _limited(split: str, rows: pd.DataFrame, train_cfg: dict) -> pd.DataFrame:
    """Training and validation images capped by ``train_images`` / ``val_images`` (CI time)."""
    limit = train_cfg.get(f"{split}_images") if split in ("train", "val") else None
    return _at_most(rows, limit, train_cfg["seed"])


def load_mnist_ae(splits: list[str], params: dict | None = None, partition: str = "split"
                  ) -> dict[str, Samples]:
    """All digits; ``y`` and ``label`` are the digit (no normal/abnormal in this study)."""
    train_cfg = lookup(_given(params), "mnist.train")
    manifest, images = _mnist_table()
    out = {}
    for split in splits:
        rows = _limited(split, manifest[manifest["split"] == split], train_cfg)
        out[split] = _image_samples(rows, images, rows["digit"].to_numpy())
    return out


def load_mnist_novelty(splits: list[str], params: dict | None = None, partition: str = "split"
                       ) -> dict[str, Samples]:
    """Train and validation without ``mnist.novelty.unseen_digit``; test: all, label 1 = unseen."""
    params = _given(params)
    unseen = lookup(params, "mnist.novelty.unseen_digit")
    train_cfg = lookup(params, "mnist.novelty.train")
    manifest, images = _mnist_table()
    parts = {s: manifest[manifest["split"] == s] for s in ("train", "val", "test")}
    try:
        chosen = novelty_split(*(parts[s]["digit"].to_numpy() for s in ("train", "val", "test")),
                               unseen_digit=unseen)
    except ValueError as exc:
        raise PipelineError(f"mnist.novelty.unseen_digit: {exc}") from exc
    positions = {"train": chosen.train_idx, "val": chosen.val_idx, "test": chosen.test_idx}
    out = {}
    for split in splits:
        rows = _limited(split, parts[split].iloc[positions[split]], train_cfg)
        out[split] = _image_samples(rows, images, (rows["digit"] == unseen).to_numpy())
    return out


def load_sines(splits: list[str], params: dict | None = None, partition: str = "split"
               ) -> dict[str, Samples]:
    """Generated series (N, 1, length); label 1 = abnormal, ``anomaly_type`` names the fault."""
    manifest = pd.read_parquet(paths.split_manifest("sines"))
    x = _indexed_array(paths.FEATURES / "sines.npz", manifest["series"], "pipeline generate sines")
    out = {}
    for split in splits:
        rows = manifest[manifest["split"] == split].reset_index(drop=True)
        meta = rows[["series", "label", "anomaly_type"]].assign(unit=rows["series"])
        out[split] = Samples(x=np.asarray(x[rows["series"].to_numpy()]), y=rows["label"].to_numpy(np.int64),
                             meta=meta)
    return out


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            name="hls_ae", dataset="hls-cmds", root=None, objective="reconstruction",
            load=_load_hls, model_inputs=lambda x: {"input_dim": int(x.shape[1])},
            cross_validated=True, partition="final",
            unit="recording", type_columns=("heart_type", "lung_type"), group_column="kind",
            bootstrap_group="group",
            features="features", featurize_file=_featurize_hls,
            headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high", "test.sensitivity",
                      "test.sensitivity_ci_low", "test.sensitivity_ci_high", "test.specificity",
                      "test.specificity_ci_low", "test.specificity_ci_high",
                      "test.specificity_target", "test.separation", "cv.auroc_mean", "cv.auroc_std"),
        ),
        *(
            Study(
                name=f"icbhi_{model}", dataset="icbhi", root=f"icbhi.{model}",
                objective="classification", load=_load_icbhi, model_inputs=_spectrogram_inputs,
                cross_validated=True, partition="final",
                unit="cycle", type_columns=("label4",), group_column="device", shared=_ICBHI_SHARED,
                bootstrap_group="patient",
                features="features", featurize_file=_featurize_icbhi,
                headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high",
                          "test.icbhi_score", "test.sensitivity", "test.sensitivity_ci_low",
                          "test.sensitivity_ci_high", "test.specificity", "test.specificity_ci_low",
                          "test.specificity_ci_high", "test.accuracy", "test.f1_macro",
                          "cv.auroc_mean", "cv.auroc_std"),
            )
            for model in ("cnn", "crnn")
        ),
        Study(
            name="mnist_ae", dataset="mnist", root="mnist", objective="reconstruction",
            load=load_mnist_ae, model_inputs=lambda x: {}, unit="image",
            evaluation="mnist_ae", thresholded=False,
            headline=("test.mse", "test.bce", "test.latent_knn_accuracy", "latent", "n_train_images",
                      "test.n"),
        ),
        Study(
            name="mnist_novelty", dataset="mnist", root="mnist.novelty", objective="reconstruction",
            load=load_mnist_novelty, model_inputs=lambda x: {}, unit="image", group_column="digit",
            evaluation="mnist_novelty",
            headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high", "test.pauc",
                      "test.sensitivity", "test.specificity", "test.f1"),
        ),
        Study(
            name="sines_ae", dataset="sines", root="sines", objective="reconstruction",
            load=load_sines, model_inputs=lambda x: {}, unit="series", type_columns=("anomaly_type",),
            group_column="anomaly_type", evaluation="sines",
            headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high", "test.pauc",
                      "test.sensitivity", "test.specificity", "test.f1"),
        ),
    )
}


def get_study(name: str, fold: int | None = None) -> Study:
    """The study called ``name`` (its final model), or the study of its fold ``fold``."""
    if name.startswith(f"{SEMI_STUDY}/") and name.count("/") == 2:
        study = semi_study(name)
    elif name in STUDIES:
        study = STUDIES[name]
    else:
        raise PipelineError(f"unknown study {name!r}; known: {', '.join(sorted(STUDIES))}")
    return study if fold is None else study.fold(fold)
