"""Classical detectors on the deep studies' own features, folds and calibration: do the
deep models earn their place?

``pca_ae`` and ``knn_ae`` are fitted in closed form (``closed_form``: the training loop
calls ``fit`` once instead of descending a loss) and score like an autoencoder, by the
mean squared error of a reconstruction, so the reconstruction objective, the cross-fitted
threshold and the pooled evaluation are the autoencoder's. ``band_stats_linear`` is a
logistic regression, trained by the shared loop like any classifier. Their fitted state
is buffers, so their checkpoints are data like every other.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models import register
from pipeline.models.spectrogram_layers import check_input, input_layers


@register("pca_ae")
class PCAReconstruction(nn.Module):
    """A linear autoencoder in closed form: the input projected on the first ``components``
    principal axes of the training inputs (fewer where the training set has fewer)."""

    closed_form = True

    def __init__(self, input_dim: int, components: int = 32):
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("axes", torch.zeros(components, input_dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> PCAReconstruction:
        mean = x.mean(dim=0)
        # in float64: the axes of a few hundred 3,760-wide inputs, without float32's loss
        _, _, vh = torch.linalg.svd((x - mean).double(), full_matrices=False)
        axes = torch.zeros_like(self.axes)
        kept = min(len(axes), len(vh))
        axes[:kept] = vh[:kept].to(axes.dtype)
        self.mean, self.axes = mean, axes
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.axes.T @ self.axes + self.mean


@register("knn_ae")
class NearestNeighbours(nn.Module):
    """The mean of the ``k`` nearest training inputs (Euclidean) as the reconstruction; at
    k = 1 a sample's error is its squared distance to the nearest training input, over the
    input width: the nearest-neighbour distance detector."""

    closed_form = True

    def __init__(self, input_dim: int, k: int = 1):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self.register_buffer("bank", torch.zeros(0, input_dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> NearestNeighbours:
        if len(x) < self.k:
            raise ValueError(f"k = {self.k} nearest neighbours need as many training inputs, got {len(x)}")
        self.bank = x.clone()
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        found = state_dict.get(prefix + "bank")
        if found is not None:  # the bank's length is the training set's: take the saved one's
            self.bank = torch.empty_like(found)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # squared distances by expansion, exact enough to rank and deterministic (no cdist switch)
        distances = (x.pow(2).sum(1, keepdim=True) - 2 * x @ self.bank.T
                     + self.bank.pow(2).sum(1)[None, :])
        nearest = distances.topk(self.k, dim=1, largest=False).indices
        return self.bank[nearest].mean(dim=1)


@register("band_stats_linear")
class BandStatsLinear(nn.Module):
    """Logistic regression on four statistics of each mel band over the cycle (mean,
    standard deviation, range, mean absolute frame-to-frame change), standardised (batch
    statistics in training, their running averages in scoring): (N, 1, n_mels, frames) ->
    (N, n_classes) logits. With ``band_norm`` each band's mean is removed first, as in the
    CNNs, so that a device's response does not count."""

    def __init__(self, n_mels: int, frames: int, n_classes: int = 2, band_norm: bool = True):
        super().__init__()
        if frames < 2:
            raise ValueError(f"a frame-to-frame change needs at least 2 frames, got {frames}")
        self.n_mels, self.frames = n_mels, frames
        self.augment = input_layers(None, band_norm)
        self.standardise = nn.BatchNorm1d(4 * n_mels, affine=False)
        self.linear = nn.Linear(4 * n_mels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.n_mels, self.frames)
        bands = self.augment(x)[:, 0]  # (N, n_mels, frames)
        stats = torch.cat([bands.mean(-1), bands.std(-1), bands.amax(-1) - bands.amin(-1),
                           bands.diff(dim=-1).abs().mean(-1)], dim=1)
        return self.linear(self.standardise(stats))
