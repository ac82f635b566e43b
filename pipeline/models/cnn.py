"""SimpleCNN of the Mobile Health practical: two conv/ReLU/max-pool blocks, then two linear layers."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models import register
from pipeline.models.spectrogram_layers import channels_last, check_input, input_layers


@register("simple_cnn")
class SimpleCNN(nn.Module):
    """(N, 1, n_mels, frames) log-mels -> (N, n_classes) logits."""

    def __init__(
        self,
        n_mels: int,
        frames: int,
        n_classes: int = 2,
        hidden: int = 128,
        dropout: float = 0.0,
        spec_augment: dict | None = None,
        band_norm: bool = False,
        time_shift: int = 0,
    ):
        super().__init__()
        if n_mels < 4 or frames < 4:
            raise ValueError(f"two 2x2 poolings need n_mels and frames >= 4, got {n_mels}, {frames}")
        self.n_mels, self.frames = n_mels, frames
        self.augment = input_layers(spec_augment, band_norm, time_shift)
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        flat = 32 * (n_mels // 4) * (frames // 4)  # each pooling floors its input size by 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )
        channels_last(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional feature map (N, 32, n_mels // 4, frames // 4)."""
        check_input(x, self.n_mels, self.frames)
        return self.features(self.augment(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encode(x))
