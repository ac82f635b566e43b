"""Stage 2: features from raw files, one extractor per dataset (``EXTRACTORS``).

HLS-CMDS: MFCC windows, one row per window (record, window, start_s, f000...), Parquet.
ICBHI: one log-mel image per respiratory cycle, ``data/features/icbhi.npz`` (``x``: float32
(N, 1, n_mels, frames)) with ``data/features/icbhi.parquet`` as its index (row ``i``
describes ``x[i]``: cycle_id, patient, device, labels, official split...). Cycles shorter
than ``min_cycle_s`` are dropped here, with a logged count.
MNIST: the IDX archives as they are, ``data/features/mnist.npz`` (uint8 images
``train_images``/``test_images`` (N, 28, 28) and labels ``train_labels``/``test_labels``).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from pipeline import paths
from pipeline.datasets.mnist import read_mnist
from pipeline.errors import PipelineError
from pipeline.features.cycles import CycleFeatures, cycle_log_mel_chunks, cycle_log_mels
from pipeline.features.mfcc_windows import MFCCWindows, recording_windows, window_features
from pipeline.features.parallel import map_in_chunks
from pipeline.io import npz_row_writer, write_npz, write_parquet
from pipeline.params import load_params, lookup
from pipeline.progress import bar as progress_bar


log = logging.getLogger(__name__)


def mfcc_window_table(records: pd.DataFrame, raw_dir: Path, cfg: MFCCWindows) -> pd.DataFrame:
    """One row per window of every record; features as float32 columns f000, f001, ...

    Files are read on a thread pool a chunk at a time; each chunk's windows go through the
    spectral backend in one batched call, and the table is built once from the arrays.
    """
    paths = [raw_dir / name for name in records["file"]]
    features, counts = [], []
    with progress_bar(total=len(paths), desc="mfcc", unit="file") as progress:
        for _, windows in map_in_chunks(functools.partial(recording_windows, cfg=cfg), paths):
            features.append(window_features(np.concatenate(windows), cfg))
            counts.extend(len(w) for w in windows)
            progress.update(len(windows))
    x = np.concatenate(features) if features else np.empty((0, 0), np.float32)
    counts = np.asarray(counts, dtype=np.int64)
    window = np.arange(len(x)) - np.repeat(np.cumsum(counts) - counts, counts)  # 0.. per record
    index = pd.DataFrame({"record": np.repeat(records["record"].to_numpy(), counts),
                          "window": window, "start_s": window * cfg.hop_s})
    columns = pd.DataFrame(x, columns=[f"f{i:03d}" for i in range(x.shape[1])])
    return pd.concat([index, columns], axis=1)


def kept_cycles(records: pd.DataFrame, cfg: CycleFeatures) -> pd.DataFrame:
    """The cycles at least ``min_cycle_s`` long, in the records' order (the drop is logged)."""
    short = records["duration"] < cfg.min_cycle_s
    if short.any():
        log.warning("dropped %d of %d cycle(s) shorter than min_cycle_s = %g s",
                    int(short.sum()), len(records), cfg.min_cycle_s)
    return records[~short].reset_index(drop=True)


def cycle_index(kept: pd.DataFrame) -> pd.DataFrame:
    """The kept cycles' columns (bar the file paths) plus ``row``, the position in the array."""
    index = kept.drop(columns=[c for c in ("file", "audio_path") if c in kept])
    index.insert(0, "row", np.arange(len(index)))
    return index


def _cycle_settings(cfg: CycleFeatures) -> dict:
    return {"target_sr": cfg.sample_rate, "cycle_s": cfg.cycle_s, "pad_mode": cfg.pad_mode,
            "mel": cfg.mel, "backend": cfg.backend}


def cycle_features(records: pd.DataFrame, raw_dir: Path,
                   cfg: CycleFeatures) -> tuple[np.ndarray, pd.DataFrame]:
    """Log-mel images of the cycles at least ``min_cycle_s`` long, and their index, in memory
    (the stage streams them to disk instead)."""
    kept = kept_cycles(records, cfg)
    return cycle_log_mels(kept, raw_dir, **_cycle_settings(cfg)), cycle_index(kept)


def _hls(dataset: str, records: pd.DataFrame, raw_dir: Path, params: dict) -> None:
    cfg = MFCCWindows(**lookup(params, "features"))
    table = mfcc_window_table(records, raw_dir, cfg)
    write_parquet(paths.FEATURES / f"{dataset}.parquet", table)
    log.info("%s: %d windows x %d features", dataset, len(table), table.shape[1] - 3)


def _icbhi(dataset: str, records: pd.DataFrame, raw_dir: Path, params: dict) -> None:
    cfg = CycleFeatures(**lookup(params, "icbhi.features"))
    kept = kept_cycles(records, cfg)
    shape = (len(kept), 1, cfg.n_mels, cfg.frames)
    # chunk by chunk to disk: memory stays flat in the number of recordings
    with npz_row_writer(paths.FEATURES / f"{dataset}.npz", "x", shape) as write:
        for positions, x in cycle_log_mel_chunks(kept, raw_dir, **_cycle_settings(cfg)):
            write(positions, x)
    write_parquet(paths.FEATURES / f"{dataset}.parquet", cycle_index(kept))
    log.info("%s: %d cycles -> log-mels %s (%d Hz, %g s, pad %s)", dataset, len(kept),
             shape, cfg.sample_rate, cfg.cycle_s, cfg.pad_mode)


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
    write_npz(paths.FEATURES / f"{dataset}.npz", **arrays)
    log.info("%s: %d train + %d test images", dataset, len(arrays["train_images"]),
             len(arrays["test_images"]))


EXTRACTORS = {"hls-cmds": _hls, "icbhi": _icbhi, "mnist": _mnist}


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Extract DATASET's features into data/features/."""
    if dataset not in EXTRACTORS:
        raise typer.BadParameter(f"no feature extractor for dataset {dataset!r}")
    records = pd.read_parquet(paths.records(dataset))
    EXTRACTORS[dataset](dataset, records, paths.RAW / dataset, load_params())
