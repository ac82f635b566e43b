"""MFCC windows: counts, layout, and a clear error for a bad file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipeline.errors import PipelineError
from pipeline.features.mfcc_windows import (MFCCWindows, frame_windows, recording_feature_blocks,
                                             recording_windows, window_features)
from pipeline.stages.download import download
from pipeline.datasets.hls_cmds import mfcc_window_table
from tests.hls_fixture import tone

CFG = MFCCWindows(sample_rate=4000, window_s=1.0, hop_s=0.5, n_mfcc=13, n_fft=256,
                  hop_length=64, n_mels=32)


def test_frame_windows_counts():
    y = np.arange(15 * 4000, dtype=np.float32)  # 15 s at 4 kHz
    windows = frame_windows(y, window=3 * 4000, hop=int(1.5 * 4000))
    assert windows.shape == (9, 12000)
    assert windows[1, 0] == 6000 and windows[-1, -1] == 15 * 4000 - 1  # last window ends the file
    assert frame_windows(y[:100], 200, 100).shape == (0, 200)


def test_window_table(hls_copy, tmp_path):
    records = download("hls-cmds", tmp_path / "raw", tmp_path / "r.parquet", hls_copy)
    table = mfcc_window_table(records, tmp_path / "raw", CFG)
    assert len(table) == len(records) * 7  # 4 s, 1 s windows every 0.5 s
    assert list(table.columns[:3]) == ["record", "window", "start_s"]
    assert table.shape[1] == 3 + 2 * 13  # mean and std of each coefficient
    assert np.isfinite(table.filter(like="f0").to_numpy()).all()


def test_flatten_pooling_keeps_every_frame(hls_copy):
    flat = MFCCWindows(**{**CFG.__dict__, "pooling": "flatten"})
    feats = np.concatenate(list(recording_feature_blocks(hls_copy / "hls-cmds" / "HS" / "F_N_RC.wav", flat)))
    assert feats.shape == (7, 13 * (4000 // 64 + 1))


def test_truncated_recording_is_named(hls_copy, tmp_path):
    records = download("hls-cmds", tmp_path / "raw", tmp_path / "r.parquet", hls_copy)
    bad = tmp_path / "raw" / "LS" / "F_N_RMA.wav"
    bad.write_bytes(bad.read_bytes()[:3000])
    with pytest.raises(PipelineError, match="truncated") as info:
        mfcc_window_table(records, tmp_path / "raw", CFG)
    assert info.value.path == bad


@pytest.mark.parametrize("window_s, hop_s", [(1.0, 0.5), (0.5, 0.75)])  # windows that overlap, and gaps
def test_feature_blocks_hold_the_recordings_windows(tmp_path, window_s, hop_s):
    """Predict reads a recording a block of windows at a time: the same windows, each once;
    one block is the one-shot features exactly, smaller ones differ by float rounding only."""
    cfg = MFCCWindows(**{**CFG.__dict__, "window_s": window_s, "hop_s": hop_s})
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(tone(3, True), 5), 4000, subtype="PCM_16")  # 20 s
    reference = window_features(recording_windows(path, cfg), cfg)
    [whole] = recording_feature_blocks(path, cfg, windows_per_block=1000)
    np.testing.assert_array_equal(whole, reference)
    parts = list(recording_feature_blocks(path, cfg, windows_per_block=4))
    full, rest = divmod(len(reference), 4)
    assert [len(p) for p in parts] == [4] * full + [rest] * (rest > 0)
    np.testing.assert_allclose(np.concatenate(parts), reference, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("pooling", ["flatten", "mean_std"])
def test_recording_normalisation_removes_each_coefficients_mean(hls_copy, tmp_path, pooling):
    """normalise: recording centres every coefficient over the recording (the window means
    with mean_std pooling; their spreads stay), in the features table and in predict's
    blocks alike."""
    cfg = MFCCWindows(**{**CFG.__dict__, "pooling": pooling})
    centred = MFCCWindows(**{**cfg.__dict__, "normalise": "recording"})
    records = download("hls-cmds", tmp_path / "raw", tmp_path / "r.parquet", hls_copy)
    raw, table = (mfcc_window_table(records, tmp_path / "raw", c).filter(regex=r"^f\d+$").to_numpy()
                  for c in (cfg, centred))
    first = slice(0, 7)  # the first record's windows
    if pooling == "flatten":
        coeffs = table[first].reshape(7, 13, -1)
        np.testing.assert_allclose(coeffs.mean(axis=(0, 2)), 0, atol=1e-4)
        shift = (raw[first] - table[first]).reshape(7, 13, -1)
        np.testing.assert_allclose(shift, shift[:1, :, :1].repeat(7, 0).repeat(shift.shape[2], 2), atol=1e-4)
    else:
        np.testing.assert_allclose(table[first, :13].mean(axis=0), 0, atol=1e-4)
        np.testing.assert_array_equal(table[:, 13:], raw[:, 13:])
    path = tmp_path / "raw" / records["file"][0]
    blocks = list(recording_feature_blocks(path, centred, windows_per_block=3))
    assert [len(b) for b in blocks] == [3, 3, 1]
    np.testing.assert_allclose(np.concatenate(blocks), table[first], rtol=1e-4, atol=1e-3)


def test_an_unknown_normalisation_is_refused():
    with pytest.raises(ValueError, match="normalise must be 'none' or 'recording'"):
        MFCCWindows(**{**CFG.__dict__, "normalise": "file"})
