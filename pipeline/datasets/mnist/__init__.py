"""MNIST: the four official IDX archives, checked and parsed with numpy alone.

IDX layout (big-endian): a 4-byte magic ``0x0000TTNN`` (TT = 0x08 for uint8, NN = the
number of dimensions), one uint32 per dimension, then the raw values. Every check
names the file at fault, so a bad download reads as a clear message, not a traceback.
``MNIST`` is the dataset adapter the download stage uses: official sources with their
md5s, and one record per image (``DATASET``); ``extract`` (features: the archives as
they are) and ``split`` (validation images held out of training) make the rest of the
dataset's package, and ``study.py`` the studies over it.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.datasets.base import Dataset, Source
from pipeline.errors import PipelineError
from pipeline.io import write_npz
from pipeline.splitting import SPLITS, audit, stratified_holdout

log = logging.getLogger(__name__)

OFFICIAL_URL = "http://yann.lecun.com/exdb/mnist/"
# Same files; the official site often refuses downloads.
MIRROR_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10


@dataclass(frozen=True)
class Archive:
    filename: str
    md5: str  # as published alongside the archives


# Keyed by the names ``read_mnist`` returns.
ARCHIVES: dict[str, Archive] = {
    "train_images": Archive("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": Archive("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": Archive("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": Archive("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}

# The only IDX kinds MNIST uses: uint8 labels (1-D) and uint8 images (3-D).
_MAGIC_NDIM = {0x00000801: 1, 0x00000803: 3}


def verify_md5(path: str | Path, expected: str) -> None:
    """Raise PipelineError naming ``path`` unless the file exists and its md5 is ``expected``."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError("file not found", path)
    with open(path, "rb") as f:
        actual = hashlib.file_digest(f, "md5").hexdigest()
    if actual != expected.lower():
        raise PipelineError(f"md5 {actual} does not match the expected {expected}", path)


def verify_mnist(folder: str | Path) -> None:
    """Check all four archives in ``folder`` against their published md5s."""
    for archive in ARCHIVES.values():
        verify_md5(Path(folder) / archive.filename, archive.md5)


def _decompress(path: Path) -> bytes:
    if not path.is_file():
        raise PipelineError("file not found", path)
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    # BadGzipFile is an OSError, a cut-short stream ends in EOFError, bad deflate is zlib.error.
    except (OSError, EOFError, zlib.error) as exc:
        raise PipelineError(f"corrupt or truncated gzip ({exc})", path) from exc


def parse_idx(path: str | Path) -> np.ndarray:
    """Return the uint8 array held in a gzip-compressed IDX file (labels 1-D, images 3-D)."""
    path = Path(path)
    data = _decompress(path)
    if len(data) < 4:
        raise PipelineError(f"{len(data)} bytes: too short for an IDX header", path)
    (magic,) = struct.unpack(">I", data[:4])
    if magic not in _MAGIC_NDIM:
        known = ", ".join(f"0x{m:08x}" for m in _MAGIC_NDIM)
        raise PipelineError(f"IDX magic number 0x{magic:08x}, expected one of {known}", path)
    ndim = _MAGIC_NDIM[magic]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise PipelineError(f"IDX header cut short: {len(data)} of {header_size} bytes", path)
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    payload = len(data) - header_size
    expected = int(np.prod(shape))
    if payload != expected:
        raise PipelineError(
            f"IDX payload holds {payload} bytes, header dims {shape} need {expected}", path
        )
    # Copy so callers get a writable array, not a read-only view of the bytes.
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def _read_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = folder / ARCHIVES[f"{split}_images"].filename
    labels_path = folder / ARCHIVES[f"{split}_labels"].filename
    images, labels = parse_idx(images_path), parse_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise PipelineError(
            f"images of shape {images.shape[1:]}, expected {IMAGE_SHAPE}", images_path
        )
    if labels.ndim != 1:
        raise PipelineError(f"labels of shape {labels.shape}, expected 1-D", labels_path)
    if len(labels) != len(images):
        raise PipelineError(
            f"{len(labels)} labels but {images_path.name} holds {len(images)} images", labels_path
        )
    if labels.size and labels.max() >= N_CLASSES:
        raise PipelineError(f"label {labels.max()} outside 0..{N_CLASSES - 1}", labels_path)
    return images, labels


def read_mnist(folder: str | Path) -> dict[str, np.ndarray]:
    """Parse the four archives in ``folder``: uint8 images (N, 28, 28) and labels (N,).

    Returns ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.
    Checksums are not checked here; ``verify_mnist`` does that.
    """
    folder = Path(folder)
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = _read_pair(folder, split)
    return arrays


@dataclass(frozen=True)
class NoveltySplit:
    """Positions into the given train/val/test label arrays, plus the test targets."""

    train_idx: np.ndarray  # seen digits only
    val_idx: np.ndarray  # seen digits only
    test_idx: np.ndarray  # every test image
    test_target: np.ndarray  # 1 where the test image shows the unseen digit, else 0


