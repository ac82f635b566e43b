"""Grouped anomaly split and its audit: identical audio and mixture families never leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.stages.download import download
from pipeline.splitting import audit, connected_groups, share_out
from pipeline.datasets.hls_cmds import anomaly_split


def test_connected_groups_follow_chains_of_shared_values():
    keys = pd.DataFrame({
        "sha256": ["a", "b", "a", "c", "d", "e"],
        "family": [None, "M1", None, "M1", None, None],
    })
    groups = connected_groups(keys)
    # rows 0 and 2 share audio; rows 1 and 3 share a family; 4 and 5 stand alone
    assert groups[0] == groups[2] and groups[1] == groups[3]
    assert len(set(groups)) == 4


def test_chain_through_both_columns():
    keys = pd.DataFrame({"sha256": ["x", "x", "y", "y"], "family": ["F1", None, None, "F1"]})
    assert len(set(connected_groups(keys))) == 1


def test_share_out_is_seeded_and_complete():
    items = np.arange(20)
    shares = share_out(items, (0.7, 0.15, 0.15), seed=3)
    assert [len(shares[s]) for s in ("train", "val", "test")] == [14, 3, 3]
    assert sorted(np.concatenate(list(shares.values()))) == list(items)
    again = share_out(items, (0.7, 0.15, 0.15), seed=3)
    assert all((shares[s] == again[s]).all() for s in shares)
    with pytest.raises(ValueError):
        share_out(items, (0.5, 0.5, 0.5), seed=3)


@pytest.fixture
def records(hls_copy, tmp_path):
    return download("hls-cmds", tmp_path / "raw", tmp_path / "r.parquet", hls_copy)


def test_duplicated_audio_and_families_do_not_leak(records):
    manifest = anomaly_split(records, "all", (0.7, 0.15, 0.15), seed=0)
    split_of = manifest.set_index("record")["split"]
    # HS/F_N_RC is normal, but the same audio is H0001, the heart source of the abnormal
    # mixture M0001: the whole family goes to test, the normal recording with it
    assert split_of["HS/F_N_RC"] == split_of["Mix/H0001"] == split_of["Mix/M0001"] == "test"
    assert (manifest.loc[manifest["label"] == 1, "split"] == "test").all()
    assert (manifest.loc[manifest["split"] != "test", "label"] == 0).all()
    report = audit(manifest)
    assert report["group_overlap"] == 0 and report["sha256_overlap"] == 0
    assert report["counts"]["train"]["abnormal"] == 0 == report["counts"]["val"]["abnormal"]
    # five normal-only groups: 70/15/15 -> 4 (round 3.5) / 1 / 0
    assert [report["groups"][s] for s in ("train", "val")] == [4, 1]


def test_subset_keeps_only_its_kinds(records):
    heart = anomaly_split(records, "heart", (0.7, 0.15, 0.15), seed=0)
    assert set(heart["kind"]) == {"heart", "heart_source"}
    with pytest.raises(PipelineError, match="subset"):
        anomaly_split(records, "brain", (0.7, 0.15, 0.15), seed=0)


def test_audit_fails_on_a_leak(records):
    manifest = anomaly_split(records, "all", (0.7, 0.15, 0.15), seed=0)
    leaked = manifest.copy()
    twin = leaked.index[leaked["record"] == "Mix/H0001"][0]
    leaked.loc[twin, "split"] = "train"  # identical audio now on both sides
    with pytest.raises(PipelineError, match="leaks"):
        audit(leaked)


def test_group_by_sha_only_lets_families_apart_but_never_identical_audio(records):
    manifest = anomaly_split(records, "all", (0.7, 0.15, 0.15), seed=0, group_by=("sha256",))
    split_of = manifest.set_index("record")["split"]
    assert split_of["HS/F_N_RC"] == split_of["Mix/H0001"]  # same audio, same side
    audit(manifest)
    with pytest.raises(PipelineError, match="group_by"):
        anomaly_split(records, "all", (0.7, 0.15, 0.15), seed=0, group_by=("family",))
