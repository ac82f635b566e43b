"""Where the pipeline reads and writes, relative to the repository root, in one place.

dvc.yaml names the same folders in its deps and outs; tests/test_paths.py checks that
every path there under one of these folders agrees with this module.
"""

from __future__ import annotations

from pathlib import Path

RAW = Path("data/raw")  # downloaded files, one folder per dataset
RECORDS = Path("data/records")  # one table per dataset: a row per record (download stage)
FEATURES = Path("data/features")  # features stage (and generate): tables and arrays
SPLITS = Path("data/splits")  # split manifests, one per dataset
SCORES = Path("data/scores")  # per study: val/test scores of every unit
MODELS = Path("models")  # per study: model.pt and threshold.json
METRICS = Path("metrics")  # per study: <study>.json (headline) and <study>/ (the rest)
REPORTS = Path("reports")  # per study: figures; the report's pages
AUDIT = REPORTS / "audit"  # per dataset: the split audit
DOWNLOAD_REPORTS = REPORTS / "download"  # per dataset: what the download found
CODE = Path("data/code")  # per command (and dataset): the code it runs, file by file (code stage)


def records(dataset: str) -> Path:
    return RECORDS / f"{dataset}.parquet"


def split_manifest(dataset: str) -> Path:
    return SPLITS / f"{dataset}.parquet"


def audit_report(dataset: str) -> Path:
    return AUDIT / f"{dataset}.json"


def download_report(dataset: str) -> Path:
    return DOWNLOAD_REPORTS / f"{dataset}.json"


def headline_metrics(study: str) -> Path:
    return METRICS / f"{study}.json"


def code_fingerprint(command: str, dataset: str | None = None) -> Path:
    """``data/code/<command>.json``, or ``data/code/<command>/<dataset>.json`` for a dataset's."""
    return CODE / command / f"{dataset}.json" if dataset else CODE / f"{command}.json"
