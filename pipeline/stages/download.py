"""Stage 1: verified raw files in ``data/raw/<dataset>/`` and a records table (Parquet).

Files come from the configured local copy (``download.local_copy``) or, when that is
null, from the dataset's official source. Either way each file is checked against the
checksums known for it, and the raw folder appears only once everything is verified.
``reports/download/<dataset>.json`` says what was found: files, records, and whatever the
adapter reports (for ICBHI: recordings present vs listed, quirks resolved, cycles dropped).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import typer

from pipeline.datasets import get_dataset
from pipeline.io import atomic_dir, write_json, write_parquet
from pipeline.params import load_params, lookup

log = logging.getLogger(__name__)


def download(
    dataset_name: str, raw_dir: Path, records_path: Path, local_copy: Path | None,
    cache_dir: Path = Path(".cache/downloads"), report_path: Path | None = None,
) -> pd.DataFrame:
    dataset = get_dataset(dataset_name)
    with atomic_dir(raw_dir) as staging:
        digests = dataset.fetch(staging, local_copy, cache_dir)
        records, found = dataset.read_records_and_report(staging)
        records["sha256"] = records["file"].map(digests)
        write_parquet(records_path, records)
        if report_path is not None:
            source = "official sources" if local_copy is None else str(local_copy / dataset.name)
            write_json(report_path, {"dataset": dataset_name, "source": source,
                                     "files": len(digests), "records": len(records), **found})
    log.info("%s: %d files, %d records", dataset_name, len(digests), len(records))
    return records


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Fetch DATASET (local copy or official source), verify it, write its records table."""
    params = load_params()
    local = lookup(params, "download.local_copy")
    download(
        dataset, Path("data/raw") / dataset, Path("data/records") / f"{dataset}.parquet",
        None if local is None else Path(local),
        report_path=Path("reports/download") / f"{dataset}.json",
    )
