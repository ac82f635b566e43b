"""Integration: the real HLS-CMDS copy in ../shared/datasets (skipped when absent)."""

from __future__ import annotations

import pytest

from pipeline.stages.download import download
from pipeline.splitting import UNUSED, audit, partition_audit
from pipeline.datasets.hls_cmds import anomaly_folds, anomaly_split
from tests.conftest import SHARED_DATASETS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (SHARED_DATASETS / "hls-cmds").is_dir(), reason="no HLS-CMDS copy"),
]


def test_real_copy_records_and_grouped_split(tmp_path):
    records = download("hls-cmds", tmp_path / "raw", tmp_path / "records.parquet", SHARED_DATASETS)
    assert len(records) == 535 and records["sha256"].nunique() == 344
    counts = records.groupby("kind")["label"].agg(["size", "sum"]).to_dict("index")
    assert counts["heart"] == {"size": 50, "sum": 41}  # 9 normal heart recordings
    assert counts["lung"] == {"size": 50, "sum": 38}  # 12 normal lung recordings
    assert counts["mixture"]["size"] == 145
    # the copy's README says 2 normal+normal mixtures; Mix.csv lists 3 (M0066, M0074, M0122)
    assert sorted(records.query("kind == 'mixture' and label == 0")["record"]) == [
        "Mix/M0066", "Mix/M0074", "Mix/M0122"]
    manifest = anomaly_split(records, "all", (0.7, 0.15, 0.15), seed=42)
    report = audit(manifest)
    assert manifest.loc[~manifest["group_has_abnormal"], "group"].nunique() == 9
    assert report["counts"]["test"]["abnormal"] == 470
    assert report["group_overlap"] == report["sha256_overlap"] == 0


def test_real_copy_folds_test_every_recording_once_without_overlap(tmp_path):
    """The default scheme on the real copy: 5 folds, every one of the 65 normal and 470
    abnormal recordings tested exactly once, no group or identical audio across the roles
    of any fold, and the audit proves it."""
    records = download("hls-cmds", tmp_path / "raw", tmp_path / "records.parquet", SHARED_DATASETS)
    manifest = anomaly_folds(records, "all", folds=5, val_fraction=0.2, seed=42)
    report = partition_audit(manifest, group_column="group")
    assert report["tested_once"] and report["folds"] == 5
    assert report["counts"]["test (all folds)"] == {"normal": 65, "abnormal": 470, "total": 535}
    for name, part in report["by_partition"].items():
        assert part["group_overlap"] == part["sha256_overlap"] == 0, name
        assert part["counts"]["train"]["abnormal"] == part["counts"]["val"]["abnormal"] == 0, name
    for k in range(1, 6):
        role = manifest[f"fold{k}"]
        assert manifest.loc[role == "test", "label"].nunique() == 2  # normal and abnormal in every fold
        for column in ("group", "sha256"):
            sides = manifest.loc[role != UNUSED].groupby(column)[f"fold{k}"].nunique()
            assert (sides == 1).all(), (k, column)
