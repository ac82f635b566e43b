"""Ablation of the cross-validated clinical studies: variant -> pooled out-of-fold figures.

Each variant is params.yaml with `dvc exp run -S`-style overrides. It runs split, every
fold's training and the pooled evaluate in a scratch folder beside the repository's
features (or re-extracts them when a variant changes feature params), so the workspace
and dvc.lock are untouched. Run after `dvc repro`, from the repository root:
    python benchmarks/ablation.py hls_ae            # every hls_ae variant
    python benchmarks/ablation.py icbhi_crnn base spec_augment
Prints one row per variant (pooled AUROC with its cluster-bootstrap interval, specificity
against its target, per-fold AUROC mean and sd) and writes benchmarks/ablation_<study>.json.
It is a measurement, not a test: nothing here tunes what `dvc repro` reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from dvc.utils.hydra import apply_overrides

from pipeline.params import dataset_entry, lookup, study_entry

ROOT = Path(__file__).resolve().parent.parent
SPEC_AUGMENT = "{freq_masks: 2, freq_width: 8, time_masks: 2, time_width: 16}"
VARIANTS = {
    "hls_ae": {
        "base": [],
        "validation calibration": ["train.cross_fit=0"],
        "cross-fit 3": ["train.cross_fit=3"],
        "percentile 90": ["calibrate.percentile=90"],
        "percentile 80": ["calibrate.percentile=80"],
        "calibrate gamma": ["calibrate.method=gamma"],
        "scaler standard": ["train.scaler=standard"],
        "latent 8": ["model.latent=8"],
        "latent 16": ["model.latent=16"],
        "hidden 64": ["model.hidden=64"],
        "aggregate median": ["calibrate.aggregate=median"],
        "n_mfcc 40": ["features.n_mfcc=40"],
        "pooling flatten": ["features.pooling=flatten"],
        "flatten + gamma": ["features.pooling=flatten", "calibrate.method=gamma"],
        "flatten + latent 16": ["features.pooling=flatten", "model.latent=16"],
        "flatten + hidden 256": ["features.pooling=flatten", "model.hidden=256"],
        # less training for the same detector (issue 21): faster steps, shorter patience
        "patience 10": ["train.patience=10"],
        "lr 0.003": ["train.lr=0.003"],
    },
    **{f"icbhi_{model}": {
        "base": [],
        "band_norm": [f"icbhi.{model}.model.band_norm=true"],
        "monitor auroc": [f"icbhi.{model}.train.monitor=auroc"],
        "cosine schedule": [f"icbhi.{model}.train.schedule=cosine"],
        "spec_augment": [f"icbhi.{model}.model.spec_augment={SPEC_AUGMENT}"],
        "band_norm + monitor auroc": [f"icbhi.{model}.model.band_norm=true",
                                      f"icbhi.{model}.train.monitor=auroc"],
    } for model in ("cnn", "crnn")},
}
def run_variant(study: str, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="ablation-") as scratch:
        work = Path(scratch)
        params_path = work / "params.yaml"
        params_path.write_text((ROOT / "params.yaml").read_text())
        apply_overrides(str(params_path), overrides)
        params = yaml.safe_load(params_path.read_text())
        base = yaml.safe_load((ROOT / "params.yaml").read_text())
        dataset = study_entry(base, study)[1]["dataset"]  # the studies index names its dataset
        split_key, features_key = (dataset_entry(base, dataset)[k] for k in ("split", "features"))
        (work / "data").mkdir()
        for folder in ("raw", "records"):
            (work / "data" / folder).symlink_to(ROOT / "data" / folder)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        if lookup(params, features_key) != lookup(base, features_key):
            run(["features", dataset], work, env)
        else:
            (work / "data" / "features").symlink_to(ROOT / "data" / "features")
        (work / "reports" / "download").mkdir(parents=True)
        (work / "reports" / "download" / f"{dataset}.json").symlink_to(
            ROOT / "reports" / "download" / f"{dataset}.json")
        run(["split", dataset], work, env)
        for fold in lookup(params, split_key)["folds"]:
            run(["train", study, "--fold", str(fold)], work, env)
        run(["evaluate", study], work, env)
        return json.loads((work / "metrics" / study / "details.json").read_text())


def run(args: list[str], cwd: Path, env: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"pipeline {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def main() -> None:
    study, chosen = sys.argv[1], sys.argv[2:]
    variants = {name: o for name, o in VARIANTS[study].items() if not chosen or name in chosen}
    print(f"{study}: pooled out-of-fold figures (95% cluster-bootstrap intervals)")
    print(f"{'variant':<20} {'AUROC':>7} {'interval':>15} {'spec':>6} {'target':>6} "
          f"{'sens':>6} {'fold AUROC':>14} {'time':>6}")
    for name, overrides in variants.items():
        started = time.monotonic()
        metrics = run_variant(study, overrides)
        test, cv = metrics["test"], metrics["cv"]
        r = {"overrides": overrides, "auroc": test["auroc"],
             "auroc_ci": [test["auroc_ci_low"], test["auroc_ci_high"]],
             "specificity": test["specificity"], "specificity_target": test.get("specificity_target"),
             "sensitivity": test["sensitivity"], "icbhi_score": test.get("icbhi_score"),
             "cv_auroc_mean": cv["auroc_mean"], "cv_auroc_std": cv["auroc_std"],
             "seconds": round(time.monotonic() - started, 1)}
        target = f"{r['specificity_target']:.2f}" if r["specificity_target"] else "-"
        print(f"{name:<20} {r['auroc']:7.3f} [{r['auroc_ci'][0]:.3f}, {r['auroc_ci'][1]:.3f}] "
              f"{r['specificity']:6.3f} {target:>6} {r['sensitivity']:6.3f} "
              f"{r['cv_auroc_mean']:7.3f} ± {r['cv_auroc_std']:.3f} {r['seconds']:5.0f}s", flush=True)
        # written after each variant: an interrupted run keeps what it measured
        out = ROOT / "benchmarks" / f"ablation_{study}.json"
        found = json.loads(out.read_text()) if out.is_file() else {}
        out.write_text(json.dumps({**found, name: r}, indent=2) + "\n")


if __name__ == "__main__":
    main()
