"""Bounded memory: arrays streamed to disk by rows, splits read from memory maps, scaling in place."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.io import npz_row_writer, write_npz
from pipeline.scalers import Scaler
from pipeline.studies import npz_member


def test_npz_member_maps_an_uncompressed_archive_and_loads_a_compressed_one(tmp_path):
    x = np.random.default_rng(0).random((6, 1, 4, 5)).astype(np.float32)
    write_npz(tmp_path / "plain.npz", x=x, labels=np.arange(6))
    np.savez_compressed(tmp_path / "packed.npz", x=x)
    mapped = npz_member(tmp_path / "plain.npz", "x")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, x)
    np.testing.assert_array_equal(npz_member(tmp_path / "plain.npz", "labels"), np.arange(6))
    rows = np.asarray(mapped[[4, 1]])  # a split: its rows, read into an array of its own
    assert rows.flags.writeable
    np.testing.assert_array_equal(rows, x[[4, 1]])
    np.testing.assert_array_equal(npz_member(tmp_path / "packed.npz", "x"), x)


@pytest.mark.parametrize("kind", ["minmax", "standard", "none"])
def test_scaling_in_place_gives_the_same_numbers_without_a_copy(kind):
    x = np.random.default_rng(1).normal(3, 2, (50, 8)).astype(np.float32)
    scaler = Scaler(kind).fit(x)
    expected = scaler.transform(x)
    assert expected is not x
    scaled = scaler.transform(x, in_place=True)
    assert scaled is x and scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, expected)
    with pytest.raises(ValueError, match="float32"):
        scaler.transform(np.zeros((2, 8)), in_place=True)


def test_npz_row_writer_gives_write_npz_bytes_in_any_row_order(tmp_path):
    x = np.random.default_rng(2).random((23, 1, 3, 4)).astype(np.float32)
    write_npz(tmp_path / "whole.npz", x=x)
    order = np.random.default_rng(3).permutation(len(x))
    with npz_row_writer(tmp_path / "rows.npz", "x", x.shape) as write:
        for part in np.array_split(order, 4):
            write(part, x[part])
    assert (tmp_path / "rows.npz").read_bytes() == (tmp_path / "whole.npz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.npz", "whole.npz"]  # no leftovers


def test_npz_row_writer_leaves_nothing_when_rows_are_missing(tmp_path):
    with pytest.raises(ValueError, match="1 of 3 rows"), \
            npz_row_writer(tmp_path / "x.npz", "x", (3, 2)) as write:
        write(np.array([0, 2]), np.ones((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_scoring_batches_follow_a_memory_budget():
    from pipeline.training import MAX_PREDICT_BATCH, PREDICT_INPUT_BYTES, predict_batch_size

    assert predict_batch_size(np.zeros((10, 40), np.float32)) == MAX_PREDICT_BATCH  # small rows
    log_mels = np.zeros((2000, 1, 64, 126), np.float32)
    assert predict_batch_size(log_mels) * log_mels[0].nbytes <= PREDICT_INPUT_BYTES
    assert predict_batch_size(log_mels) == 130
    assert predict_batch_size(np.zeros((3, 1 << 24), np.float32)) == 1  # never zero
