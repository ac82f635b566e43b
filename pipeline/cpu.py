"""CPU kernels pinned to one instruction-set level, and the fingerprint of what ran.

numpy, OpenBLAS, MKL, oneDNN and ATen each pick their kernels by CPU when they load: on
an AVX-512 machine they take AVX-512 paths, whose sums round differently from the AVX2
paths of another machine of the same kind, so a rebuild there trains to other numbers.
``pin_kernels`` caps every one of them at AVX2, a level every x86-64 machine of this kind
has, before any of them loads (``pipeline/__init__.py`` calls it first thing), so that
``dvc repro``, the tests and ``pipeline predict`` run the same kernels everywhere.
``PIPELINE_CPU_KERNELS=native`` leaves the libraries' own choice (to measure what the
pin costs, or to compare the two).

What the pin cannot reach stays CPU-dependent: glibc's libm picks its own variants (the
same FMA ones on every AVX2 machine), and MKL's results on another vendor's CPU are
only as conditional-numerical-reproducible as MKL promises (``MKL_CBWR``).
"""

from __future__ import annotations

import os
import platform
import sys
import warnings

MODE_VARIABLE = "PIPELINE_CPU_KERNELS"  # pinned (default) or native

# Read by each library once, when it loads or first runs: set before any of them is imported.
PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels
    "DNNL_MAX_CPU_ISA": "AVX2",  # oneDNN: convolutions, pooling
    "MKL_CBWR": "AVX2,STRICT",  # MKL: one code path, and none that depends on buffer alignment
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    # numpy 2's dispatch targets above AVX2 (the names of older releases are ignored by it)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512_SKX",
}
# OpenBLAS (numpy's and scipy's BLAS): set only where the machine has not set it already,
# since some machines set it to keep older builds from miscomputing on their processor.
OPENBLAS = ("OPENBLAS_CORETYPE", "Haswell")


def pin_kernels(environ: dict[str, str] | None = None) -> bool:
    """Set the pinning variables in ``environ`` (this process's by default) unless
    ``PIPELINE_CPU_KERNELS=native``; True when pinned. A library loaded before this call
    keeps the kernels it chose: a warning names it."""
    environ = os.environ if environ is None else environ
    mode = environ.get(MODE_VARIABLE, "pinned")
    if mode not in ("pinned", "native"):
        raise ValueError(f"{MODE_VARIABLE} must be 'pinned' or 'native', got {mode!r}")
    if mode == "native":
        return False
    environ.update(PINNED)
    environ.setdefault(*OPENBLAS)
    early = [name for name in ("numpy", "torch") if name in sys.modules]
    if early and environ is os.environ:
        warnings.warn(f"{', '.join(early)} loaded before pipeline: its CPU kernels are not pinned "
                      "(import pipeline first)", RuntimeWarning, stacklevel=2)
    return True


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint() -> dict[str, object]:
    """What decides this process's floating-point kernels: the levels the libraries run at
    (``kernels``, which must match for byte-identical results) and the CPU (for the record)."""
    import numpy as np
    import torch
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    from threadpoolctl import threadpool_info

    # the dispatch targets numpy runs (a disabled one reads False), as np.show_runtime lists them
    dispatch = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    blas = sorted({f"{i['internal_api']}:{i.get('architecture')}" for i in threadpool_info()
                   if i.get("user_api") == "blas"})
    return {
        "kernels": {
            "mode": os.environ.get(MODE_VARIABLE, "pinned"),
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "numpy_dispatch": dispatch[-1] if dispatch else "baseline",
            "blas": blas,
            "mkl_cbwr": os.environ.get("MKL_CBWR", ""),
            "dnnl_max_isa": os.environ.get("DNNL_MAX_CPU_ISA", ""),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "cpu": {"model": _cpu_model(), "machine": platform.machine(), "cores": os.cpu_count()},
    }
