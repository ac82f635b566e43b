"""How much a cross-validated study's headline figures move when only the training seed does.

Each study is rebuilt (split, every fold's training, the pooled evaluate) in a scratch
folder by the sweep runner (benchmarks/sweep.py), once per training seed, with
nothing else changed; the workspace and dvc.lock are untouched. Run after `dvc repro`:
    python benchmarks/seed_spread.py                     # every cross-validated study, seeds 42 1 2
    python benchmarks/seed_spread.py icbhi_crnn --seeds 42 1 2 3 4
Prints each figure's value per seed, mean and sample sd, and writes
benchmarks/seed_spread.json. A measurement, not a test: the pipeline itself still trains
one seed per fold (`train.seed`); this file says how far a figure of it may move.
"""

from __future__ import annotations

import argparse
import json
import time

import pipeline  # noqa: F401 - first: it pins the CPU kernels before numpy loads (pipeline/cpu.py)
import numpy as np
import yaml
from sweep import ROOT, run_variant

from pipeline.params import study_entry

FIGURES = ("auroc", "sensitivity", "specificity", "icbhi_score")
OUT = ROOT / "benchmarks" / "seed_spread.json"


def spread(study: str, seeds: list[int]) -> dict:
    """Per seed: the pooled test figures and the time; then each figure's mean and sd."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    train_key = study_entry(params, study)[1]["train"]
    runs = {}
    for seed in seeds:
        started = time.monotonic()
        test = run_variant(study, [f"{train_key}.seed={seed}"])["test"]
        runs[seed] = {**{f: test.get(f) for f in FIGURES if test.get(f) is not None},
                      "seconds": round(time.monotonic() - started, 1)}
        print(f"{study:<14} seed {seed:<4} " + "  ".join(
            f"{f} {runs[seed][f]:.4f}" for f in FIGURES if f in runs[seed]), flush=True)
    summary = {}
    for f in FIGURES:
        values = np.array([r[f] for r in runs.values() if f in r], dtype=float)
        if len(values):
            summary[f] = {"mean": float(values.mean()),
                          "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
                          "range": float(values.max() - values.min())}
    return {"train_key": f"{train_key}.seed", "seeds": runs, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="*", help="default: every cross-validated study")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    studies = args.studies or list(params["studies"]["cross_validated"])
    found = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for study in studies:
        found[study] = spread(study, args.seeds)
        for f, s in found[study]["summary"].items():
            sd = "-" if s["sd"] is None else f"{s['sd']:.4f}"
            print(f"{study:<14} {f:<12} mean {s['mean']:.4f}  sd {sd}  range {s['range']:.4f}")
        OUT.write_text(json.dumps(found, indent=2) + "\n")  # after each study: a stop keeps the rest


if __name__ == "__main__":
    main()
