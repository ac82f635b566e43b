"""Integration: the real HLS-CMDS copy in ../shared/datasets (skipped when absent)."""

from __future__ import annotations

import pytest

from pipeline.stages.download import download
from pipeline.stages.split import anomaly_split, audit
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
