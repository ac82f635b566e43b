"""The CPU kernels are pinned before numpy and torch load, whatever the caller's environment
(pipeline/cpu.py): another capability setting outside gives the same kernels and the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.check_repro import kernel_mismatches
from pipeline.cpu import MODE_VARIABLE, PINNED, fingerprint, pin_kernels

# a little of everything a stage runs: numpy's ufuncs and BLAS, ATen's kernels, MKL's GEMM
# (a linear layer), oneDNN's convolution, and training steps; prints the fingerprint and a
# digest of every result's bytes
PROBE = """
import hashlib, json
import pipeline
from pipeline.cpu import fingerprint
import numpy as np, torch
rng = np.random.default_rng(0)
a = rng.standard_normal((300, 257)).astype(np.float32)
out = [np.log1p(np.abs(a)), np.exp(a / 4), a @ a.T, np.sum(a, axis=0)]
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 5), torch.nn.Tanh(), torch.nn.Flatten(),
                            torch.nn.Linear(4 * 253, 3))
opt = torch.optim.Adam(model.parameters(), 1e-2, fused=True)  # as training.fit steps
x = torch.from_numpy(a[:64, None, :])
for _ in range(5):
    opt.zero_grad(); loss = model(x).pow(2).mean(); loss.backward(); opt.step()
out += [p.detach().numpy() for p in model.parameters()]
digest = hashlib.sha256(b"".join(np.ascontiguousarray(o).tobytes() for o in out)).hexdigest()
print(json.dumps({"fingerprint": fingerprint(), "digest": digest}))
"""


def probe(**env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in PINNED and k != MODE_VARIABLE}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**environ, **env}, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.slow
def test_outer_capability_settings_change_neither_kernels_nor_bytes():
    plain = probe()
    others = [probe(ATEN_CPU_CAPABILITY="default", DNNL_MAX_CPU_ISA="SSE41", MKL_CBWR="COMPATIBLE",
                    NPY_DISABLE_CPU_FEATURES="X86_V3"),
              probe(ATEN_CPU_CAPABILITY="avx512", MKL_CBWR="AUTO")]
    assert plain["fingerprint"]["kernels"]["torch_capability"] == "AVX2"
    assert plain["fingerprint"]["kernels"]["numpy_dispatch"] in ("X86_V3", "baseline")
    for other in others:
        assert kernel_mismatches(plain["fingerprint"], other["fingerprint"]) == []
        assert other["digest"] == plain["digest"]


@pytest.mark.slow
def test_native_mode_leaves_the_libraries_their_own_choice():
    native = probe(**{MODE_VARIABLE: "native", "ATEN_CPU_CAPABILITY": "default"})
    assert native["fingerprint"]["kernels"]["mode"] == "native"
    assert native["fingerprint"]["kernels"]["torch_capability"] == "DEFAULT"


def test_this_test_process_runs_pinned_kernels():
    # tests/__init__.py imports pipeline before numpy: the suite runs what the stages run
    kernels = fingerprint()["kernels"]
    assert kernels["mode"] == "pinned"
    assert kernels["torch_capability"] == "AVX2"
    assert kernels["mkl_cbwr"] == PINNED["MKL_CBWR"]


def test_pin_sets_every_variable_and_keeps_a_machines_openblas_choice():
    environ = {"OPENBLAS_CORETYPE": "Zen"}
    assert pin_kernels(environ) is True
    assert {k: environ[k] for k in PINNED} == PINNED
    assert environ["OPENBLAS_CORETYPE"] == "Zen"
    assert pin_kernels({MODE_VARIABLE: "native"}) is False
    with pytest.raises(ValueError, match=MODE_VARIABLE):
        pin_kernels({MODE_VARIABLE: "fast"})


def test_kernel_mismatches_name_each_setting_not_the_cpu():
    a = {"kernels": {"torch_capability": "AVX2", "numpy_dispatch": "X86_V3"}, "cpu": {"model": "A"}}
    b = {"kernels": {"torch_capability": "AVX512", "numpy_dispatch": "X86_V3"}, "cpu": {"model": "B"}}
    assert kernel_mismatches(a, b) == ["torch_capability: AVX2 -> AVX512"]
    assert kernel_mismatches(a, {**a, "cpu": {"model": "B"}}) == []
