"""Threshold maths on validation scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.calibration import calibrate, threshold_from_normal, threshold_youden


def test_percentile_and_mean_std():
    errors = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert threshold_from_normal(errors, "percentile", percentile=50) == 3.0
    assert threshold_from_normal(errors, "percentile", percentile=100) == 5.0
    # mean 3, population std sqrt(2)
    assert threshold_from_normal(errors, "mean_std", k=2) == pytest.approx(3 + 2 * np.sqrt(2))
    with pytest.raises(PipelineError, match="labelled"):
        threshold_from_normal(errors, "youden")
    with pytest.raises(PipelineError, match=r"\[0, 100\]"):
        threshold_from_normal(errors, "percentile", percentile=120)


def test_youden_separates_perfectly_separable_scores():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    t = threshold_youden(labels, scores)
    assert ((scores > t) == labels.astype(bool)).all()


def test_units_and_windows_get_their_own_thresholds():
    frame = pd.DataFrame({
        "unit": ["a", "a", "b", "b"], "window": [0, 1, 0, 1],
        "score": [1.0, 3.0, 5.0, 7.0], "label": 0,
    })
    result = calibrate(frame, {"method": "percentile", "percentile": 100, "aggregate": "mean"})
    assert result["threshold"] == 6.0  # max of unit means 2 and 6
    assert result["threshold_window"] == 7.0
    assert (result["n_val_units"], result["n_val_windows"]) == (2, 4)


def test_gamma_threshold_is_the_fitted_quantile_and_keeps_its_promise_better_on_few_errors():
    from scipy import stats

    rng = np.random.default_rng(0)
    large = rng.gamma(2.0, 1.0, 20000)
    assert threshold_from_normal(large, "gamma", percentile=95) == pytest.approx(
        stats.gamma.ppf(0.95, 2.0), rel=0.03)
    # 10 validation errors: the specificity each threshold achieves on the true distribution
    small_draws = [rng.gamma(2.0, 1.0, 10) for _ in range(200)]
    achieved = {
        method: stats.gamma.cdf([threshold_from_normal(d, method, percentile=95) for d in small_draws], 2.0)
        for method in ("gamma", "percentile")
    }
    assert np.abs(achieved["gamma"] - 0.95).mean() < np.abs(achieved["percentile"] - 0.95).mean()
    assert achieved["gamma"].mean() > achieved["percentile"].mean()


def test_gamma_needs_a_spread_of_errors():
    with pytest.raises(PipelineError, match="at least 3 distinct"):
        threshold_from_normal(np.array([0.1, 0.1]), "gamma")


def test_threshold_says_what_it_promises():
    frame = pd.DataFrame({"unit": list("abcdefghij"), "label": 0, "score": np.linspace(0.1, 1.0, 10)})
    result = calibrate(frame, {"method": "gamma", "percentile": 90, "aggregate": "mean"})
    assert result["specificity_target"] == 0.9
