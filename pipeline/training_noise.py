"""Training noise: how far a study's figures move when only the training seed, or the CPU
kernels, do. ``reports/seed_noise.json`` (written by ``benchmarks/seed_noise.py``) holds,
per study, each figure's sample sd over k noise-only rebuilds; ``pipeline compare`` joins
it to its bootstrap, ``pipeline check-repro`` judges a rebuild on other kernels by it, and
the report shows it beside each headline figure.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError

NOISE_FILE = Path("reports/seed_noise.json")


@dataclass(frozen=True)
class TrainingNoise:
    """The sample sd of each figure over ``runs`` noise-only trainings (seeds, CPU kernels)."""
    sd: dict[str, float]
    runs: int

    def __add__(self, other: TrainingNoise) -> TrainingNoise:
        """The noise of a difference between one run of each: the variances add; the
        degrees of freedom are the smaller side's."""
        shared = self.sd.keys() & other.sd.keys()
        return TrainingNoise({m: math.hypot(self.sd[m], other.sd[m]) for m in shared},
                             min(self.runs, other.runs))

    def band(self, figure: str, level: float = 0.95) -> float | None:
        """How far a second run's ``figure`` may sit from a first's by this noise alone:
        sqrt(2) sd times Student's t at ``level`` with ``runs`` - 1 degrees of freedom
        (None: not measured)."""
        from scipy.stats import t as student_t

        sd = self.sd.get(figure)
        if sd is None or self.runs < 2:
            return None
        return float(student_t.ppf((1 + level) / 2, self.runs - 1) * sd * math.sqrt(2))


def parse_noise(text: str | None, where: str) -> dict[str, TrainingNoise]:
    """Study -> its training noise, from the text of a noise file (None: no file, {})."""
    if text is None:
        return {}
    try:
        studies = json.loads(text)["studies"]
        return {name: TrainingNoise({m: float(v) for m, v in entry["sd"].items()}, int(entry["runs"]))
                for name, entry in studies.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PipelineError(f"not a training-noise file at {where} ({type(exc).__name__}: {exc}; "
                            "rewrite it with `python benchmarks/seed_noise.py summarize`)",
                            NOISE_FILE) from exc


def read_noise_file() -> dict[str, TrainingNoise]:
    """The workspace's noise file, parsed ({} where there is none)."""
    return parse_noise(NOISE_FILE.read_text() if NOISE_FILE.is_file() else None, "the workspace")


def with_training_noise(deltas: np.ndarray, sd: float, runs: int, seed: int) -> np.ndarray:
    """Bootstrap draws of a change, each joined by a draw of training noise: ``sd`` times
    Student's t with ``runs`` - 1 degrees of freedom."""
    if runs < 2 or sd == 0:
        return deltas
    return deltas + sd * np.random.default_rng(seed).standard_t(runs - 1, size=len(deltas))
