"""All-or-nothing outputs: a crash or a kill at any moment leaves the old or the new complete
folder (or file) in place, and the next write cleans up what the killed one left."""

from __future__ import annotations

import fnmatch
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import io
from pipeline.io import TEMP_PREFIX, atomic_dir, atomic_path, clean_leftovers

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 40


def _fill(folder: Path, version: int) -> None:
    for i in range(N_FILES):
        (folder / f"part{i:02d}.txt").write_text(str(version))


def _version(folder: Path) -> int:
    """The one version every file of ``folder`` holds; fails if the folder is partial or mixed."""
    contents = {p.read_text() for p in folder.iterdir()}
    assert len(list(folder.iterdir())) == N_FILES and len(contents) == 1, sorted(contents)
    return int(contents.pop())


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(TEMP_PREFIX))


def test_atomic_dir_swaps_in_a_complete_folder_with_the_usual_mode(tmp_path):
    target = tmp_path / "raw"
    for version in (1, 2):
        with atomic_dir(target) as staging:
            _fill(staging, version)
        assert _version(target) == version
    assert target.stat().st_mode & 0o777 == 0o777 & ~io._umask()
    assert _leftovers(tmp_path) == []


def test_a_failure_while_staging_keeps_the_old_folder(tmp_path):
    target = tmp_path / "raw"
    with atomic_dir(target) as staging:
        _fill(staging, 1)
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "part00.txt").write_text("2")
        raise RuntimeError("stage failed half-way")
    assert _version(target) == 1 and _leftovers(tmp_path) == []


def _crash_on_rename(monkeypatch, call: int) -> None:
    """Make the ``call``-th os.rename in pipeline.io die, as a kill at that instant would."""
    real, calls = os.rename, []

    def rename(src, dst):
        calls.append(src)
        if len(calls) == call:
            raise KeyboardInterrupt("killed")
        return real(src, dst)

    monkeypatch.setattr(io.os, "rename", rename)


def _crash_and_rmtree_nothing(monkeypatch) -> None:
    # a kill runs no clean-up: the `finally` of atomic_dir must not remove the staged folder
    monkeypatch.setattr(io.shutil, "rmtree", lambda *a, **k: None)


def test_a_crash_between_the_two_renames_loses_nothing(tmp_path, monkeypatch):
    target = tmp_path / "raw"
    with atomic_dir(target) as staging:
        _fill(staging, 1)
    with monkeypatch.context() as patch:
        _crash_on_rename(patch, call=2)  # old parked aside; the new one not yet renamed in
        _crash_and_rmtree_nothing(patch)
        with pytest.raises(KeyboardInterrupt), atomic_dir(target) as staging:
            _fill(staging, 2)
    assert not target.exists()
    assert _version(tmp_path / f"{TEMP_PREFIX}raw.old") == 1  # complete, at its aside name
    clean_leftovers(target)  # what the next run does first
    assert _version(target) == 1 and _leftovers(tmp_path) == []
    with atomic_dir(target) as staging:
        _fill(staging, 3)
    assert _version(target) == 3 and _leftovers(tmp_path) == []


def test_a_crash_after_the_swap_keeps_the_new_folder(tmp_path, monkeypatch):
    target = tmp_path / "raw"
    with atomic_dir(target) as staging:
        _fill(staging, 1)
    with monkeypatch.context() as patch:
        patch.setattr(io, "_remove", lambda path: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt), atomic_dir(target) as staging:
            _fill(staging, 2)
    assert _version(target) == 2
    clean_leftovers(target)
    assert _version(target) == 2 and _leftovers(tmp_path) == []


def test_atomic_path_leftovers_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "table.parquet"
    stale = tmp_path / f"{TEMP_PREFIX}table.parquet.abcd1234.tmp"
    stale.write_text("half-written")
    other = tmp_path / f"{TEMP_PREFIX}table.parquet.json.abcd1234.tmp"  # another target's
    other.write_text("in use")
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done" and not stale.exists() and other.exists()


def test_git_ignores_the_temporary_names():
    patterns = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    for name in (f"{TEMP_PREFIX}icbhi.8ibeb08y.tmp", f"{TEMP_PREFIX}raw.old"):
        assert any(fnmatch.fnmatch(name, p) for p in patterns if p and not p.startswith("#"))


WRITER = """
import sys
from pathlib import Path
from pipeline.io import atomic_dir
target, version = Path(sys.argv[1]), 2
while True:
    with atomic_dir(target) as staging:
        for i in range({n}):
            (staging / f"part{{i:02d}}.txt").write_text(str(version))
    version += 1
"""


@pytest.mark.slow
def test_kills_at_random_moments_never_leave_a_partial_folder(tmp_path):
    target = tmp_path / "raw"
    with atomic_dir(target) as staging:
        _fill(staging, 1)
    rng = random.Random(0)
    seen = set()
    for _ in range(12):
        writer = subprocess.Popen([sys.executable, "-c", WRITER.format(n=N_FILES), str(target)],
                                  cwd=ROOT)
        time.sleep(rng.uniform(0.3, 1.2))  # interpreter start-up, then some swaps
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        clean_leftovers(target)
        seen.add(_version(target))  # complete: old or new, never mixed or partial
        assert _leftovers(tmp_path) == []
    assert len(seen) > 1  # the kills did land while versions were being swapped
