"""CNN + GRU: conv blocks over the spectrogram, a GRU over time, mean over time, logits.

The conv maps (N, channels, freq, time) become a sequence over time whose features are
channels x freq, the reshaping the practical's CNN+RNN extension asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from pipeline.models import register
from pipeline.models.spectrogram_layers import channels_last, check_input, input_layers


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels), nn.ReLU(), nn.MaxPool2d(2),
    )


@register("cnn_gru")
class CNNGRU(nn.Module):
    """(N, 1, n_mels, frames) log-mels -> (N, n_classes) logits; any frames >= 2**blocks."""

    def __init__(
        self,
        n_mels: int,
        frames: int,
        n_classes: int = 2,
        channels: Sequence[int] = (16, 32),
        gru_hidden: int = 64,
        bidirectional: bool = True,
        dropout: float = 0.0,
        spec_augment: dict | None = None,
        band_norm: bool = False,
        time_shift: int = 0,
    ):
        super().__init__()
        pool = 2 ** len(channels)
        if n_mels < pool or frames < pool:
            raise ValueError(
                f"{len(channels)} 2x2 poolings need n_mels and frames >= {pool}, "
                f"got {n_mels}, {frames}"
            )
        self.n_mels = n_mels
        self.augment = input_layers(spec_augment, band_norm, time_shift)
        widths = [1, *channels]
        self.features = nn.Sequential(*(_conv_block(a, b) for a, b in pairwise(widths)))
        self.gru = nn.GRU(
            input_size=widths[-1] * (n_mels // pool), hidden_size=gru_hidden,
            batch_first=True, bidirectional=bidirectional,
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(gru_hidden * (2 if bidirectional else 1), n_classes)
        channels_last(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.n_mels)
        maps = self.features(self.augment(x))  # (N, C, F, T)
        sequence = maps.permute(0, 3, 1, 2).flatten(2)  # (N, T, C*F)
        states, _ = self.gru(sequence)
        return self.output(self.dropout(states.mean(dim=1)))
