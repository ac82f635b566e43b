"""``pipeline check-repro``: does this checkout reproduce the numbers its commit carries?

Re-runs ``dvc repro`` (optional), then compares the working tree with a git revision
(HEAD by default):

- every metrics file under ``metrics/`` (JSON and CSV), value by value: a number outside
  ``rtol``/``atol`` of the committed one, a changed string, or a key present on one side
  only is a difference;
- ``dvc.lock``: every output's and dependency's hash, every param value and command.
  Where the CPU kernels match those recorded beside the commit
  (``reports/cpu_fingerprint.json``, ``pipeline/cpu.py``), outputs are byte-identical (and
  ``git status`` stays clean), and a changed hash fails; where they do not, a changed hash
  is reported without failing (``--bytes auto``, the default; ``fail`` or ``warn`` force
  either). Where hashes do not fail, a rebuild on other kernels is judged by its training
  noise instead of by the tolerance: each study's headline figures (``metrics/<study>.json``)
  must lie within the band committed in ``reports/seed_noise.json`` (two runs' noise: the
  figure's sd there times sqrt(2) times Student's t at 95 % with k - 1 degrees of freedom,
  the band ``pipeline compare`` uses); a figure without a band must match within the
  tolerance; the other metrics files are reported as moved, one line each.

Each difference is printed as ``file  key  committed -> new``; the exit status is 1 when
any falls outside the tolerance.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml

from pipeline import paths
from pipeline.compare import moved_since_band, read_noise, read_params
from pipeline.training_noise import NOISE_FILE, TrainingNoise
from pipeline.cpu import fingerprint
from pipeline.errors import PipelineError

METRICS_DIR = paths.METRICS.as_posix()  # a git pathspec
LOCK_FILE = "dvc.lock"
FINGERPRINT_FILE = "reports/cpu_fingerprint.json"  # the kernels the committed numbers came from


NOISE_LEVEL = 0.95  # the band's coverage, as compare's default interval


@dataclass(frozen=True)
class Difference:
    file: str
    key: str
    committed: Any
    new: Any
    fails: bool
    band: float | None = None  # a headline figure judged by its training noise: the half-width
    note: str = ""  # why no band could judge it, or what moved in a file reported as a whole

    def line(self) -> str:
        mark = "FAIL" if self.fails else "noise" if self.band is not None else "warn"
        if self.band is not None:
            judged = (f"  (moved {self.new - self.committed:+.4g}, band +-{self.band:.4g}: "
                      f"{'outside' if self.fails else 'within'})")
        else:
            judged = f"  ({self.note})" if self.note else ""
        return f"{mark}  {self.file}  {self.key}  {self.committed!r} -> {self.new!r}{judged}"


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"test": {"auroc": 0.8}}`` -> ``{"test.auroc": 0.8}``; list items by index."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _csv_cells(text: str) -> dict[str, Any]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    return {f"row {i}.{name}": _number(cell)
            for i, row in enumerate(body) for name, cell in zip(header, row, strict=True)}


def _number(cell: str) -> Any:
    try:
        return float(cell)
    except ValueError:
        return cell


def parse_metrics(path: str, text: str) -> dict[str, Any]:
    if path.endswith(".json"):
        return flatten(json.loads(text))
    if path.endswith(".csv"):
        return _csv_cells(text)
    raise PipelineError("not a metrics file (JSON or CSV expected)", path)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if _numeric(a) and _numeric(b):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)
    return a == b


def compare_values(file: str, committed: dict[str, Any], new: dict[str, Any],
                   rtol: float, atol: float) -> list[Difference]:
    missing = object()
    differences = []
    for key in sorted(committed.keys() | new.keys()):
        old_value, new_value = committed.get(key, missing), new.get(key, missing)
        if old_value is missing or new_value is missing or not _close(old_value, new_value, rtol, atol):
            differences.append(Difference(
                file, key,
                "(absent)" if old_value is missing else old_value,
                "(absent)" if new_value is missing else new_value,
                fails=True,
            ))
    return differences


def headline_study(file: str, values: dict[str, Any]) -> str | None:
    """The study whose headline file ``file`` is (``metrics/<study>.json``, keyed by its name)."""
    name = file.removeprefix(f"{METRICS_DIR}/").removesuffix(".json")
    if file.endswith(".json") and values and all(k.startswith(f"{name}.") for k in values):
        return name
    return None


def unjudged(study: str, figure: str, old_value: Any, new_value: Any,
             noise: TrainingNoise | None) -> str:
    """Why a moved headline figure cannot be judged by a band (it then fails)."""
    if old_value is None or new_value is None:
        return "absent on one side"
    if not (_numeric(old_value) and _numeric(new_value)):
        return "not a number"
    if noise is None:
        return (f"no band for {study} in {NOISE_FILE.as_posix()}: `python benchmarks/seed_noise.py "
                f"run {study}` then `summarize` measures one")
    return f"{study}'s band has no sd for {figure}"


def within_noise(file: str, study: str, committed: dict[str, Any], new: dict[str, Any],
                 noise: TrainingNoise | None, rtol: float, atol: float) -> list[Difference]:
    """A headline file rebuilt on other kernels: each moved figure against its band."""
    differences = []
    for key in sorted(committed.keys() | new.keys()):
        old_value, new_value = committed.get(key), new.get(key)
        if key in committed and key in new and _close(old_value, new_value, rtol, atol):
            continue
        figure = key.removeprefix(f"{study}.")
        width = None if noise is None else noise.band(figure, NOISE_LEVEL)
        shown = (old_value if key in committed else "(absent)", new_value if key in new else "(absent)")
        if width is not None and _numeric(old_value) and _numeric(new_value):
            differences.append(Difference(file, key, *shown, fails=abs(new_value - old_value) > width,
                                          band=width))
        else:
            differences.append(Difference(file, key, *shown, fails=True,
                                          note=unjudged(study, figure, old_value, new_value, noise)))
    return differences


def moved_values(file: str, committed: dict[str, Any], new: dict[str, Any], rtol: float,
                 atol: float) -> list[Difference]:
    """A file other than a headline one, rebuilt on other kernels: one line, how many moved."""
    moved = compare_values(file, committed, new, rtol, atol)
    if not moved:
        return []
    first = moved[0]
    return [Difference(file, first.key, first.committed, first.new, fails=False,
                       note=f"the first of {len(moved)} moved values out of "
                            f"{len(committed.keys() | new.keys())}; not judged")]


def lock_hashes(text: str) -> dict[str, Any]:
    """What a dvc.lock records, by name: ``"train@hls_ae: out models/hls_ae/model.pt"`` ->
    its md5, likewise every dep, ``"train@hls_ae: param params.yaml:model"`` -> its value,
    and ``"train@hls_ae: cmd"``."""
    stages = (yaml.safe_load(text) or {}).get("stages", {})
    recorded: dict[str, Any] = {}
    for stage, entry in stages.items():
        recorded[f"{stage}: cmd"] = entry.get("cmd")
        for kind in ("deps", "outs"):
            for item in entry.get(kind, []):
                recorded[f"{stage}: {kind[:-1]} {item['path']}"] = item.get("md5", "")
        for file, values in (entry.get("params") or {}).items():
            for key, value in values.items():
                recorded[f"{stage}: param {file}:{key}"] = value
    return recorded


def compare_lock(committed: str, new: str, bytes_fail: bool) -> list[Difference]:
    old_hashes, new_hashes = lock_hashes(committed), lock_hashes(new)
    return [
        Difference(LOCK_FILE, key, old_hashes.get(key, "(absent)"), new_hashes.get(key, "(absent)"),
                   fails=bytes_fail)
        for key in sorted(old_hashes.keys() | new_hashes.keys())
        if old_hashes.get(key) != new_hashes.get(key)
    ]


def git(*args: str, root: Path) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise PipelineError(f"git {' '.join(args)} failed: {done.stderr.strip()}", root)
    return done.stdout


def check(root: Path, rev: str, rtol: float, atol: float, bytes_fail: bool,
          noise: dict[str, TrainingNoise] | None = None) -> list[Difference]:
    """Every difference between the working tree's metrics and lock and those at ``rev``;
    with ``noise`` (the kernels differ), headline figures are judged by each study's band
    and other metrics files are reported as moved without failing."""
    committed_files = set(git("ls-tree", "-r", "--name-only", rev, "--", METRICS_DIR, root=root).split())
    # what git would commit: tracked or new files, not those DVC caches (and git ignores)
    current_files = set(git("ls-files", "--cached", "--others", "--exclude-standard", "--", METRICS_DIR,
                            root=root).split())
    current_files = {name for name in current_files if (root / name).is_file()}
    differences = []
    for name in sorted(committed_files | current_files):
        if not name.endswith((".json", ".csv")):
            continue
        old = parse_metrics(name, git("show", f"{rev}:{name}", root=root)) if name in committed_files else {}
        new = parse_metrics(name, (root / name).read_text()) if name in current_files else {}
        if name not in committed_files or name not in current_files:
            state = ("(absent)", "(present)") if name not in committed_files else ("(present)", "(absent)")
            differences.append(Difference(name, "(file)", *state, fails=True))
            continue
        if noise is None:
            differences += compare_values(name, old, new, rtol, atol)
        elif (study := headline_study(name, old)) is not None:
            differences += within_noise(name, study, old, new, noise.get(study), rtol, atol)
        else:
            differences += moved_values(name, old, new, rtol, atol)
    lock_path = root / LOCK_FILE
    new_lock = lock_path.read_text() if lock_path.exists() else ""
    differences += compare_lock(git("show", f"{rev}:{LOCK_FILE}", root=root), new_lock, bytes_fail)
    return differences


def kernel_mismatches(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: recorded -> current`` for each kernel setting that differs between two
    fingerprints (``pipeline.cpu.fingerprint``); the CPU model itself is not compared."""
    old, new = recorded.get("kernels", {}), current.get("kernels", {})
    return [f"{key}: {old.get(key, '(absent)')} -> {new.get(key, '(absent)')}"
            for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]


