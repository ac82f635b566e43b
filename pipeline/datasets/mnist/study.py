"""The MNIST studies: the convolutional autoencoder (``mnist_ae``) and novelty detection
of one unseen digit (``mnist_novelty``).

Loaders read their study's ``train`` section: how many training images to use and, for
novelty, which digit is held out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.datasets.mnist import IMAGES, novelty_split
from pipeline.errors import PipelineError
from pipeline.splitting import stratified_holdout
from pipeline.studies import Samples, Study


def _mnist_table() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    manifest = pd.read_parquet(paths.split_manifest("mnist"))
    with np.load(paths.features("mnist", IMAGES)) as arrays:
        images = {name: arrays[f"{name}_images"] for name in ("train", "test")}
    for name, array in images.items():
        rows = manifest[manifest["set"] == name]
        if len(rows) != len(array) or rows["index"].max() >= len(array):
            raise PipelineError(f"{len(rows)} {name} images in the manifest, {len(array)} in the "
                                "features (re-run `pipeline split mnist`)", paths.split_manifest("mnist"))
    return manifest, images


def _at_most(rows: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A seeded, digit-stratified subset of ``limit`` rows (all of them when None or enough)."""
    if limit is None or limit >= len(rows):
        return rows
    _, keep = stratified_holdout(rows["digit"].to_numpy(), int(limit), seed)
    return rows.iloc[keep]


def _image_samples(rows: pd.DataFrame, images: dict[str, np.ndarray], y: np.ndarray) -> Samples:
    """Images scaled to [0, 1] as (N, 1, 28, 28) float32, in the order of ``rows``."""
    x = np.empty((len(rows), 1, 28, 28), np.float32)
    for name, array in images.items():
        mine = (rows["set"] == name).to_numpy()
        x[mine, 0] = array[rows.loc[mine, "index"].to_numpy()] / np.float32(255)
    meta = rows[["image", "digit"]].reset_index(drop=True)
    return Samples(x=x, y=y.astype(np.int64), meta=meta.assign(label=y, unit=meta["image"]))


def _limited(split: str, rows: pd.DataFrame, train_cfg: dict) -> pd.DataFrame:
    """Training and validation images capped by ``train_images`` / ``val_images`` (CI time)."""
    limit = train_cfg.get(f"{split}_images") if split in ("train", "val") else None
    return _at_most(rows, limit, train_cfg["seeds"][0])  # one subset for every member


def load_mnist_ae(study: Study, splits: list[str], params: dict) -> dict[str, Samples]:
    """All digits; ``y`` and ``label`` are the digit (no normal/abnormal in this study)."""
    train_cfg = study.params(params, "train")
    manifest, images = _mnist_table()
    out = {}
    for split in splits:
        rows = _limited(split, manifest[manifest["split"] == split], train_cfg)
        out[split] = _image_samples(rows, images, rows["digit"].to_numpy())
    return out


def load_mnist_novelty(study: Study, splits: list[str], params: dict) -> dict[str, Samples]:
    """Train and validation without the train section's ``unseen_digit``; test: all, label
    1 = unseen."""
    train_cfg = study.params(params, "train")
    unseen = train_cfg["unseen_digit"]
    manifest, images = _mnist_table()
    parts = {s: manifest[manifest["split"] == s] for s in ("train", "val", "test")}
    try:
        chosen = novelty_split(*(parts[s]["digit"].to_numpy() for s in ("train", "val", "test")),
                               unseen_digit=unseen)
    except ValueError as exc:
        raise PipelineError(f"{study.key('train')}.unseen_digit: {exc}") from exc
    positions = {"train": chosen.train_idx, "val": chosen.val_idx, "test": chosen.test_idx}
    out = {}
    for split in splits:
        rows = _limited(split, parts[split].iloc[positions[split]], train_cfg)
        out[split] = _image_samples(rows, images, (rows["digit"] == unseen).to_numpy())
    return out


STUDIES = {
    "mnist_ae": Study(
        name="mnist_ae", load=load_mnist_ae, model_inputs=lambda x: {}, unit="image",
        evaluation="mnist_ae",
        headline=("test.mse", "test.bce", "test.latent_knn_accuracy", "latent", "n_train_images",
                  "test.n"),
    ),
    "mnist_novelty": Study(
        name="mnist_novelty", load=load_mnist_novelty, model_inputs=lambda x: {}, unit="image",
        group_column="digit", evaluation="mnist_novelty",
        headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high", "test.pauc",
                  "test.sensitivity", "test.specificity", "test.f1"),
    ),
}
