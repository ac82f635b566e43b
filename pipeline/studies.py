"""Studies: which dataset, which params, how samples are loaded, what a score means.

A study is data and code. Its data is its entry in params.yaml's ``studies`` index: its
dataset, its objective and the dotted keys of its sections (model, train, calibrate,
evaluate), in the group of its shape (cross_validated, holdout, unthresholded,
semi_supervised). Its code is declared in its dataset's package,
``pipeline/datasets/<package>/study.py`` (``STUDIES``, and ``study(name)`` for names made of
parts such as the semi-supervised grid's cells): its loader, its units and figures.
``get_study`` joins the two, importing that one package. Every study loads a split as
``Samples``: inputs, labels, class names, and per-sample metadata whose ``unit`` column
names what a decision is made on (a recording made of several windows, or the sample itself).
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
from pipeline.datasets import study_module
from pipeline.errors import PipelineError
from pipeline.params import PARAMS_FILE, index, load_params, lookup, study_entry
from pipeline.splitting import fold_names


@dataclass
class Samples:
    x: np.ndarray  # float32 inputs, first axis = samples; the loader's own writable copy
    y: np.ndarray  # int64 labels: 0 normal / 1 abnormal, or class ids
    meta: pd.DataFrame  # one row per sample, with `unit` and `label` columns
    classes: tuple[str, ...] = ("normal", "abnormal")  # name of each label; 0 is normal

    def take(self, rows: np.ndarray) -> Samples:
        """The samples at positions ``rows``, in new arrays."""
        return Samples(x=self.x[rows], y=self.y[rows], classes=self.classes,
                       meta=self.meta.iloc[rows].reset_index(drop=True))

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        """``parts`` one after another, in new arrays (the classes are the first part's)."""
        return Samples(x=np.concatenate([p.x for p in parts]), y=np.concatenate([p.y for p in parts]),
                       classes=parts[0].classes,
                       meta=pd.concat([p.meta for p in parts], ignore_index=True))


@dataclass(frozen=True)
class Study:
    name: str
    # (study, splits, params) -> samples of the study's partition (``manifest_column``)
    load: Callable[[Study, list[str], dict], dict[str, Samples]]
    model_inputs: Callable[[np.ndarray], dict[str, Any]]  # data-dependent model kwargs
    unit: str = "sample"  # what `meta.unit` identifies, for reports
    type_columns: tuple[str, ...] = ()  # meta columns naming abnormal types, for detection rates
    # a new recording -> (units skipped, with why; batches of samples with the training
    # features), for `pipeline predict`
    featurize_file: Callable[[Path, dict], tuple[list[dict], Iterator[Samples]]] | None = None
    headline: tuple[str, ...] = ()  # dotted metric keys for summary tables
    group_column: str | None = None  # meta column for the per-group breakdown (by_group.json)
    # meta column whose units `pipeline compare` resamples together (a patient); None: each unit alone
    bootstrap_group: str | None = None
    # the evaluate stage's study-specific part, named here and resolved by that stage (a name,
    # so that the study registry does not import the hooks): ``pipeline.evaluations.<name>``
    evaluation: str | None = None
    semi_method: str | None = None  # semi-supervised method (pipeline/semi.py); train labels -1 = hidden
    # its objective's factory (``pipeline.semi.make_objective``), carried by the study so
    # that the semi-supervised code is a dependency of its studies' training alone
    make_semi_objective: Callable[..., Any] | None = None
    partition: str | None = None  # the manifest column the loader reads (None: by shape)
    # from the study's entry in the studies index (params.yaml), joined by ``get_study``
    dataset: str = ""
    objective: str = ""  # "reconstruction" or "classification" (pipeline/objectives.py)
    shape: str = ""  # its index group: cross_validated, holdout, unthresholded, semi_supervised
    sections: Mapping[str, str] = field(default_factory=dict)  # section -> its dotted params key

    @property
    def thresholded(self) -> bool:
        """False: no calibrate stage; evaluate runs ``evaluation`` alone."""
        return self.shape != "unthresholded"

    @property
    def cross_validated(self) -> bool:
        """One model per fold of the split manifest (``<name>/folds/<k>``), pooled by evaluate;
        the study itself is the final model, trained on the ``final`` partition."""
        return self.shape == "cross_validated"

    @property
    def manifest_column(self) -> str:
        """The split manifest's column naming each unit's split for this study's model."""
        return self.partition or ("final" if self.cross_validated else "split")

    def make_objective(self, labels: np.ndarray | None = None, n_classes: int | None = None,
                       **training: Any):
        """The study's objective (``pipeline/objectives.py``); for training, weighted by the
        training ``labels`` where the kind weighs classes (none given: for scoring), with
        the kind's own ``training`` settings (a classifier's ``mixup``)."""
        from pipeline.objectives import OBJECTIVES

        return OBJECTIVES[self.objective].for_training(labels, n_classes, **training)

    def samples(self, splits: list[str], params: dict) -> dict[str, Samples]:
        """The study's ``splits`` (train, val, test) of its partition, loaded."""
        return self.load(self, splits, params)

    def fold(self, k: int) -> Study:
        """The study of fold ``k``: its model, scores and curves under ``<name>/folds/<k>``."""
        if not self.cross_validated:
            raise PipelineError(f"{self.name} is not cross-validated: it has no folds")
        return replace(self, name=f"{self.name}/folds/{k}", partition=f"fold{k}")

    def fold_dir(self, root: Path) -> Path:
        """``<root>/<name>/folds``: where the folds' models or scores live."""
        return root / self.name / "folds"

    def key(self, section: str) -> str:
        if section not in self.sections:
            raise PipelineError(f"study {self.name} has no {section} section (its entry in the "
                                f"studies index names {', '.join(self.sections)})", PARAMS_FILE)
        return self.sections[section]

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


def fold_numbers(dataset: str) -> list[int]:
    """The folds of ``dataset``'s split manifest (its fold columns)."""
    import pyarrow.parquet as pq

    manifest = paths.split_manifest(dataset)
    if not manifest.is_file():
        raise PipelineError(f"no split manifest (run `pipeline split {dataset}`, or `dvc repro`)", manifest)
    folds = [int(c[4:]) for c in fold_names(pq.read_schema(manifest).names)]
    if not folds:
        raise PipelineError("the split manifest has no folds (re-run `pipeline split`)", manifest)
    return folds


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


def indexed_array(path: Path, positions: pd.Series, rerun: str) -> np.ndarray:
    """Array ``x`` of ``path`` (memory-mapped), checked to hold exactly one row per table row,
    in order. Index it with the rows wanted: that reads them into a new array."""
    x = npz_member(path, "x")
    if len(x) != len(positions) or not np.array_equal(positions, np.arange(len(x))):
        raise PipelineError(f"the arrays and the table describing them disagree (re-run `{rerun}`)",
                            path)
    return x


def load_generated_series(study: Study, splits: list[str], params: dict) -> dict[str, Samples]:
    """A generated dataset's series (``pipeline generate``: N, 1, length) by split; label 1 =
    abnormal, ``anomaly_type`` names the fault."""
    manifest = pd.read_parquet(paths.split_manifest(study.dataset))
    x = indexed_array(paths.generated_series(study.dataset), manifest["series"],
                      f"pipeline generate {study.dataset}")
    out = {}
    for split in splits:
        rows = manifest[manifest["split"] == split].reset_index(drop=True)
        meta = rows[["series", "label", "anomaly_type"]].assign(unit=rows["series"])
        out[split] = Samples(x=np.asarray(x[rows["series"].to_numpy()]),
                             y=rows["label"].to_numpy(np.int64), meta=meta)
    return out


def study_names(params: dict | None = None) -> list[str]:
    """Every study of the studies index with metrics of its own, group by group, in the
    file's order (a grid's cells, such as icbhi_semi's, are pooled by their own stage)."""
    studies = index(load_params() if params is None else params, "studies")
    return [name for name, (group, _) in studies.items() if group != "semi_supervised"]


def get_study(name: str, fold: int | None = None, params: dict | None = None) -> Study:
    """The study called ``name`` (its final model), or the study of its fold ``fold``: its
    entry in the studies index joined with its declaration in its dataset's package.
    ``params``: the loaded params (read from params.yaml when not given)."""
    params = load_params() if params is None else params
    base = name.split("/")[0]  # a grid cell's study: icbhi_semi/<method>/<fraction>
    shape, entry = study_entry(params, base)
    module = study_module(entry["dataset"])
    declared = module.STUDIES.get(name) if name == base else getattr(module, "study", lambda _: None)(name)
    if declared is None:
        package = entry["dataset"].replace("-", "_")
        raise PipelineError(f"study {name!r} (studies.{shape}.{base} in params.yaml) is not declared "
                            f"by its dataset's package: pipeline/datasets/{package}/study.py has "
                            "no such entry in STUDIES")
    sections = {k: v for k, v in entry.items() if k not in ("dataset", "objective")}
    study = replace(declared, dataset=entry["dataset"], objective=entry["objective"], shape=shape,
                    sections=sections)
    return study if fold is None else study.fold(fold)
