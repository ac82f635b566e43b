"""Training noise, measured: each study rebuilt under noise alone, the band that
`pipeline compare` and `pipeline check-repro` read, and how often a verdict is false.

A study is rebuilt (split, every fold's training, the pooled evaluate) in a scratch folder
by the sweep runner (benchmarks/sweep.py), once per run, with nothing else changed; the
workspace and dvc.lock are untouched. Its noise-only runs: one per training seed
(``--seeds``, pinned kernels) and one with the libraries' native kernels (the CPU-capability
change, ``PIPELINE_CPU_KERNELS=native``, seed as committed). One deliberately broken run
(1 epoch of training) is what a verdict must still catch. Run after `dvc repro`:
    python benchmarks/seed_noise.py run                  # every study of STUDIES
    python benchmarks/seed_noise.py run icbhi_crnn --seeds 42 1 2 3
    python benchmarks/seed_noise.py run icbhi_semi/vat/0.25 --seeds 42 1 --no-broken
    python benchmarks/seed_noise.py summarize            # every study with kept runs
`run` keeps each run's per-unit scores and headline figures under benchmarks/noise_runs/
(git-ignored; a finished run is not repeated). `summarize` writes:
- reports/seed_noise.json: per study, the sample sd over its noise-only runs of each
  figure `compare` computes and of each headline figure (the band), and the settings the
  runs were made with (params.yaml when summarized: run and summarize on one commit);
- benchmarks/results.json `compare`: the false-verdict rate over every pair of noise-only
  runs of a study, with the band from all runs (in sample) and from the runs outside the
  pair (out of sample), and the verdicts on the broken run.
A measurement, not a test: nothing here changes what `dvc repro` reports.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import time

import pipeline  # noqa: F401 - first: it pins the CPU kernels before numpy loads (pipeline/cpu.py)
import pandas as pd
import yaml
from sweep import ROOT, run_variant

from pipeline import check_repro, compare
from pipeline.cpu import fingerprint
from pipeline.params import load_params, lookup, study_entry
from pipeline.training_noise import NOISE_FILE, TrainingNoise, study_settings

# the measured studies, cheapest first: a stopped run keeps the ones it finished (the
# semi-supervised grid's cells, icbhi_semi/<method>/<fraction>, are named one by one)
STUDIES = ("sines_ae", "mnist_novelty", "hls_pca", "icbhi_logreg", "hls_ae", "icbhi_cnn", "icbhi_crnn",
           "mnist_ae", "hls_knn", "hls_gmm", "hls_iforest", "icbhi_hgb")
RUNS = ROOT / "benchmarks" / "noise_runs"
NATIVE = "native-kernels"
TABLE = ("auroc", "sensitivity", "specificity", "icbhi_score", "mean_score")
BROKEN = "broken-1-epoch"


def runs_of(study: str, seeds: list[int], broken: bool = True) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Run name -> (overrides, environment) for the study's noise-only runs and (``broken``)
    its broken one."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    key = study_entry(params, study.split("/")[0])[1]["train"]  # a grid cell: its grid's
    # a study of n seeds: each run trains n others, no seed shared between runs
    n = len(lookup(params, f"{key}.seeds"))
    runs = {f"seed-{s}": ([f"{key}.seeds=[{','.join(str(s + 1000 * i) for i in range(n))}]"], {})
            for s in seeds}
    runs[NATIVE] = ([], {"PIPELINE_CPU_KERNELS": "native"})
    if broken and "epochs" in (lookup(params, key) or {}):  # a closed-form baseline has no epochs to break
        runs[BROKEN] = ([f"{key}.epochs=1"], {})
    return runs


def run(studies: list[str], seeds: list[int], broken: bool) -> None:
    for study in studies:
        for name, (overrides, environ) in runs_of(study, seeds, broken).items():
            keep = RUNS / study / name
            if (keep / "headline.json").is_file():
                continue
            started = time.monotonic()
            run_variant(study, overrides, environ=environ, keep=keep)
            figures = json.loads((keep / "headline.json").read_text())[study]
            print(f"{study:<14} {name:<16} {time.monotonic() - started:5.0f} s  auroc "
                  f"{figures.get('auroc', float('nan')):.4f}", flush=True)


def load_runs(study: str) -> dict[str, tuple[pd.DataFrame, dict]]:
    """Run name -> (per-unit scores, headline figures) of every finished run of ``study``."""
    found = {}
    for folder in sorted((RUNS / study).glob("*/headline.json")):
        scores = pd.read_csv(folder.parent / "scores.csv", dtype={"unit": str, "group": str})
        found[folder.parent.name] = (scores, json.loads(folder.read_text())[study])
    return found


def figures(scores: pd.DataFrame, headline: dict) -> dict[str, float]:
    """What compare computes from the scores, and every numeric headline figure."""
    out = {m.name: compare.point(m, scores) for m in compare.metrics_for(scores)}
    for name, value in headline.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.setdefault(name, float(value))
    return out


def band(runs: dict[str, tuple[pd.DataFrame, dict]]) -> dict:
    """Each figure's mean and sample sd over ``runs``."""
    table = pd.DataFrame({name: figures(*run) for name, run in runs.items()}).T
    return {"runs": len(table), "names": list(table.index),
            "mean": {k: float(v) for k, v in table.mean().items()},
            "sd": {k: float(v) for k, v in table.std(ddof=1).items()}}


