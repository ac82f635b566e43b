"""Choosing whole groups (patients) that hold a given share of the rows, class shares kept.

Shared by the patient-level splits (pipeline/stages/split.py) and by the semi-supervised
studies, which keep the labels of a fraction of the training patients.
"""

from __future__ import annotations

import warnings

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


def grouped_folds(frame: pd.DataFrame, folds: int, seed: int, group_column: str,
                  stratify: str, must_hold: str = "label") -> np.ndarray:
    """Fold number (1..``folds``) of each row: whole groups dealt to folds, seeded, with each
    class's share as even across folds as whole groups allow (sklearn's StratifiedGroupKFold).

    Raises PipelineError when there are fewer groups than folds, or when a fold would hold
    no row of some value of ``must_hold`` (every fold must test normal and abnormal units).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = frame[group_column].to_numpy()
    if folds < 2 or len(np.unique(groups)) < folds:
        raise PipelineError(f"{folds} folds need at least {max(folds, 2)} {group_column}s, "
                            f"there are {len(np.unique(groups))}")
    classes = frame[stratify].to_numpy()
    fold_of = np.zeros(len(frame), dtype=np.int64)
    dealer = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class with fewer groups than folds: the check below says it
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        for number, (_, rows) in enumerate(dealer.split(np.zeros(len(frame)), classes, groups), 1):
            fold_of[rows] = number
    required = frame[must_hold].to_numpy()
    for value in np.unique(required):
        missing = sorted(set(range(1, folds + 1)) - set(fold_of[required == value]))
        if missing:
            raise PipelineError(f"fold(s) {missing} hold no row of {must_hold} = {value}: "
                                f"too few {group_column}s of that class for {folds} folds")
    return fold_of
