"""Studies: which dataset, which params, how samples are loaded, what a score means.

A study's params live under its ``root`` in params.yaml (``None``: top level, the
HLS-CMDS reference study). Every study loads a split as ``Samples``: inputs, labels,
and per-sample metadata whose ``unit`` column names what a decision is made on (a
recording made of several windows, or the sample itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.features.mfcc_windows import MFCCWindows, recording_features
from pipeline.params import lookup

FEATURES = Path("data/features")
SPLITS = Path("data/splits")
RECORDS = Path("data/records")


@dataclass
class Samples:
    x: np.ndarray  # float32 inputs, first axis = samples
    y: np.ndarray  # int64 labels: 0 normal / 1 abnormal, or class ids
    meta: pd.DataFrame  # one row per sample, with a `unit` column


@dataclass(frozen=True)
class Study:
    name: str
    dataset: str
    root: str | None
    objective: str  # "reconstruction" or "classification"
    load: Callable[[list[str]], dict[str, Samples]]
    model_inputs: Callable[[np.ndarray], dict[str, Any]]  # data-dependent model kwargs
    unit: str = "sample"  # what `meta.unit` identifies, for reports
    type_columns: tuple[str, ...] = ()  # meta columns naming abnormal types, for detection rates
    features: str | None = None  # params section of the feature settings, kept in the checkpoint
    # new recordings -> samples with the training features (for `pipeline predict`)
    featurize_file: Callable[[Path, dict], Samples] | None = None
    title: str = ""  # one line for reports
    headline: tuple[str, ...] = ()  # dotted metric keys for summary tables
    limitations: tuple[str, ...] = ()  # what a reader of the numbers must know

    def key(self, section: str) -> str:
        return section if self.root is None else f"{self.root}.{section}"

    def params(self, params: dict, section: str) -> Any:
        return lookup(params, self.key(section))

    @property
    def model_dir(self) -> Path:
        return Path("models") / self.name


def _load_hls(splits: list[str]) -> dict[str, Samples]:
    features = pd.read_parquet(FEATURES / "hls-cmds.parquet")
    manifest = pd.read_parquet(SPLITS / "hls-cmds.parquet", columns=["record", "split"])
    records = pd.read_parquet(
        RECORDS / "hls-cmds.parquet", columns=["record", "kind", "heart_type", "lung_type", "label"]
    )
    table = features.merge(manifest, on="record").merge(records, on="record")
    columns = [c for c in features.columns if c.startswith("f")]
    out = {}
    for split in splits:
        part = table[table["split"] == split].reset_index(drop=True)
        meta = part[["record", "window", "kind", "heart_type", "lung_type", "label"]]
        out[split] = Samples(
            x=part[columns].to_numpy(np.float32),
            y=part["label"].to_numpy(np.int64),
            meta=meta.assign(unit=part["record"]),
        )
    return out


def _featurize_hls(path: Path, settings: dict) -> Samples:
    x = recording_features(path, MFCCWindows(**settings))
    meta = pd.DataFrame({"unit": str(path), "window": np.arange(len(x))})
    return Samples(x=x, y=np.zeros(len(x), np.int64), meta=meta)


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            name="hls_ae", dataset="hls-cmds", root=None, objective="reconstruction",
            load=_load_hls, model_inputs=lambda x: {"input_dim": int(x.shape[1])},
            unit="recording", type_columns=("heart_type", "lung_type"),
            features="features", featurize_file=_featurize_hls,
            title="HLS-CMDS: MLP autoencoder on MFCC windows, trained on normal sounds only",
            headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high", "test.sensitivity",
                      "test.specificity", "test.separation", "test.n_normal", "test.n_abnormal"),
            limitations=(
                "Manikin recordings (one CAE Juno simulator, one stethoscope): no real patients, "
                "so no subject variability; results do not transfer to clinical audio as they are.",
                "Leak-proof grouping (identical audio, mixture families) leaves 9 all-normal groups: "
                "training sees 6 recordings and validation 1, so the threshold rests on very few "
                "normal errors.",
                "The test set holds far more abnormal (470) than normal (58) recordings; read AUROC "
                "with its bootstrap interval, and accuracy/F1 with that imbalance in mind.",
            ),
        ),
    )
}


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise KeyError(f"unknown study {name!r}; known: {', '.join(sorted(STUDIES))}")
    return STUDIES[name]
