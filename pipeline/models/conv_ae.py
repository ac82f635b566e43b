"""Convolutional MNIST autoencoder of the workshop notes, layer for layer.

Encoder 28x28 -> 14x14 -> 7x7 -> latent; the decoder's transposed convolutions grow
7x7 -> 13x13 -> 27x27 -> 55x55, and the output keeps the first 28x28 of that, as the
notes' ``Trim`` layer does. At ``latent=2`` the model has 200,963 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models import register

_CHANNELS, _SIDE = 64, 7  # the encoder's last feature map: 64 x 7 x 7 = 3136 values
_FLAT = _CHANNELS * _SIDE * _SIDE
_IMAGE_SIDE = 28


class Trim(nn.Module):
    """Keep the top-left ``side`` x ``side`` pixels (the decoder overshoots to 55x55)."""

    def __init__(self, side: int):
        super().__init__()
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : self.side, : self.side]


@register("mnist_conv_ae")
class ConvAutoencoder(nn.Module):
    def __init__(self, latent: int = 2):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=1, padding=1),  # 28x28
            nn.LeakyReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),  # 14x14
            nn.LeakyReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),  # 7x7
            nn.LeakyReLU(),
            nn.Conv2d(64, 64, 3, stride=1, padding=1),  # 7x7
            nn.Flatten(),
            nn.Linear(_FLAT, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, _FLAT),
            nn.Unflatten(1, (_CHANNELS, _SIDE, _SIDE)),
            nn.ConvTranspose2d(64, 64, 3, stride=1, padding=1),  # 7x7
            nn.LeakyReLU(),
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1),  # 13x13
            nn.LeakyReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=0),  # 27x27
            nn.LeakyReLU(),
            nn.ConvTranspose2d(32, 1, 3, stride=2, padding=0),  # 55x55
            Trim(_IMAGE_SIDE),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images in [0, 1] -> (N, latent) codes."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent) codes -> (N, 1, 28, 28) images in (0, 1)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
