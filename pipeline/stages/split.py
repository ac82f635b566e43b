"""Stage 3: subject-independent splits with an audit that fails the stage on any leak.

HLS-CMDS (anomaly detection, the workshop's scheme): train and validation hold normal
sounds only; test holds the remaining normal sounds and every abnormal one. Records are
grouped first, and a group never straddles two splits: identical audio (same sha256)
is one group, and so is a mixture family (Mxxxx with its sources Hxxxx/Lxxxx, which in
turn reuse HS/LS recordings). Groups made only of normal sounds are shared out
70/15/15 (seeded); a group holding any abnormal sound goes to test whole.

MNIST (``mnist.split``): ``n_val`` of the 60,000 training images become validation,
stratified by digit (seeded); the 10,000 test images are the test split. Each image is
its own group; the manifest has one row per image (``image`` = ``<set>/<index>``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from pipeline.datasets.hls_cmds import SUBSETS
from pipeline.datasets.mnist import N_CLASSES, stratified_holdout
from pipeline.errors import PipelineError
from pipeline.io import write_json, write_parquet
from pipeline.params import load_params, lookup

log = logging.getLogger(__name__)
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


def anomaly_split(
    records: pd.DataFrame, subset: str, fractions: tuple[float, float, float], seed: int
) -> pd.DataFrame:
    """Manifest (record, group, label, kind, sha256, group_has_abnormal, split) of ``subset``."""
    if subset not in SUBSETS:
        raise PipelineError(f"split.subset must be one of {sorted(SUBSETS)}, got {subset!r}")
    chosen = records[records["kind"].isin(SUBSETS[subset])].reset_index(drop=True)
    groups = connected_groups(chosen[["sha256", "family"]])
    manifest = pd.DataFrame(
        {"record": chosen["record"], "group": groups, "label": chosen["label"],
         "kind": chosen["kind"], "sha256": chosen["sha256"]}
    )
    manifest["group_has_abnormal"] = manifest.groupby("group")["label"].transform("max") == 1
    normal_groups = np.unique(manifest.loc[~manifest["group_has_abnormal"], "group"])
    shares = share_out(normal_groups, fractions, seed)
    split_of = {g: name for name, gs in shares.items() for g in gs}
    manifest["split"] = manifest["group"].map(split_of).fillna("test")
    return manifest


def audit(manifest: pd.DataFrame, group_column: str = "group") -> dict:
    """Counts per split and label, and checks that no group (or identical audio) leaks.

    Raises PipelineError if a group or a content hash appears in more than one split.
    """
    report: dict = {"counts": {}, "groups": {}}
    for split in SPLITS:
        part = manifest[manifest["split"] == split]
        report["counts"][split] = {
            "normal": int((part["label"] == 0).sum()),
            "abnormal": int((part["label"] != 0).sum()),
            "total": len(part),
        }
        report["groups"][split] = int(part[group_column].nunique())
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


def mnist_split(records: pd.DataFrame, n_val: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Manifest (image, set, index, digit, split) and its audit, digit counts per split."""
    records = records.sort_values(["set", "index"], ascending=[False, True], ignore_index=True)
    manifest = pd.DataFrame({
        "image": records["set"] + "/" + records["index"].astype(str),
        "set": records["set"], "index": records["index"], "digit": records["label"],
        "split": np.where(records["set"] == "test", "test", "train"),
    })
    train_rows = np.flatnonzero(manifest["set"] == "train")
    _, val = stratified_holdout(manifest["digit"].to_numpy()[train_rows], n_val, seed)
    manifest.loc[train_rows[val], "split"] = "val"
    # no normal/abnormal here (that is a study's choice): audit counts images and checks leaks
    report = audit(manifest.assign(label=0), group_column="image")
    for split in SPLITS:
        digits = manifest.loc[manifest["split"] == split, "digit"]
        report["counts"][split] = {"total": len(digits), **{
            f"digit_{d}": int(n) for d, n in enumerate(np.bincount(digits, minlength=N_CLASSES))
        }}
    report.update(scheme="stratified_holdout", n_val=n_val, seed=seed)
    return manifest, report


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Split DATASET's records into train/val/test; write the manifest and the audit."""
    params = load_params()
    records = pd.read_parquet(Path("data/records") / f"{dataset}.parquet")
    if dataset == "hls-cmds":
        cfg = lookup(params, "split")
        manifest = anomaly_split(records, cfg["subset"], tuple(cfg["fractions"]), cfg["seed"])
        report = audit(manifest)
        in_abnormal_group = manifest["group_has_abnormal"]
        report.update(
            dataset=dataset, scheme="anomaly_grouped", subset=cfg["subset"], seed=cfg["seed"],
            normal_only_groups=int(manifest.loc[~in_abnormal_group, "group"].nunique()),
            # normal sounds that share audio or a mixture family with an abnormal one
            normal_sent_to_test_with_abnormal_group=int(
                ((manifest["label"] == 0) & in_abnormal_group).sum()
            ),
        )
    elif dataset == "mnist":
        cfg = lookup(params, "mnist.split")
        manifest, report = mnist_split(records, cfg["n_val"], cfg["seed"])
        report["dataset"] = dataset
    else:
        raise typer.BadParameter(f"no split scheme for dataset {dataset!r}")
    write_parquet(Path("data/splits") / f"{dataset}.parquet", manifest)
    write_json(Path("reports/audit") / f"{dataset}.json", report)
    log.info("%s split: %s", dataset, report["counts"])
