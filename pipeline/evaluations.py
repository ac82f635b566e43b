"""Study-specific parts of the evaluate stage (a Study's ``evaluation`` hook).

Each hook takes ``(study, params, figure_dir)``, writes its figures into ``figure_dir``
and returns metrics that the evaluate stage adds to ``metrics/<study>.json``:

- ``mnist_ae`` (no threshold): test MSE and BCE per pixel, MSE per digit, 5-NN digit
  accuracy on the latent codes, the latent space and a grid of inputs over reconstructions;
  each image's MSE goes to ``metrics/mnist_ae/scores.csv`` for ``pipeline compare``;
- ``mnist_novelty``: one test image of each digit over its reconstruction and error;
- ``sines``: one test series of each kind (normal, each anomaly type) with its
  reconstruction, error and the calibrated threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from pipeline.calibration import read_calibration
from pipeline import plots
from pipeline.unit_scores import write_unit_scores
from pipeline.splitting import stratified_holdout
from pipeline.scalers import Scaler
from pipeline.models.ensemble import SeedEnsemble
from pipeline.training import load_checkpoint, predict_scores, resolve_device

if TYPE_CHECKING:
    from pipeline.studies import Samples, Study


def _trained(study: Study, params: dict) -> tuple[nn.Module, Scaler, torch.device]:
    model, checkpoint = load_checkpoint(study.model_dir / "model.pt", study.name)
    device = resolve_device(study.params(params, "train").get("device", "auto"))
    return model.to(device).eval(), Scaler.from_state(checkpoint["scaler"]), device


@torch.no_grad()
def _batched(fn, x: np.ndarray, device: torch.device, batch_size: int) -> np.ndarray:
    """``fn`` over ``x`` in batches on ``device``, results concatenated on the CPU."""
    return np.concatenate([fn(torch.from_numpy(x[i : i + batch_size]).to(device)).cpu().numpy()
                           for i in range(0, len(x), batch_size)])


def reconstruct(model: nn.Module, x: np.ndarray, device: torch.device,
                batch_size: int = 500) -> np.ndarray:
    return _batched(model, x, device, batch_size) if len(x) else np.empty_like(x)


def encode(model: nn.Module, x: np.ndarray, device: torch.device, batch_size: int = 500) -> np.ndarray:
    return _batched(model.encode, x, device, batch_size)


def reconstruction_errors(model: nn.Module, x: np.ndarray,
                          device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructions of ``x`` and each sample's mean squared error."""
    reconstruction = reconstruct(model, x, device)
    return reconstruction, mean_squared_errors(reconstruction, x)


def mean_squared_errors(reconstruction: np.ndarray, x: np.ndarray) -> np.ndarray:
    return ((reconstruction - x) ** 2).reshape(len(x), -1).mean(axis=1)


