"""Mel spectrograms and MFCCs with two interchangeable backends, batched.

``librosa`` is the reference: librosa's STFT and Slaney filter bank. ``torch`` runs the
same maths on tensors (GPU when the caller moves them there): torchaudio's filter bank
when torchaudio imports, otherwise librosa's, then a torch-native STFT -> mel -> dB -> DCT
chain. Both use librosa's conventions (periodic Hann window, centred frames with zero
padding, Slaney mel scale and norm, power to dB with ``top_db`` clipping per item,
orthonormal DCT-II), so they agree to float32 rounding; ``tests/test_spectral.py`` holds
them to that. Either backend takes any number of signals in one call, builds the filter
bank once per settings, and works through them ``BATCH_ROWS`` at a time so memory stays
bounded whatever the input size (a fixed batch, so the bytes do not depend on the machine).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

Backend = Literal["librosa", "torch"]
BACKENDS = ("librosa", "torch")
AMIN = 1e-10
BATCH_ROWS = 256  # signals per STFT call: ~50 MB of spectra for 3 s at 4 kHz


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


@functools.lru_cache(maxsize=16)
def _mel_basis(s: MelSettings) -> np.ndarray:
    """(n_mels, n_freqs) Slaney filter bank, built once per settings (librosa rebuilds it per call)."""
    import librosa

    return librosa.filters.mel(sr=s.sample_rate, n_fft=s.n_fft, n_mels=s.n_mels, fmin=s.fmin,
                               fmax=s.upper, htk=False, norm="slaney")


def _to_db(power, log10, peak, maximum, s: MelSettings):
    """librosa.power_to_db(power, ref=1, amin=AMIN, top_db) with the clip per leading item;
    the array functions are numpy's or torch's."""
    db = 10.0 * log10(power)
    if s.top_db is None:
        return db
    return maximum(db, peak(db) - s.top_db)


# ---------------------------------------------------------------- librosa (reference)
def _log_mel_librosa(y: np.ndarray, s: MelSettings) -> np.ndarray:
    """(batch, samples) -> (batch, n_mels, frames): librosa.feature.melspectrogram's maths."""
    import librosa

    spec = librosa.stft(y, n_fft=s.n_fft, hop_length=s.hop_length, center=True, pad_mode="constant")
    power = np.abs(spec) ** 2
    mel = np.einsum("...ft,mf->...mt", power, _mel_basis(s), optimize=True)
    return _to_db(np.maximum(mel, AMIN), np.log10, lambda db: db.max(axis=(-2, -1), keepdims=True),
                  np.maximum, s)


# ---------------------------------------------------------------- torch
@functools.lru_cache(maxsize=16)
def _mel_matrix(s: MelSettings) -> torch.Tensor:
    """(n_freqs, n_mels) Slaney filterbank, as torchaudio lays it out."""
    import torch

    if torchaudio_available():
        import torchaudio.functional as AF

        return AF.melscale_fbanks(
            s.n_fft // 2 + 1, s.fmin, s.upper, s.n_mels, s.sample_rate,
            norm="slaney", mel_scale="slaney",
        )
    return torch.from_numpy(_mel_basis(s).T.astype(np.float32))


def _log_mel_torch(y: torch.Tensor, s: MelSettings) -> torch.Tensor:
    """``y``: (batch, samples) -> (batch, n_mels, frames); dB clipped per item."""
    import torch

    window = torch.hann_window(s.n_fft, periodic=True, dtype=y.dtype, device=y.device)
    spec = torch.stft(y, n_fft=s.n_fft, hop_length=s.hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    power = spec.abs().pow(2)  # (batch, freqs, frames)
    mel = torch.matmul(power.transpose(-1, -2), _mel_matrix(s).to(y.device)).transpose(-1, -2)
    return _to_db(torch.clamp(mel, min=AMIN), torch.log10,
                  lambda db: db.amax(dim=(-2, -1), keepdim=True), torch.maximum, s)


@functools.lru_cache(maxsize=16)
def _dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_mfcc) orthonormal DCT-II, the transform librosa.feature.mfcc applies."""
    n = np.arange(n_mels, dtype=np.float64)
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    basis = np.cos(np.pi / n_mels * (n + 0.5) * k) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    return basis.T.astype(np.float32)


# ---------------------------------------------------------------- public API
def _log_mel_rows(rows: np.ndarray, settings: MelSettings, backend: Backend) -> np.ndarray:
    if backend == "librosa":
        return _log_mel_librosa(rows, settings).astype(np.float32, copy=False)
    import torch

    with torch.no_grad():
        return _log_mel_torch(torch.from_numpy(rows), settings).numpy()


def log_mel(y: np.ndarray, settings: MelSettings, backend: Backend = "librosa") -> np.ndarray:
    """Log-mel power spectrogram in dB: (..., samples) -> (..., n_mels, frames), float32."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown feature backend {backend!r}: use 'librosa' or 'torch'")
    y = np.asarray(y, dtype=np.float32)
    flat = y.reshape(-1, y.shape[-1])
    frames = 1 + y.shape[-1] // settings.hop_length  # centred frames
    out = np.empty((len(flat), settings.n_mels, frames), dtype=np.float32)
    for start in range(0, len(flat), BATCH_ROWS):
        rows = np.ascontiguousarray(flat[start : start + BATCH_ROWS])
        out[start : start + len(rows)] = _log_mel_rows(rows, settings, backend)
    return out.reshape(*y.shape[:-1], settings.n_mels, frames)


def mfcc(y: np.ndarray, settings: MelSettings, n_mfcc: int, backend: Backend = "librosa") -> np.ndarray:
    """MFCCs: (..., samples) -> (..., n_mfcc, frames), float32 (librosa.feature.mfcc's maths)."""
    if not 0 < n_mfcc <= settings.n_mels:
        raise ValueError(f"n_mfcc must be in 1..n_mels ({settings.n_mels}), got {n_mfcc}")
    db = log_mel(y, settings, backend)
    if backend == "librosa":
        import librosa

        coeffs = librosa.feature.mfcc(S=db, n_mfcc=n_mfcc, dct_type=2, norm="ortho", axis=-2)
        return coeffs.astype(np.float32, copy=False)
    return np.einsum("...mt,mk->...kt", db, _dct_matrix(n_mfcc, settings.n_mels)).astype(np.float32)


def settings_dict(settings: MelSettings) -> dict:
    return asdict(settings)
