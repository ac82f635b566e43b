"""Training noise: how far a study's figures move when only the training seed, or the CPU
kernels, do. ``reports/seed_noise.json`` (written by ``benchmarks/seed_noise.py``) holds,
per study, each figure's sample sd over k noise-only rebuilds; ``pipeline compare`` joins
it to its bootstrap, ``pipeline check-repro`` judges a rebuild on other kernels by it, and
the report shows it beside each headline figure.

A band holds for the settings its runs were made with (``settings``: every key the study's
figures rest on). Where a study's settings have moved since (a changed default, an
experiment), the band is an estimate, and compare and check-repro say which keys moved.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import PipelineError
from pipeline.params import dataset_entry, lookup, study_entry

NOISE_FILE = Path("reports/seed_noise.json")


@dataclass(frozen=True)
class TrainingNoise:
    """The sample sd of each figure over ``runs`` noise-only trainings (seeds, CPU kernels)."""
    sd: dict[str, float]
    runs: int
    settings: dict[str, Any] | None = field(default=None, compare=False)  # None: not recorded

    def __add__(self, other: TrainingNoise) -> TrainingNoise:
        """The noise of a difference between one run of each: the variances add; the
        degrees of freedom are the smaller side's (the settings: both sides', where equal)."""
        shared = self.sd.keys() & other.sd.keys()
        return TrainingNoise({m: math.hypot(self.sd[m], other.sd[m]) for m in shared},
                             min(self.runs, other.runs),
                             self.settings if self.settings == other.settings else None)

    def moved(self, now: dict[str, Any]) -> list[str]:
        """Each setting that differs between the band's runs and ``now``, as
        ``key: band -> now`` (nothing where the band recorded none)."""
        if self.settings is None:
            return []
        def shown(found: dict[str, Any], key: str) -> str:
            return json.dumps(found[key]) if key in found else "(unset)"
        return [f"{key}: {shown(self.settings, key)} -> {shown(now, key)}"
                for key in sorted(self.settings.keys() | now.keys())
                if self.settings.get(key, MISSING) != now.get(key, MISSING)]

    def band(self, figure: str, level: float = 0.95) -> float | None:
        """How far a second run's ``figure`` may sit from a first's by this noise alone:
        sqrt(2) sd times Student's t at ``level`` with ``runs`` - 1 degrees of freedom
        (None: not measured)."""
        from scipy.stats import t as student_t

        sd = self.sd.get(figure)
        if sd is None and (spread := SEED_SPREAD.fullmatch(figure)):
            sd = self.sd.get(FULL_NAMES.get(spread[1], spread[1]))
        if sd is None or self.runs < 2:
            return None
        return float(student_t.ppf((1 + level) / 2, self.runs - 1) * sd * math.sqrt(2))


MISSING = object()
# the test figures whose spread over a study's seed members evaluate reports (those the
# study has), by their short headline names: `<short>_seed_mean` and `<short>_seed_sd`
SEED_FIGURES = {"auroc": "auroc", "sensitivity": "sens", "specificity": "spec",
                "icbhi_score": "icbhi_score"}
# a seed spread's figures (evaluate's <figure>_seed_mean and _seed_sd, over a study's seed
# members) move with the kernels by about as much as their figure does
SEED_SPREAD = re.compile(r"(.+)_seed_(?:mean|sd)")
FULL_NAMES = {short: name for name, short in SEED_FIGURES.items()}


def _leaves(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        return {key: value for name, child in node.items()
                for key, value in _leaves(child, f"{prefix}.{name}").items()}
    return {prefix: node}


def study_settings(params: dict[str, Any], study: str) -> dict[str, Any]:
    """What a study's figures rest on, as dotted key -> value: every section its index entry
    names (model, train, calibrate, evaluate) and its dataset's entry names (features,
    split, generate), and its objective. A grid cell (icbhi_semi/vat/0.25) rests on its
    grid's."""
    _, entry = study_entry(params, study.split("/")[0])
    pointers = {**dataset_entry(params, entry["dataset"]), **entry}
    found = {f"{study.split('/')[0]}.objective": entry["objective"]}
    for key in sorted({key for role, key in pointers.items()
                       if role not in ("dataset", "objective", "split_reads")}):
        found.update(_leaves(lookup(params, key), key))
    return found


def _sd(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value >= 0)


def _problem(data: object) -> str | None:
    """What makes ``data`` no noise file (None: nothing)."""
    studies = data.get("studies") if isinstance(data, dict) else None
    if not isinstance(studies, dict):
        return "no 'studies' mapping"
    for name, entry in studies.items():
        if not isinstance(entry, dict):
            return f"studies.{name}: a mapping with runs and sd expected, got {entry!r}"
        runs, sd = entry.get("runs"), entry.get("sd")
        if not isinstance(runs, int) or isinstance(runs, bool) or runs < 2:
            return f"studies.{name}.runs: a whole number >= 2 expected, got {runs!r}"
        if not isinstance(sd, dict):
            return f"studies.{name}.sd: a mapping of figure -> sd expected, got {sd!r}"
        if not isinstance(entry.get("settings", {}), dict):
            return f"studies.{name}.settings: a mapping of key -> value expected, got {entry['settings']!r}"
        for figure, value in sd.items():
            if not _sd(value):
                return f"studies.{name}.sd.{figure}: a finite number >= 0 expected, got {value!r}"
    return None


def parse_noise(text: str, where: str) -> dict[str, TrainingNoise]:
    """Study -> its training noise, from the text of a noise file; ``where`` (a revision)
    names it in an error (a PipelineError naming the key at fault)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        problem: str | None = f"not JSON ({exc})"
    else:
        problem = _problem(data)
    if problem is not None:
        raise PipelineError(f"{problem} (the file at {where}; `python benchmarks/seed_noise.py "
                            "summarize` writes it)", NOISE_FILE)
    return {name: TrainingNoise({m: float(v) for m, v in entry["sd"].items()}, entry["runs"],
                                entry.get("settings"))
            for name, entry in data["studies"].items()}


def read_noise_file() -> dict[str, TrainingNoise]:
    """The workspace's noise file, parsed ({} where there is none)."""
    return parse_noise(NOISE_FILE.read_text(), "workspace") if NOISE_FILE.is_file() else {}


NOISE_DRAWS = 25  # training-noise draws per bootstrap draw: the t quantiles to about 1 %


def with_training_noise(deltas: np.ndarray, sd: float, runs: int, seed) -> np.ndarray:
    """Bootstrap draws of a change, each joined by ``NOISE_DRAWS`` draws of training noise:
    ``sd`` times Student's t with ``runs`` - 1 degrees of freedom (``seed``: numpy's)."""
    if runs < 2 or sd == 0:
        return deltas
    noise = sd * np.random.default_rng(seed).standard_t(runs - 1, size=len(deltas) * NOISE_DRAWS)
    return np.repeat(deltas, NOISE_DRAWS) + noise
