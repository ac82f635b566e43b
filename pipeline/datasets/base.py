"""What a dataset adapter is, and the verified fetch every adapter shares.

An adapter says where a dataset's files come from (official sources for online users),
how to lay an official download out like the local copies in ``../shared/datasets``,
and how to read records, subjects and labels from the files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.progress import bar as progress_bar

log = logging.getLogger(__name__)

CHECKSUM_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class Source:
    """One file to fetch for online users."""

    url: str
    filename: str
    known_hash: str | None = None  # "md5:..." or "sha256:..."; None where none is published


def read_checksums(text: str, origin: str | Path) -> dict[str, str]:
    """Parse ``sha256sum`` output into ``{relative path: hex digest}``.

    An empty list, a path listed twice, or a path leaving the folder is an error: each
    would let a file through unverified.
    """
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            raise PipelineError(f"line {number} is not '<sha256>  <path>': {line!r}", origin)
        rel = parts[1].strip().lstrip("*")
        if rel in sums:
            raise PipelineError(f"line {number}: {rel} is listed twice", origin)
        if not is_inside(rel):
            raise PipelineError(f"line {number}: {rel!r} points outside the dataset folder", origin)
        sums[rel] = parts[0].lower()
    if not sums:
        raise PipelineError("lists no files: nothing could be verified", origin)
    return sums


def is_inside(rel: str) -> bool:
    """Whether relative path ``rel`` (from metadata or a listing) stays inside its folder."""
    path = PurePosixPath(rel)
    return bool(rel) and not path.is_absolute() and ".." not in path.parts and "\\" not in rel


def _regular_files(src: Path) -> list[Path]:
    """Every file under ``src``; symlinks (which could pull in any file) are refused."""
    files = []
    for folder, dirs, names in os.walk(src):
        for name in dirs + names:
            path = Path(folder) / name
            if path.is_symlink():
                raise PipelineError("symbolic links are refused in a dataset copy", path)
        files += [Path(folder) / name for name in names]
    return sorted(files)


def copy_verified(src: Path, dest: Path, expected: dict[str, str] | None) -> dict[str, str]:
    """Copy every file under ``src`` to ``dest``, hashing as it goes.

    With ``expected``, every file must be listed and match its checksum, and every listed
    file must exist. ``None`` (an official source publishing no checksums) copies unverified,
    with a warning. Returns ``{relative path: sha256}`` for all copied files.
    """
    files = [p for p in _regular_files(src) if p.name != CHECKSUM_FILE]
    rels = [p.relative_to(src).as_posix() for p in files]
    if expected is None:
        log.warning("%s: no checksums are published for this source: %d files copied unverified",
                    src, len(files))
    else:
        missing = sorted(set(expected) - set(rels))
        if missing:
            raise PipelineError(
                f"{len(missing)} file(s) listed in the checksums are missing, e.g. {missing[0]}",
                src / missing[0],
            )
        unlisted = sorted(set(rels) - set(expected))
        if unlisted:
            raise PipelineError(f"{len(unlisted)} file(s) not listed in the checksums, so not "
                                f"verifiable, e.g. {unlisted[0]}", src / unlisted[0])
    digests = {}
    for path, rel in progress_bar(list(zip(files, rels, strict=True)), desc=f"copy {src.name}",
                          unit="file", leave=False):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(path, "rb") as fin, open(target, "wb") as fout:
            while block := fin.read(1 << 20):
                digest.update(block)
                fout.write(block)
        digests[rel] = digest.hexdigest()
        if expected is not None and digests[rel] != expected[rel]:
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
                    raise PipelineError(f"no {CHECKSUM_FILE} here and none shipped for "
                                        f"{self.name}: the copy cannot be verified", src)
            return copy_verified(src, dest, expected)
        # official archives: every file inside checked against the shipped list where one
        # exists (none is published for ICBHI: copied with a warning)
        expected = self.known_checksums() or None
        staging = cache_dir / "unpacked" / self.name
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


# Caps on what an archive may unpack to: the official archives publish no checksum, so a
# corrupted or hostile one must not fill the disk. ICBHI's (the largest) unpacks to ~2 GB.
MAX_UNPACKED_BYTES = 16 << 30
MAX_RATIO = 200  # unpacked / packed bytes; audio compresses about 1-3x, text far less than this
MAX_MEMBERS = 100_000


def _check_member(info: zipfile.ZipInfo, archive: Path) -> None:
    if stat.S_ISLNK(info.external_attr >> 16):
        raise PipelineError(f"member {info.filename!r} is a symbolic link: refused", archive)
    if not is_inside(info.filename.rstrip("/")):
        raise PipelineError(f"member {info.filename!r} would land outside the folder", archive)


def extract_zip(archive: Path, dest: Path, shown: Path | None = None) -> None:
    """Unpack ``archive`` into ``dest``, refusing links, path escapes and zip bombs. Errors
    name ``shown`` when given: what the user knows an archive nested in another as
    (``outer.zip/inner.zip``), not where it was unpacked to."""
    try:
        _extract_checked(archive, dest)
    except PipelineError as exc:
        if shown is None:
            raise
        raise PipelineError(exc.cause, shown) from None


def _extract_checked(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise PipelineError(f"{len(members)} members, more than {MAX_MEMBERS}", archive)
            for info in members:
                _check_member(info, archive)
            declared = sum(info.file_size for info in members)
            packed = max(1, archive.stat().st_size)
            if declared > MAX_UNPACKED_BYTES or declared > MAX_RATIO * packed:
                raise PipelineError(f"would unpack {declared} bytes from {packed} (caps: "
                                    f"{MAX_UNPACKED_BYTES} bytes, ratio {MAX_RATIO}): refused",
                                    archive)
            for info in members:
                _extract_member(zf, info, dest, archive)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise PipelineError(f"not a readable zip archive ({exc})", archive) from exc


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, archive: Path) -> None:
    """One member, never more bytes than its header declares (headers can lie)."""
    target = dest / info.filename
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as fin, open(target, "wb") as fout:
        while block := fin.read(1 << 20):
            written += len(block)
            if written > info.file_size:
                raise PipelineError(f"member {info.filename!r} unpacks to more than the "
                                    f"{info.file_size} bytes it declares", archive)
            fout.write(block)


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
