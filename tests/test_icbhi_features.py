"""Cycle features: resampling mixed rates and bit depths, fixing lengths, log-mel images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from pipeline.audio import read_audio
from pipeline.errors import PipelineError
from pipeline.features import cycles
from pipeline.features.cycles import cycle_log_mels, fix_length, resample, resample_stream
from pipeline.features.spectral import MelSettings, log_mel

TARGET_SR = 8000
MEL = MelSettings(sample_rate=TARGET_SR, n_fft=256, hop_length=128, n_mels=32)


def _write_sine(path: Path, sample_rate: int, subtype: str, freq: float, seconds: float) -> None:
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    sf.write(path, 0.5 * np.sin(2 * np.pi * freq * t), sample_rate, subtype=subtype)


def _peak_frequency(y: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), d=1 / sample_rate)[np.argmax(spectrum)])


# ---------------------------------------------------------------- resample
@pytest.mark.parametrize("sample_rate, subtype", [
    (4000, "PCM_16"), (10000, "PCM_16"), (44100, "PCM_16"), (44100, "PCM_24"),
])
def test_resample_mixed_rates_and_depths_to_one_rate(tmp_path, sample_rate, subtype):
    path = tmp_path / f"sine_{sample_rate}.flac"
    _write_sine(path, sample_rate, subtype, freq=300.0, seconds=0.5)
    y, sr = read_audio(path, channels=1)
    out = resample(y, orig_sr=sr, target_sr=TARGET_SR)
    assert out.dtype == np.float32
    assert len(out) == TARGET_SR // 2  # 0.5 s at the new rate
    assert _peak_frequency(out, TARGET_SR) == pytest.approx(300.0, abs=2.0)  # 2 Hz bins
    assert np.abs(out[500:-500]).max() == pytest.approx(0.5, abs=0.02)


def test_resample_same_rate_returns_input():
    y = np.linspace(-1, 1, 100, dtype=np.float32)
    np.testing.assert_array_equal(resample(y, orig_sr=4000, target_sr=4000), y)


# ---------------------------------------------------------------- fix_length
def test_fix_length_repeat_tiles_the_cycle():
    np.testing.assert_array_equal(fix_length(np.array([1.0, 2.0, 3.0]), 7, "repeat"),
                                  [1, 2, 3, 1, 2, 3, 1])


def test_fix_length_zeros_pads_at_the_end():
    np.testing.assert_array_equal(fix_length(np.array([1.0, 2.0, 3.0]), 5, "zeros"),
                                  [1, 2, 3, 0, 0])


@pytest.mark.parametrize("mode", ["repeat", "zeros"])
def test_fix_length_crops_longer_cycles(mode):
    np.testing.assert_array_equal(fix_length(np.arange(10.0), 4, mode), [0, 1, 2, 3])


@pytest.mark.parametrize("y, n, mode, message", [
    (np.ones(3), 5, "reflect", "pad mode"),
    (np.ones(3), 0, "zeros", "positive"),
    (np.ones(0), 5, "repeat", "empty"),
])
def test_fix_length_rejects_bad_requests(y, n, mode, message):
    with pytest.raises(ValueError, match=message):
        fix_length(y, n, mode)


# ---------------------------------------------------------------- cycle_log_mels
@pytest.fixture
def two_recordings(tmp_path) -> tuple[Path, pd.DataFrame]:
    """A 4 kHz 16-bit WAV and a 44.1 kHz 24-bit FLAC; the table interleaves their cycles."""
    _write_sine(tmp_path / "a.wav", 4000, "PCM_16", freq=250.0, seconds=1.0)
    _write_sine(tmp_path / "b.flac", 44100, "PCM_24", freq=1000.0, seconds=1.0)
    table = pd.DataFrame({
        "audio_path": ["a.wav", "b.flac", "a.wav"],
        "sample_rate": [4000, 44100, 4000],
        "start": [0.0, 0.1, 0.5],
        "end": [0.3, 0.9, 0.6],
    })
    return tmp_path, table


def _direct_log_mel(folder: Path, row: pd.Series, cycle_s: float, pad_mode: str) -> np.ndarray:
    y, sr = read_audio(folder / row.audio_path)
    y = resample(y, orig_sr=sr, target_sr=TARGET_SR)
    cycle = y[round(row.start * TARGET_SR):round(row.end * TARGET_SR)]
    return log_mel(fix_length(cycle, round(cycle_s * TARGET_SR), pad_mode), MEL)


@pytest.mark.parametrize("pad_mode", ["repeat", "zeros"])
def test_cycle_log_mels_shape_and_table_order(two_recordings, pad_mode):
    folder, table = two_recordings
    features = cycle_log_mels(table, folder, target_sr=TARGET_SR, cycle_s=0.5,
                              pad_mode=pad_mode, mel=MEL)
    assert features.dtype == np.float32
    assert features.shape == (3, 1, MEL.n_mels, 1 + 4000 // MEL.hop_length)
    for position, row in table.iterrows():
        np.testing.assert_allclose(features[position, 0],
                                   _direct_log_mel(folder, row, 0.5, pad_mode), atol=1e-4)


def test_cycle_log_mels_torch_backend_agrees(two_recordings):
    folder, table = two_recordings
    settings = {"target_sr": TARGET_SR, "cycle_s": 0.5, "pad_mode": "repeat", "mel": MEL}
    reference = cycle_log_mels(table, folder, backend="librosa", **settings)
    # float32 rounding: a few 1e-5 relative, i.e. up to ~2e-3 dB near the -70 dB floor
    np.testing.assert_allclose(cycle_log_mels(table, folder, backend="torch", **settings),
                               reference, rtol=1e-4, atol=1e-3)


def test_cycle_log_mels_checks_rates(two_recordings):
    folder, table = two_recordings
    with pytest.raises(ValueError, match="mel settings"):
        cycle_log_mels(table, folder, target_sr=16000, cycle_s=0.5, pad_mode="zeros", mel=MEL)
    table.loc[1, "sample_rate"] = 10000  # the table disagrees with the file
    with pytest.raises(PipelineError, match="sample rate 44100") as error:
        cycle_log_mels(table, folder, target_sr=TARGET_SR, cycle_s=0.5, pad_mode="zeros",
                       mel=MEL)
    assert error.value.path == folder / "b.flac"


# ---------------------------------------------------------------- streamed (predict)
@pytest.mark.parametrize("sample_rate", [4000, 10000, 44100])
def test_resample_stream_gives_the_one_shot_samples(sample_rate):
    y = (0.1 * np.random.default_rng(0).standard_normal(round(3.3 * sample_rate))).astype(np.float32)
    blocks = (y[i:i + 777] for i in range(0, len(y), 777))
    streamed = np.concatenate(list(resample_stream(blocks, sample_rate, TARGET_SR, len(y))))
    np.testing.assert_array_equal(streamed, resample(y, orig_sr=sample_rate, target_sr=TARGET_SR))


def test_recording_cycle_log_mels_cut_as_training_cuts(tmp_path, monkeypatch):
    """Read in blocks of 1,000 samples, cycles sparse, longer than cycle_s and past the end:
    the training features exactly (one batch, the file's order); out of order and in small
    batches, the same cycles up to the float rounding of a batched FFT."""
    monkeypatch.setattr(cycles, "STREAM_BLOCK", 1000)
    path = tmp_path / "rec.flac"
    _write_sine(path, 44100, "PCM_16", freq=440.0, seconds=4.0)
    table = pd.DataFrame({"start": [0.1, 0.2, 1.0, 2.9, 3.5], "end": [0.9, 1.5, 1.2, 3.1, 4.4]})
    cfg = cycles.CycleFeatures(sample_rate=TARGET_SR, cycle_s=0.5, pad_mode="repeat",
                               n_mels=MEL.n_mels, n_fft=MEL.n_fft, hop_length=MEL.hop_length)
    reference = cycle_log_mels(table.assign(audio_path=path.name, sample_rate=44100), tmp_path,
                               target_sr=TARGET_SR, cycle_s=0.5, pad_mode="repeat", mel=cfg.mel)

    def streamed(rows: pd.DataFrame, batch: int) -> tuple[np.ndarray, list[list[int]]]:
        out, batches = np.full_like(reference, np.nan), []
        for positions, x in cycles.recording_cycle_log_mels(path, rows, cfg, batch=batch):
            out[positions] = x
            batches.append(list(positions))
        return out, batches

    out, batches = streamed(table, batch=len(table))
    assert batches == [[0, 1, 2, 3, 4]]
    np.testing.assert_array_equal(out, reference)
    monkeypatch.setattr(cycles, "BATCH_SPAN_S", 1.0)  # starts within 1 s: the gaps are skipped
    shuffled = [3, 0, 4, 2, 1]
    out, batches = streamed(table.iloc[shuffled].reset_index(drop=True), batch=2)
    assert batches == [[1, 4], [3], [0, 2]]  # start order, at most 2, starts within 1 s
    np.testing.assert_allclose(out, reference[shuffled], atol=1e-3)
