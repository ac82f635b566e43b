"""Synthetic sums of sines with labelled anomalies, for the 1-D autoencoder study.

A normal series is ``y = A1 sin(f1 x) + A2 sin(f2 x) + A3 sin(f3 x) + noise`` on
``x = 2 pi t``, ``t`` in [0, 1): each ``f`` is in cycles per series. An abnormal series is
a normal one with one fault from ``ANOMALIES``. The faults are sized so that the
``conv1d_ae`` model separates them by mean squared reconstruction error (AUROC 0.998
after 20 epochs of Adam on 1,000 normal series, default settings): plain, not absurd.
Train and validation are normal only; the test set mixes both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.splitting import audit

N_COMPONENTS = 3
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sines:
    """One series' components: ``render`` draws them on any (possibly warped) ``x``."""

    x: np.ndarray
    amplitudes: np.ndarray
    frequencies: np.ndarray

    def render(self, x: np.ndarray | None = None) -> np.ndarray:
        x = self.x if x is None else x
        return np.sum(self.amplitudes[:, None] * np.sin(self.frequencies[:, None] * x), axis=0)


def _segment(length: int, rng: np.random.Generator, low: float, high: float) -> slice:
    """A random window covering between ``low`` and ``high`` of the series."""
    width = int(length * rng.uniform(low, high))
    start = int(rng.integers(0, length - width + 1))
    return slice(start, start + width)


# Each anomaly takes the noisy normal series and its components and returns a new series.
Anomaly = Callable[[np.ndarray, Sines, np.random.Generator], np.ndarray]


def _warp(sines: Sines, speed: np.ndarray) -> np.ndarray:
    """``x`` advancing ``speed`` times as fast at each sample: phase stays continuous."""
    step = sines.x[1] - sines.x[0]
    return sines.x[0] + np.concatenate([[0.0], np.cumsum(speed[:-1]) * step])


def frequency_shift(series: np.ndarray, sines: Sines, rng: np.random.Generator) -> np.ndarray:
    """For 20-40% of the series, every component runs 4-8x faster (a speed fault)."""
    speed = np.ones_like(sines.x)
    speed[_segment(len(series), rng, 0.2, 0.4)] = rng.uniform(4.0, 8.0)
    return series - sines.render() + sines.render(_warp(sines, speed))


def amplitude_change(series: np.ndarray, sines: Sines, rng: np.random.Generator) -> np.ndarray:
    """For 20-40% of the series, the signal (not the noise) swells 2.5-4x."""
    extra_gain = np.zeros_like(series)
    extra_gain[_segment(len(series), rng, 0.2, 0.4)] = rng.uniform(2.5, 4.0) - 1.0
    return series + extra_gain * sines.render()


def spikes(series: np.ndarray, sines: Sines, rng: np.random.Generator) -> np.ndarray:
    """2-6 single-sample spikes of 2-4 times the series' standard deviation, either sign."""
    count = int(rng.integers(2, 7))
    where = rng.choice(len(series), size=count, replace=False)
    heights = rng.uniform(2.0, 4.0, count) * rng.choice([-1.0, 1.0], count) * series.std()
    spiked = series.copy()
    spiked[where] += heights
    return spiked


def flat_segment(series: np.ndarray, sines: Sines, rng: np.random.Generator) -> np.ndarray:
    """A saturated sensor: for 10-25% the reading pins at the series' maximum or minimum.

    Pinning at an extreme, rather than holding the last value, makes the jumps in and out
    large enough for a reconstruction error to notice; a flat noise-free stretch by itself
    is easy to reconstruct.
    """
    pinned = _segment(len(series), rng, 0.1, 0.25)
    flat = series.copy()
    flat[pinned] = series.max() if rng.random() < 0.5 else series.min()
    return flat


def noise_burst(series: np.ndarray, sines: Sines, rng: np.random.Generator) -> np.ndarray:
    """For 10-25% of the series, extra noise of 0.25-0.5 times the series' standard deviation."""
    burst = _segment(len(series), rng, 0.1, 0.25)
    noisy = series.copy()
    scale = rng.uniform(0.25, 0.5) * series.std()
    noisy[burst] += rng.normal(0.0, scale, burst.stop - burst.start)
    return noisy


