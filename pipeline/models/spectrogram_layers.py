"""Pieces the spectrogram models share: an input check, per-band normalisation and
SpecAugment-style masking.

The masking follows Park et al. (2019) on (N, 1, n_mels, frames) spectrograms. A model
holds it as its first layer, so it acts in training mode only and its settings
travel with the model's constructor arguments. Masked cells take the example's mean
rather than 0: on unstandardised dB input 0 is an arbitrary loud level, not "nothing".
"""

from __future__ import annotations

import torch
from torch import nn


def _band_mask(n: int, size: int, count: int, max_width: int, device: torch.device) -> torch.Tensor:
    """(n, size) bool: per row, ``count`` bands of random width 0..max_width at random places."""
    widths = torch.randint(0, min(max_width, size) + 1, (n, count, 1), device=device)
    starts = (torch.rand(n, count, 1, device=device) * (size - widths + 1)).floor()
    positions = torch.arange(size, device=device)
    return ((positions >= starts) & (positions < starts + widths)).any(dim=1)


class SpecAugment(nn.Module):
    def __init__(
        self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 16
    ):
        super().__init__()
        if min(freq_masks, freq_width, time_masks, time_width) < 0:
            raise ValueError("mask counts and widths must be non-negative")
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        n, _, n_mels, frames = x.shape
        freq = _band_mask(n, n_mels, self.freq_masks, self.freq_width, x.device)
        time = _band_mask(n, frames, self.time_masks, self.time_width, x.device)
        masked = freq[:, None, :, None] | time[:, None, None, :]
        return torch.where(masked, x.mean(dim=(1, 2, 3), keepdim=True), x)


class TimeShift(nn.Module):
    """In training, each example rolled along time by its own random whole number of frames
    in [-max_frames, max_frames] (circular: what leaves one end comes back at the other). A
    respiratory cycle's crackle or wheeze may fall anywhere in it, so where it sits should
    not teach the model anything."""

    def __init__(self, max_frames: int):
        super().__init__()
        if max_frames < 0:
            raise ValueError(f"time_shift must be >= 0 frames, got {max_frames}")
        self.max_frames = max_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.max_frames == 0:
            return x
        frames = x.shape[-1]
        shifts = torch.randint(-self.max_frames, self.max_frames + 1, (x.shape[0], 1), device=x.device)
        columns = (torch.arange(frames, device=x.device) - shifts) % frames  # (N, frames)
        return torch.gather(x, -1, columns[:, None, None, :].expand_as(x))


class BandNorm(nn.Module):
    """Each mel band minus its mean over the cycle's frames (cepstral mean normalisation in
    the log-mel domain): a fixed channel response, such as a recording device's, is a
    constant offset per band in dB and is removed, in training and in scoring alike."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=-1, keepdim=True)


def input_layers(spec_augment: dict | None, band_norm: bool = False, time_shift: int = 0) -> nn.Module:
    """What a model does to its input first: ``band_norm`` (always), then, in training only,
    a random circular shift of up to ``time_shift`` frames and masking by its
    ``spec_augment`` settings (None: none)."""
    layers = (([BandNorm()] if band_norm else []) + ([TimeShift(time_shift)] if time_shift else [])
              + ([SpecAugment(**spec_augment)] if spec_augment else []))
    return nn.Sequential(*layers) if layers else nn.Identity()


def channels_last(model: nn.Module) -> nn.Module:
    """``model`` with its 4-D weights stored channels-last, so that its convolutions run
    channels-last too (oneDNN's faster path on CPU: an epoch of either ICBHI model takes
    about 20 % less time on 2 cores). Set at construction, the layout holds in training,
    scoring and in a loaded checkpoint alike (loading copies into these tensors), so every
    path sums in the same order."""
    return model.to(memory_format=torch.channels_last)


def check_input(x: torch.Tensor, n_mels: int, frames: int | None = None) -> None:
    """Fail clearly on input that is not (N, 1, n_mels, frames)."""
    expected = (1, n_mels, x.shape[-1] if frames is None else frames)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"expected input (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
