"""Tests. The package is imported first: it pins the CPU kernels before numpy or torch loads
(pipeline/cpu.py), so the tests run the kernels the stages run."""

import pipeline  # noqa: F401
