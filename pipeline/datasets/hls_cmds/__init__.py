"""HLS-CMDS: heart and lung sounds recorded from a clinical manikin (Torabi et al. 2025).

The dataset's package: its adapter (``DATASET``: sources, layout, records), its features
(``extract``: MFCC windows) and its split (``split``); ``study.py`` holds the study over it.

Layout (the official archive's, and the local copy's): ``HS/*.wav`` heart sounds,
``LS/*.wav`` lung sounds, ``Mix/`` mixtures ``Mxxxx`` with their heart source ``Hxxxx``
and lung source ``Lxxxx``; ``HS.csv``, ``LS.csv``, ``Mix.csv`` describe them.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.datasets.base import Dataset, Source, extract_zip
from pipeline.errors import PipelineError
from pipeline.features.mfcc_windows import MFCCWindows, normalised, recording_windows, window_features
from pipeline.features.parallel import map_in_chunks
from pipeline.splitting import (
    connected_groups, fold_partitions, grouped_folds, hold_out_groups, holdout_partitions,
    partition_audit, share_out,
)
from pipeline.io import write_parquet
from pipeline.progress import bar as progress_bar

log = logging.getLogger(__name__)

NORMAL = "Normal"
# Closed vocabularies: any other type (a typo such as "Nromal") is an error, never a label.
HEART_TYPES = (NORMAL, "Mid Systolic Murmur", "Late Diastolic Murmur", "Early Systolic Murmur",
               "Late Systolic Murmur", "S3", "S4", "Atrial Fibrillation", "Tachycardia", "AV Block")
LUNG_TYPES = (NORMAL, "Pleural Rub", "Coarse Crackles", "Fine Crackles", "Rhonchi", "Wheezing")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_ -]*")  # a file name stem: no folders, no ".."
KINDS = ("heart", "lung", "mixture", "heart_source", "lung_source")
SUBSETS = {  # the split's `subset` param -> kinds it keeps
    "all": KINDS,
    "heart": ("heart", "heart_source"),
    "lung": ("lung", "lung_source"),
}
RECORD_COLUMNS = [
    "record", "file", "kind", "sex", "location", "heart_type", "lung_type",
    "family", "label",
]
_LUNG_ID_FIXES = {"_C_": "_FC_", "_G_": "_CC_"}  # LS.csv says C/G where files say FC/CC


class HLSCMDS(Dataset):
    name = "hls-cmds"
    citation = (
        "Y. Torabi, S. Shirani, J. P. Reilly, 'Descriptor: Heart and Lung Sounds Dataset "
        "Recorded from a Clinical Manikin using Digital Stethoscope (HLS-CMDS)', IEEE Data "
        "Descriptions, 2025, doi:10.1109/IEEEDATA.2025.3566012"
    )
    licence = "CC BY 4.0 (research use with citation)"
    landing_page = "https://doi.org/10.17632/8972jxbpmp"
    # Mendeley's whole-dataset archive (HS.zip, LS.zip, Mix.zip and the CSVs). No checksum
    # is published for it; every file inside is checked against checksums/hls-cmds.sha256.
    sources = (
        Source(
            url="https://data.mendeley.com/public-api/zip/8972jxbpmp/download/3",
            filename="hls-cmds-v3.zip",
        ),
    )

    def unpack(self, archive: Path, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            extract_zip(archive, Path(tmp))
            for path in sorted(Path(tmp).rglob("*")):
                if path.suffix == ".csv":
                    shutil.copyfile(path, dest / path.name)
                elif path.suffix == ".zip" and path.stem in ("HS", "LS", "Mix"):
                    _extract_flat(path, dest / path.stem, shown=archive / path.relative_to(tmp))

    def read_records(self, raw_dir: Path) -> pd.DataFrame:
        return read_records(raw_dir)


def _extract_flat(archive: Path, dest: Path, shown: Path) -> None:
    """Extract ``archive`` (known to the user as ``shown``) so its wav files land directly in
    ``dest``."""
    with tempfile.TemporaryDirectory() as tmp:
        extract_zip(archive, Path(tmp), shown)
        dest.mkdir(parents=True, exist_ok=True)
        for path in Path(tmp).rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                shutil.copyfile(path, dest / path.name)


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise PipelineError("metadata file not found", path)
    try:
        frame = pd.read_csv(path, dtype=str)
    except Exception as exc:
        raise PipelineError(f"not a readable CSV ({exc})", path) from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PipelineError(f"missing column(s) {missing}; found {list(frame.columns)}", path)
    frame = frame[columns]
    empty = frame.isna().any(axis=1)
    if empty.any():
        row = int(empty.idxmax()) + 2  # +1 header, +1 one-based
        raise PipelineError(f"line {row} has empty fields", path)
    frame = frame.apply(lambda col: col.str.strip())
    for column, vocabulary in (("Heart Sound Type", HEART_TYPES), ("Lung Sound Type", LUNG_TYPES)):
        if column in frame:
            _check_values(frame[column], lambda v, known=vocabulary: v in known, path,
                          f"{column} {{!r}} is not one of {', '.join(vocabulary)}")
    for column in (c for c in columns if c.endswith(" ID")):
        _check_values(frame[column], _SAFE_ID.fullmatch, path,
                      f"{column} {{!r}} is not a plain file name (letters, digits, _ - space)")
    return frame


def _check_values(values: pd.Series, ok, path: Path, cause: str) -> None:
    """Fail on the first value ``ok`` rejects, naming its line (1: the header)."""
    bad = ~values.map(lambda v: bool(ok(v)))
    if bad.any():
        row = int(bad.idxmax())
        raise PipelineError(f"line {row + 2}: {cause.format(values[row])}", path)


def _normalise_lung_ids(ids: pd.Series) -> pd.Series:
    fixed = ids.str.strip()
    for wrong, right in _LUNG_ID_FIXES.items():
        fixed = fixed.str.replace(wrong, right, regex=False)
    changed = ids[ids != fixed]
    if len(changed):
        log.info(
            "LS.csv: %d lung sound IDs normalised to the file names (C->FC, G->CC, spaces), "
            "e.g. %r -> %r", len(changed), changed.iloc[0], fixed[changed.index[0]],
        )
    return fixed


def _is_normal(*types: str | None) -> bool:
    return all(t == NORMAL for t in types if t is not None)


def read_records(raw_dir: Path) -> pd.DataFrame:
    """One row per audio file: what it is, where it sits, and its labels (1 = abnormal)."""
    heart = _read_csv(raw_dir / "HS.csv", ["Gender", "Heart Sound Type", "Location", "Heart Sound ID"])
    lung = _read_csv(raw_dir / "LS.csv", ["Gender", "Lung Sound Type", "Location", "Lung Sound ID"])
    lung["Lung Sound ID"] = _normalise_lung_ids(lung["Lung Sound ID"])
    mix = _read_csv(
        raw_dir / "Mix.csv",
        ["Gender", "Heart Sound Type", "Lung Sound Type", "Location",
         "Heart Sound ID", "Lung Sound ID", "Mixed Sound ID"],
    )
    rows = []

    def add(folder, ident, kind, sex, location, heart_type=None, lung_type=None, family=None):
        rows.append(dict(
            record=f"{folder}/{ident}", file=f"{folder}/{ident}.wav", kind=kind, sex=sex,
            location=location, heart_type=heart_type, lung_type=lung_type, family=family,
            label=int(not _is_normal(heart_type, lung_type)),
        ))

    for r in heart.itertuples(index=False):
        add("HS", r[3], "heart", r[0], r[2], heart_type=r[1])
    for r in lung.itertuples(index=False):
        add("LS", r[3], "lung", r[0], r[2], lung_type=r[1])
    for sex, htype, ltype, loc, hid, lid, mid in mix.itertuples(index=False):
        add("Mix", mid, "mixture", sex, loc, heart_type=htype, lung_type=ltype, family=mid)
        add("Mix", hid, "heart_source", sex, loc, heart_type=htype, family=mid)
        add("Mix", lid, "lung_source", sex, loc, lung_type=ltype, family=mid)
    records = pd.DataFrame(rows)
    _check_files(records, raw_dir)
    return records.sort_values("file", ignore_index=True)[RECORD_COLUMNS]


def _check_files(records: pd.DataFrame, raw_dir: Path) -> None:
    dupes = records["file"][records["file"].duplicated()]
    if len(dupes):
        raise PipelineError(f"metadata lists {dupes.iloc[0]} more than once", raw_dir)
    for rel in records["file"]:
        if not (raw_dir / rel).is_file():
            raise PipelineError("audio file listed in the metadata is missing", raw_dir / rel)
    listed = set(records["file"])
    for path in sorted(raw_dir.rglob("*.wav")):
        rel = path.relative_to(raw_dir).as_posix()
        if rel not in listed:
            raise PipelineError("audio file not described by HS.csv, LS.csv or Mix.csv", path)


DATASET = HLSCMDS()


# ---------------------------------------------------------------- features
def mfcc_window_table(records: pd.DataFrame, raw_dir: Path, cfg: MFCCWindows) -> pd.DataFrame:
    """One row per window of every record; features as float32 columns f000, f001, ...

    Files are read on a thread pool a chunk at a time; each chunk's windows go through the
    spectral backend in one batched call, and the table is built once from the arrays.
    """
    files = [raw_dir / name for name in records["file"]]
    features, counts = [], []
    with progress_bar(total=len(files), desc="mfcc", unit="file") as progress:
        for _, windows in map_in_chunks(functools.partial(recording_windows, cfg=cfg), files):
            chunk = window_features(np.concatenate(windows), cfg)
            sizes = [len(w) for w in windows]
            features += [normalised(part, cfg) for part in np.split(chunk, np.cumsum(sizes)[:-1])]
            counts.extend(sizes)
            progress.update(len(windows))
    x = np.concatenate(features) if features else np.empty((0, 0), np.float32)
    counts = np.asarray(counts, dtype=np.int64)
    window = np.arange(len(x)) - np.repeat(np.cumsum(counts) - counts, counts)  # 0.. per record
    index = pd.DataFrame({"record": np.repeat(records["record"].to_numpy(), counts),
                          "window": window, "start_s": window * cfg.hop_s})
    columns = pd.DataFrame(x, columns=[f"f{i:03d}" for i in range(x.shape[1])])
    return pd.concat([index, columns], axis=1)


WINDOWS = "windows.parquet"  # the features: one row per window


def extract(dataset: str, records: pd.DataFrame, raw_dir: Path, settings: dict) -> None:
    """The features stage: MFCC windows of every record, one Parquet row per window."""
    cfg = MFCCWindows(**settings)
    table = mfcc_window_table(records, raw_dir, cfg)
    write_parquet(paths.features(dataset, WINDOWS), table)
    log.info("%s: %d windows x %d features", dataset, len(table), table.shape[1] - 3)


# ---------------------------------------------------------------- split: records grouped, groups dealt out
# Autoencoders train and validate on normal sounds only. A group never straddles two
# roles: identical audio (same sha256) is one group, and so is a mixture family (Mxxxx
# with its sources Hxxxx/Lxxxx, which in turn reuse HS/LS recordings).
GROUP_KEYS = ("sha256", "family")


def grouped_records(records: pd.DataFrame, subset: str,
                    group_by: tuple[str, ...] = GROUP_KEYS) -> pd.DataFrame:
    """Records of ``subset`` (record, group, label, kind, heart_type, lung_type, sha256,
    group_has_abnormal).

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
         "kind": chosen["kind"], "heart_type": chosen["heart_type"],
         "lung_type": chosen["lung_type"], "sha256": chosen["sha256"]}
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


def split(dataset: str, cfg: dict) -> tuple[pd.DataFrame, dict]:
    """The split stage: ``scheme`` kfold (``anomaly_folds``) or holdout (``anomaly_split``)."""
    records = pd.read_parquet(paths.records(dataset))
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
