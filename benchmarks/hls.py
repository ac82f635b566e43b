"""HLS-CMDS benchmark: the pooled out-of-fold figures against issue 8's goals.

Run after `dvc repro` (it reads metrics/hls_ae/details.json and folds.json, which DVC
caches or git tracks):
    python benchmarks/hls.py
Goals: pooled recording AUROC >= 0.90, and achieved specificity within 0.05 of the
calibration's promise. Prints figures; it is not a test and never fails on a missed goal.
"""

from __future__ import annotations

import json
from pathlib import Path

GOAL_AUROC, SPECIFICITY_TOLERANCE = 0.90, 0.05


def main() -> None:
    metrics = json.loads(Path("metrics/hls_ae/details.json").read_text())
    folds = json.loads(Path("metrics/hls_ae/folds.json").read_text())
    test, cv = metrics["test"], metrics["cv"]
    print(f"hls_ae, {cv['folds']} folds pooled: {test['n_normal']} normal / {test['n_abnormal']} "
          "abnormal recordings, each scored once out of fold")
    short = GOAL_AUROC - test["auroc"]
    verdict = "met" if short <= 0 else f"NOT met, short by {short:.3f}"
    print(f"  AUROC        {test['auroc']:.3f} [{test['auroc_ci_low']:.3f}, {test['auroc_ci_high']:.3f}]"
          f"   goal >= {GOAL_AUROC}: {verdict}")
    gap = abs(test["specificity"] - test["specificity_target"])
    within = "within" if gap <= SPECIFICITY_TOLERANCE else "NOT within"
    print(f"  specificity  {test['specificity']:.3f} [{test['specificity_ci_low']:.3f}, "
          f"{test['specificity_ci_high']:.3f}], promised {test['specificity_target']:.2f}: "
          f"{within} {SPECIFICITY_TOLERANCE} (off by {gap:.3f})")
    print(f"  sensitivity  {test['sensitivity']:.3f} [{test['sensitivity_ci_low']:.3f}, "
          f"{test['sensitivity_ci_high']:.3f}]")
    print(f"  per fold: AUROC {cv['auroc_mean']:.3f} ± {cv['auroc_std']:.3f} (sd over folds)")
    for k, fold in folds.items():
        print(f"    fold {k}: threshold {fold['threshold']:.4g} from {fold['n_val_units']} calibration "
              f"recordings; {fold['n_test_units']} test, AUROC {fold['auroc']:.3f}, "
              f"Se {fold['sensitivity']:.3f}, Sp {fold['specificity']:.3f}")
    print(f"  mean error normal {test['mean_error_normal']:.4f}, abnormal "
          f"{test['mean_error_abnormal']:.4f} (separation {test['separation']:.2f}x; workshop 4.8x)")


if __name__ == "__main__":
    main()
