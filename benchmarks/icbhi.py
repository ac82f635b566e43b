"""ICBHI 2017 headline figures, printed from the pipeline's metrics files.

    python benchmarks/icbhi.py          # the figures of the current metrics/icbhi_*.json
    python benchmarks/icbhi.py --run    # train and evaluate the three headline configs

The issue's headline: binary test AUROC >= 0.85 on a patient-independent split
(``grouped``), and the binary and 4-class ICBHI scores on the official split. ``--run``
runs, for each config and each model, the split, train, calibrate and evaluate stages
(the same ``pipeline`` commands dvc.yaml runs) in a scratch folder holding a copy of
params.yaml with the config's overrides, reading the project's features
(``dvc repro features@icbhi`` first); the project's own outputs are left alone.
Run from the project root.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

STUDIES = ("icbhi_cnn", "icbhi_crnn")
TARGET_AUROC = 0.85
CONFIGS = {  # name -> params overrides
    "binary/grouped": {"icbhi.task": "binary", "icbhi.split.scheme": "grouped"},
    "binary/official": {"icbhi.task": "binary", "icbhi.split.scheme": "official"},
    "multiclass/official": {"icbhi.task": "multiclass", "icbhi.split.scheme": "official"},
}


def _set(params: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    node = params
    for key in path:
        node = node[key]
    node[last] = value


def read_figures(root: Path) -> dict:
    """{study: metrics of its test set, with the task and split scheme they came from}."""
    audit = json.loads((root / "reports/audit/icbhi.json").read_text())
    figures = {}
    for study in STUDIES:
        path = root / "metrics" / study / "details.json"
        if path.is_file():
            metrics = json.loads(path.read_text())
            figures[study] = {"task": metrics["task"], "scheme": audit["scheme"], **metrics["test"]}
    return figures


def _fmt(value) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def print_table(rows: list[tuple[str, str, dict]]) -> None:
    print(f"{'config':<20} {'study':<11} {'n test':>6} {'AUROC':>6} {'95% CI':>13} {'Se':>6} "
          f"{'Sp':>6} {'ICBHI':>6} {'acc':>6} {'F1m':>6}")
    for config, study, m in rows:
        ci = f"{_fmt(m.get('auroc_ci_low'))}-{_fmt(m.get('auroc_ci_high'))}"
        print(f"{config:<20} {study:<11} {m['n']:>6} {_fmt(m.get('auroc')):>6} {ci:>13} "
              f"{_fmt(m['sensitivity']):>6} {_fmt(m['specificity']):>6} "
              f"{_fmt(m['icbhi_score']):>6} {_fmt(m['accuracy']):>6} {_fmt(m['f1_macro']):>6}")


def print_headline(rows: list[tuple[str, str, dict]]) -> None:
    for config, study, m in rows:
        if config.startswith("binary/grouped") and m.get("auroc") is not None:
            verdict = "meets" if m["auroc"] >= TARGET_AUROC else "below"
            print(f"headline: {study} binary test AUROC on a patient-independent split "
                  f"{m['auroc']:.3f} ({verdict} the {TARGET_AUROC} target)")
        if config.endswith("/official"):
            print(f"headline: {study} {config.split('/')[0]} ICBHI score on the official split "
                  f"{m['icbhi_score']:.3f} (Se {m['sensitivity']:.3f}, Sp {m['specificity']:.3f})")


def run_config(root: Path, name: str, overrides: dict, scratch: Path, extra: dict) -> list:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in {**overrides, **extra}.items():
        _set(params, key, value)
    work = scratch / name.replace("/", "_")
    (work / "data").mkdir(parents=True)
    (work / "reports").mkdir()
    (work / "data/features").symlink_to(root.resolve() / "data/features")
    shutil.copytree(root / "reports/download", work / "reports/download")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(root.resolve())}
    rows = []

    def stage(*args: str) -> None:
        started = time.time()
        subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"  {name}: {' '.join(args)} ({time.time() - started:.0f} s)", flush=True)

    stage("split", "icbhi")
    for study in STUDIES:
        for command in ("train", "calibrate", "evaluate"):
            stage(command, study)
        rows.append((name, study, read_figures(work)[study]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="store_true", help="train and evaluate the headline configs")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra params overrides for --run, e.g. icbhi.cnn.train.epochs=5")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    root = Path.cwd()
    if args.run:
        if not (root / "data/features/icbhi.npz").is_file():
            sys.exit("no data/features/icbhi.npz: run `dvc repro features@icbhi` first")
        extra = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
        rows = []
        with tempfile.TemporaryDirectory(prefix="icbhi-benchmark-") as scratch:
            for name in args.configs:
                rows += run_config(root, name, CONFIGS[name], Path(scratch), copy.deepcopy(extra))
    else:
        rows = [(f"{m['task']}/{m['scheme']}", study, m) for study, m in read_figures(root).items()]
        if not rows:
            sys.exit("no metrics/icbhi_*.json: run `dvc repro evaluate@icbhi_cnn evaluate@icbhi_crnn`")
    print_table(rows)
    print_headline(rows)
    if args.out:
        args.out.write_text(json.dumps([{"config": c, "study": s, **m} for c, s, m in rows], indent=2))


if __name__ == "__main__":
    main()
