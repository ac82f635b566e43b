"""Dataset adapters by name (the names of the folders in ``data/raw`` and the local copy)."""

from __future__ import annotations

from pipeline.datasets.base import Dataset
from pipeline.datasets.hls_cmds import HLSCMDS
from pipeline.datasets.icbhi import ICBHI
from pipeline.datasets.mnist import MNIST
from pipeline.errors import PipelineError

DATASETS: dict[str, Dataset] = {d.name: d for d in (HLSCMDS(), ICBHI(), MNIST())}


def get_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise PipelineError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
