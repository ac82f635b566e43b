"""A tiny MNIST-shaped local copy, generated: the four IDX archives and their SHA256SUMS."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from pipeline.datasets.mnist import ARCHIVES, Archive


def idx_gz(array: np.ndarray) -> bytes:
    """gzip-compressed IDX bytes of a uint8 array (labels 1-D, images 3-D)."""
    header = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def digit_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """28x28 images where digit d is a bright bar in row band d, plus a little noise."""
    images = rng.integers(0, 30, (len(labels), 28, 28)).astype(np.uint8)
    for i, d in enumerate(labels):
        images[i, 2 + 2 * d : 4 + 2 * d, 4:24] = 255
    return images


def make_mnist_copy(root: Path, n_train: int = 200, n_test: int = 60, seed: int = 0) -> dict[str, Archive]:
    """Write ``root/mnist`` (four archives, SHA256SUMS); return ARCHIVES with these files' md5s."""
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = np.arange(n_train, dtype=np.uint8) % 10
    test_labels = rng.permutation(np.arange(n_test, dtype=np.uint8) % 10)
    arrays = {
        "train_images": digit_images(train_labels, rng), "train_labels": train_labels,
        "test_images": digit_images(test_labels, rng), "test_labels": test_labels,
    }
    archives, sums = {}, []
    for key, array in arrays.items():
        data = idx_gz(array)
        (folder / ARCHIVES[key].filename).write_bytes(data)
        archives[key] = Archive(ARCHIVES[key].filename, hashlib.md5(data).hexdigest())
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {ARCHIVES[key].filename}")
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return archives
