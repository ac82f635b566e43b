"""The one resampling scheme of evaluate, the semi-supervised summary and compare."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.bootstrap import (
    BLOCK, draw_counts, percentile_interval, resample_weights, resampled_aurocs,
)


def test_resampled_aurocs_match_sklearn_with_sample_weights_and_ties():
    rng = np.random.default_rng(1)
    y, s = rng.integers(0, 2, 60), np.round(rng.normal(size=60), 1)  # many ties
    w = rng.integers(0, 4, size=(3, 60)).astype(float)
    for row, weights in zip(resampled_aurocs(y, s, w), w, strict=True):
        assert row == pytest.approx(roc_auc_score(y, s, sample_weight=weights))


def test_blocks_draw_what_one_call_draws():
    blocks = list(resample_weights(2 * BLOCK + 7, seed=3, groups=np.arange(53)))
    assert [len(b) for b in blocks] == [BLOCK, BLOCK, 7]
    np.testing.assert_array_equal(np.concatenate(blocks),
                                  draw_counts(np.random.default_rng(3), 53, 2 * BLOCK + 7))


def test_groups_are_drawn_whole_and_classes_keep_their_counts():
    groups = np.repeat(["p3", "p1", "p2"], [2, 3, 1])
    for weights in resample_weights(300, seed=0, groups=groups):
        assert (weights.sum(axis=1) > 0).all()
        for g in set(groups):  # a group's units weigh the same: the group was drawn whole
            assert (weights[:, groups == g] == weights[:, groups == g][:, :1]).all()
    labels = np.array([1, 1, 0, 0, 0])
    for weights in resample_weights(300, seed=0, labels=labels):
        assert (weights[:, labels == 1].sum(axis=1) == 2).all()
        assert (weights[:, labels == 0].sum(axis=1) == 3).all()


def test_percentile_interval_skips_undefined_resamples_and_says_so(caplog):
    values = np.r_[np.arange(101.0), np.nan, np.inf]
    assert percentile_interval(values, 0.9, "auroc") == pytest.approx((5.0, 95.0))
    assert "2 of 103 resamples left it undefined" in caplog.text
    assert np.isnan(percentile_interval(np.full(4, np.nan), 0.95)).all()
