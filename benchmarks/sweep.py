"""A sweep of a cross-validated study: variant -> pooled out-of-fold figures, and which
variant its validation data would choose.

A sweep is kept in the repository, benchmarks/sweeps/<study>.yaml: variant name -> its
`dvc exp run -S`-style overrides. Each variant runs split, every fold's training and the
pooled evaluate in a scratch folder beside the repository's features (or re-extracts them
when a variant changes feature params), so the workspace and dvc.lock are untouched. Run
after `dvc repro`, from the repository root:
    python benchmarks/sweep.py icbhi_cnn                 # every variant of its sweep
    python benchmarks/sweep.py icbhi_cnn base "spec_augment"
Prints one row per variant (mean validation AUROC over the folds, pooled test AUROC with
its cluster-bootstrap interval, specificity against its target, per-fold AUROC mean and
sd, time) and writes benchmarks/sweep_<study>.json, with the variant that validation
selects and its test figure. A measurement, not a test: nothing here tunes what
`dvc repro` reports, and a default changes only by a commit that cites its sweep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pipeline  # noqa: F401 - first: it pins the CPU kernels before numpy loads (pipeline/cpu.py)
import numpy as np
import yaml
from dvc.utils.hydra import apply_overrides

from kernels import native_environment

from pipeline.cpu import MODE_VARIABLE
from pipeline.params import dataset_entry, lookup, study_entry

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = ROOT / "benchmarks" / "sweeps"


def load_sweep(study: str) -> dict[str, list[str]]:
    """benchmarks/sweeps/<study>.yaml: variant name -> its `-S` overrides (a list)."""
    path = SWEEPS / f"{study}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SWEEPS.glob("*.yaml")))
        sys.exit(f"{path}: no sweep for {study} (sweeps: {known})")
    variants = yaml.safe_load(path.read_text())
    bad = [name for name, o in (variants or {}).items()
           if not isinstance(o, list) or not all(isinstance(x, str) for x in o)]
    if not variants or bad:
        sys.exit(f"{path}: each variant must be a list of key=value overrides "
                 f"({', '.join(bad) or 'none given'})")
    return variants


def run_variant(study: str, overrides: list[str], environ: dict[str, str] | None = None,
                keep: Path | None = None) -> dict:
    """``study`` rebuilt in a scratch folder with ``overrides``: its details.json and the
    validation figure. ``environ`` adds to the stages' environment; ``keep``: a folder that
    receives the run's metrics (``scores.csv``, the headline json), for later pairing."""
    with tempfile.TemporaryDirectory(prefix="ablation-") as scratch:
        work = Path(scratch)
        params_path = work / "params.yaml"
        params_path.write_text((ROOT / "params.yaml").read_text())
        apply_overrides(str(params_path), overrides)
        params = yaml.safe_load(params_path.read_text())
        base = yaml.safe_load((ROOT / "params.yaml").read_text())
        # the studies index names its dataset (a grid cell, icbhi_semi/vat/0.25: its grid's entry)
        dataset = study_entry(base, study.split("/")[0])[1]["dataset"]
        (work / "data").mkdir()
        env = {**os.environ, "PYTHONWARNINGS": "ignore", **(environ or {})}
        native = env.get(MODE_VARIABLE) == "native"
        if native:  # this process pinned its own environment: unpin
            env = native_environment(env)
        if "generate" in dataset_entry(base, dataset):  # one seeded stage writes everything
            run(["generate", dataset], work, env)
        else:
            features_key = dataset_entry(base, dataset)["features"]
            for folder in ("raw", "records"):
                (work / "data" / folder).symlink_to(ROOT / "data" / folder)
            # other kernels make other features too, as a rebuild on another CPU would
            if native or lookup(params, features_key) != lookup(base, features_key):
                run(["features", dataset], work, env)
            else:
                (work / "data" / "features").symlink_to(ROOT / "data" / "features")
            (work / "reports" / "download").mkdir(parents=True)
            (work / "reports" / "download" / f"{dataset}.json").symlink_to(
                ROOT / "reports" / "download" / f"{dataset}.json")
            run(["split", dataset], work, env)
        run(["train", study], work, env)  # every fold, then the final model (evaluate calibrates it)
        run(["evaluate", study], work, env)
        metrics = json.loads((work / "metrics" / study / "details.json").read_text())
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / "metrics" / study / "scores.csv", keep / "scores.csv")
            shutil.copyfile(work / "metrics" / f"{study}.json", keep / "headline.json")
        return {**metrics, "validation": validation_auroc(work / "data" / "scores" / study / "folds")}


