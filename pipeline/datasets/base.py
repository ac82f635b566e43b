"""What a dataset adapter is, and the verified fetch every adapter shares.

An adapter says where a dataset's files come from (official sources for online users),
how to lay an official download out like the local copies in ``../shared/datasets``,
and how to read records, subjects and labels from the files.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

CHECKSUM_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class Source:
    """One file to fetch for online users."""

    url: str
    filename: str
    known_hash: str | None = None  # "md5:..." or "sha256:..."; None where none is published


def read_checksums(text: str, origin: str | Path) -> dict[str, str]:
    """Parse ``sha256sum`` output into ``{relative path: hex digest}``."""
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise PipelineError(f"line {number} is not '<sha256>  <path>': {line!r}", origin)
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def copy_verified(src: Path, dest: Path, expected: dict[str, str]) -> dict[str, str]:
    """Copy every file under ``src`` to ``dest``, hashing as it goes.

    Files with a known checksum must match it; every checksummed file must exist.
    Returns ``{relative path: sha256}`` for all copied files.
    """
    missing = sorted(rel for rel in expected if not (src / rel).is_file())
    if missing:
        raise PipelineError(
            f"{len(missing)} file(s) listed in the checksums are missing, e.g. {missing[0]}",
            src / missing[0],
        )
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.name != CHECKSUM_FILE)
    digests = {}
    for path in tqdm(files, desc=f"copy {src.name}", unit="file", leave=False):
        rel = path.relative_to(src).as_posix()
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(path, "rb") as fin, open(target, "wb") as fout:
            while block := fin.read(1 << 20):
                digest.update(block)
                fout.write(block)
        digests[rel] = digest.hexdigest()
        if rel in expected and digests[rel] != expected[rel]:
            raise PipelineError(
                f"checksum mismatch: sha256 {digests[rel]}, expected {expected[rel]}", path
            )
    return digests


class Dataset:
    """Base adapter. Subclasses set the class attributes and implement ``read_records``."""

    name: str
    citation: str
    licence: str
    landing_page: str
    sources: tuple[Source, ...] = ()

    def known_checksums(self) -> dict[str, str]:
        """Checksums shipped with the package for the official files (empty if none known)."""
        resource = resources.files("pipeline.datasets") / "checksums" / f"{self.name}.sha256"
        if not resource.is_file():
            return {}
        return read_checksums(resource.read_text(), f"pipeline/datasets/checksums/{self.name}.sha256")

    def fetch(self, dest: Path, local_copy: Path | None, cache_dir: Path) -> dict[str, str]:
        """Fill ``dest`` with verified raw files; return ``{relative path: sha256}``."""
        if local_copy is not None:
            src = local_copy / self.name
            if not src.is_dir():
                raise PipelineError(
                    f"no local copy of {self.name} here; set download.local_copy to a folder "
                    "holding it, or to null to fetch from the official source",
                    src,
                )
            # the copy's own SHA256SUMS is authoritative (the copy may be partial or
            # re-encoded); the shipped list covers copies without one
            sums_file = src / CHECKSUM_FILE
            if sums_file.is_file():
                expected = read_checksums(sums_file.read_text(), sums_file)
            else:
                expected = self.known_checksums()
                if not expected:
                    log.warning("%s has no %s: files copied unverified", src, CHECKSUM_FILE)
            return copy_verified(src, dest, expected)
        expected = self.known_checksums()
        staging = dest.parent / f".{dest.name}.official"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            for source in self.sources:
                self.unpack(_retrieve(source, cache_dir), staging)
            return copy_verified(staging, dest, expected)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def unpack(self, archive: Path, dest: Path) -> None:
        """Lay one fetched file out as in the local copy (default: unzip zips, copy others)."""
        dest.mkdir(parents=True, exist_ok=True)
        if zipfile.is_zipfile(archive):
            extract_zip(archive, dest)
        else:
            shutil.copyfile(archive, dest / archive.name)

    def read_records(self, raw_dir: Path) -> pd.DataFrame:
        raise NotImplementedError

    def read_records_and_report(self, raw_dir: Path) -> tuple[pd.DataFrame, dict]:
        """Records and what reading them found (files present vs listed, quirks, drops)."""
        return self.read_records(raw_dir), {}


def extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise PipelineError(f"corrupt member {bad!r} in archive", archive)
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise PipelineError(f"not a readable zip archive ({exc})", archive) from exc


def _retrieve(source: Source, cache_dir: Path) -> Path:
    import pooch  # only online users need it at run time

    log.info("fetching %s", source.url)
    try:
        return Path(
            pooch.retrieve(
                url=source.url, known_hash=source.known_hash, fname=source.filename,
                path=cache_dir, progressbar=True,
            )
        )
    except ValueError as exc:  # pooch's hash mismatch
        raise PipelineError(f"download failed verification: {exc}", source.url) from exc
    except Exception as exc:
        raise PipelineError(
            f"could not download ({exc}); offline users set download.local_copy", source.url
        ) from exc
