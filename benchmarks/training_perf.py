"""Training, rebuild, experiment and remote figures for benchmarks/perf.py (issues 20, 21, 24).

- ``repro_by_stage``: a forced ``dvc repro -f`` from raw, with each stage's seconds (read
  from DVC's "Running stage" lines as they come);
- ``latent16``: ``dvc exp run -S model.latent=16`` from a built workspace, then back to 32
  (which the run cache restores);
- ``training``: per study, the FLOP/s one training epoch achieves on its first fold's (or
  its own) training set, against a plain 1024 x 1024 matrix multiply's in the same process
  (``flops_ratio``), with the CPU kernels pinned and not (``pin_cost``: pinned seconds over
  native ones), each in a fresh process;
- ``remote``: push to a scratch remote, then in a fresh clone: ``dvc pull`` and the first
  ``pipeline predict``; ``dvc pull --run-cache`` and a ``dvc repro`` that trains nothing;
  the remote's size, and what a second push after ``-S model.latent=16`` adds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kernels import native_environment

STUDIES = ("hls_ae", "icbhi_cnn", "icbhi_crnn", "sines_ae", "mnist_ae")

# run in a fresh process (so the kernel pin, or its absence, applies before torch loads):
# one epoch of the study's training loop, its FLOPs counted by torch, and a matmul's FLOP/s
EPOCH_PROBE = r"""
import json, sys, time
import pipeline
import numpy as np, torch
from torch.utils.flop_counter import FlopCounterMode
from pipeline.models import build
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.studies import fold_numbers, get_study
from pipeline.training import TrainConfig, batches, resolve_device, seed_everything

name = sys.argv[1]
params = load_params()
study = get_study(name, params=params)
if study.cross_validated:
    study = study.fold(fold_numbers(study.dataset)[0])
train_cfg = study.params(params, "train")
cfg = TrainConfig.from_params(train_cfg)
data = study.samples(["train"], params)["train"]
x = Scaler(train_cfg.get("scaler", "none")).fit(data.x).transform(data.x)
y = data.y
model_params = dict(study.params(params, "model"))
model_name = model_params.pop("name")
kwargs = {**model_params, **study.model_inputs(x)}
if study.objective == "classification":
    kwargs["n_classes"] = len(data.classes)
seed_everything(0)
device = resolve_device("cpu")
model = build(model_name, **kwargs).to(device)
objective = study.make_objective(y, kwargs.get("n_classes"))
optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)

def epoch(rng):
    model.train()
    for xb, yb in batches(x, y, cfg.batch_size, device, rng):
        optimiser.zero_grad()
        loss = objective.loss(model, xb, yb)
        loss.backward()
        optimiser.step()

counter = FlopCounterMode(display=False)
with counter:
    xb, yb = next(batches(x, y, cfg.batch_size, device, np.random.default_rng(0)))
    optimiser.zero_grad(); objective.loss(model, xb, yb).backward()
flops_per_sample = counter.get_total_flops() / len(xb)
epoch(np.random.default_rng(1))  # warm
runs = []
for seed in range(2, 4):
    start = time.perf_counter(); epoch(np.random.default_rng(seed)); runs.append(time.perf_counter() - start)
seconds = min(runs)
a = torch.randn(1024, 1024); b = torch.randn(1024, 1024)
for _ in range(3): a @ b
start = time.perf_counter()
for _ in range(20): a @ b
matmul = 20 * 2 * 1024 ** 3 / (time.perf_counter() - start)
achieved = flops_per_sample * len(x) / seconds
print(json.dumps({"epoch_s": seconds, "samples": len(x), "gflop_per_epoch": flops_per_sample * len(x) / 1e9,
                  "achieved_gflops": achieved / 1e9, "matmul_gflops": matmul / 1e9,
                  "flops_ratio": achieved / matmul,
                  "capability": torch.backends.cpu.get_cpu_capability()}))
