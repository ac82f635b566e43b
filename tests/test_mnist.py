"""MNIST archives: IDX parsing, corruption handling, checksums and the study's splits."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.datasets.mnist import (
    ARCHIVES,
    novelty_split,
    parse_idx,
    read_mnist,
    verify_md5,
    verify_mnist,
)
from pipeline.errors import PipelineError
from pipeline.splitting import stratified_holdout
from tests.conftest import SHARED_DATASETS

REAL_MNIST = SHARED_DATASETS / "mnist"


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Uncompressed IDX: magic, one big-endian uint32 per dimension, raw uint8 values."""
    magic = 0x0800 | array.ndim if magic is None else magic
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path: Path, raw: bytes) -> Path:
    path.write_bytes(gzip.compress(raw))
    return path


def fake_mnist(folder: Path, n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for key, array in arrays.items():
        write_gz(folder / ARCHIVES[key].filename, idx_bytes(array))
    return arrays


def assert_names_file(excinfo: pytest.ExceptionInfo[PipelineError], path: Path) -> None:
    assert excinfo.value.path == path
    assert str(path) in str(excinfo.value)


# ---------------------------------------------------------------- IDX parsing
def test_parse_idx_reads_images_and_labels(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28) % 256
    labels = np.array([7, 3, 0], dtype=np.uint8)
    parsed_images = parse_idx(write_gz(tmp_path / "img.gz", idx_bytes(images)))
    parsed_labels = parse_idx(write_gz(tmp_path / "lab.gz", idx_bytes(labels)))
    assert parsed_images.dtype == np.uint8 and parsed_images.shape == (2, 28, 28)
    np.testing.assert_array_equal(parsed_images, images)
    np.testing.assert_array_equal(parsed_labels, labels)
    assert parsed_labels.flags.writeable


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (idx_bytes(np.zeros(3, np.uint8), magic=0x00000802), "magic number 0x00000802"),
        (idx_bytes(np.zeros(3, np.uint8), magic=0x00000901), "magic number 0x00000901"),
        (idx_bytes(np.zeros(3, np.uint8))[:-1], "payload holds 2 bytes"),
        (idx_bytes(np.zeros(3, np.uint8)) + b"\0", "payload holds 4 bytes"),
        (b"\0\0\x08", "too short for an IDX header"),
        (struct.pack(">II", 0x803, 5), "header cut short"),
    ],
    ids=["bad-type", "bad-magic", "short-payload", "long-payload", "no-magic", "short-header"],
)
def test_parse_idx_rejects_malformed_content(tmp_path, raw, message):
    path = write_gz(tmp_path / "bad.gz", raw)
    with pytest.raises(PipelineError, match=message) as excinfo:
        parse_idx(path)
    assert_names_file(excinfo, path)


