"""Metric maths against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.metrics import (
    aggregate_units, binary_report, bootstrap_auroc_ci, detection_by_type, error_separation,
    pr_table, resampled_aurocs, roc_table,
)

Y = np.array([0, 0, 0, 0, 1, 1, 1])
S = np.array([0.1, 0.2, 0.35, 0.6, 0.3, 0.7, 0.9])


def test_binary_report_by_hand():
    r = binary_report(Y, S, threshold=0.5)
    # flagged: 0.6 (normal: fp), 0.7, 0.9 (tp); missed 0.3 (fn); tn = 3
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (2, 1, 3, 1)
    assert r["sensitivity"] == pytest.approx(2 / 3)
    assert r["specificity"] == pytest.approx(3 / 4)
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert r["accuracy"] == pytest.approx(5 / 7)
    # AUROC = share of (abnormal, normal) pairs ranked right: 0.3 beats 0.1 and 0.2 only,
    # 0.7 and 0.9 beat all four -> (2 + 4 + 4) / 12
    assert r["auroc"] == pytest.approx(10 / 12)
    assert 0.5 <= r["pauc"] <= 1.0
    assert (r["n_normal"], r["n_abnormal"]) == (4, 3)


def test_perfect_ranking_scores_one():
    r = binary_report(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), threshold=0.5)
    assert r["auroc"] == r["pauc"] == r["auprc"] == 1.0
    assert r["sensitivity"] == r["specificity"] == 1.0


def test_one_class_leaves_ranking_metrics_undefined():
    r = binary_report(np.array([1, 1]), np.array([0.2, 0.8]), threshold=0.5)
    assert np.isnan(r["auroc"]) and np.isnan(r["specificity"])
    assert r["sensitivity"] == 0.5


def test_separation_is_the_ratio_of_class_means():
    e = error_separation(np.array([0, 0, 1, 1]), np.array([0.01, 0.03, 0.08, 0.12]))
    assert (e["mean_error_normal"], e["mean_error_abnormal"]) == pytest.approx((0.02, 0.10))
    assert e["separation"] == pytest.approx(5.0)


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    s = np.r_[rng.normal(0, 1, 40), rng.normal(1, 1, 40)]
    low, high = bootstrap_auroc_ci(y, s, n_boot=300, seed=7)
    point = binary_report(y, s, 0.5)["auroc"]
    assert low < point < high
    assert (low, high) == bootstrap_auroc_ci(y, s, n_boot=300, seed=7)


def test_roc_table_is_finite_and_monotone():
    roc = roc_table(Y, S)
    assert np.isfinite(roc["threshold"]).all()
    assert (np.diff(roc["fpr"]) >= 0).all() and roc["tpr"].iloc[-1] == 1.0


def test_detection_by_type_counts_abnormal_units_only():
    frame = pd.DataFrame({
        "label": [1, 1, 1, 0], "score": [0.9, 0.1, 0.8, 0.9],
        "heart_type": ["S3", "S3", "Normal", "Normal"], "lung_type": [None, None, "Wheezing", None],
    })
    rates = detection_by_type(frame, ["heart_type", "lung_type"], threshold=0.5)
    assert rates == {
        "heart_type:S3": {"n": 2, "detected": 1, "rate": 0.5},
        "lung_type:Wheezing": {"n": 1, "detected": 1, "rate": 1.0},
    }


def test_aggregate_units():
    frame = pd.DataFrame({"unit": ["a", "a", "b"], "window": [0, 1, 0],
                          "score": [1.0, 3.0, 10.0], "label": [0, 0, 1]})
    assert aggregate_units(frame, "mean")["score"].tolist() == [2.0, 10.0]
    assert aggregate_units(frame, "max")["score"].tolist() == [3.0, 10.0]
    with pytest.raises(ValueError):
        aggregate_units(frame, "mode")


def test_pr_table_by_hand():
    pr = pr_table(Y, S)
    # at the top threshold only 0.9 is flagged: precision 1, recall 1/3
    top = pr.loc[pr["threshold"] == 0.9].iloc[0]
    assert (top["precision"], top["recall"]) == (1.0, pytest.approx(1 / 3))
    assert pr["recall"].iloc[0] == 1.0 and np.isfinite(pr["threshold"]).all()


def test_resampled_aurocs_match_sklearn_on_the_repeated_samples():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 30)
    s = np.round(rng.normal(y, 1.0), 1)  # rounded: ties between and within classes
    weights = rng.integers(0, 4, size=(25, 30))
    expected = [roc_auc_score(np.repeat(y, w), np.repeat(s, w)) for w in weights]
    np.testing.assert_allclose(resampled_aurocs(y, s, weights), expected, rtol=1e-12)
    assert np.isnan(resampled_aurocs(y, s, (y == 1)[None, :].astype(int))[0])  # one class only


def test_bootstrap_interval_agrees_with_the_per_resample_loop():
    rng = np.random.default_rng(5)
    y = np.r_[np.zeros(60), np.ones(30)].astype(int)
    s = np.r_[rng.normal(0, 1, 60), rng.normal(1, 1, 30)]
    loop = np.random.default_rng(0)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    values = []
    for _ in range(1000):
        idx = np.concatenate([loop.choice(pos, len(pos)), loop.choice(neg, len(neg))])
        values.append(roc_auc_score(y[idx], s[idx]))
    low, high = bootstrap_auroc_ci(y, s, n_boot=1000, seed=1)
    # another random stream, the same distribution: the bounds agree to Monte Carlo noise
    assert low == pytest.approx(np.percentile(values, 2.5), abs=0.02)
    assert high == pytest.approx(np.percentile(values, 97.5), abs=0.02)


def test_cluster_bootstrap_widens_the_interval_when_units_move_together():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(20), np.ones(20)].astype(int)
    s = np.r_[rng.normal(0, 1, 20), rng.normal(1, 1, 20)]
    copies = 5  # every unit five times over: five copies are one group, not five samples
    y5, s5, groups = np.repeat(y, copies), np.repeat(s, copies), np.repeat(np.arange(40), copies)
    naive = bootstrap_auroc_ci(y5, s5, n_boot=500, seed=0)
    cluster = bootstrap_auroc_ci(y5, s5, n_boot=500, seed=0, groups=groups)
    alone = bootstrap_auroc_ci(y, s, n_boot=500, seed=0, groups=np.arange(40))
    assert cluster[1] - cluster[0] > 1.8 * (naive[1] - naive[0])
    assert cluster == pytest.approx(alone, abs=0.03)  # the copies add nothing
    assert cluster == bootstrap_auroc_ci(y5, s5, n_boot=500, seed=0, groups=groups)
