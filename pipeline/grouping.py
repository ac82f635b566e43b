"""Choosing whole groups (patients) that hold a given share of the rows, class shares kept.

Shared by the patient-level splits (pipeline/stages/split.py) and by the semi-supervised
studies, which keep the labels of a fraction of the training patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError


def hold_out_groups(frame: pd.DataFrame, fraction: float, seed: int, group_column: str = "patient",
                    stratify: str = "label4", trials: int = 1000) -> np.ndarray:
    """Boolean mask of the rows of a seeded set of whole groups holding about ``fraction``
    of the rows, with each class's share as close to ``fraction`` as whole groups allow.

    ``trials`` seeded shuffles of the groups are each cut where their running row count
    passes ``fraction`` (just before or just after the group that crosses it); the cut
    with the smallest mean |held-out share - fraction| over the classes and the total wins.
    """
    if not 0 < fraction < 1:
        raise PipelineError(f"split fractions must be in (0, 1), got {fraction}")
    counts = pd.crosstab(frame[group_column], frame[stratify])  # groups x classes
    if len(counts) < 2:
        raise PipelineError(f"cannot hold out part of {len(counts)} {group_column}(s)")
    matrix = counts.to_numpy(dtype=float)
    matrix = np.hstack([matrix, matrix.sum(axis=1, keepdims=True)])  # last column: all rows
    totals = matrix.sum(axis=0)
    rng = np.random.default_rng(seed)
    best_cost, best = np.inf, None
    for _ in range(trials):
        order = rng.permutation(len(matrix))
        running = np.cumsum(matrix[order], axis=0)
        crossing = int(np.searchsorted(running[:, -1], fraction * totals[-1]))
        # at least one group held out, at least one kept
        for taken in {max(crossing, 1), min(crossing + 1, len(matrix) - 1)}:
            cost = float(np.abs(running[taken - 1] / totals - fraction).mean())
            if cost < best_cost:
                best_cost, best = cost, counts.index[order[:taken]]
    return frame[group_column].isin(best).to_numpy()