def per_image_bce(reconstruction: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Binary cross-entropy per pixel, averaged per image (torch clamps log at -100)."""
    bce = F.binary_cross_entropy(torch.from_numpy(reconstruction), torch.from_numpy(x),
                                 reduction="none")
    return bce.flatten(1).mean(dim=1).numpy()


def latent_knn_accuracy(train_codes: np.ndarray, train_digits: np.ndarray, test_codes: np.ndarray,
                        test_digits: np.ndarray, k: int = 5) -> float:
    knn = KNeighborsClassifier(n_neighbors=k).fit(train_codes, train_digits)
    return float(knn.score(test_codes, test_digits))


def project_2d(codes: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """2-D codes as they are; larger ones onto their first two principal components."""
    if codes.shape[1] <= 2:
        return codes, ("z1", "z2")[: codes.shape[1]] + ("",) * (2 - codes.shape[1])
    pca = PCA(n_components=2, random_state=0).fit(codes)
    share = pca.explained_variance_ratio_ * 100
    return pca.transform(codes), (f"PC1 ({share[0]:.0f}% of variance)",
                                  f"PC2 ({share[1]:.0f}% of variance)")


def mnist_ae_report(model: nn.Module, train: Samples, test: Samples, cfg: dict,
                    figure_dir: Path, device: torch.device, title: str = "mnist_ae"
                    ) -> tuple[dict, np.ndarray]:
    """Metrics and figures of a trained MNIST autoencoder (inputs already scaled to [0, 1]),
    and each test image's mean squared error."""
    test_codes = encode(model, test.x, device)  # once: the reconstructions decode these codes
    reconstruction = _batched(model.decode, test_codes, device, batch_size=500)
    mse, bce = mean_squared_errors(reconstruction, test.x), per_image_bce(reconstruction, test.x)
    digits = test.meta["digit"].to_numpy()

    k, limit = int(cfg["knn_k"]), cfg.get("knn_fit_codes")
    fit_rows = np.arange(len(train.x))
    if limit is not None and limit < len(fit_rows):
        _, fit_rows = stratified_holdout(train.meta["digit"].to_numpy(), int(limit), cfg["seed"])
    train_codes = encode(model, train.x[fit_rows], device)
    accuracy = latent_knn_accuracy(train_codes, train.meta["digit"].to_numpy()[fit_rows],
                                   test_codes, digits, k)

    points, axes = project_2d(test_codes)
    plots.latent_space(points, digits, axes, figure_dir / "latent_space.png",
                       f"{title}: test latent space ({test_codes.shape[1]}-D)")
    shown = np.arange(min(int(cfg["grid"]), len(test.x)))
    plots.image_grid(test.x[shown, 0], reconstruction[shown, 0], [str(d) for d in digits[shown]],
                     figure_dir / "reconstructions.png",
                     f"{title}: test inputs (top) over reconstructions (bottom)")
    return {
        "latent": int(test_codes.shape[1]),
        "n_train_images": len(train.x),
        "test": {
            "mse": float(mse.mean()),
            "bce": float(bce.mean()),
            "mse_by_digit": {str(d): float(mse[digits == d].mean())
                             for d in np.unique(digits)},
            "latent_knn_accuracy": accuracy,
            "latent_knn_k": k,
            "latent_knn_fit_codes": len(fit_rows),
            "latent_knn_fit_subsampled": bool(len(fit_rows) < len(train.x)),
            "n": len(test.x),
        },
    }, mse


def mnist_ae(study: Study, params: dict, figure_dir: Path) -> dict:
    model, scaler, device = _trained(study, params)
    data = study.samples(["train", "test"], params)
    for part in data.values():
        part.x = scaler.transform(part.x)
    metrics, errors = mnist_ae_report(model, data["train"], data["test"],
                                      study.params(params, "evaluate"), figure_dir, device, study.name)
    # no label: nothing is abnormal in this study (meta's label is the digit)
    write_unit_scores(study.name, pd.DataFrame({"unit": data["test"].meta["unit"], "score": errors}))
    return metrics


def test_examples(study: Study, params: dict, column: str, order: Callable[[np.ndarray], list]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The first test sample of each value of ``meta[column]``, values in ``order(values)``
    (those that occur): the values, scaled inputs, reconstructions and scores (mean squared
    errors; a seed ensemble's: its first member's reconstructions, and its own scores) and
    a line saying so for the figure's title ("" for one model)."""
    model, scaler, device = _trained(study, params)
    test = study.samples(["test"], params)["test"]
    values = test.meta[column].to_numpy()
    shown = np.array([int(np.argmax(values == v)) for v in order(values) if np.any(values == v)],
                     dtype=int)
    x = scaler.transform(test.x[shown])
    if not isinstance(model, SeedEnsemble):
        return (values[shown], x, *reconstruction_errors(model, x, device), "")
    reconstruction, _ = reconstruction_errors(model.members[0], x, device)
    return (values[shown], x, reconstruction, predict_scores(model, study.make_objective(), x, device),
            f"\nreconstructions: seed {model.seeds[0]}'s; scores: the ensemble of seeds "
            f"{', '.join(map(str, model.seeds))} (errors over each member's median normal one)")


def mnist_novelty(study: Study, params: dict, figure_dir: Path) -> dict:
    digits, x, reconstruction, errors, scored_by = test_examples(
        study, params, "digit", lambda digits: sorted(set(digits))
    )
    unseen = study.params(params, "train")["unseen_digit"]
    captions = [f"{d}{' unseen' if d == unseen else ''}\n{e:.3g}"
                for d, e in zip(digits, errors, strict=True)]
    plots.image_grid(x[:, 0], reconstruction[:, 0], captions, figure_dir / "examples.png",
                     f"{study.name}: one test image per digit over its reconstruction (MSE){scored_by}")
    return {}


def series(study: Study, params: dict, figure_dir: Path) -> dict:
    """Generated series with an ``anomaly_type`` column: the first normal test series and
    one of each anomaly type, over their reconstructions, against the threshold."""
    kinds, x, reconstruction, errors, scored_by = test_examples(
        study, params, "anomaly_type", lambda kinds: ["none", *sorted(set(kinds) - {"none"})]
    )
    threshold = read_calibration(study.model_dir / "threshold.json")["threshold"]
    names = ["normal" if k == "none" else k for k in kinds]
    plots.series_examples(x[:, 0], reconstruction[:, 0], names, errors, threshold,
                          figure_dir / "examples.png", f"{study.name}: test examples{scored_by}")
    return {}
