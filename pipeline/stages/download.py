"""Stage 1: verified raw files in ``data/raw/<dataset>/`` and a records table (Parquet).

Files come from the configured local copy (``download.local_copy``) or, when that is
null, from the dataset's official source. Either way each file must be listed and match
the checksums known for it, every audio file is decoded whole once, every record must
name a verified file, and the raw folder is swapped in only once all of that holds.
``reports/download/<dataset>.json`` says what was found: files, records, and whatever the
adapter reports (for ICBHI: recordings present vs listed, quirks resolved, cycles dropped).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import typer

from pipeline import paths
from pipeline.audio import read_audio
from pipeline.datasets import get_dataset
from pipeline.errors import PipelineError
from pipeline.io import atomic_dir, write_json, write_parquet
from pipeline.params import load_params, lookup
from pipeline.progress import bar as progress_bar

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")


def download(
    dataset_name: str, raw_dir: Path, records_path: Path, local_copy: Path | None,
    cache_dir: Path = Path(".cache/downloads"), report_path: Path | None = None,
) -> pd.DataFrame:
    dataset = get_dataset(dataset_name)
    # an error about a file names it where the user can open it: in the local copy (or, from
    # official sources, where it will be), never in the staging folder it is checked in
    source = raw_dir if local_copy is None else local_copy / dataset.name
    with atomic_dir(raw_dir) as staging, _named_in(staging, source):
        digests = dataset.fetch(staging, local_copy, cache_dir)
        decode_audio(staging, digests)
        records, found = dataset.read_records_and_report(staging)
        records["sha256"] = _verified_digests(records["file"], digests, raw_dir)
    # the raw folder is in place and complete before the table describing it is written
    write_parquet(records_path, records)
    if report_path is not None:
        source = "official sources" if local_copy is None else str(local_copy / dataset.name)
        write_json(report_path, {"dataset": dataset_name, "source": source,
                                 "files": len(digests), "records": len(records), **found})
    log.info("%s: %d files, %d records", dataset_name, len(digests), len(records))
    return records


@contextlib.contextmanager
def _named_in(staging: Path, source: Path) -> Iterator[None]:
    """PipelineErrors naming a file under ``staging`` re-raised naming it under ``source``."""
    try:
        yield
    except PipelineError as exc:
        if exc.path is None or not exc.path.is_relative_to(staging):
            raise
        raise PipelineError(exc.cause, source / exc.path.relative_to(staging)) from None


def decode_audio(folder: Path, digests: dict[str, str]) -> None:
    """Decode every audio file once, whole: a truncated or corrupt file fails here, not in
    a later stage (a checksum only says the bytes are the listed ones)."""
    audio = [rel for rel in digests if Path(rel).suffix.lower() in AUDIO_SUFFIXES]
    for rel in progress_bar(audio, desc="decode audio", unit="file", leave=False):
        read_audio(folder / rel)


def _verified_digests(files: pd.Series, digests: dict[str, str], raw_dir: Path) -> pd.Series:
    """Each record's checksum; a record naming a file outside the verified copy is an error."""
    sha = files.map(digests)
    if sha.isna().any():
        bad = files[sha.isna()].iloc[0]
        raise PipelineError(f"the metadata names {bad!r}, not a verified file of the copy",
                            raw_dir)
    return sha


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Fetch DATASET (local copy or official source), verify it, write its records table."""
    params = load_params()
    local = lookup(params, "download.local_copy")
    download(
        dataset, paths.RAW / dataset, paths.records(dataset),
        None if local is None else Path(local),
        report_path=paths.download_report(dataset),
    )
