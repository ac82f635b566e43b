"""ICBHI 2017 Respiratory Sound Database: the dataset's package.

``adapter.py``: names, annotations, the official split and the cycles (``DATASET``);
``prepare.py``: features (``extract``: a log-mel image per cycle) and the split
(``split``: patient folds, the official split, or a grouped holdout); ``study.py``: the
studies over it (SimpleCNN, CNN+GRU and the semi-supervised grid).
"""

from __future__ import annotations

from pipeline.datasets.icbhi.adapter import ICBHI
from pipeline.datasets.icbhi.prepare import extract, split

DATASET = ICBHI()

__all__ = ["DATASET", "extract", "split"]
