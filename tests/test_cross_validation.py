"""Cross-validation: folds that never leak, and pooled out-of-fold decisions equal to the folds' own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.calibration import calibrate
from pipeline.cross_validation import pool, spread
from pipeline.errors import PipelineError
from pipeline.splitting import UNUSED, fold_partitions, grouped_folds, partition_audit
from pipeline.objectives import OBJECTIVES, RANKING, Reconstruction
from pipeline.stages.download import download
from pipeline.datasets.hls_cmds import anomaly_folds

PERCENTILE = {"method": "percentile", "percentile": 90, "aggregate": "mean"}


def _frame(units: list[str], labels: list[int], scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"unit": units, "label": labels, "score": scores})


@pytest.mark.parametrize("objective, scores, threshold", [
    ("reconstruction", [0.001, 0.5, 2.0, 7.0], 2.0),
    ("classification", [0.01, 0.3, 0.6, 0.99], 0.3),
])
def test_margin_is_positive_exactly_when_the_score_passes_the_threshold(objective, scores, threshold):
    m = OBJECTIVES[objective]().margin(np.array(scores), threshold)
    assert ((m > 0) == (np.array(scores) > threshold)).all()
    assert (np.diff(m) > 0).all()  # the order within a fold is kept


def _fold(seed: int, scale: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    val = _frame([f"v{seed}_{i}" for i in range(20)], [0] * 20, list(scale * rng.gamma(4, 1, 20)))
    labels = [0] * 15 + [1] * 10
    test = _frame([f"t{seed}_{i}" for i in range(25)], labels,
                  list(scale * rng.gamma(4, 1, 25) * (1 + np.array(labels))))
    return val, test


def test_pooled_decisions_are_each_folds_own_and_thresholds_see_validation_only():
    folds = {1: _fold(1, 1.0), 2: _fold(2, 100.0)}  # very different error scales
    pooled = pool(folds, PERCENTILE, Reconstruction())
    assert len(pooled.units) == 50 and set(pooled.units["fold"]) == {1, 2}
    for k, (val, test) in folds.items():
        threshold = calibrate(val, PERCENTILE)["threshold"]
        own = test["score"].to_numpy() > threshold
        mine = pooled.units[pooled.units["fold"] == k]
        assert ((mine["score"] > 0).to_numpy() == own).all()
        assert pooled.folds[k - 1]["threshold"] == threshold
    # test scores never move a threshold
    shifted = {k: (val, test.assign(score=test["score"] * 3)) for k, (val, test) in folds.items()}
    assert [f["threshold"] for f in pool(shifted, PERCENTILE, Reconstruction()).folds] == [
        f["threshold"] for f in pooled.folds]
    assert pooled.calibration["threshold"] == 0.0 and pooled.calibration["n_val_units"] == 40
    assert pooled.calibration["specificity_target"] == 0.9
    cv = spread(pooled.folds)
    assert cv["folds"] == 2 and cv["auroc_std"] >= 0


def test_pooled_ranking_is_the_same_at_every_operating_point():
    """A fold's margins move with its threshold, by a fold's own amount: the ranking scale
    does not, so pooled AUROC is one figure whatever the percentile."""
    from pipeline.metrics import auroc
    from pipeline.objectives import ranking

    folds = {1: _fold(1, 1.0), 2: _fold(2, 100.0), 3: _fold(3, 7.0)}
    by_percentile = {q: pool(folds, {**PERCENTILE, "percentile": q}, Reconstruction()).units
                     for q in (95, 80)}
    assert not np.allclose(by_percentile[95]["score"], by_percentile[80]["score"])  # margins move
    assert np.array_equal(ranking(by_percentile[95]), ranking(by_percentile[80]))
    y = by_percentile[95]["label"].to_numpy()
    assert auroc(y, ranking(by_percentile[95])) == auroc(y, ranking(by_percentile[80]))
    # a fold's log errors, less the median of its normal validation ones, over their IQR
    one = by_percentile[95][by_percentile[95]["fold"] == 2]
    reference = np.log(folds[2][0]["score"])
    q1, median, q3 = np.percentile(reference, [25, 50, 75])
    assert np.allclose(one[RANKING], (np.log(one["raw_score"]) - median) / (q3 - q1))


def test_grouped_folds_keep_groups_whole_and_every_fold_holds_both_labels():
    frame = pd.DataFrame({"group": np.repeat(np.arange(20), 3),
                          "label": np.repeat(np.arange(20) % 4 == 0, 3).astype(int)})
    folds = grouped_folds(frame, 5, seed=0, group_column="group", stratify="label")
    assert (frame.assign(f=folds).groupby("group")["f"].nunique() == 1).all()
    assert all(set(frame["label"][folds == k]) == {0, 1} for k in range(1, 6))
    assert (grouped_folds(frame, 5, seed=0, group_column="group", stratify="label") == folds).all()
    with pytest.raises(PipelineError, match="hold no row of label = 1"):
        grouped_folds(frame.assign(label=(frame["group"] == 0).astype(int)), 5, 0, "group", "label")
    with pytest.raises(PipelineError, match="need at least"):
        grouped_folds(frame.head(6), 5, 0, "group", "label")


def test_fold_partitions_train_on_other_folds_and_carve_validation_from_them():
    fold_of = np.array([1, 1, 2, 2, 3, 3])
    trainable = np.array([True, False, True, True, True, False])
    parts = fold_partitions(fold_of, trainable, lambda rows: rows == rows.max())
    assert list(parts["fold1"]) == ["test", "test", "train", "train", "val", UNUSED]
    assert list(parts["final"]) == ["train", UNUSED, "train", "train", "val", UNUSED]


@pytest.fixture
def records(hls_copy, tmp_path):
    return download("hls-cmds", tmp_path / "raw", tmp_path / "r.parquet", hls_copy)


def test_anomaly_folds_on_the_fixture_test_each_recording_once(records):
    manifest = anomaly_folds(records, "all", folds=2, val_fraction=0.3, seed=0)
    report = partition_audit(manifest, group_column="group")
    assert report["tested_once"] and set(report["by_partition"]) == {"fold1", "fold2", "final"}
    for k in (1, 2):
        role = manifest[f"fold{k}"]
        assert (manifest.loc[role.isin(["train", "val"]), "label"] == 0).all()
        assert (manifest.loc[role == "test", "fold"] == k).all()
        assert (role == "val").any() and (role == "train").any()


def test_partition_audit_fails_on_a_leak_and_on_a_unit_tested_twice(records):
    manifest = anomaly_folds(records, "all", folds=2, val_fraction=0.3, seed=0)
    # the normal HS/F_N_RC and its identical copy Mix/H0001 share a group: split them
    leaked = manifest.copy()
    pair = leaked["record"].isin(["HS/F_N_RC", "Mix/H0001"])
    k = 1 if (leaked.loc[pair, "fold1"] == "train").all() else 2
    assert (leaked.loc[pair, f"fold{k}"] == "train").all()
    leaked.loc[leaked.index[pair][0], f"fold{k}"] = "val"
    with pytest.raises(PipelineError, match="leaks"):
        partition_audit(leaked, group_column="group")
    twice = manifest.copy()
    twice.loc[twice.index[twice["fold1"] == "test"][0], "fold2"] = "test"
    with pytest.raises(PipelineError, match="exactly once|leaks"):
        partition_audit(twice, group_column="group")
