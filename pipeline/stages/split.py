"""Stage 3: subject-independent splits with an audit that fails the stage on any leak.

The clinical datasets are cross-validated (``scheme: kfold``, the default): whole groups
are dealt to K folds, each fold tested by a model that never saw its groups, so every
unit is scored exactly once, out of fold. The manifest holds one role column per
partition (``fold1`` .. ``foldK``, and ``final``: the model `pipeline predict` uses), each
row's role in it: train, val, test or unused. A holdout scheme is one fold.

HLS-CMDS (anomaly detection, the workshop's scheme): autoencoders train and validate on
normal sounds only. Records are grouped first, and a group never straddles two splits:
identical audio (same sha256) is one group, and so is a mixture family (Mxxxx with its
sources Hxxxx/Lxxxx, which in turn reuse HS/LS recordings). ``kfold``: groups dealt to
folds, stratified so that every fold holds normal recordings (``anomaly_folds``).
``holdout``: groups made only of normal sounds are shared out 70/15/15 (seeded); a group
holding any abnormal sound goes to test whole.

ICBHI (classification, one row per respiratory cycle with features): the group is the
patient. ``kfold``: patients dealt to folds, class-stratified, validation whole patients
of the training side. ``official``: the challenge's test side (made patient-disjoint by
the adapter: patients 156 and 218, listed on both sides, each go wholly to one side),
with validation carved from the training patients (``val_fraction``, 9:1 by default);
the manifest's ``official`` column always holds it. ``grouped``: seeded patient-level
train/val/test, stratified on ``stratify`` as far as whole patients allow (a seeded
search over sets of whole patients, see ``hold_out_groups``).
MNIST (``mnist.split``): ``n_val`` of the 60,000 training images become validation,
stratified by digit (seeded); the 10,000 test images are the test split. Each image is
its own group; the manifest has one row per image (``image`` = ``<set>/<index>``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import typer

from pipeline import paths
from pipeline.datasets.hls_cmds import SUBSETS
from pipeline.datasets.icbhi import LABEL4
from pipeline.datasets.mnist import N_CLASSES, stratified_holdout
from pipeline.errors import PipelineError
from pipeline.grouping import grouped_folds, hold_out_groups
from pipeline.io import read_json, write_json, write_parquet
from pipeline.params import load_params, lookup
from pipeline.splitting import (
    SPLITS,
    audit,
    connected_groups,
    fold_names,
    fold_partitions,
    holdout_partitions,
    partition_audit,
    share_out,
)

log = logging.getLogger(__name__)
GROUP_KEYS = ("sha256", "family")


def grouped_records(records: pd.DataFrame, subset: str,
                    group_by: tuple[str, ...] = GROUP_KEYS) -> pd.DataFrame:
    """Records of ``subset`` (record, group, label, kind, sha256, group_has_abnormal).

    ``group_by`` must include sha256 (identical audio never straddles splits); dropping
    ``family`` lets a mixture's sources sit apart from it, to measure what that costs.
    """
    if subset not in SUBSETS:
        raise PipelineError(f"split.subset must be one of {sorted(SUBSETS)}, got {subset!r}")
    if "sha256" not in group_by or not set(group_by) <= set(GROUP_KEYS):
        raise PipelineError(f"split.group_by must hold sha256 and may add family, got {list(group_by)}")
    chosen = records[records["kind"].isin(SUBSETS[subset])].reset_index(drop=True)
    groups = connected_groups(chosen[list(group_by)])
    manifest = pd.DataFrame(
        {"record": chosen["record"], "group": groups, "label": chosen["label"],
         "kind": chosen["kind"], "sha256": chosen["sha256"]}
    )
    manifest["group_has_abnormal"] = manifest.groupby("group")["label"].transform("max") == 1
    return manifest


def anomaly_split(
    records: pd.DataFrame, subset: str, fractions: tuple[float, float, float], seed: int,
    group_by: tuple[str, ...] = GROUP_KEYS,
) -> pd.DataFrame:
    """``grouped_records`` with a holdout ``split``: groups made only of normal sounds are
    shared out by ``fractions``; a group holding any abnormal sound goes to test whole."""
    manifest = grouped_records(records, subset, group_by)
    normal_groups = np.unique(manifest.loc[~manifest["group_has_abnormal"], "group"])
    shares = share_out(normal_groups, fractions, seed)
    split_of = {g: name for name, gs in shares.items() for g in gs}
    manifest["split"] = manifest["group"].map(split_of).fillna("test")
    return manifest


def anomaly_folds(records: pd.DataFrame, subset: str, folds: int, val_fraction: float, seed: int,
                  group_by: tuple[str, ...] = GROUP_KEYS) -> pd.DataFrame:
    """``grouped_records`` with a ``fold`` column and one role column per partition.

    Every group goes whole to one of ``folds`` folds, stratified on the label so that each
    fold holds normal recordings. Fold k tests its groups; its autoencoder trains on the
    normal recordings of the other folds, less a ``val_fraction`` share of them in whole
    groups (validation: early stopping and the threshold). Abnormal recordings of the other
    folds are unused in fold k. The final model trains on every normal recording, less the
    same share for validation.
    """
    manifest = grouped_records(records, subset, group_by)
    manifest["fold"] = grouped_folds(manifest, folds, seed, group_column="group", stratify="label")
    normal = (manifest["label"] == 0).to_numpy()

    def carve_val(rows: np.ndarray) -> np.ndarray:
        return hold_out_groups(manifest.iloc[rows], val_fraction, seed, group_column="group",
                               stratify="kind")

    return manifest.assign(**fold_partitions(manifest["fold"].to_numpy(), normal, carve_val))


# ---------------------------------------------------------------- ICBHI: patients as groups
ICBHI_SCHEMES = ("kfold", "official", "grouped")
HOLDOUT_SCHEMES = ("official", "grouped")
MANIFEST_COLUMNS = ["cycle_id", "recording", "patient", "device", "label", "label4", "sha256",
                    "official_split", "listed_split"]


def patient_split(index: pd.DataFrame, scheme: str, val_fraction: float, seed: int,
                  test_fraction: float | None = None, stratify: str = "label4") -> pd.DataFrame:
    """Manifest (one row per cycle of the features index) with a patient-disjoint ``split``."""
    if scheme not in HOLDOUT_SCHEMES:
        raise PipelineError(f"a holdout scheme is one of {HOLDOUT_SCHEMES}, got {scheme!r}")
    frame = index.reset_index(drop=True)
    split = np.full(len(frame), "train", dtype=object)
    if scheme == "official":
        test = (frame["official_split"] == "test").to_numpy()
    else:
        if test_fraction is None:
            raise PipelineError("icbhi.split.test_fraction is needed by the grouped scheme")
        test = hold_out_groups(frame, test_fraction, seed, stratify=stratify)
    split[test] = "test"
    rest = np.flatnonzero(~test)
    val = hold_out_groups(frame.iloc[rest], val_fraction, seed, stratify=stratify)
    split[rest[val]] = "val"
    manifest = frame.assign(label=frame["label_binary"], split=split)
    return manifest[[c for c in MANIFEST_COLUMNS if c in manifest] + ["split"]]


def _patients_on_both_listed_sides(download_report: dict, manifest: pd.DataFrame,
                                   scheme: str) -> dict:
    """How the patients listed on both official sides were handled, for the audit."""
    present = manifest.groupby("patient")["recording"].nunique()
    out = {}
    for patient, moved in download_report.get("patients_moved", {}).items():
        handling = (
            f"kept wholly in {moved['to']}, the side holding most of their listed cycles "
            "(ties go to train); validation is carved from training patients only"
            if scheme == "official" else
            "one group like every patient: whole in one fold; the official split (kept for the "
            "semi-supervised grid) places it as described" if scheme == "kfold" else
            "the official list is not used: the patient is one group, assigned whole to one split"
        )
        out[str(patient)] = {
            "listed_cycles": moved["cycles_listed"],
            "official_side": moved["to"],
            "recordings_with_audio": int(present.get(int(patient), 0)),
            "handling": handling,
        }
    return out


def _split_hls(dataset: str, params: dict) -> tuple[pd.DataFrame, dict]:
    records = pd.read_parquet(paths.records(dataset))
    cfg = lookup(params, "split")
    group_by = tuple(cfg.get("group_by", GROUP_KEYS))
    if cfg["scheme"] == "kfold":
        manifest = anomaly_folds(records, cfg["subset"], len(cfg["folds"]), cfg["val_fraction"],
                                 cfg["seed"], group_by)
    else:
        manifest = anomaly_split(records, cfg["subset"], tuple(cfg["fractions"]), cfg["seed"],
                                 group_by)
        manifest = manifest.assign(**holdout_partitions(manifest.pop("split").to_numpy()))
    report = partition_audit(manifest, group_column="group")
    in_abnormal_group = manifest["group_has_abnormal"]
    report.update(
        dataset=dataset, scheme=cfg["scheme"], subset=cfg["subset"], seed=cfg["seed"],
        group_by=list(group_by),
        normal_only_groups=int(manifest.loc[~in_abnormal_group, "group"].nunique()),
        # normal sounds that share audio or a mixture family with an abnormal one
        normal_in_a_group_with_abnormal=int(((manifest["label"] == 0) & in_abnormal_group).sum()),
    )
    return manifest, report


def patient_folds(index: pd.DataFrame, folds: int, val_fraction: float, seed: int,
                  stratify: str = "label4") -> pd.DataFrame:
    """One role column per partition: patients dealt whole to ``folds`` folds, stratified on
    ``stratify`` (every fold holds normal and abnormal cycles); fold k's validation is a
    ``val_fraction`` share of the other folds' cycles, whole patients, stratified alike."""
    frame = index.reset_index(drop=True).assign(label=lambda f: f["label_binary"])
    fold_of = grouped_folds(frame, folds, seed, group_column="patient", stratify=stratify)

    def carve_val(rows: np.ndarray) -> np.ndarray:
        return hold_out_groups(frame.iloc[rows], val_fraction, seed, stratify=stratify)

    every = np.ones(len(frame), dtype=bool)
    return frame.assign(fold=fold_of, **fold_partitions(fold_of, every, carve_val))


