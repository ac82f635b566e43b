"""Semi-supervised objectives for the ICBHI classifiers (the practical's four methods).

Each objective is the supervised class-weighted cross-entropy on labelled cycles plus
an unlabelled term on a batch of cycles whose labels are not used, weighted by a
ramp-up (Laine & Aila 2017: ``w(t) = weight * exp(-5 (1 - t)^2)``, ``t`` the share of
``ramp_up`` epochs done):

- ``supervised``: no unlabelled term (the baseline at each label fraction);
- ``reconstruction``: a decoder head rebuilds the log-mel from the classifier's encoder;
  mean squared error on every training cycle;
- ``pi_model``: two SpecAugment views of each cycle; squared difference of their class
  probabilities (Laine & Aila 2017);
- ``vat``: virtual adversarial training (Miyato et al. 2018): KL divergence between the
  prediction on a cycle and on the cycle moved ``epsilon`` along the direction that
  changes the prediction most (one power iteration);
- ``pseudo_label``: predictions above ``threshold`` confidence on unlabelled cycles
  become their targets (Lee 2013).

Objectives that own parameters (the decoder) are ``nn.Module``s, so ``fit`` optimises
them with the model; only the classifier is saved.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.spectrogram_layers import SpecAugment
from pipeline.objectives import Classification

METHODS = ("supervised", "reconstruction", "pi_model", "vat", "pseudo_label")


def ramp_up(epoch: int, length: int) -> float:
    """Sigmoid-shaped ramp from about 0 (epoch 0) to 1 (epoch ``length`` and after)."""
    if length <= 0:
        return 1.0
    t = min(epoch / length, 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


class SemiSupervised(nn.Module):
    """Supervised cross-entropy plus ``weight * ramp_up(epoch) * unlabelled_term``."""

    name = "classification"
    pool = "all"  # which training cycles feed the unlabelled term: all, or unlabelled only

    def __init__(self, supervised: Classification, weight: float = 1.0, ramp_up: int = 0):
        super().__init__()
        self.supervised = supervised
        self.weight, self.ramp_up_epochs = weight, ramp_up

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.supervised.loss(model, x, y)

    def scores(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.supervised.scores(model, x)

    def unlabelled_loss(self, model: nn.Module, x: torch.Tensor, epoch: int) -> torch.Tensor:
        return self.weight * ramp_up(epoch, self.ramp_up_epochs) * self.unlabelled_term(model, x)

    def unlabelled_term(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SupervisedOnly(SemiSupervised):
    """The baseline: the same steps as the other methods, no unlabelled term."""

    def unlabelled_loss(self, model: nn.Module, x: torch.Tensor, epoch: int) -> torch.Tensor:
        return torch.zeros((), device=x.device)


class ReconstructionHead(SemiSupervised):
    """A transposed-convolution decoder from the encoder's feature map back to the input."""

    def __init__(self, supervised: Classification, encoder_shape: tuple[int, int, int],
                 weight: float = 1.0, ramp_up: int = 0):
        super().__init__(supervised, weight, ramp_up)
        channels, _, _ = encoder_shape
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(channels, 16, kernel_size=2, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, kernel_size=2, stride=2),
        )

    def unlabelled_term(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        rebuilt = self.decoder(model.encode(x))
        # the encoder's poolings floor odd sizes, so the rebuilt map may be a little smaller
        return F.mse_loss(rebuilt, x[..., : rebuilt.shape[-2], : rebuilt.shape[-1]])


class PiModel(SemiSupervised):
    def __init__(self, supervised: Classification, spec_augment: dict | None = None,
                 weight: float = 1.0, ramp_up: int = 0):
        super().__init__(supervised, weight, ramp_up)
        self.augment = SpecAugment(**(spec_augment or {}))

    def unlabelled_term(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        self.augment.train()
        first = F.softmax(model(self.augment(x)), dim=1)
        second = F.softmax(model(self.augment(x)), dim=1)
        return (first - second).pow(2).sum(dim=1).mean()


def _unit(d: torch.Tensor) -> torch.Tensor:
    return d / (d.flatten(1).norm(dim=1).view(-1, *[1] * (d.ndim - 1)) + 1e-12)


class VirtualAdversarial(SemiSupervised):
    def __init__(self, supervised: Classification, epsilon: float = 1.0, xi: float = 1e-6,
                 weight: float = 1.0, ramp_up: int = 0):
        super().__init__(supervised, weight, ramp_up)
        self.epsilon, self.xi = epsilon, xi

    def unlabelled_term(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = F.softmax(model(x), dim=1)
        # one power iteration: the direction whose small step changes the prediction most
        d = (self.xi * _unit(torch.randn_like(x))).requires_grad_(True)
        divergence = F.kl_div(F.log_softmax(model(x + d), dim=1), target, reduction="batchmean")
        (grad,) = torch.autograd.grad(divergence, d)
        r_adv = self.epsilon * _unit(grad.detach())
        return F.kl_div(F.log_softmax(model(x + r_adv), dim=1), target, reduction="batchmean")


class PseudoLabel(SemiSupervised):
    pool = "unlabelled"

    def __init__(self, supervised: Classification, threshold: float = 0.95,
                 weight: float = 1.0, ramp_up: int = 0):
        super().__init__(supervised, weight, ramp_up)
        self.threshold = threshold

    def pseudo_targets(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted classes and the mask of cycles predicted with at least ``threshold``."""
        with torch.no_grad():
            confidence, classes = F.softmax(model(x), dim=1).max(dim=1)
        return classes, confidence >= self.threshold

    def unlabelled_term(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        classes, confident = self.pseudo_targets(model, x)
        losses = F.cross_entropy(model(x), classes, reduction="none")
        return (losses * confident).sum() / len(x)  # unconfident cycles add nothing


def make_objective(method: str, settings: dict[str, Any], supervised: Classification,
                   model: nn.Module, example: torch.Tensor) -> SemiSupervised:
    """The objective of ``method`` with its params section ``settings``."""
    if method == "supervised":
        return SupervisedOnly(supervised, **settings)
    if method == "reconstruction":
        with torch.no_grad():
            shape = tuple(model.encode(example[:1]).shape[1:])
        return ReconstructionHead(supervised, shape, **settings)
    kinds = {"pi_model": PiModel, "vat": VirtualAdversarial, "pseudo_label": PseudoLabel}
    return kinds[method](supervised, **settings)