def novelty_split(
    train_labels: np.ndarray,
    val_labels: np.ndarray,
    test_labels: np.ndarray,
    unseen_digit: int,
) -> NoveltySplit:
    """Hold one digit out of training and validation; the test set keeps it as the novelty."""
    if not 0 <= unseen_digit < N_CLASSES:
        raise ValueError(f"unseen_digit must be in 0..{N_CLASSES - 1}, got {unseen_digit}")
    test_labels = np.asarray(test_labels)
    if not np.any(test_labels == unseen_digit):
        raise ValueError(f"no test image shows digit {unseen_digit}: nothing novel to detect")
    return NoveltySplit(
        train_idx=np.flatnonzero(np.asarray(train_labels) != unseen_digit),
        val_idx=np.flatnonzero(np.asarray(val_labels) != unseen_digit),
        test_idx=np.arange(len(test_labels)),
        test_target=(test_labels == unseen_digit).astype(np.uint8),
    )


# ---------------------------------------------------------------- the dataset adapter
RECORD_COLUMNS = ["file", "set", "index", "label"]


def records_table(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per image: its archive (``file``), ``set`` (train/test), ``index`` in it, ``label``."""
    parts = []
    for split in ("train", "test"):
        labels = arrays[f"{split}_labels"]
        parts.append(pd.DataFrame({
            "file": ARCHIVES[f"{split}_images"].filename,
            "set": split,
            "index": np.arange(len(labels), dtype=np.int64),
            "label": labels.astype(np.int64),
        }))
    return pd.concat(parts, ignore_index=True)[RECORD_COLUMNS]


class MNIST(Dataset):
    """The four IDX archives, laid out flat as in the local copy (``mnist/*.gz``)."""

    name = "mnist"
    citation = (
        "Y. LeCun, C. Cortes, C. J. C. Burges, 'The MNIST database of handwritten digits', "
        "1998; Y. LeCun et al., 'Gradient-based learning applied to document recognition', "
        "Proc. IEEE 86(11), 1998"
    )
    licence = "CC BY-SA 3.0"
    landing_page = OFFICIAL_URL
    # The official site often refuses downloads; the mirror serves the same bytes, and
    # pooch checks each against its published md5 (read_records checks them again).
    sources = tuple(
        Source(url=MIRROR_URL + a.filename, filename=a.filename, known_hash=f"md5:{a.md5}")
        for a in ARCHIVES.values()
    )

    def read_records(self, raw_dir: Path) -> pd.DataFrame:
        verify_mnist(raw_dir)
        return records_table(read_mnist(raw_dir))


DATASET = MNIST()


# ---------------------------------------------------------------- features and split
def mnist_arrays(records: pd.DataFrame, raw_dir: Path) -> dict[str, np.ndarray]:
    """The four IDX archives as uint8 arrays, checked against the records table."""
    arrays = read_mnist(raw_dir)
    for split in ("train", "test"):
        labels = records.loc[records["set"] == split].sort_values("index")["label"].to_numpy()
        if not np.array_equal(labels, arrays[f"{split}_labels"]):
            raise PipelineError(f"{split} labels differ from data/records/mnist.parquet "
                                "(re-run `pipeline download mnist`)", raw_dir)
    return arrays


IMAGES = "images.npz"  # the features: the four archives as they are


def extract(dataset: str, records: pd.DataFrame, raw_dir: Path, settings: dict) -> None:
    """The features stage: the four archives as uint8 arrays in one NPZ."""
    if settings:
        raise PipelineError(f"mnist.features takes no settings, got {sorted(settings)}")
    arrays = mnist_arrays(records, raw_dir)
    write_npz(paths.features(dataset, IMAGES), **arrays)
    log.info("%s: %d train + %d test images", dataset, len(arrays["train_images"]),
             len(arrays["test_images"]))


def mnist_split(records: pd.DataFrame, n_val: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """Manifest (image, set, index, digit, split) and its audit, digit counts per split."""
    records = records.sort_values(["set", "index"], ascending=[False, True], ignore_index=True)
    manifest = pd.DataFrame({
        "image": records["set"] + "/" + records["index"].astype(str),
        "set": records["set"], "index": records["index"], "digit": records["label"],
        "split": np.where(records["set"] == "test", "test", "train"),
    })
    train_rows = np.flatnonzero(manifest["set"] == "train")
    _, val = stratified_holdout(manifest["digit"].to_numpy()[train_rows], n_val, seed)
    manifest.loc[train_rows[val], "split"] = "val"
    # no normal/abnormal here (that is a study's choice): audit counts images and checks leaks
    report = audit(manifest.assign(label=0), group_column="image")
    for split in SPLITS:
        digits = manifest.loc[manifest["split"] == split, "digit"]
        report["counts"][split] = {"total": len(digits), **{
            f"digit_{d}": int(n) for d, n in enumerate(np.bincount(digits, minlength=N_CLASSES))
        }}
    report.update(scheme="stratified_holdout", n_val=n_val, seed=seed)
    return manifest, report


def split(dataset: str, cfg: dict) -> tuple[pd.DataFrame, dict]:
    """The split stage: ``n_val`` training images become validation, stratified by digit
    (seeded); the test images are the test split. Each image is its own group."""
    records = pd.read_parquet(paths.records(dataset))
    manifest, report = mnist_split(records, cfg["n_val"], cfg["seed"])
    report["dataset"] = dataset
    return manifest, report
