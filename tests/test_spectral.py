"""The torch backend gives librosa's numbers (within float32 rounding)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.features import spectral
from pipeline.features.spectral import MelSettings, log_mel, mfcc

SETTINGS = MelSettings(sample_rate=4000, n_fft=256, hop_length=64, n_mels=40)


@pytest.fixture
def signals():
    rng = np.random.default_rng(1)
    t = np.arange(8000) / 4000
    return (0.3 * np.sin(2 * np.pi * 150 * t) + 0.05 * rng.standard_normal((3, 8000))).astype(np.float32)


def test_log_mel_backends_agree(signals):
    reference = log_mel(signals, SETTINGS, backend="librosa")
    assert reference.shape == (3, 40, 8000 // 64 + 1)
    np.testing.assert_allclose(log_mel(signals, SETTINGS, backend="torch"), reference, atol=1e-3)


def test_mfcc_backends_agree(signals):
    reference = mfcc(signals, SETTINGS, 20, backend="librosa")
    assert reference.shape == (3, 20, 126)
    np.testing.assert_allclose(mfcc(signals, SETTINGS, 20, backend="torch"), reference, atol=1e-3)


def test_torch_native_path_agrees_without_torchaudio(signals, monkeypatch):
    monkeypatch.setattr(spectral, "torchaudio_available", lambda: False)
    spectral._mel_matrix.cache_clear()
    try:
        np.testing.assert_allclose(
            mfcc(signals, SETTINGS, 13, backend="torch"), mfcc(signals, SETTINGS, 13), atol=1e-3
        )
    finally:
        spectral._mel_matrix.cache_clear()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="Nyquist"):
        MelSettings(sample_rate=4000, n_fft=256, hop_length=64, n_mels=40, fmax=3000)
    with pytest.raises(ValueError, match="n_mfcc"):
        mfcc(np.zeros(4000, np.float32), SETTINGS, 41)
    with pytest.raises(ValueError, match="backend"):
        log_mel(np.zeros(4000, np.float32), SETTINGS, backend="scipy")
