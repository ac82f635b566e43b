"""The environment of a child process that should run the libraries' own CPU kernels.

A benchmark imports ``pipeline`` first, which pins the kernels by setting variables in its
own environment (``pipeline/cpu.py``); a child that inherits them stays pinned whatever
``PIPELINE_CPU_KERNELS`` says. ``native_environment`` removes them.
"""

from __future__ import annotations

from pipeline.cpu import MODE_VARIABLE, OPENBLAS, PINNED


def native_environment(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with ``PIPELINE_CPU_KERNELS=native`` and without the pin's variables
    (OpenBLAS's too: this machine kind leaves it unset, so the pin set it)."""
    dropped = {*PINNED, OPENBLAS[0]}
    return {**{k: v for k, v in environ.items() if k not in dropped}, MODE_VARIABLE: "native"}
