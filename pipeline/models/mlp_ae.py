"""MLP autoencoder of the HLS-CMDS workshop: input -> hidden -> latent -> hidden -> input."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models import register


@register("mlp_ae")
class MLPAutoencoder(nn.Module):
    def __init__(self, input_dim: int, hidden: int = 128, latent: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, input_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
