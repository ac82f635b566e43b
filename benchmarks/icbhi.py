"""ICBHI 2017 binary figures against issue 8's goals, from the pipeline's metrics files.

    python benchmarks/icbhi.py            # the pooled cross-validated figures (metrics/icbhi_*)
    python benchmarks/icbhi.py --official # also the official challenge split, comparable with
                                          # the literature (trains both models; a few minutes)

Goals: pooled cross-validated AUROC >= 0.80 for the better model, with ICBHI score >= 0.70.
``--official`` runs each model with `icbhi.split.scheme=official`, `icbhi.split.folds=[1]`
through benchmarks/sweep.py's scratch runner (the workspace is left alone). Prints
figures; it is not a test and never fails on a missed goal. Run from the project root.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sweep import run_variant

STUDIES = ("icbhi_cnn", "icbhi_crnn")
GOALS = {"auroc": 0.80, "icbhi_score": 0.70}
OFFICIAL = ["icbhi.split.scheme=official", "icbhi.split.folds=[1]"]


def row(name: str, metrics: dict) -> str:
    test, cv = metrics["test"], metrics.get("cv", {})
    spread = f"{cv['auroc_mean']:.3f} ± {cv['auroc_std']:.3f}" if cv.get("folds", 1) > 1 else "-"
    return (f"{name:<28} {test['n']:>5} {test['auroc']:6.3f} [{test['auroc_ci_low']:.3f}, "
            f"{test['auroc_ci_high']:.3f}] {test['sensitivity']:6.3f} {test['specificity']:6.3f} "
            f"{test['icbhi_score']:6.3f} {spread:>15}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", action="store_true",
                        help="also train and evaluate on the official split")
    args = parser.parse_args()
    print(f"{'study (split)':<28} {'n':>5} {'AUROC':>6} {'95% patient CI':>16} {'Se':>6} {'Sp':>6} "
          f"{'ICBHI':>6} {'fold AUROC':>15}")
    pooled = {}
    for study in STUDIES:
        pooled[study] = json.loads((Path("metrics") / study / "details.json").read_text())
        print(row(f"{study} (5-fold, pooled)", pooled[study]))
    if args.official:
        for study in STUDIES:
            print(row(f"{study} (official)", run_variant(study, OFFICIAL)), flush=True)
    best = max(STUDIES, key=lambda s: pooled[s]["test"]["auroc"])
    for key, goal in GOALS.items():
        value = pooled[best]["test"][key]
        print(f"goal: {best} pooled {key} {value:.3f} >= {goal}: "
              f"{'met' if value >= goal else f'NOT met, short by {goal - value:.3f}'}")


if __name__ == "__main__":
    main()
