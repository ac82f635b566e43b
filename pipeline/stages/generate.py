"""Stage 1 for synthetic data (no download): ``pipeline generate sines``.

The dataset's package draws the data (``generate``, seeded, from ``<dataset>.generate``)
and this stage writes

- ``data/features/<dataset>/series.npz``: ``x``, float32 (N, 1, length), row ``i`` is series ``i``,
  and ``settings.json``, the settings it was drawn with;
- ``data/records/<dataset>.parquet``: one row per series (series, split, label, anomaly_type);
- ``data/splits/<dataset>.parquet`` and ``reports/audit/<dataset>.json``: the split manifest
  and its audit, as every split stage writes them (the generator decides the split: train
  and validation normal only, test mixed with ``anomaly_fraction`` abnormal series).
"""

from __future__ import annotations

import logging

import typer

from pipeline import paths
from pipeline.datasets import part
from pipeline.io import write_json, write_npz, write_parquet
from pipeline.params import dataset_settings, load_params

log = logging.getLogger(__name__)


def command(dataset: str = typer.Argument(..., help="synthetic dataset name: sines")) -> None:
    """Generate DATASET's series, labels and split (no download)."""
    generate = part(dataset, "generate")
    params = load_params()
    settings = dataset_settings(params, dataset, "generate")
    x, table, report = generate(settings)
    write_npz(paths.generated_series(dataset), x=x)
    write_json(paths.feature_settings(dataset), settings)
    write_parquet(paths.records(dataset), table)
    write_parquet(paths.split_manifest(dataset), table)
    write_json(paths.audit_report(dataset), report)
    log.info("%s: %d series of %d samples, split %s", dataset, len(x), x.shape[-1], report["counts"])