"""


def sh(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def seconds_of(cmd: list[str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = sh(cmd, cwd)
    return time.perf_counter() - start, done.stdout + done.stderr


def repro_by_stage(peak_wrapper: str) -> dict:
    """A forced ``dvc repro -f``: total seconds, each stage's, and the peak RSS of any
    process it ran (``peak_wrapper``: a child that runs the command and prints it last)."""
    start = time.perf_counter()
    marks: list[tuple[str, float]] = []
    with tempfile.TemporaryFile("w+") as err, subprocess.Popen(
            [sys.executable, "-c", peak_wrapper, "dvc", "repro", "-f"], stdout=subprocess.PIPE,
            stderr=err, text=True) as proc:
        for line in proc.stdout:
            found = re.match(r"Running stage '([^']+)'", line)
            if found:
                marks.append((found.group(1), time.perf_counter()))
        proc.wait()
        err.seek(0)
        peak_mb = int(err.read().strip().splitlines()[-1]) / 1024
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError("dvc repro -f failed")
    ends = [t for _, t in marks[1:]] + [start + total]
    by_stage = {name: round(end - began, 1) for (name, began), end in zip(marks, ends, strict=True)}
    return {"full_s": total, "peak_mb": peak_mb,
            "by_stage_s": dict(sorted(by_stage.items(), key=lambda kv: -kv[1]))}


def latent16() -> dict:
    """``dvc exp run -S model.latent=16`` from a built workspace, then back to 32."""
    there, _ = seconds_of(["dvc", "exp", "run", "-S", "model.latent=16"])
    back, log = seconds_of(["dvc", "exp", "run", "-S", "model.latent=32"])
    return {"latent16_s": there, "back_to_32_s": back,
            "back_restored_from_run_cache": "Running stage 'train@hls_ae'" not in log}


def training() -> dict:
    out = {}
    for study in STUDIES:
        figures = {}
        for mode in ("pinned", "native"):
            env = (native_environment(os.environ) if mode == "native"
                   else {**os.environ, "PIPELINE_CPU_KERNELS": mode})
            figures[mode] = json.loads(sh([sys.executable, "-c", EPOCH_PROBE, study], env=env).stdout)
        out[study] = {**figures["pinned"], "native_epoch_s": figures["native"]["epoch_s"],
                      "native_capability": figures["native"]["capability"],
                      "pin_cost": figures["pinned"]["epoch_s"] / figures["native"]["epoch_s"]}
    return out


def remote(audio: Path) -> dict:
    """The reviewer's path through a scratch remote, timed in a fresh clone of HEAD."""
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="perf-remote-") as tmp:
        store, clone = Path(tmp) / "store", Path(tmp) / "clone"
        sh(["dvc", "remote", "add", "--local", "-f", "bench", str(store)])
        try:
            out["push_s"], _ = seconds_of(["dvc", "push", "-r", "bench", "--run-cache"])
            out["size_mb"] = sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / 2 ** 20
            out["objects"] = sum(1 for p in store.rglob("*") if p.is_file())
            sh(["git", "clone", "-q", str(Path.cwd()), str(clone)])
            sh(["dvc", "remote", "add", "--local", "-f", "bench", str(store)], cwd=clone)
            start = time.perf_counter()
            sh(["dvc", "pull", "-r", "bench", "--with-deps", "train@hls_ae", "calibrate@hls_ae"], cwd=clone)
            sh(["pipeline", "predict", "--study", "hls_ae", str(audio)], cwd=clone)
            out["pull_predict_s"] = time.perf_counter() - start
            shutil.rmtree(clone)
            sh(["git", "clone", "-q", str(Path.cwd()), str(clone)])
            sh(["dvc", "remote", "add", "--local", "-f", "bench", str(store)], cwd=clone)
            start = time.perf_counter()
            sh(["dvc", "pull", "-r", "bench", "--run-cache"], cwd=clone)
            _, log = seconds_of(["dvc", "repro"], cwd=clone)
            out["pull_repro_s"] = time.perf_counter() - start
            out["pull_repro_trained_nothing"] = "Running stage" not in log
            sh(["dvc", "exp", "run", "-S", "model.latent=16"])
            before = out["objects"]
            out["second_push_s"], _ = seconds_of(["dvc", "push", "-r", "bench", "--run-cache"])
            out["second_push_new_objects"] = sum(1 for p in store.rglob("*") if p.is_file()) - before
            sh(["dvc", "exp", "run", "-S", "model.latent=32"])
        finally:
            sh(["dvc", "remote", "remove", "--local", "bench"])
    return out