def noise_of(entry: dict) -> TrainingNoise:
    one = TrainingNoise(entry["sd"], entry["runs"])
    return one + one  # a change between two runs carries the noise of both


def verdicts(study: str, a: pd.DataFrame, b: pd.DataFrame, cfg: dict,
             noise: TrainingNoise | None) -> dict[str, str]:
    return {r["metric"]: r["verdict"] for r in compare.compare_study(study, a, b, cfg, noise)["rows"]}


def false_verdicts(study: str, runs: dict, cfg: dict) -> dict:
    """Over every pair of noise-only runs: the share of (pair, figure) verdicts other than
    "no evidence", with the band from the other runs (out of sample: how a band measured
    once meets new runs), from all runs (in sample: the pair is part of its own band) and
    without a band (test sampling alone)."""
    noise_only = {n: r for n, r in runs.items() if n != BROKEN}
    everything = noise_of(band(noise_only))
    counts = {"out_of_sample": [], "in_sample": [], "bootstrap_only": []}
    for first, second in itertools.combinations(sorted(noise_only), 2):
        others = {n: r for n, r in noise_only.items() if n not in (first, second)}
        a, b = noise_only[first][0], noise_only[second][0]
        for kind, noise in (("out_of_sample", noise_of(band(others)) if len(others) > 1 else None),
                            ("in_sample", everything), ("bootstrap_only", None)):
            counts[kind] += [v != "no evidence" for v in verdicts(study, a, b, cfg, noise).values()]
    pairs = len(noise_only) * (len(noise_only) - 1) // 2
    return {"pairs": pairs, "verdicts": len(counts["in_sample"]),
            **{kind: float(sum(v) / len(v)) if v else None for kind, v in counts.items()},
            "false_counts": {kind: int(sum(v)) for kind, v in counts.items()}}


