"""Reading splits without extra copies: memory-mapped arrays, scaling in place."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.io import write_npz
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