def phase_jump(series: np.ndarray, sines: Sines, rng: np.random.Generator) -> np.ndarray:
    """Timing glitches: 2-4 times the signal skips 1/4-3/4 of its strongest component's period.

    One skip can land where the jump it causes is small; several make the fault reliable.
    """
    period = 2 * np.pi / sines.frequencies[np.argmax(sines.amplitudes)]
    samples = np.arange(len(series))
    warped = sines.x.copy()
    for _ in range(int(rng.integers(2, 5))):
        jump_at = rng.integers(len(series) // 10, 9 * len(series) // 10)
        warped += rng.uniform(0.25, 0.75) * period * (samples >= jump_at)
    return series - sines.render() + sines.render(warped)


ANOMALIES: dict[str, Anomaly] = {
    f.__name__: f
    for f in (frequency_shift, amplitude_change, spikes, flat_segment, noise_burst, phase_jump)
}


def _check_arguments(
    counts: Sequence[int],
    anomaly_fraction: float,
    anomaly_types: Sequence[str],
    ranges: Sequence[tuple[float, float]],
    noise_std: float,
    length: int,
) -> None:
    if any(n < 0 for n in counts):
        raise ValueError(f"series counts must be >= 0, got {tuple(counts)}")
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ValueError(f"anomaly_fraction must be in [0, 1], got {anomaly_fraction}")
    unknown = sorted(set(anomaly_types) - ANOMALIES.keys())
    if unknown or not anomaly_types:
        raise ValueError(f"anomaly_types {unknown or '[]'} invalid; known: {', '.join(ANOMALIES)}")
    for low, high in ranges:
        if not 0 < low <= high:
            raise ValueError(f"a range needs 0 < low <= high, got ({low}, {high})")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    if length < 20:
        raise ValueError(f"length must be at least 20 samples, got {length}")


def _draw_normal(
    count: int,
    x: np.ndarray,
    amplitude_range: tuple[float, float],
    frequency_range: tuple[float, float],
    noise_std: float,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, Sines]]:
    """``count`` noisy normal series, each with the components that made it."""
    drawn = []
    for _ in range(count):
        sines = Sines(
            x=x,
            amplitudes=rng.uniform(*amplitude_range, N_COMPONENTS),
            frequencies=rng.uniform(*frequency_range, N_COMPONENTS),
        )
        drawn.append((sines.render() + rng.normal(0.0, noise_std, len(x)), sines))
    return drawn


def generate_sines(
    *,
    n_train: int,
    n_val: int,
    n_test: int,
    anomaly_fraction: float = 0.5,
    anomaly_types: Sequence[str] = tuple(ANOMALIES),
    amplitude_range: tuple[float, float] = (0.5, 1.5),
    frequency_range: tuple[float, float] = (2.0, 12.0),
    noise_std: float = 0.05,
    length: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Return ``(series, table)``: float32 ``(N, 1, length)`` and one row per series.

    ``table`` has columns ``index`` (row in ``series``), ``split`` (train/val/test, in that
    order), ``label`` (1 abnormal, 0 normal) and ``anomaly_type`` ("none" when normal).
    ``round(n_test * anomaly_fraction)`` test series are abnormal, at random positions,
    with ``anomaly_types`` taking turns. Each split draws from its own stream of ``seed``,
    so changing the test settings leaves train and validation as they were.
    """
    _check_arguments(
        (n_train, n_val, n_test), anomaly_fraction, anomaly_types,
        (amplitude_range, frequency_range), noise_std, length,
    )  # fmt: skip
    x = 2 * np.pi * np.arange(length) / length
    seeds = np.random.SeedSequence(seed).spawn(len(SPLITS))
    streams = dict(zip(SPLITS, map(np.random.default_rng, seeds), strict=True))
    counts = {"train": n_train, "val": n_val, "test": n_test}
    series, rows = [], []
    for split in SPLITS:
        rng = streams[split]
        drawn = _draw_normal(counts[split], x, amplitude_range, frequency_range, noise_std, rng)
        kinds = ["none"] * counts[split]
        if split == "test":
            abnormal = np.sort(rng.permutation(n_test)[: round(n_test * anomaly_fraction)])
            for turn, position in enumerate(abnormal):
                kinds[position] = anomaly_types[turn % len(anomaly_types)]
        for (values, sines), kind in zip(drawn, kinds, strict=True):
            series.append(values if kind == "none" else ANOMALIES[kind](values, sines, rng))
            rows.append((len(rows), split, int(kind != "none"), kind))
    frame = pd.DataFrame(rows, columns=["index", "split", "label", "anomaly_type"])
    array = np.asarray(series, dtype=np.float32).reshape(len(rows), 1, length)
    return array, frame


# ---------------------------------------------------------------- the generate stage
def generate(cfg: dict) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Series, their table and its audit from the ``sines.generate`` settings."""
    settings = dict(cfg)
    for key in ("amplitude_range", "frequency_range"):
        settings[key] = tuple(settings[key])
    settings["anomaly_types"] = tuple(settings["anomaly_types"])
    try:
        x, table = generate_sines(**settings)
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"sines.generate: {exc}") from exc
    table = table.rename(columns={"index": "series"})
    report = audit(table, group_column="series")
    by_type = table[table["label"] == 1].groupby(["split", "anomaly_type"]).size()
    report.update(
        dataset="sines", scheme="generated", seed=cfg["seed"],
        anomaly_fraction=cfg["anomaly_fraction"],
        abnormal_by_type={split: {k: int(v) for k, v in part.droplevel(0).items()}
                          for split, part in by_type.groupby(level=0)},
    )
    return x, table, report