def _split_icbhi(dataset: str, params: dict) -> tuple[pd.DataFrame, dict]:
    index = pd.read_parquet(paths.FEATURES / f"{dataset}.parquet")
    cfg = lookup(params, "icbhi.split")
    scheme, stratify = cfg["scheme"], cfg.get("stratify", "label4")
    test_fraction = cfg.get("test_fraction") if scheme == "grouped" else None
    # the official split is always kept: the semi-supervised grid and comparisons with the
    # literature use it, whatever the scheme of icbhi_cnn and icbhi_crnn
    official = patient_split(index, "official", cfg["val_fraction"], cfg["seed"], stratify=stratify)
    if scheme == "kfold":
        manifest = patient_folds(index, len(cfg["folds"]), cfg["val_fraction"], cfg["seed"], stratify)
    else:
        holdout = official if scheme == "official" else patient_split(
            index, scheme, cfg["val_fraction"], cfg["seed"], test_fraction, stratify)
        manifest = index.reset_index(drop=True).assign(
            label=index["label_binary"].to_numpy(), **holdout_partitions(holdout["split"].to_numpy()))
    manifest = manifest.assign(official=official["split"].to_numpy())
    partitions = [*fold_names(manifest.columns), "final", "official"]
    manifest = manifest[[c for c in MANIFEST_COLUMNS if c in manifest] + ["fold", *partitions]]
    report = partition_audit(manifest, group_column="patient", class_column="label4")
    report["official"] = audit(official, group_column="patient", class_column="label4")
    for part in (report, report["official"], *report["by_partition"].values()):
        part["counts_by_class"] = {  # every class named, in LABEL4 order
            split: {c: counts.get(c, 0) for c in LABEL4} for split, counts in part["counts_by_class"].items()
        }
    report.update(
        dataset=dataset, scheme=scheme, seed=cfg["seed"], stratify=stratify,
        val_fraction=cfg["val_fraction"], test_fraction=test_fraction,
        patients_on_both_listed_sides=_patients_on_both_listed_sides(
            read_json(paths.download_report(dataset)), manifest, scheme
        ),
    )
    return manifest, report


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


def _split_mnist(dataset: str, params: dict) -> tuple[pd.DataFrame, dict]:
    records = pd.read_parquet(paths.records(dataset))
    cfg = lookup(params, "mnist.split")
    manifest, report = mnist_split(records, cfg["n_val"], cfg["seed"])
    report["dataset"] = dataset
    return manifest, report


SCHEMES = {"hls-cmds": _split_hls, "icbhi": _split_icbhi, "mnist": _split_mnist}


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Split DATASET's records into train/val/test; write the manifest and the audit."""
    if dataset not in SCHEMES:
        raise typer.BadParameter(f"no split scheme for dataset {dataset!r}")
    manifest, report = SCHEMES[dataset](dataset, load_params())
    found = read_json(paths.download_report(dataset))
    report["download"] = {k: v for k, v in found.items() if not isinstance(v, (dict, list))}
    write_parquet(paths.split_manifest(dataset), manifest)
    write_json(paths.audit_report(dataset), report)
    log.info("%s split: %s", dataset, report["counts"])
