"""Performance figures of issues #14, #21 and #24, measured in one run, printed against their goals.

    python benchmarks/perf.py                 # everything, writes benchmarks/results.json
    python benchmarks/perf.py --skip-repro    # all but the forced full `dvc repro` (5-10 min)
    python benchmarks/perf.py --rebuild-only  # the forced `dvc repro`, the no-op and the
                                              # latent-16 experiment, merged into the file
    python benchmarks/perf.py --training-only # the training epochs' FLOP/s, merged into the file

Run from the project root after `dvc repro` (the no-op figure needs an up-to-date
pipeline; stage figures need its outputs). Every time is the median of ``--repeats`` runs.
A figure that cannot be taken is null, with the reason under ``notes``. Timings depend on
the machine's load: ``machine`` records the load average before and after.

Keys (nested: ``startup.stage_s`` is ``results["startup"]["stage_s"]``):
- ``startup.stage_s``: ``pipeline code`` end to end (the cheapest stage);
- ``startup.help_s``: ``pipeline --help``;
- ``features.hls_speedup_vs_naive``: a naive loop (librosa.feature.mfcc per window of each
  file) over the project's MFCC window table, same process, both warm; the table must
  match the naive output within 1e-3 (``features.hls_max_abs_diff``);
- ``features.icbhi_speedup_vs_naive``: a naive loop (each recording read and resampled once,
  then librosa melspectrogram + power_to_db per cycle) over the project's cycle log-mels;
- ``repro.full_s``: forced `dvc repro` from raw, all studies (``memory.peak_mb`` then comes
  from it: the largest RSS of any process it ran, DVC's own included);
- ``repro.noop_s``: `dvc repro` with nothing to do (mostly YAML parsing: ``repro.yaml_c_parser``
  says whether ruamel.yaml's C parser, a third faster, was there);
- ``repro.by_stage_s``: each stage's seconds in that forced repro;
- ``exp.latent16_s``: ``dvc exp run -S model.latent=16`` from the built workspace (then back
  to 32, ``exp.back_to_32_s``, restored by the run cache);
- ``training.<study>``: one training epoch's seconds, its FLOP/s against a plain matmul's
  (``flops_ratio``), and what the CPU kernel pin costs (``pin_cost``: pinned / native);
- ``remote.*``: a scratch remote: push, size, fresh clone -> pull -> predict, fresh clone ->
  pull --run-cache -> repro (nothing trained), a second push after ``-S model.latent=16``;
- ``ci.total_s``: read from benchmarks/ci_time.json (benchmarks/ci_time.sh writes it);
- ``memory.peak_mb``: the largest peak RSS of any stage measured (``memory.scope`` says which);
- ``scale.icbhi_920_features_s``: `pipeline features icbhi` in a scratch project holding an
  ICBHI-sized input: the local recordings repeated under new patient IDs up to 920
  recordings; ``scale.icbhi_115_features_s`` and ``scale.per_recording_s`` give the growth.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pipeline  # noqa: F401 - first: it pins the CPU kernels before numpy loads (pipeline/cpu.py)
import numpy as np
import training_perf

RESULTS = Path("benchmarks/results.json")
GOALS = {  # dotted key -> (goal, "max" or "min")
    "startup.stage_s": (1.0, "max"),
    "startup.help_s": (1.0, "max"),
    "features.hls_speedup_vs_naive": (5.0, "min"),
    "features.icbhi_speedup_vs_naive": (5.0, "min"),
    "repro.full_s": (900.0, "max"),  # every study with its folds (issue 21: and 3 seeds) and the grid
    "repro.noop_s": (1.5, "max"),
    "exp.latent16_s": (90.0, "max"),
    "ci.total_s": (1200.0, "max"),
    "training.icbhi_cnn.flops_ratio": (0.3, "min"),
    "training.icbhi_crnn.flops_ratio": (0.3, "min"),
    "remote.pull_predict_s": (60.0, "max"),
    "remote.pull_repro_s": (90.0, "max"),
    "memory.peak_mb": (1000.0, "max"),
}
CI_TIME = Path("benchmarks/ci_time.json")  # benchmarks/ci_time.sh: .ci/run on a clean clone
ICBHI_FULL = 920
QUIET_LOAD_PER_CPU = 0.5  # a 1-minute load average above this per core marks the figures as loaded
# a child runs the command and reports the largest RSS among the processes it waited for
_PEAK = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the command and its children); fails loudly."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *cmd], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB


def median_time(cmd: list[str], repeats: int, cwd: Path | None = None) -> tuple[float, float]:
    runs = [timed(cmd, cwd) for _ in range(repeats)]
    return statistics.median(s for s, _ in runs), max(mb for _, mb in runs)


def best_of(func, repeats: int) -> tuple[float, object]:
    """Median seconds of ``func()`` over ``repeats`` calls, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# ---------------------------------------------------------------- naive references
