"""ICBHI challenge score against hand-worked examples, and the per-group breakdown."""

from __future__ import annotations

import math

import pytest

from pipeline.metrics import icbhi_score, per_group_metrics

# Four classes: 0 normal, 1 crackle, 2 wheeze, 3 both.
Y_TRUE_4 = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3]
Y_PRED_4 = [0, 0, 0, 3, 1, 2, 0, 2, 2, 1]
# Binary view of the same cycles: 1 = crackle and/or wheeze.
Y_TRUE_2 = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
Y_PRED_2 = [0, 0, 0, 1, 1, 1, 0, 1, 1, 1]


def test_icbhi_score_four_classes_hand_worked():
    # Normal cycles: 4, of which the first 3 are predicted normal -> Sp = 3/4 = 0.75.
    # Abnormal cycles: 6. Exact class hits: crackle->crackle (1), wheeze->wheeze (2) = 3;
    # crackle->wheeze and both->crackle are abnormal but the wrong class, crackle->normal a
    # miss -> Se = 3/6 = 0.5.  Score = (0.5 + 0.75) / 2 = 0.625.
    assert icbhi_score(Y_TRUE_4, Y_PRED_4) == pytest.approx(
        {"sensitivity": 0.5, "specificity": 0.75, "score": 0.625}
    )


def test_icbhi_score_binary_hand_worked():
    # Sp = 3/4 as above. Se: 6 abnormal, only the one predicted normal is missed -> 5/6.
    # Score = (5/6 + 3/4) / 2 = 19/24 = 0.791666...
    assert icbhi_score(Y_TRUE_2, Y_PRED_2) == pytest.approx(
        {"sensitivity": 5 / 6, "specificity": 0.75, "score": 19 / 24}
    )


def test_icbhi_score_other_normal_label():
    # Same binary example with the labels swapped: 1 now means normal.
    swapped = icbhi_score([1 - y for y in Y_TRUE_2], [1 - y for y in Y_PRED_2], normal_label=1)
    assert swapped == pytest.approx({"sensitivity": 5 / 6, "specificity": 0.75, "score": 19 / 24})


def test_icbhi_score_is_nan_without_abnormal_cycles():
    result = icbhi_score([0, 0], [0, 1])
    assert result["specificity"] == 0.5
    assert math.isnan(result["sensitivity"]) and math.isnan(result["score"])


def test_icbhi_score_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="alike"):
        icbhi_score([0, 1], [0])


def test_per_group_metrics_by_device():
    devices = ["Meditron"] * 5 + ["AKGC417L"] * 5
    table = per_group_metrics(Y_TRUE_4, Y_PRED_4, devices).set_index("group")
    assert table.index.tolist() == ["AKGC417L", "Meditron"]
    # AKGC417L: cycles 6-10, true [1, 1, 2, 2, 3], pred [2, 0, 2, 2, 1] -> Se 2/5, no normals.
    akg = table.loc["AKGC417L"]
    assert (akg.n, akg.n_normal, akg.n_abnormal) == (5, 0, 5)
    assert akg.sensitivity == pytest.approx(0.4) and math.isnan(akg.specificity)
    # Meditron: true [0, 0, 0, 0, 1], pred [0, 0, 0, 3, 1] -> Sp 3/4, Se 1/1, accuracy 4/5.
    meditron = table.loc["Meditron"]
    assert meditron[["specificity", "sensitivity", "score", "accuracy"]].tolist() == pytest.approx(
        [0.75, 1.0, 0.875, 0.8]
    )
