"""File helpers: checksums and all-or-nothing writes.

Every stage output goes through these, so an interrupted or failed stage never
leaves a half-written file or folder where DVC (or a user) would take it as done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Every temporary name starts with this (.gitignore covers it), so leftovers of a killed
# run are recognisable: the next write to the same target removes or restores them.
TEMP_PREFIX = ".pipeline-tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _aside(path: Path) -> Path:
    """Where ``atomic_dir`` parks the previous folder while the new one is renamed in."""
    return path.parent / f"{TEMP_PREFIX}{path.name}.old"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean_leftovers(path: str | Path) -> list[Path]:
    """Undo what a killed ``atomic_path``/``atomic_dir`` left beside ``path``.

    A previous folder parked aside while ``path`` is absent is renamed back (it is the last
    complete version); other temporaries for ``path`` are removed. Returns what was removed.
    """
    path = Path(path)
    aside = _aside(path)
    if aside.is_dir() and not path.exists():
        os.rename(aside, path)
        log.warning("%s: restored the previous complete folder left aside by a killed run", path)
    # mkstemp/mkdtemp names: <prefix><name>.<8 random chars>.tmp (not another target's)
    mine = re.compile(re.escape(f"{TEMP_PREFIX}{path.name}.") + r"([a-z0-9_]{8}\.tmp|old)")
    removed = sorted(p for p in path.parent.glob(f"{TEMP_PREFIX}*") if mine.fullmatch(p.name))
    for leftover in removed:
        _remove(leftover)
    if removed:
        log.info("%s: removed %d temporary leftover(s) of a killed run", path, len(removed))
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; swap it in for ``path`` only if the block succeeds.

    The swap: park the old folder aside, rename the new one in, remove the old one. At every
    instant ``path`` holds the old or the new complete folder, except between the two renames,
    when the old one sits complete at its aside name and ``clean_leftovers`` (run by the next
    write) renames it back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=".tmp",
                                dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual mode
    try:
        yield tmp
        aside = _aside(path)
        if path.exists():
            os.rename(path, aside)
        os.rename(tmp, path)
        _remove(aside)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


LOCKS = Path(".pipeline-locks")  # in the project root; git ignores it


@contextlib.contextmanager
def single_writer(name: str) -> Iterator[None]:
    """Hold the project's lock for the run ``name`` (a stage command and its dataset or
    study): a second run of it while this one holds it is a PipelineError naming the
    holder's pid, at once, never a race over the same outputs. The operating system drops
    the lock when its holder ends, however it ends."""
    import fcntl

    from pipeline.errors import PipelineError

    LOCKS.mkdir(exist_ok=True)
    with open(LOCKS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".lock"), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise PipelineError(f"another `pipeline {name}` (pid {holder}) is running in this project: "
                                "wait for it to finish, or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def jsonable(obj: Any, digits: int | None = None) -> Any:
    """``obj`` as JSON can hold it: numpy values as Python ones, non-finite floats as null."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v, digits) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if not np.isfinite(obj):
            return None
        if digits is not None:
            return float(f"{obj:.{digits}g}")
    return obj


def write_json(path: str | Path, obj: Any, digits: int | None = 6) -> None:
    """Write ``obj`` as JSON, floats rounded to ``digits`` significant digits.

    Rounding where numbers are written keeps last-bit differences (summation order, BLAS
    kernels) out of the committed metrics; None keeps full precision (thresholds, which
    decisions are taken against).
    """
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(obj, digits), indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    # a file object stops numpy appending ".npz" to the temporary name
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # uncompressed: saves 1.3 s per write and every read; 23 % larger


@contextlib.contextmanager
def npz_row_writer(path: str | Path, name: str, shape: tuple[int, ...],
                   dtype=np.float32) -> Iterator[Callable[[np.ndarray, np.ndarray], None]]:
    """Write the one array of an .npz row block by row block, never holding it whole.

    Yields ``write(positions, rows)``: ``rows[i]`` becomes row ``positions[i]``. The rows go to
    a temporary .npy file, then into the archive (uncompressed, the same bytes ``write_npz``
    gives for the whole array); it appears at ``path`` only if the block succeeds and every
    row was written.
    """
    dtype = np.dtype(dtype)
    with atomic_path(path) as archive:
        rows_file = archive.with_name(archive.name + ".npy")
        try:
            header = np.lib.format.open_memmap(rows_file, mode="w+", dtype=dtype, shape=shape)
            offset = header.offset  # the npy header's length: rows follow it
            del header
            row_bytes = dtype.itemsize * int(np.prod(shape[1:]))
            written = np.zeros(shape[0], dtype=bool)
            with open(rows_file, "r+b") as f:  # plain writes: no mapped pages held in memory

                def write(positions: np.ndarray, rows: np.ndarray) -> None:
                    rows = np.ascontiguousarray(rows, dtype=dtype).reshape(len(rows), -1)
                    for position, row in zip(positions, rows, strict=True):
                        f.seek(offset + int(position) * row_bytes)
                        f.write(row.tobytes())
                    written[positions] = True

                yield write
            if not written.all():
                raise ValueError(f"{int((~written).sum())} of {shape[0]} rows of {name!r} were "
                                 f"never written to {path}")
            # as numpy's savez lays a member out: stored, zip64, the default date
            with (zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as zipf,
                  zipf.open(f"{name}.npy", "w", force_zip64=True) as member,
                  open(rows_file, "rb") as rows_in):
                shutil.copyfileobj(rows_in, member, 1 << 20)
        finally:
            rows_file.unlink(missing_ok=True)
