"""Stage 2: features from raw files, Parquet for tabular features.

HLS-CMDS: MFCC windows, one row per window (record, window, start_s, f000...).
MNIST: the IDX archives as they are, ``data/features/mnist.npz`` (uint8 images
``train_images``/``test_images`` (N, 28, 28) and labels ``train_labels``/``test_labels``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from tqdm import tqdm

from pipeline.datasets.mnist import read_mnist
from pipeline.errors import PipelineError
from pipeline.features.mfcc_windows import MFCCWindows, recording_features
from pipeline.io import write_npz, write_parquet
from pipeline.params import load_params, lookup

log = logging.getLogger(__name__)


def mfcc_window_table(records: pd.DataFrame, raw_dir: Path, cfg: MFCCWindows) -> pd.DataFrame:
    """One row per window of every record; features as float32 columns f000, f001, ..."""
    frames = []
    for rec in tqdm(records.itertuples(index=False), total=len(records), desc="mfcc", unit="file"):
        feats = recording_features(raw_dir / rec.file, cfg)
        frame = pd.DataFrame(feats, columns=[f"f{i:03d}" for i in range(feats.shape[1])])
        frame.insert(0, "start_s", np.arange(len(feats)) * cfg.hop_s)
        frame.insert(0, "window", np.arange(len(feats)))
        frame.insert(0, "record", rec.record)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def mnist_arrays(records: pd.DataFrame, raw_dir: Path) -> dict[str, np.ndarray]:
    """The four IDX archives as uint8 arrays, checked against the records table."""
    arrays = read_mnist(raw_dir)
    for split in ("train", "test"):
        labels = records.loc[records["set"] == split].sort_values("index")["label"].to_numpy()
        if not np.array_equal(labels, arrays[f"{split}_labels"]):
            raise PipelineError(f"{split} labels differ from data/records/mnist.parquet "
                                "(re-run `pipeline download mnist`)", raw_dir)
    return arrays


def _mnist(dataset: str, records: pd.DataFrame, raw_dir: Path, params: dict) -> None:
    settings = lookup(params, "mnist.features") or {}
    if settings:
        raise PipelineError(f"mnist.features takes no settings, got {sorted(settings)}")
    arrays = mnist_arrays(records, raw_dir)
    write_npz(Path("data/features") / f"{dataset}.npz", **arrays)
    log.info("%s: %d train + %d test images", dataset, len(arrays["train_images"]),
             len(arrays["test_images"]))


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Extract DATASET's features into data/features/."""
    params = load_params()
    records = pd.read_parquet(Path("data/records") / f"{dataset}.parquet")
    raw_dir = Path("data/raw") / dataset
    if dataset == "hls-cmds":
        cfg = MFCCWindows(**lookup(params, "features"))
        table = mfcc_window_table(records, raw_dir, cfg)
        write_parquet(Path("data/features") / f"{dataset}.parquet", table)
        log.info("%s: %d windows x %d features", dataset, len(table), table.shape[1] - 3)
    elif dataset == "mnist":
        _mnist(dataset, records, raw_dir, params)
    else:
        raise typer.BadParameter(f"no feature extractor for dataset {dataset!r}")
