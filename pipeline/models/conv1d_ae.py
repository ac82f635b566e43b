"""1-D convolutional autoencoder for the synthetic-sines anomaly study (5,217 parameters).

Two conv + max-pool steps shrink a (1, 1000) series to (16, 250); nearest-neighbour
upsampling and convolutions bring it back to (1, 1000). The output layer is linear, so
reconstructions are not squashed into a fixed range. The length must be a multiple of 4.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models import register


@register("conv1d_ae")
class Conv1dAutoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv1d(1, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(32, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv1d(16, 32, 5, padding=2),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv1d(32, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