def summarize(studies: list[str]) -> None:
    params = load_params(ROOT / "params.yaml")
    cfg = compare.config(params)
    noise_file, results_file = ROOT / NOISE_FILE, ROOT / "benchmarks" / "results.json"
    bands, rates, broken, native = {}, {}, {}, {}
    for study in studies:
        runs = load_runs(study)
        noise_only = {n: r for n, r in runs.items() if n != BROKEN}
        if len(noise_only) < 3:
            print(f"{study}: {len(noise_only)} noise-only run(s), fewer than 3: skipped")
            continue
        # the settings the runs were made with: run and summarize on one commit's params
        bands[study] = {**band(noise_only), "settings": study_settings(params, study)}
        line = "  ".join(f"{m} {bands[study]['mean'][m]:.4f} +- {bands[study]['sd'][m]:.4f}"
                         for m in ("auroc", "sensitivity", "specificity") if m in bands[study]["sd"])
        print(f"{study:<14} {line}", flush=True)
        if len(noise_only) >= 4:  # a pair's out-of-sample band needs two other runs
            r = rates[study] = false_verdicts(study, runs, cfg)
            print(f"{study:<14} false verdicts: {r['out_of_sample']:.3f} out of sample, "
                  f"{r['in_sample']:.3f} in sample, {r['bootstrap_only']:.3f} bootstrap alone "
                  f"({r['pairs']} pairs)", flush=True)
        if NATIVE in runs:  # what check-repro says of a rebuild on other kernels, study by study
            committed = json.loads((ROOT / "metrics" / f"{study}.json").read_text())
            judged = check_repro.within_noise(
                f"metrics/{study}.json", study, check_repro.flatten(committed),
                check_repro.flatten({study: runs[NATIVE][1]}),
                TrainingNoise(bands[study]["sd"], bands[study]["runs"]), 1e-6, 1e-9)
            native[study] = {"moved": len(judged), "outside_band": [d.key for d in judged if d.fails]}
            print(f"{study:<14} native kernels against the commit: {len(judged)} headline figure(s) "
                  f"moved, outside the band: {native[study]['outside_band'] or 'none'}", flush=True)
        if BROKEN in runs and "seed-42" in runs:
            a, b = runs["seed-42"][0], runs[BROKEN][0]
            broken[study] = {"change": {m.name: compare.point(m, b) - compare.point(m, a)
                                        for m in compare.metrics_for(b)},
                             "verdict": verdicts(study, a, b, cfg, noise_of(bands[study]))}
            print(f"{study:<14} 1 epoch against seed 42: {broken[study]['verdict']}", flush=True)
    print("\n| study | runs | " + " | ".join(TABLE) + " |\n|---|---|" + "---|" * len(TABLE))
    for study, b in bands.items():  # the README's table: mean +- sd over the noise-only runs
        cells = [f"{b['mean'][m]:.3f} ± {b['sd'][m]:.3f}" if m in b["sd"] else "" for m in TABLE]
        print(f"| `{study}` | {b['runs']} | " + " | ".join(cells) + " |")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    noise_file.write_text(json.dumps({
        "about": ("per study, each figure's mean and sample sd over noise-only rebuilds: training "
                  "seeds and the CPU kernels (benchmarks/seed_noise.py); pipeline compare joins "
                  "the sd to its bootstrap"),
        "measured_at": head, "cpu": fingerprint()["cpu"], "studies": bands}, indent=2) + "\n")
    total = {kind: sum(r["false_counts"][kind] for r in rates.values()) for kind in
             ("out_of_sample", "in_sample", "bootstrap_only")}
    n = sum(r["verdicts"] for r in rates.values())
    results = json.loads(results_file.read_text())
    results["compare"] = {
        "false_verdict_rate": total["out_of_sample"] / n if n else None,
        "false_verdict_rate_in_sample": total["in_sample"] / n if n else None,
        "false_verdict_rate_bootstrap_only": total["bootstrap_only"] / n if n else None,
        "goal": 0.05, "verdicts": n, "per_study": rates, "broken_1_epoch": broken,
        "native_kernels_check_repro": native,
        "how": "python benchmarks/seed_noise.py summarize (runs: benchmarks/seed_noise.py run)"}
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    rate = results["compare"]
    print(f"false-verdict rate over {n} noise-only verdicts: {rate['false_verdict_rate']:.3f} "
          f"(in sample {rate['false_verdict_rate_in_sample']:.3f}, bootstrap alone "
          f"{rate['false_verdict_rate_bootstrap_only']:.3f}) -> {noise_file.name}, results.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "summarize"])
    parser.add_argument("studies", nargs="*", help=f"run's default: {', '.join(STUDIES)}; "
                        "summarize's: every study with kept runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3])
    parser.add_argument("--no-broken", dest="broken", action="store_false",
                        help="run: leave out the broken run (noise-only runs alone)")
    args = parser.parse_args()
    if args.action == "run":
        run(args.studies or list(STUDIES), args.seeds, args.broken)
    else:  # every study with kept runs
        kept = {p.parent.parent.relative_to(RUNS).as_posix() for p in RUNS.rglob("headline.json")}
        summarize(args.studies or [*(s for s in STUDIES if s in kept), *sorted(kept - set(STUDIES))])


if __name__ == "__main__":
    main()
