"""Stage 2: features from raw files, by the dataset's package (``extract``).

Each dataset's features go to ``data/features/<dataset>/``, with ``settings.json``: the
settings they were made with (the section the datasets index names), which a trained
model keeps for ``pipeline predict``. HLS-CMDS: MFCC windows, one row per window
(``windows.parquet``). ICBHI: one log-mel image per respiratory cycle (``cycles.npz``,
indexed by ``cycles.parquet``). MNIST: the IDX archives as they are (``images.npz``).
See each ``pipeline/datasets/<package>``.
"""

from __future__ import annotations

import pandas as pd
import typer

from pipeline import paths
from pipeline.datasets import part
from pipeline.io import write_json
from pipeline.params import dataset_settings, load_params


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Extract DATASET's features into data/features/DATASET/."""
    extract = part(dataset, "features")
    params = load_params()
    settings = dataset_settings(params, dataset, "features")
    records = pd.read_parquet(paths.records(dataset))
    extract(dataset, records, paths.RAW / dataset, settings)
    write_json(paths.feature_settings(dataset), settings)
