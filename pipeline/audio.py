"""Reading audio with checks that name the file and the cause.

soundfile reads WAV and FLAC alike; it quietly returns fewer samples for a WAV whose
data chunk was cut short, so WAV headers are checked against the file size first.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.errors import PipelineError


def _check_wav_complete(path: Path) -> None:
    """Fail if a RIFF/WAVE file's data chunk declares more bytes than the file holds."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return  # not a RIFF WAV: soundfile will judge it
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise PipelineError("truncated WAV: no data chunk before end of file", path)
            chunk_id, chunk_size = struct.unpack("<4sI", chunk)
            if chunk_id == b"data":
                held = size - f.tell()
                if chunk_size > held:
                    raise PipelineError(
                        f"truncated WAV: header declares {chunk_size} bytes of audio, "
                        f"file holds {held}",
                        path,
                    )
                return
            f.seek(chunk_size + (chunk_size & 1), 1)


def read_audio(
    path: str | Path,
    *,
    expected_sr: int | None = None,
    channels: int = 1,
    min_seconds: float = 0.0,
) -> tuple[np.ndarray, int]:
    """Return ``(samples, sample_rate)``: mono float32 in [-1, 1].

    Raises PipelineError naming ``path`` when the file is missing, unreadable,
    truncated, empty, has another channel count or sample rate than expected,
    or is shorter than ``min_seconds``.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError("audio file not found", path)
    _check_wav_complete(path)
    try:
        samples, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise PipelineError(f"not readable as audio ({exc})", path) from exc
    if samples.shape[1] != channels:
        raise PipelineError(f"expected {channels} channel(s), found {samples.shape[1]}", path)
    if samples.shape[0] == 0:
        raise PipelineError("audio file holds no samples", path)
    if expected_sr is not None and sr != expected_sr:
        raise PipelineError(f"sample rate {sr} Hz, expected {expected_sr} Hz", path)
    duration = samples.shape[0] / sr
    if duration < min_seconds:
        raise PipelineError(f"{duration:.2f} s long, shorter than the {min_seconds:g} s needed", path)
    return samples[:, 0] if channels == 1 else samples, sr


def read_audio_info(path: str | Path) -> sf._SoundFileInfo:
    """soundfile's header info (rate, frames, duration), with read_audio's file checks."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError("audio file not found", path)
    _check_wav_complete(path)
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise PipelineError(f"not readable as audio ({exc})", path) from exc
    if info.frames == 0:
        raise PipelineError("audio file holds no samples", path)
    return info
