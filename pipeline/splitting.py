"""Generic split machinery every dataset's split scheme uses: content-linked groups,
seeded sharing-out, whole groups (patients) holding a given share with class shares kept
(also the semi-supervised studies' labelled patients), the leak audit, and the partitions
of a manifest (folds and the final model) with their audit. Dataset-specific schemes stay
in the dataset packages; this module is shared (``pipeline generate`` audits the sines
split with it too)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError

SPLITS = ("train", "val", "test")


def connected_groups(keys: pd.DataFrame) -> np.ndarray:
    """Group rows that share a value in any column of ``keys`` (null values link nothing).

    Returns one integer group id per row; rows are in one group exactly when a chain of
    shared values joins them.
    """
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in keys.columns:
        first_row: dict = {}
        for row, value in enumerate(keys[column]):
            if pd.isna(value):
                continue
            if value in first_row:
                parent[find(row)] = find(first_row[value])
            else:
                first_row[value] = row
    roots = [find(i) for i in range(len(keys))]
    _, ids = np.unique(roots, return_inverse=True)
    return ids


def share_out(items: np.ndarray, fractions: tuple[float, float, float], seed: int) -> dict:
    """Shuffle ``items`` (seeded) and cut them into train/val/test by ``fractions``."""
    if len(fractions) != 3 or not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1: {fractions}")
    order = np.random.default_rng(seed).permutation(items)
    cut_train = int(round(fractions[0] * len(order)))
    cut_val = cut_train + int(round(fractions[1] * len(order)))
    return {"train": order[:cut_train], "val": order[cut_train:cut_val], "test": order[cut_val:]}


def audit(manifest: pd.DataFrame, group_column: str = "group",
          class_column: str | None = None) -> dict:
    """Counts per split and label (and per class of ``class_column``), and checks that no
    group (or identical audio) leaks.

    Raises PipelineError if a group or a content hash appears in more than one split.
    """
    report: dict = {"counts": {}, "groups": {}}
    if class_column is not None:
        report["counts_by_class"] = {}
    for split in SPLITS:
        part = manifest[manifest["split"] == split]
        report["counts"][split] = {
            "normal": int((part["label"] == 0).sum()),
            "abnormal": int((part["label"] != 0).sum()),
            "total": len(part),
        }
        report["groups"][split] = int(part[group_column].nunique())
        if class_column is not None:
            report["counts_by_class"][split] = {
                str(k): int(v) for k, v in part[class_column].value_counts(sort=False).items()
            }
    for column in [group_column] + (["sha256"] if "sha256" in manifest else []):
        spread = manifest.groupby(column)["split"].nunique()
        leaks = spread[spread > 1]
        report[f"{column}_overlap"] = len(leaks)
        if len(leaks):
            raise PipelineError(
                f"split leaks: {len(leaks)} {column}(s) in more than one split, "
                f"e.g. {leaks.index[0]!r}"
            )
    return report


# ---------------------------------------------------------------- partitions: folds and the final model
# A manifest holds one column per partition, each row's role in it: ``fold1`` .. ``foldK``
# (cross-validation; ``fold1`` alone for a holdout scheme) and ``final`` (the model that
# `pipeline predict` uses: trained on every trainable unit, less its validation share).
UNUSED = "unused"  # in no split of that partition (abnormal sounds beside an autoencoder's training)


def fold_names(columns) -> list[str]:
    """The fold columns among a manifest's ``columns``, in order (fold1, fold2, ...)."""
    return sorted((c for c in columns if c.startswith("fold") and c[4:].isdigit()),
                  key=lambda c: int(c[4:]))


def holdout_partitions(split: np.ndarray) -> dict[str, np.ndarray]:
    """One fold, the holdout split itself; the final model is that fold's (test unused).
    ``fold``: 1 for the units fold 1 tests, 0 for the others."""
    split = np.asarray(split, dtype=object)
    return {"fold": np.where(split == "test", 1, 0), "fold1": split,
            "final": np.where(split == "test", UNUSED, split)}


def fold_partitions(fold_of: np.ndarray, trainable: np.ndarray,
                    carve_val: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    """Fold k tests the units of fold k; the model trains on the ``trainable`` units of the
    other folds, less the validation rows ``carve_val`` picks from them (a boolean mask over
    its argument, the candidate rows' positions). The final model trains on every trainable unit."""
    partitions = {}
    for k in range(1, int(fold_of.max()) + 1):
        role = np.where(fold_of == k, "test", UNUSED).astype(object)
        partitions[f"fold{k}"] = _carve(role, np.flatnonzero((fold_of != k) & trainable), carve_val)
    final = np.full(len(fold_of), UNUSED, dtype=object)
    partitions["final"] = _carve(final, np.flatnonzero(trainable), carve_val)
    return partitions


def _carve(role: np.ndarray, candidates: np.ndarray,
           carve_val: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    role[candidates] = np.where(carve_val(candidates), "val", "train")
    return role


def partition_audit(manifest: pd.DataFrame, group_column: str,
                    class_column: str | None = None) -> dict:
    """``audit`` of every partition (raises on any leak), and a check that cross-validation
    tests every unit exactly once.

    ``counts`` (and ``counts_by_class``) at the top level describe the final model's train and
    validation units and the test units pooled over the folds."""
    folds = fold_names(manifest.columns)
    per_partition = {name: audit(manifest[manifest[name] != UNUSED].assign(split=manifest[name]),
                                 group_column, class_column) for name in [*folds, "final"]}
    tested = sum((manifest[name] == "test").astype(int) for name in folds)
    if len(folds) > 1 and (tested != 1).any():
        bad = manifest.loc[tested != 1, group_column].iloc[0]
        raise PipelineError(f"cross-validation must test every unit exactly once; "
                            f"{int((tested != 1).sum())} are tested {sorted(set(tested[tested != 1]))} "
                            f"time(s), e.g. in {group_column} {bad!r}")
    if len(folds) == 1:
        summary = {k: v for k, v in per_partition["fold1"].items() if k.startswith("counts")}
    else:  # the final model's training and validation units, and every unit once as test
        final, pooled = per_partition["final"], audit(manifest.assign(split="test"), group_column,
                                                      class_column)
        summary = {key: {"final train": final[key]["train"], "final val": final[key]["val"],
                         "test (all folds)": pooled[key]["test"]}
                   for key in ("counts", "counts_by_class") if key in final}
    return {**summary, "folds": len(folds), "tested_once": bool((tested == 1).all()),
            "by_partition": per_partition}


def stratified_holdout(
    labels: np.ndarray, n_val: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..len(labels)-1`` into (train, validation), each class in proportion.

    Both index arrays come back sorted, so they are stable to store and compare.
    """
    from sklearn.model_selection import train_test_split  # here: split and download skip sklearn

    labels = np.asarray(labels)
    if not 0 < n_val < len(labels):
        raise ValueError(f"n_val must be between 1 and {len(labels) - 1}, got {n_val}")
    train_idx, val_idx = train_test_split(
        np.arange(len(labels)), test_size=n_val, stratify=labels, random_state=seed
    )
    return np.sort(train_idx), np.sort(val_idx)


# ---------------------------------------------------------------- whole groups, class shares kept
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
