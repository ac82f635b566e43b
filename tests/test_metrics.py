"""Metric maths against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.metrics import (
    binary_report, bootstrap_auroc_ci, detection_by_type, error_separation, pr_table, roc_table,
)
from pipeline.scoring import aggregate_units

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