def bytes_mode(requested: str, root: Path, rev: str) -> str:
    """fail or warn: ``auto`` fails on a changed hash only where this process runs the
    kernels the commit's fingerprint names (and says which differ where they do not)."""
    if requested != "auto":
        return requested
    try:
        recorded = json.loads(git("show", f"{rev}:{FINGERPRINT_FILE}", root=root))
    except PipelineError:
        typer.echo(f"check-repro: {rev} has no {FINGERPRINT_FILE}: hashes are compared "
                   "without failing", err=True)
        return "warn"
    mismatches = kernel_mismatches(recorded, fingerprint())
    if not mismatches:
        typer.echo("check-repro: the CPU kernels match the commit's: byte-exact", err=True)
        return "fail"
    typer.echo("check-repro: the CPU kernels differ from the commit's "
               f"({'; '.join(mismatches)}): hashes are compared without failing", err=True)
    return "warn"


def command(
    rev: str = typer.Option("HEAD", help="git revision whose committed numbers are the reference"),
    run: bool = typer.Option(True, "--run/--no-run", help="run dvc repro first (--no-run: compare as is)"),
    rtol: float = typer.Option(1e-6, help="relative tolerance for a metric value"),
    atol: float = typer.Option(1e-9, help="absolute tolerance for a metric value"),
    bytes_: str = typer.Option("auto", "--bytes", help="a changed output hash in dvc.lock: fail, warn, "
                               f"or auto (fail where the CPU kernels match {FINGERPRINT_FILE})"),
    record: bool = typer.Option(False, "--record", help=f"write this machine's {FINGERPRINT_FILE} "
                                "(after a rebuild you commit) and compare nothing"),
) -> None:
    """Re-run the pipeline and compare its metrics and dvc.lock with a commit's."""
    if bytes_ not in ("fail", "warn", "auto"):
        raise PipelineError(f"--bytes must be fail, warn or auto, not {bytes_!r}")
    root = Path.cwd()
    if record:
        from pipeline.io import write_json

        write_json(root / FINGERPRINT_FILE, fingerprint())
        typer.echo(f"check-repro: wrote {FINGERPRINT_FILE}")
        return
    bytes_ = bytes_mode(bytes_, root, rev)
    exact = bytes_ == "fail"
    noise = None if exact else (read_noise(rev) or {})  # read first: a bad file stops before the rebuild
    committed = {rev: read_params(rev)} if noise else {}
    for study, band in (noise or {}).items():
        moved = moved_since_band(band, study, committed)
        if moved:  # the band no longer describes what is committed: its verdicts are estimates
            typer.echo(f"check-repro: the band of {study} was measured under other settings "
                       f"({'; '.join(moved)}): `python benchmarks/seed_noise.py run {study}` "
                       "measures it again", err=True)
    if run:
        typer.echo("check-repro: dvc repro", err=True)
        if subprocess.run(["dvc", "repro"], cwd=root).returncode != 0:
            raise PipelineError("dvc repro failed (its output is above)", root / "dvc.yaml")
    differences = check(root, rev, rtol, atol, bytes_fail=exact, noise=noise)
    for difference in differences:
        typer.echo(difference.line())
    failing = sum(d.fails for d in differences)
    judged = sum(d.band is not None and not d.fails for d in differences)
    typer.echo(f"check-repro: {failing} difference(s) outside tolerance, {judged} within their "
               f"training-noise band, {len(differences) - failing - judged} reported without failing "
               f"(rtol {rtol:g}, atol {atol:g}, against {rev})")
    if failing:
        sys.exit(1)
    if not exact and differences:
        typer.echo(f"check-repro: reproduces within noise: {judged} headline figure(s) moved, each "
                   f"within its committed training-noise band ({NOISE_FILE.as_posix()} at {rev}, "
                   f"{len(noise)} studies measured)")
