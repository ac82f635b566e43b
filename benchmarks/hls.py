"""HLS-CMDS benchmark: the test metrics against the issue's targets.

Run after `dvc repro` (it reads metrics/hls_ae/details.json, which DVC caches):
    python benchmarks/hls.py
Prints figures; it is not a test and never fails on a missed target.
"""

from __future__ import annotations

import json
from pathlib import Path

TARGETS = {  # metric key under "test" -> (target, "min" or "max")
    "auroc": (0.95, "min"),
    "separation": (4.8, "min"),  # workshop notes: 0.0685 / 0.0142 mean reconstruction error
}


def main() -> None:
    metrics = json.loads(Path("metrics/hls_ae/details.json").read_text())
    test = metrics["test"]
    print(f"hls_ae, {test['n_normal']} normal / {test['n_abnormal']} abnormal test recordings")
    for key, (target, kind) in TARGETS.items():
        value = test[key]
        met = value >= target if kind == "min" else value <= target
        print(f"  {key:<12} {value:8.4f}   target {'>=' if kind == 'min' else '<='} {target}"
              f"   {'met' if met else 'NOT met'}")
    print(f"  AUROC 95% bootstrap interval [{test['auroc_ci_low']:.3f}, {test['auroc_ci_high']:.3f}]")
    print(f"  mean error normal {test['mean_error_normal']:.4f}, abnormal "
          f"{test['mean_error_abnormal']:.4f} (workshop: 0.0142, 0.0685)")
    windows = metrics.get("test_windows")
    if windows:
        print(f"  window level: AUROC {windows['auroc']:.4f}, separation {windows['separation']:.3f}")


if __name__ == "__main__":
    main()
