"""Where the pipeline reads and writes, relative to the repository root, in one place.

dvc.yaml names the same folders in its deps and outs; tests/test_paths.py checks that
every path there under one of these folders agrees with this module.
"""

from __future__ import annotations

from pathlib import Path

RAW = Path("data/raw")  # downloaded files, one folder per dataset
RECORDS = Path("data/records")  # one table per dataset: a row per record (download stage)
FEATURES = Path("data/features")  # features stage (and generate): a folder per dataset
SPLITS = Path("data/splits")  # split manifests, one per dataset
SCORES = Path("data/scores")  # per study: val/test scores of every unit
MODELS = Path("models")  # per study: model.pt and threshold.json
METRICS = Path("metrics")  # per study: <study>.json (headline) and <study>/ (the rest)
REPORTS = Path("reports")  # the report's pages; and below:
FIGURES = REPORTS / "figures"  # per study: its figures
AUDIT = REPORTS / "audit"  # per dataset: the split audit
DOWNLOAD_REPORTS = REPORTS / "download"  # per dataset: what the download found
CODE = Path("data/code")  # per command (and dataset): the code it runs, file by file (code stage)


def records(dataset: str) -> Path:
    return RECORDS / f"{dataset}.parquet"


def features(dataset: str, name: str | None = None) -> Path:
    """``data/features/<dataset>/``: a dataset's features (its tables, arrays and
    ``settings.json``, the settings they were made with), or the file ``name`` there."""
    folder = FEATURES / dataset
    return folder / name if name else folder


def feature_settings(dataset: str) -> Path:
    return features(dataset, "settings.json")


def generated_series(dataset: str) -> Path:
    """A generated dataset's arrays (``x``, one row per series), written by ``pipeline generate``."""
    return features(dataset, "series.npz")


def figures(study: str) -> Path:
    """``reports/figures/<study>/``: a study's figures (the report shows every one)."""
    return FIGURES / study


def split_manifest(dataset: str) -> Path:
    return SPLITS / f"{dataset}.parquet"


def audit_report(dataset: str) -> Path:
    return AUDIT / f"{dataset}.json"


def download_report(dataset: str) -> Path:
    return DOWNLOAD_REPORTS / f"{dataset}.json"


def member_scores(study: str, seed: int, split: str) -> Path:
    """One seed member's scores of ``split``, beside the study's (its ensemble's)."""
    return SCORES / study / "seeds" / str(seed) / f"{split}.parquet"


def headline_metrics(study: str) -> Path:
    return METRICS / f"{study}.json"


def code_fingerprint(command: str, argument: str | None = None) -> Path:
    """``data/code/<command>.json``, or ``data/code/<command>/<argument>.json`` for a command
    run on one dataset or study."""
    return CODE / command / f"{argument}.json" if argument else CODE / f"{command}.json"
