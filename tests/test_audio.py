"""Reading audio: every bad input is a PipelineError naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import read_audio, stream_audio
from pipeline.errors import PipelineError
from tests.hls_fixture import tone, write_wav


def test_reads_mono_float32(tmp_path):
    path = tmp_path / "ok.wav"
    write_wav(path, tone(0, False))
    y, sr = read_audio(path, expected_sr=4000, min_seconds=1.0)
    assert sr == 4000 and y.dtype == np.float32 and y.shape == (16000,)


def _error(path, **kwargs) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        read_audio(path, **kwargs)
    assert info.value.path == path  # the message names the file
    return info.value


def test_missing_file(tmp_path):
    assert "not found" in _error(tmp_path / "absent.wav").cause


def test_truncated_wav(tmp_path):
    path = tmp_path / "cut.wav"
    write_wav(path, tone(0, False))
    path.write_bytes(path.read_bytes()[:5000])
    assert "truncated" in _error(path).cause


def test_wrong_sample_rate(tmp_path):
    path = tmp_path / "rate.wav"
    write_wav(path, tone(0, False), sample_rate=8000)
    assert "8000 Hz, expected 4000 Hz" in _error(path, expected_sr=4000).cause


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples")
    assert "not readable as audio" in _error(path).cause


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _error(path)


def test_stereo_is_refused(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.zeros((4000, 2), dtype=np.float32), 4000)
    assert "expected 1 channel(s), found 2" in _error(path).cause


def test_too_short(tmp_path):
    path = tmp_path / "short.wav"
    write_wav(path, tone(0, False)[:2000])
    assert "shorter than the 3 s needed" in _error(path, min_seconds=3.0).cause


# ---------------------------------------------------------------- stream_audio (predict)
def test_stream_audio_reads_every_sample_once_in_overlapping_blocks(tmp_path):
    path = tmp_path / "long.wav"
    y = np.concatenate([tone(0, False), tone(1, False)])[:10_007]
    write_wav(path, y)
    whole, _ = read_audio(path)
    blocks = list(stream_audio(path, blocksize=1000, overlap=100, expected_sr=4000))
    assert max(len(b) for b in blocks) == 1000
    for previous, block in zip(blocks, blocks[1:], strict=False):
        np.testing.assert_array_equal(block[:100], previous[-100:])  # each starts with an overlap
    np.testing.assert_array_equal(np.concatenate([blocks[0]] + [b[100:] for b in blocks[1:]]), whole)


@pytest.mark.parametrize("where", [10, 9_990])
def test_stream_audio_fails_on_a_bad_sample_anywhere(tmp_path, where):
    path = tmp_path / "nan.wav"
    y = tone(0, False)[:10_000].copy()
    y[where] = np.nan
    sf.write(path, y, 4000, subtype="FLOAT")
    with pytest.raises(PipelineError, match="NaN or infinite") as info:
        list(stream_audio(path, blocksize=1000))
    assert info.value.path == path


def test_stream_audio_checks_the_header_before_reading(tmp_path):
    path = tmp_path / "rate.wav"
    write_wav(path, tone(0, False), sample_rate=8000)
    with pytest.raises(PipelineError, match="8000 Hz, expected 4000 Hz"):
        next(stream_audio(path, blocksize=1000, expected_sr=4000))
    with pytest.raises(PipelineError, match="shorter than the 9 s needed"):
        next(stream_audio(path, blocksize=1000, min_seconds=9.0))


def test_stream_audio_names_a_flac_cut_short(tmp_path):
    path = tmp_path / "cut.flac"
    sf.write(path, np.tile(tone(1, False), 4), 4000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with pytest.raises(PipelineError, match="not readable as audio|truncated") as info:
        list(stream_audio(path, blocksize=1000))
    assert info.value.path == path
