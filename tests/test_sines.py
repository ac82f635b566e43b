"""Synthetic sines: determinism, the index frame, and that every anomaly shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.datasets.sines import ANOMALIES, Sines, generate_sines

SMALL = {"n_train": 8, "n_val": 4, "n_test": 24, "length": 200}


def test_same_seed_same_data_other_seed_other_data():
    series, frame = generate_sines(**SMALL, seed=5)
    again, frame_again = generate_sines(**SMALL, seed=5)
    other, frame_other = generate_sines(**SMALL, seed=6)
    np.testing.assert_array_equal(series, again)
    pd.testing.assert_frame_equal(frame, frame_again)
    assert not np.allclose(series, other)
    assert not frame["anomaly_type"].equals(frame_other["anomaly_type"])


def test_array_and_frame_layout():
    series, frame = generate_sines(**SMALL, anomaly_fraction=0.5, seed=0)
    assert series.dtype == np.float32 and series.shape == (36, 1, 200)
    assert np.isfinite(series).all()
    assert list(frame.columns) == ["index", "split", "label", "anomaly_type"]
    np.testing.assert_array_equal(frame["index"], np.arange(36))
    assert frame["split"].tolist() == ["train"] * 8 + ["val"] * 4 + ["test"] * 24
    np.testing.assert_array_equal(frame["label"], (frame["anomaly_type"] != "none").astype(int))


def test_train_and_val_normal_test_mixed_with_types_taking_turns():
    _, frame = generate_sines(**SMALL, anomaly_fraction=0.5, seed=0)
    assert (frame.loc[frame["split"] != "test", "label"] == 0).all()
    test = frame[frame["split"] == "test"]
    assert test["label"].sum() == 12
    abnormal_types = test.loc[test["label"] == 1, "anomaly_type"].tolist()
    assert abnormal_types == [*ANOMALIES] * 2  # six types, each twice, in turn
    assert test["label"].tolist() != sorted(test["label"])  # abnormal ones are spread out


def test_chosen_types_and_fraction_are_respected():
    _, frame = generate_sines(
        **SMALL, anomaly_fraction=0.25, anomaly_types=["spikes", "phase_jump"], seed=1
    )
    counts = frame["anomaly_type"].value_counts()
    assert counts.to_dict() == {"none": 30, "spikes": 3, "phase_jump": 3}


def test_train_and_val_do_not_depend_on_test_settings():
    few, frame = generate_sines(**SMALL, seed=2)
    many, _ = generate_sines(**{**SMALL, "n_test": 50}, anomaly_fraction=0.1, seed=2)
    train_val = frame["split"] != "test"
    np.testing.assert_array_equal(few[train_val], many[: train_val.sum()])


def test_normal_series_are_three_sines_within_the_frequency_range():
    series, _ = generate_sines(
        n_train=20, n_val=0, n_test=0, noise_std=0.0, amplitude_range=(0.5, 1.5),
        frequency_range=(3.0, 6.0), length=1000, seed=3,
    )  # fmt: skip
    # A Hann window keeps the leakage of non-integer frequencies within two bins.
    power = np.abs(np.fft.rfft(series[:, 0] * np.hanning(1000), axis=1)) ** 2
    in_band = power[:, 1:9].sum(axis=1) / power.sum(axis=1)  # 3-6 cycles per series
    assert (in_band > 0.999).all()
    peak = np.abs(series[:, 0]).max(axis=1)
    assert (peak <= 4.5).all() and (peak > 0.5).all()  # at most the sum of three amplitudes


@pytest.mark.parametrize("name", ANOMALIES)
def test_each_anomaly_visibly_changes_the_series(name):
    rng = np.random.default_rng(4)
    x = 2 * np.pi * np.arange(1000) / 1000
    sines = Sines(x=x, amplitudes=np.array([1.0, 0.7, 0.5]), frequencies=np.array([3.0, 7.0, 11.0]))
    normal = sines.render() + rng.normal(0.0, 0.05, len(x))
    before = normal.copy()
    abnormal = ANOMALIES[name](normal, sines, rng)
    np.testing.assert_array_equal(normal, before)  # the input is left as it was
    assert abnormal.shape == normal.shape and np.isfinite(abnormal).all()
    assert np.abs(abnormal - normal).max() > 0.5 * normal.std()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"anomaly_types": ["dropout"]}, "dropout"),
        ({"anomaly_types": []}, "anomaly_types"),
        ({"anomaly_fraction": 1.5}, "anomaly_fraction"),
        ({"n_val": -1}, "counts"),
        ({"frequency_range": (5.0, 2.0)}, "range"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"length": 10}, "length"),
    ],
)
def test_invalid_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        generate_sines(**{**SMALL, **change})
