"""Stage 1 for synthetic data (no download): ``pipeline generate sines``.

Draws the series with ``pipeline.datasets.sines.generate_sines`` from ``sines.generate``
(seeded) and writes

- ``data/features/sines.npz``: ``x``, float32 (N, 1, length), row ``i`` is series ``i``;
- ``data/features/sines.parquet``: one row per series (series, split, label, anomaly_type);
- ``data/splits/sines.parquet`` and ``reports/audit/sines.json``: the split manifest and its
  audit, as every split stage writes them (the generator decides the split: train and
  validation normal only, test mixed with ``anomaly_fraction`` abnormal series).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import typer

from pipeline import paths
from pipeline.datasets.sines import generate_sines
from pipeline.errors import PipelineError
from pipeline.io import write_json, write_npz, write_parquet
from pipeline.params import load_params, lookup
from pipeline.splitting import audit

log = logging.getLogger(__name__)


def sines_data(cfg: dict) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Series, their table and its audit from the ``sines.generate`` settings."""
    settings = dict(cfg)
    for key in ("amplitude_range", "frequency_range"):
        settings[key] = tuple(settings[key])
    settings["anomaly_types"] = tuple(settings["anomaly_types"])
    try:
        x, table = generate_sines(**settings)
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"sines.generate: {exc}") from exc
    table = table.rename(columns={"index": "series"})
    report = audit(table, group_column="series")
    by_type = table[table["label"] == 1].groupby(["split", "anomaly_type"]).size()
    report.update(
        dataset="sines", scheme="generated", seed=cfg["seed"],
        anomaly_fraction=cfg["anomaly_fraction"],
        abnormal_by_type={split: {k: int(v) for k, v in part.droplevel(0).items()}
                          for split, part in by_type.groupby(level=0)},
    )
    return x, table, report


def command(dataset: str = typer.Argument(..., help="synthetic dataset name: sines")) -> None:
    """Generate DATASET's series, labels and split (no download)."""
    if dataset != "sines":
        raise typer.BadParameter(f"no generator for dataset {dataset!r}")
    x, table, report = sines_data(lookup(load_params(), "sines.generate"))
    write_npz(paths.FEATURES / f"{dataset}.npz", x=x)
    write_parquet(paths.FEATURES / f"{dataset}.parquet", table)
    write_parquet(paths.split_manifest(dataset), table)
    write_json(paths.audit_report(dataset), report)
    log.info("%s: %d series of %d samples, split %s", dataset, len(x), x.shape[-1], report["counts"])
