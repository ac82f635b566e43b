"""Mel spectrograms and MFCCs with two interchangeable backends.

``librosa`` is the reference. ``torch`` runs the same maths on tensors (GPU when the
caller moves them there): torchaudio's transforms when torchaudio imports, otherwise a
torch-native STFT -> mel -> dB -> DCT chain. Both use librosa's conventions (periodic
Hann window, centred frames with zero padding, Slaney mel scale and norm, power to dB
with ``top_db`` clipping per call, orthonormal DCT-II), so they agree to float32
rounding; ``tests/test_spectral.py`` holds them to that.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Literal

import librosa
import numpy as np
import torch

Backend = Literal["librosa", "torch"]
AMIN = 1e-10


@dataclass(frozen=True)
class MelSettings:
    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int
    fmin: float = 0.0
    fmax: float | None = None  # None: Nyquist
    top_db: float | None = 80.0

    def __post_init__(self) -> None:
        if self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ValueError(f"n_fft, hop_length and n_mels must be positive: {self}")
        nyquist = self.sample_rate / 2
        if self.fmax is not None and not self.fmin < self.fmax <= nyquist:
            raise ValueError(f"need fmin < fmax <= {nyquist} Hz (Nyquist): {self}")

    @property
    def upper(self) -> float:
        return self.sample_rate / 2 if self.fmax is None else self.fmax


def torchaudio_available() -> bool:
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError, RuntimeError):  # CUDA-only wheels fail on a CPU torch
        return False
    return True


# ---------------------------------------------------------------- librosa (reference)
def _log_mel_librosa(y: np.ndarray, s: MelSettings) -> np.ndarray:
    power = librosa.feature.melspectrogram(
        y=y, sr=s.sample_rate, n_fft=s.n_fft, hop_length=s.hop_length, n_mels=s.n_mels,
        fmin=s.fmin, fmax=s.upper, center=True, pad_mode="constant", power=2.0,
    )
    return librosa.power_to_db(power, ref=1.0, amin=AMIN, top_db=s.top_db)


# ---------------------------------------------------------------- torch
@functools.lru_cache(maxsize=16)
def _mel_matrix(s: MelSettings) -> torch.Tensor:
    """(n_freqs, n_mels) Slaney filterbank, as torchaudio lays it out."""
    if torchaudio_available():
        import torchaudio.functional as AF

        return AF.melscale_fbanks(
            s.n_fft // 2 + 1, s.fmin, s.upper, s.n_mels, s.sample_rate,
            norm="slaney", mel_scale="slaney",
        )
    weights = librosa.filters.mel(
        sr=s.sample_rate, n_fft=s.n_fft, n_mels=s.n_mels, fmin=s.fmin, fmax=s.upper,
        htk=False, norm="slaney",
    )
    return torch.from_numpy(weights.T.astype(np.float32))


def _log_mel_torch(y: torch.Tensor, s: MelSettings) -> torch.Tensor:
    """``y``: (..., samples) -> (..., n_mels, frames); dB clipped per leading item."""
    window = torch.hann_window(s.n_fft, periodic=True, dtype=y.dtype, device=y.device)
    lead = y.shape[:-1]
    spec = torch.stft(
        y.reshape(-1, y.shape[-1]), n_fft=s.n_fft, hop_length=s.hop_length, window=window,
        center=True, pad_mode="constant", return_complex=True,
    )
    power = spec.abs().pow(2)  # (batch, freqs, frames)
    mel = torch.matmul(power.transpose(-1, -2), _mel_matrix(s).to(y.device)).transpose(-1, -2)
    db = 10.0 * torch.log10(torch.clamp(mel, min=AMIN))
    if s.top_db is not None:
        peak = db.amax(dim=(-2, -1), keepdim=True)
        db = torch.maximum(db, peak - s.top_db)
    return db.reshape(*lead, *db.shape[-2:])


@functools.lru_cache(maxsize=16)
def _dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """(n_mels, n_mfcc) orthonormal DCT-II, the transform librosa.feature.mfcc applies."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    basis = torch.cos(torch.pi / n_mels * (n + 0.5) * k) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    return basis.T.to(torch.float32)


# ---------------------------------------------------------------- public API
def log_mel(y: np.ndarray, settings: MelSettings, backend: Backend = "librosa") -> np.ndarray:
    """Log-mel power spectrogram in dB: (..., samples) -> (..., n_mels, frames), float32."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    if backend == "librosa":
        if y.ndim == 1:
            return _log_mel_librosa(y, settings).astype(np.float32)
        return np.stack([log_mel(row, settings, backend) for row in y])
    if backend == "torch":
        with torch.no_grad():
            return _log_mel_torch(torch.from_numpy(y), settings).numpy()
    raise ValueError(f"unknown feature backend {backend!r}: use 'librosa' or 'torch'")


def mfcc(y: np.ndarray, settings: MelSettings, n_mfcc: int, backend: Backend = "librosa") -> np.ndarray:
    """MFCCs: (..., samples) -> (..., n_mfcc, frames), float32 (librosa.feature.mfcc's maths)."""
    if not 0 < n_mfcc <= settings.n_mels:
        raise ValueError(f"n_mfcc must be in 1..n_mels ({settings.n_mels}), got {n_mfcc}")
    db = log_mel(y, settings, backend)
    if backend == "librosa":
        coeffs = librosa.feature.mfcc(S=db, n_mfcc=n_mfcc, dct_type=2, norm="ortho", axis=-2)
        return coeffs.astype(np.float32)
    dct = _dct_matrix(n_mfcc, settings.n_mels).numpy()
    return np.einsum("...mt,mk->...kt", db, dct).astype(np.float32)


def settings_dict(settings: MelSettings) -> dict:
    return asdict(settings)