def validation_auroc(folds: Path) -> dict:
    """Each fold's AUROC on its own validation units (abnormal against normal), their mean:
    what a sweep selects on, since the pooled test figure must not choose. Empty where
    validation holds one class (an autoencoder's: normal only)."""
    import pandas as pd

    from pipeline.calibration import calibration_scores
    from pipeline.metrics import aggregate_units, auroc

    per_fold = []
    for path in sorted(folds.glob("*/val.parquet")):
        units = aggregate_units(calibration_scores(pd.read_parquet(path)), "mean")
        label = (units["label"] != 0).astype(int).to_numpy()
        if 0 < label.sum() < len(label):
            per_fold.append(auroc(label, units["score"].to_numpy()))
    return {"auroc_mean": float(np.mean(per_fold)), "folds": len(per_fold)} if per_fold else {}


def run(args: list[str], cwd: Path, env: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"pipeline {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def main() -> None:
    study, chosen = sys.argv[1], sys.argv[2:]
    variants = {name: o for name, o in load_sweep(study).items() if not chosen or name in chosen}
    out = ROOT / "benchmarks" / f"sweep_{study}.json"
    print(f"{study}: pooled out-of-fold test figures (95% cluster-bootstrap intervals); "
          "val AUROC: the mean of the folds' validation AUROC, what selection reads")
    print(f"{'variant':<24} {'val':>6} {'AUROC':>7} {'interval':>15} {'spec':>6} {'target':>6} "
          f"{'sens':>6} {'fold AUROC':>14} {'time':>6}")
    for name, overrides in variants.items():
        started = time.monotonic()
        metrics = run_variant(study, overrides)
        test, cv, val = metrics["test"], metrics["cv"], metrics["validation"]
        r = {"overrides": overrides, "val_auroc": val.get("auroc_mean"), "auroc": test["auroc"],
             "auroc_ci": [test["auroc_ci_low"], test["auroc_ci_high"]],
             "specificity": test["specificity"], "specificity_target": test.get("specificity_target"),
             "sensitivity": test["sensitivity"], "icbhi_score": test.get("icbhi_score"),
             "cv_auroc_mean": cv["auroc_mean"], "cv_auroc_std": cv["auroc_std"],
             "seconds": round(time.monotonic() - started, 1)}
        target = f"{r['specificity_target']:.2f}" if r["specificity_target"] else "-"
        shown = f"{r['val_auroc']:6.3f}" if r["val_auroc"] is not None else f"{'-':>6}"
        print(f"{name:<24} {shown} {r['auroc']:7.3f} [{r['auroc_ci'][0]:.3f}, {r['auroc_ci'][1]:.3f}] "
              f"{r['specificity']:6.3f} {target:>6} {r['sensitivity']:6.3f} "
              f"{r['cv_auroc_mean']:7.3f} ± {r['cv_auroc_std']:.3f} {r['seconds']:5.0f}s", flush=True)
        # written after each variant: an interrupted run keeps what it measured
        found = json.loads(out.read_text()) if out.is_file() else {}
        found.pop("selected", None)
        out.write_text(json.dumps({**found, name: r}, indent=2) + "\n")
    results = json.loads(out.read_text())
    scored = {n: r for n, r in results.items() if r.get("val_auroc") is not None}
    if scored:  # chosen on validation alone; its test figure is what to expect of it
        best = max(scored, key=lambda n: scored[n]["val_auroc"])
        results["selected"] = {"variant": best, "by": "highest mean validation AUROC over the folds",
                               "test_auroc": scored[best]["auroc"], "test_auroc_ci": scored[best]["auroc_ci"]}
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"selected on validation: {best} (test AUROC {scored[best]['auroc']:.3f})")


if __name__ == "__main__":
    main()
