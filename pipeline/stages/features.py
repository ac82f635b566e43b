"""Stage 2: features from raw files, Parquet for tabular features.

HLS-CMDS: MFCC windows, one row per window (record, window, start_s, f000...).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from tqdm import tqdm

from pipeline.features.mfcc_windows import MFCCWindows, recording_features
from pipeline.io import write_parquet
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
    else:
        raise typer.BadParameter(f"no feature extractor for dataset {dataset!r}")
