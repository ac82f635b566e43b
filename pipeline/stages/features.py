"""Stage 2: features from raw files, by the dataset's package (``extract``).

HLS-CMDS: MFCC windows, one row per window (record, window, start_s, f000...), Parquet.
ICBHI: one log-mel image per respiratory cycle, ``data/features/icbhi.npz`` with
``data/features/icbhi.parquet`` as its index. MNIST: the IDX archives as they are,
``data/features/mnist.npz``. See each ``pipeline/datasets/<package>``.
"""

from __future__ import annotations

import pandas as pd
import typer

from pipeline import paths
from pipeline.datasets import part
from pipeline.params import load_params


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Extract DATASET's features into data/features/."""
    extract = part(dataset, "features")
    records = pd.read_parquet(paths.records(dataset))
    extract(dataset, records, paths.RAW / dataset, load_params())
