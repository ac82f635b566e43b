"""ICBHI features and split.

Features: one log-mel image per respiratory cycle, ``data/features/icbhi/cycles.npz`` (``x``:
float32 (N, 1, n_mels, frames)) with ``data/features/icbhi/cycles.parquet`` as its index (row
``i`` describes ``x[i]``: cycle_id, patient, device, labels, official split...). Cycles
shorter than ``min_cycle_s`` are dropped, with a logged count.

Split (one row per cycle with features): the group is the patient. ``kfold``: patients
dealt to folds, class-stratified, validation whole patients of the training side.
``official``: the challenge's test side (made patient-disjoint by the adapter: patients
156 and 218, listed on both sides, each go wholly to one side), with validation carved
from the training patients (``val_fraction``, 9:1 by default); the manifest's
``official`` column always holds it. ``grouped``: seeded patient-level train/val/test,
stratified on ``stratify`` as far as whole patients allow (``hold_out_groups``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.datasets.icbhi.adapter import LABEL4
from pipeline.errors import PipelineError
from pipeline.features.cycles import CycleFeatures, cycle_log_mel_chunks, cycle_log_mels
from pipeline.splitting import (
    audit, fold_names, fold_partitions, grouped_folds, hold_out_groups, holdout_partitions,
    partition_audit,
)
from pipeline.io import npz_row_writer, read_json, write_parquet

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- features
def kept_cycles(records: pd.DataFrame, cfg: CycleFeatures) -> pd.DataFrame:
    """The cycles at least ``min_cycle_s`` long, in the records' order (the drop is logged)."""
    short = records["duration"] < cfg.min_cycle_s
    if short.any():
        log.warning("dropped %d of %d cycle(s) shorter than min_cycle_s = %g s",
                    int(short.sum()), len(records), cfg.min_cycle_s)
    return records[~short].reset_index(drop=True)


def cycle_index(kept: pd.DataFrame) -> pd.DataFrame:
    """The kept cycles' columns (bar the file paths) plus ``row``, the position in the array."""
    index = kept.drop(columns=[c for c in ("file", "audio_path") if c in kept])
    index.insert(0, "row", np.arange(len(index)))
    return index


def _cycle_settings(cfg: CycleFeatures) -> dict:
    return {"target_sr": cfg.sample_rate, "cycle_s": cfg.cycle_s, "pad_mode": cfg.pad_mode,
            "mel": cfg.mel, "backend": cfg.backend}


def cycle_features(records: pd.DataFrame, raw_dir: Path,
                   cfg: CycleFeatures) -> tuple[np.ndarray, pd.DataFrame]:
    """Log-mel images of the cycles at least ``min_cycle_s`` long, and their index, in memory
    (the stage streams them to disk instead)."""
    kept = kept_cycles(records, cfg)
    return cycle_log_mels(kept, raw_dir, **_cycle_settings(cfg)), cycle_index(kept)


CYCLES, CYCLE_INDEX = "cycles.npz", "cycles.parquet"  # the features: log-mels and their index


def extract(dataset: str, records: pd.DataFrame, raw_dir: Path, settings: dict) -> None:
    """The features stage: the cycles' log-mel images, streamed to disk, and their index."""
    cfg = CycleFeatures(**settings)
    kept = kept_cycles(records, cfg)
    shape = (len(kept), 1, cfg.n_mels, cfg.frames)
    # chunk by chunk to disk: memory stays flat in the number of recordings
    with npz_row_writer(paths.features(dataset, CYCLES), "x", shape) as write:
        for positions, x in cycle_log_mel_chunks(kept, raw_dir, **_cycle_settings(cfg)):
            write(positions, x)
    write_parquet(paths.features(dataset, CYCLE_INDEX), cycle_index(kept))
    log.info("%s: %d cycles -> log-mels %s (%d Hz, %g s, pad %s)", dataset, len(kept),
             shape, cfg.sample_rate, cfg.cycle_s, cfg.pad_mode)


# ---------------------------------------------------------------- split: patients as groups
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


def split(dataset: str, cfg: dict) -> tuple[pd.DataFrame, dict]:
    """The split stage: ``scheme`` kfold, official or grouped; the official split is always
    kept beside it."""
    index = pd.read_parquet(paths.features(dataset, CYCLE_INDEX))
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