def naive_hls(records, raw_dir: Path, cfg) -> np.ndarray:
    """librosa.feature.mfcc on every window of every file, one call each, pooled as ``cfg`` says."""
    import librosa
    import soundfile as sf

    rows = []
    for name in records["file"]:
        y, sr = sf.read(raw_dir / name, dtype="float32")
        for start in range(0, len(y) - cfg.window_samples + 1, cfg.hop_samples):
            coeffs = librosa.feature.mfcc(y=y[start : start + cfg.window_samples], sr=sr,
                                          n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft,
                                          hop_length=cfg.hop_length, n_mels=cfg.n_mels)
            rows.append(coeffs.reshape(-1) if cfg.pooling == "flatten"
                        else np.concatenate([coeffs.mean(axis=1), coeffs.std(axis=1)]))
    return np.asarray(rows, dtype=np.float32)


def naive_icbhi(cycles, raw_dir: Path, cfg) -> np.ndarray:
    """Each recording read and resampled once; librosa melspectrogram + power_to_db per cycle."""
    import librosa
    import soundfile as sf

    from pipeline.features.cycles import RESAMPLE_TYPE, fix_length

    n_samples, out = round(cfg.cycle_s * cfg.sample_rate), []
    for audio_path, rows in cycles.groupby("audio_path", sort=False):
        y, sr = sf.read(raw_dir / audio_path, dtype="float32")
        if sr != cfg.sample_rate:
            y = librosa.resample(y, orig_sr=sr, target_sr=cfg.sample_rate, res_type=RESAMPLE_TYPE)
        for start, end in zip(rows["start"], rows["end"], strict=True):
            cut = fix_length(y[round(start * cfg.sample_rate) : round(end * cfg.sample_rate)],
                             n_samples, cfg.pad_mode)
            power = librosa.feature.melspectrogram(
                y=cut, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax or cfg.sample_rate / 2)
            out.append(librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0))
    return np.asarray(out, dtype=np.float32)


def feature_speedups(repeats: int) -> dict:
    import pandas as pd

    from pipeline.features.cycles import CycleFeatures
    from pipeline.features.mfcc_windows import MFCCWindows
    from pipeline.params import load_params, lookup
    from pipeline.datasets.hls_cmds import mfcc_window_table
    from pipeline.datasets.icbhi.prepare import cycle_features

    params, out = load_params(), {}
    hls_records = pd.read_parquet("data/records/hls-cmds.parquet")
    hls_raw, hls_cfg = Path("data/raw/hls-cmds"), MFCCWindows(**lookup(params, "features"))
    icbhi_records = pd.read_parquet("data/records/icbhi.parquet")
    icbhi_cfg = CycleFeatures(**lookup(params, "icbhi.features"))
    icbhi_cycles = icbhi_records[icbhi_records["duration"] >= icbhi_cfg.min_cycle_s]
    icbhi_raw = Path("data/raw/icbhi")
    # warm: imports, filter banks and file caches are not what is compared
    naive_hls(hls_records.head(2), hls_raw, hls_cfg)
    naive_icbhi(icbhi_cycles.head(2), icbhi_raw, icbhi_cfg)
    for backend in ("librosa", "torch"):
        mfcc_window_table(hls_records.head(2), hls_raw, replace(hls_cfg, backend=backend))
        cycle_features(icbhi_cycles.head(2), icbhi_raw, replace(icbhi_cfg, backend=backend))

    naive_s, reference = best_of(lambda: naive_hls(hls_records, hls_raw, hls_cfg), repeats)
    out["hls_naive_s"] = naive_s
    for backend in ("librosa", "torch"):
        seconds, table = best_of(lambda b=backend: mfcc_window_table(
            hls_records, hls_raw, replace(hls_cfg, backend=b)), repeats)
        diff = float(np.abs(table.filter(regex=r"^f\d").to_numpy() - reference).max())
        out[f"hls_{backend}_s"], out[f"hls_{backend}_max_abs_diff"] = seconds, diff
    default = hls_cfg.backend
    out["hls_backend"], out["hls_max_abs_diff"] = default, out[f"hls_{default}_max_abs_diff"]
    out["hls_speedup_vs_naive"] = naive_s / out[f"hls_{default}_s"]

    naive_s, reference = best_of(lambda: naive_icbhi(icbhi_cycles, icbhi_raw, icbhi_cfg), repeats)
    out["icbhi_naive_s"] = naive_s
    for backend in ("librosa", "torch"):
        seconds, (x, _) = best_of(lambda b=backend: cycle_features(
            icbhi_records, icbhi_raw, replace(icbhi_cfg, backend=b)), repeats)
        out[f"icbhi_{backend}_s"] = seconds
        out[f"icbhi_{backend}_max_abs_diff"] = float(np.abs(x[:, 0] - reference).max())
    default = icbhi_cfg.backend
    out["icbhi_backend"], out["icbhi_max_abs_diff"] = default, out[f"icbhi_{default}_max_abs_diff"]
    out["icbhi_speedup_vs_naive"] = naive_s / out[f"icbhi_{default}_s"]
    return out