def test_parse_idx_rejects_truncated_gzip(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(PipelineError, match="corrupt or truncated gzip") as excinfo:
        parse_idx(path)
    assert_names_file(excinfo, path)


def test_parse_idx_rejects_uncompressed_file(tmp_path):
    path = tmp_path / "raw.gz"
    path.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(PipelineError, match="corrupt or truncated gzip") as excinfo:
        parse_idx(path)
    assert_names_file(excinfo, path)


def test_parse_idx_rejects_missing_file(tmp_path):
    with pytest.raises(PipelineError, match="not found") as excinfo:
        parse_idx(tmp_path / "absent.gz")
    assert_names_file(excinfo, tmp_path / "absent.gz")


# ---------------------------------------------------------------- checksums
def test_verify_md5_accepts_match_and_rejects_mismatch(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"mnist")
    verify_md5(path, hashlib.md5(b"mnist").hexdigest().upper())  # case does not matter
    with pytest.raises(PipelineError, match="does not match") as excinfo:
        verify_md5(path, hashlib.md5(b"other").hexdigest())
    assert_names_file(excinfo, path)


def test_verify_mnist_names_the_archive_at_fault(tmp_path):
    fake_mnist(tmp_path)  # right names, wrong content
    with pytest.raises(PipelineError, match="md5") as excinfo:
        verify_mnist(tmp_path)
    assert excinfo.value.path.parent == tmp_path
    assert excinfo.value.path.name in {a.filename for a in ARCHIVES.values()}


# ---------------------------------------------------------------- read_mnist
def test_read_mnist_returns_the_four_arrays(tmp_path):
    written = fake_mnist(tmp_path)
    arrays = read_mnist(tmp_path)
    assert arrays.keys() == written.keys()
    for key in written:
        np.testing.assert_array_equal(arrays[key], written[key])


def test_read_mnist_rejects_count_mismatch(tmp_path):
    fake_mnist(tmp_path)
    labels_path = tmp_path / ARCHIVES["test_labels"].filename
    write_gz(labels_path, idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(PipelineError, match="3 labels but .* holds 4 images") as excinfo:
        read_mnist(tmp_path)
    assert_names_file(excinfo, labels_path)


def test_read_mnist_rejects_wrong_image_shape(tmp_path):
    fake_mnist(tmp_path)
    images_path = tmp_path / ARCHIVES["train_images"].filename
    write_gz(images_path, idx_bytes(np.zeros((6, 28, 27), np.uint8)))
    with pytest.raises(PipelineError, match=r"\(28, 27\)") as excinfo:
        read_mnist(tmp_path)
    assert_names_file(excinfo, images_path)


def test_read_mnist_rejects_label_out_of_range(tmp_path):
    fake_mnist(tmp_path)
    labels_path = tmp_path / ARCHIVES["train_labels"].filename
    write_gz(labels_path, idx_bytes(np.array([0, 1, 2, 3, 4, 10], np.uint8)))
    with pytest.raises(PipelineError, match="label 10 outside") as excinfo:
        read_mnist(tmp_path)
    assert_names_file(excinfo, labels_path)


# ---------------------------------------------------------------- splits
def test_stratified_holdout_sizes_balance_and_determinism():
    labels = np.repeat(np.arange(10), [600 + 20 * d for d in range(10)])  # unequal classes
    train_idx, val_idx = stratified_holdout(labels, n_val=len(labels) // 5, seed=3)
    assert len(val_idx) == len(labels) // 5
    assert len(train_idx) + len(val_idx) == len(labels)
    assert np.intersect1d(train_idx, val_idx).size == 0
    expected_share = np.bincount(labels) / len(labels)
    val_share = np.bincount(labels[val_idx]) / len(val_idx)
    np.testing.assert_allclose(val_share, expected_share, atol=2e-3)
    again = stratified_holdout(labels, n_val=len(labels) // 5, seed=3)
    np.testing.assert_array_equal(again[1], val_idx)
    other = stratified_holdout(labels, n_val=len(labels) // 5, seed=4)
    assert not np.array_equal(other[1], val_idx)


@pytest.mark.parametrize("n_val", [0, 100])
def test_stratified_holdout_rejects_impossible_sizes(n_val):
    with pytest.raises(ValueError, match="n_val"):
        stratified_holdout(np.arange(100) % 10, n_val=n_val, seed=0)


def test_novelty_split_holds_the_digit_out_of_train_and_val():
    rng = np.random.default_rng(1)
    train, val, test = (rng.integers(0, 10, n) for n in (500, 120, 200))
    split = novelty_split(train, val, test, unseen_digit=7)
    assert 7 not in train[split.train_idx] and 7 not in val[split.val_idx]
    assert len(split.train_idx) == np.sum(train != 7) and len(split.val_idx) == np.sum(val != 7)
    np.testing.assert_array_equal(split.test_idx, np.arange(len(test)))
    np.testing.assert_array_equal(split.test_target, (test == 7).astype(np.uint8))


def test_novelty_split_rejects_digit_absent_from_test():
    with pytest.raises(ValueError, match="digit 9"):
        novelty_split(np.arange(9), np.arange(9), np.arange(9), unseen_digit=9)


# ---------------------------------------------------------------- the real archives
@pytest.mark.integration
@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason=f"{REAL_MNIST} absent")
def test_real_mnist_archives():
    verify_mnist(REAL_MNIST)
    arrays = read_mnist(REAL_MNIST)
    assert arrays["train_images"].shape == (60_000, 28, 28)
    assert arrays["test_images"].shape == (10_000, 28, 28)
    for key in ("train_labels", "test_labels"):
        assert set(np.unique(arrays[key])) == set(range(10))
    train_idx, val_idx = stratified_holdout(arrays["train_labels"], n_val=12_000, seed=0)
    assert (len(train_idx), len(val_idx)) == (48_000, 12_000)
