"""The one resampling scheme behind every interval: evaluate's, the semi-supervised
summary's and ``pipeline compare``'s.

A resample is a row of unit weights (how often each unit is drawn). With ``groups`` (a
patient, a family of related recordings) whole groups are drawn with replacement, so units
that move together are resampled together; otherwise positives and negatives are drawn
separately (stratified). Rows come in blocks, which bounds memory at ``BLOCK`` x units
floats; the blocks draw the same numbers as one call would (``draw_counts`` in sequence).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
BLOCK = 100  # resamples weighed at once (fixed: the same bytes whatever the count)


def draw_counts(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """(draws, n): how often each of ``n`` items is drawn in each resample of size ``n``."""
    picks = rng.integers(0, n, size=(draws, n)) + n * np.arange(draws)[:, None]
    return np.bincount(picks.ravel(), minlength=draws * n).reshape(draws, n)


def resample_weights(n_boot: int, seed: int, *, groups: np.ndarray | None = None,
                     labels: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Blocks of (draws, units) weights: whole ``groups`` drawn with replacement, or, without
    groups, ``labels`` 1 and 0 drawn separately. One of the two must be given."""
    rng = np.random.default_rng(seed)
    if groups is not None:
        codes, names = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
    else:
        pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    for start in range(0, n_boot, BLOCK):
        draws = min(BLOCK, n_boot - start)
        if groups is not None:
            yield draw_counts(rng, len(names), draws)[:, codes]
            continue
        weights = np.zeros((draws, len(labels)))
        weights[:, pos] = draw_counts(rng, len(pos), draws)
        weights[:, neg] = draw_counts(rng, len(neg), draws)
        yield weights


def resampled_aurocs(y_true: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of each resample: row ``b`` of ``weights`` (B, n) counts how often each unit is drawn.

    The scores are ranked once; a resample's Mann-Whitney count is then read from cumulative
    weights of the negatives below (ties count half) each positive, for all rows at once.
    NaN where a resample holds a single class.
    """
    order = np.argsort(scores, kind="stable")
    ranked, positive = scores[order], y_true[order] == 1
    negatives = ranked[~positive]
    w = np.asarray(weights, dtype=float)[:, order]
    w_pos, w_neg = w[:, positive], w[:, ~positive]
    cum = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w_neg, axis=1)], axis=1)
    below = np.searchsorted(negatives, ranked[positive], side="left")
    up_to = np.searchsorted(negatives, ranked[positive], side="right")
    beaten = cum[:, below] + 0.5 * (cum[:, up_to] - cum[:, below])  # (B, n_pos)
    pairs = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, (w_pos * beaten).sum(axis=1) / pairs, np.nan)


def percentile_interval(values: np.ndarray, level: float, what: str | None = None) -> tuple[float, float]:
    """The ``level`` percentile interval of the finite ``values`` (a resample without both
    classes has no AUROC or no sensitivity; with ``what``, how many were skipped is logged)."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if what is not None and 0 < len(finite) < len(values):
        log.warning("%s: %d of %d resamples left it undefined (one class only): skipped",
                    what, len(values) - len(finite), len(values))
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