# ---------------------------------------------------------------- ICBHI-sized input
def scaled_icbhi_project(folder: Path, recordings: int) -> int:
    """A scratch project: params.yaml, and ``recordings`` ICBHI recordings (links to the local
    ones, repeated under new patient IDs) with their records table. Returns the cycle count."""
    import pandas as pd

    records = pd.read_parquet("data/records/icbhi.parquet")
    names = list(dict.fromkeys(records["recording"]))
    raw = folder / "data/raw/icbhi"
    parts = []
    for copy in range(-(-recordings // len(names))):
        for name in names[: recordings - copy * len(names)]:
            rows = records[records["recording"] == name].copy()
            patient = int(rows["patient"].iloc[0]) + 1000 * copy
            new = f"{patient}{name[name.index('_'):]}"
            source = Path("data/raw/icbhi") / rows["audio_path"].iloc[0]
            target = raw / Path(rows["audio_path"].iloc[0]).with_name(new + source.suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(source.resolve())
            rows["audio_path"] = rows["file"] = target.relative_to(raw).as_posix()
            rows["recording"], rows["patient"] = new, patient
            rows["cycle_id"] = new + ":" + rows["cycle_index"].astype(str)
            parts.append(rows)
    table = pd.concat(parts, ignore_index=True)
    (folder / "data/records").mkdir(parents=True, exist_ok=True)
    table.to_parquet(folder / "data/records/icbhi.parquet", index=False)
    shutil.copy("params.yaml", folder / "params.yaml")
    return len(table)


def scale(repeats: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory(prefix="perf-icbhi-") as tmp:
        for n in (115, ICBHI_FULL):
            folder = Path(tmp) / str(n)
            cycles = scaled_icbhi_project(folder, n)
            seconds, mb = median_time(["pipeline", "features", "icbhi"], repeats, cwd=folder)
            out[f"icbhi_{n}_features_s"], out[f"icbhi_{n}_peak_mb"] = seconds, mb
            out[f"icbhi_{n}_cycles"] = cycles
    out["per_recording_s"] = ((out[f"icbhi_{ICBHI_FULL}_features_s"] - out["icbhi_115_features_s"])
                              / (ICBHI_FULL - 115))
    out["per_recording_mb"] = ((out[f"icbhi_{ICBHI_FULL}_peak_mb"] - out["icbhi_115_peak_mb"])
                               / (ICBHI_FULL - 115))
    return out


# ---------------------------------------------------------------- DVC
def pipeline_is_up_to_date() -> bool:
    done = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    return done.returncode == 0 and json.loads(done.stdout or "{}") == {}


def earlier_results(path: Path) -> dict:
    """``path``'s figures, for a partial run to replace some of them."""
    return json.loads(path.read_text()) if path.is_file() else {"notes": []}


def rebuild_only(args: argparse.Namespace) -> None:
    """The forced rebuild, the no-op and the latent-16 experiment, measured on the code as
    it stands, replacing those keys of ``args.out`` (the other figures stay as measured)."""
    results = earlier_results(args.out)
    load_before = os.getloadavg()
    repro = training_perf.repro_by_stage(_PEAK)
    results["memory"] = {**results.get("memory", {}), "repro_peak_mb": repro.pop("peak_mb")}
    repro["yaml_c_parser"] = importlib.util.find_spec("_ruamel_yaml") is not None
    repro["noop_s"], _ = median_time(["dvc", "repro"], args.repeats)
    results["repro"] = repro
    results["exp"] = training_perf.latent16()
    results["machine"] = {**results.get("machine", {}), "rebuild_load_average_before": load_before,
                          "rebuild_load_average_after": os.getloadavg(),
                          "rebuild_date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-repro", action="store_true", help="skip the forced full dvc repro")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rebuild-only", action="store_true",
                        help="only repro.*, exp.* (and the peak they reach): the other figures "
                             "in --out are kept")
    parser.add_argument("--training-only", action="store_true",
                        help="only training.*: the other figures in --out are kept")
    args = parser.parse_args()
    if args.rebuild_only:
        rebuild_only(args)
        return
    if args.training_only:
        results = earlier_results(args.out)
        results["training"] = training_perf.training()
        results["machine"] = {**results.get("machine", {}),
                              "training_date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        report(results)
        return
    results: dict = {"startup": {}, "features": {}, "repro": {}, "memory": {}, "scale": {}, "notes": []}
    load_before = os.getloadavg()
    peaks: dict[str, float] = {}

    results["startup"]["help_s"], _ = median_time(["pipeline", "--help"], args.repeats)
    results["startup"]["stage_s"], peaks["code"] = median_time(["pipeline", "code"], args.repeats)
    results["features"] = feature_speedups(args.repeats)
    results["scale"] = scale(args.repeats)
    peaks["features icbhi (920 recordings)"] = results["scale"][f"icbhi_{ICBHI_FULL}_peak_mb"]
    for dataset in ("hls-cmds", "icbhi"):
        _, peaks[f"features {dataset}"] = timed(["pipeline", "features", dataset])

    if args.skip_repro:
        results["repro"]["full_s"] = None
        results["notes"].append("repro.full_s: skipped (--skip-repro)")
    else:
        results["repro"].update(training_perf.repro_by_stage(_PEAK))
        peaks["dvc repro -f (any stage, DVC included)"] = results["repro"].pop("peak_mb")
    results["repro"]["yaml_c_parser"] = importlib.util.find_spec("_ruamel_yaml") is not None
    if pipeline_is_up_to_date():
        results["repro"]["noop_s"], _ = median_time(["dvc", "repro"], args.repeats)
    else:
        results["repro"]["noop_s"] = None
        results["notes"].append("repro.noop_s: the pipeline is not up to date (dvc status)")
    results["training"] = training_perf.training()
    if pipeline_is_up_to_date():
        results["exp"] = training_perf.latent16()
        results["remote"] = training_perf.remote(Path("data/raw/hls-cmds/HS/F_N_RC.wav"))
    else:
        results["exp"], results["remote"] = {}, {}
        results["notes"].append("exp, remote: the pipeline is not up to date (dvc status)")
    results["ci"] = json.loads(CI_TIME.read_text()) if CI_TIME.is_file() else {}
    worst = max(peaks, key=peaks.get)
    results["memory"] = {"peak_mb": peaks[worst], "peak_stage": worst, "by_stage_mb": peaks,
                         "scope": "the stages listed in by_stage_mb"}
    results["machine"] = {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "repeats": args.repeats,
    }
    busy = load_before[0] / (os.cpu_count() or 1)  # before: the benchmark loads the machine itself
    results["machine"]["quiet"] = busy < QUIET_LOAD_PER_CPU
    if not results["machine"]["quiet"]:
        results["notes"].append(f"measured under load ({busy:.1f} runnable processes per core): "
                                "timings are inflated and their ratios noisy")
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def report(results: dict) -> None:
    print(f"{'figure':<34} {'value':>10} {'goal':>9} {'value/goal':>11}")
    for key, (goal, kind) in GOALS.items():
        value = results
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            print(f"{key:<34} {'-':>10} {('<= ' if kind == 'max' else '>= ') + f'{goal:g}':>9}")
            continue
        met = value <= goal if kind == "max" else value >= goal
        print(f"{key:<34} {value:>10.3f} {('<= ' if kind == 'max' else '>= ') + f'{goal:g}':>9} "
              f"{value / goal:>10.2f}x {'met' if met else 'NOT met'}")
    scale_ = results["scale"]
    print(f"{'scale.icbhi_920_features_s':<34} {scale_['icbhi_920_features_s']:>10.3f}   "
          f"({scale_['per_recording_s'] * 1000:.1f} ms and {scale_['per_recording_mb']:.2f} MB "
          "more per recording)")
    for stage, seconds in list(results["repro"].get("by_stage_s", {}).items())[:12]:
        print(f"  {stage:<32} {seconds:>10.1f} s")
    for study, figures in results["training"].items():
        print(f"training.{study:<25} {figures['epoch_s']:>8.2f} s/epoch  {figures['achieved_gflops']:.1f} "
              f"GFLOP/s = {figures['flops_ratio']:.2f} of matmul; pinned/native {figures['pin_cost']:.2f}")
    for note in results["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
