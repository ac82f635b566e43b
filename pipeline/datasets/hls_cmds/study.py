"""The HLS-CMDS study (``hls_ae``): its loader and the features ``pipeline predict`` makes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.datasets.hls_cmds import WINDOWS
from pipeline.features.mfcc_windows import MFCCWindows, recording_feature_blocks
from pipeline.studies import Samples, Study, partition_column


def load(study: Study, splits: list[str], params: dict) -> dict[str, Samples]:
    features = pd.read_parquet(paths.features("hls-cmds", WINDOWS))
    manifest = partition_column(paths.split_manifest("hls-cmds"), study.manifest_column,
                                ["record", "group", "kind", "heart_type", "lung_type", "label"])
    table = features.merge(manifest, on="record")
    columns = [c for c in features.columns if c.startswith("f")]
    out = {}
    for split in splits:
        part = table[table["split"] == split].reset_index(drop=True)
        meta = part[["record", "window", "kind", "heart_type", "lung_type", "label", "group"]]
        out[split] = Samples(
            # its own array (scaled in place), row-major: a batch is then a block of rows,
            # which trains 11 % faster than pandas' column-major copy, to the same bytes
            x=np.ascontiguousarray(part[columns].to_numpy(np.float32)),
            y=part["label"].to_numpy(np.int64),
            meta=meta.assign(unit=part["record"]),
        )
    return out


def featurize_file(path: Path, settings: dict) -> tuple[list[dict], Iterator[Samples]]:
    def batches() -> Iterator[Samples]:
        first = 0  # the block's first window
        for x in recording_feature_blocks(path, MFCCWindows(**settings)):
            meta = pd.DataFrame({"unit": str(path), "window": np.arange(first, first + len(x))})
            first += len(x)
            yield Samples(x=x, y=np.zeros(len(x), np.int64), meta=meta)

    return [], batches()


# hls_ae, the autoencoder, and its classical baselines (pipeline/models/baselines.py): one
# declaration, since only the model differs
STUDIES = {
    name: Study(
        name=name, load=load, model_inputs=lambda x: {"input_dim": int(x.shape[1])},
        unit="recording", type_columns=("heart_type", "lung_type"), group_column="kind",
        bootstrap_group="group",
        featurize_file=featurize_file,
        headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high", "test.sensitivity",
                  "test.sensitivity_ci_low", "test.sensitivity_ci_high", "test.specificity",
                  "test.specificity_ci_low", "test.specificity_ci_high",
                  "test.specificity_target", "test.separation", "cv.auroc_mean", "cv.auroc_std"),
    )
    for name in ("hls_ae", "hls_pca", "hls_knn", "hls_gmm", "hls_iforest")
}
