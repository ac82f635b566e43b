"""Reading audio with checks that name the file and the cause.

soundfile reads WAV and FLAC alike; it quietly returns fewer samples for a WAV whose
data chunk was cut short, so WAV headers are checked against the file size first.
Samples must be finite and near full scale, and stored with at least 16 bits: anything
else would be scored, but the score would not mean what it means for the training data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.errors import PipelineError

# Sample formats as fine as the training data's (16- and 24-bit PCM). 8-bit and companded
# audio is read at the right scale, but its quantisation noise (about -48 dBFS) alone moves
# a recording's score across the threshold.
FINE_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
# Full scale is 1.0; float files may overshoot it a little after processing. Far beyond it
# the file is not audio at the scale the models were trained on.
MAX_PEAK = 2.0


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


def _check_subtype(subtype: str, path: Path) -> None:
    if subtype not in FINE_SUBTYPES:
        raise PipelineError(f"{subtype} samples are too coarse to score (the models were trained "
                            f"on 16/24-bit audio); need one of {', '.join(FINE_SUBTYPES)}", path)


def _check_samples(samples: np.ndarray, path: Path) -> None:
    finite = np.isfinite(samples)
    if not finite.all():
        raise PipelineError(f"{int((~finite).sum())} sample(s) are NaN or infinite", path)
    peak = float(np.abs(samples).max())
    if peak > MAX_PEAK:
        raise PipelineError(f"peak amplitude {peak:.3g} is far beyond full scale (1.0, at most "
                            f"{MAX_PEAK:g} accepted): not audio at the usual scale", path)


def read_audio(
    path: str | Path,
    *,
    expected_sr: int | None = None,
    channels: int = 1,
    min_seconds: float = 0.0,
) -> tuple[np.ndarray, int]:
    """Return ``(samples, sample_rate)``: mono float32 in [-1, 1].

    Raises PipelineError naming ``path`` when the file is missing, unreadable,
    truncated, empty, coarser than 16 bits, holds non-finite or far out-of-scale samples,
    has another channel count or sample rate than expected, or is shorter than
    ``min_seconds``.
    """
    path = Path(path)
    info = read_audio_info(path)
    try:
        samples, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise PipelineError(f"not readable as audio ({exc})", path) from exc
    if samples.shape[0] != info.frames:  # e.g. a FLAC cut short: its header promises more
        raise PipelineError(f"truncated: header promises {info.frames} samples, "
                            f"{samples.shape[0]} decoded", path)
    if samples.shape[1] != channels:
        raise PipelineError(f"expected {channels} channel(s), found {samples.shape[1]}", path)
    if samples.shape[0] == 0:
        raise PipelineError("audio file holds no samples", path)
    _check_samples(samples, path)
    if expected_sr is not None and sr != expected_sr:
        raise PipelineError(f"sample rate {sr} Hz, expected {expected_sr} Hz", path)
    duration = samples.shape[0] / sr
    if duration < min_seconds:
        raise PipelineError(f"{duration:.2f} s long, shorter than the {min_seconds:g} s needed", path)
    return samples[:, 0] if channels == 1 else samples, sr


def stream_audio(
    path: str | Path,
    *,
    blocksize: int,
    overlap: int = 0,
    expected_sr: int | None = None,
    min_seconds: float = 0.0,
    info: sf._SoundFileInfo | None = None,
) -> Iterator[np.ndarray]:
    """A mono file's float32 samples in blocks of ``blocksize`` (each starting ``overlap``
    samples before the previous one ends), with ``read_audio``'s checks: memory stays flat
    in the file's length. Every sample is read, so a bad sample anywhere, or a file that
    ends before its header says, fails the iteration (PipelineError naming ``path``).
    ``info``: the file's ``read_audio_info``, where the caller has read it already."""
    path = Path(path)
    info = info if info is not None else read_audio_info(path)
    if info.channels != 1:
        raise PipelineError(f"expected 1 channel(s), found {info.channels}", path)
    if expected_sr is not None and info.samplerate != expected_sr:
        raise PipelineError(f"sample rate {info.samplerate} Hz, expected {expected_sr} Hz", path)
    if info.duration < min_seconds:
        raise PipelineError(f"{info.duration:.2f} s long, shorter than the {min_seconds:g} s "
                            "needed", path)
    decoded = 0
    try:
        for block in sf.blocks(path, blocksize=blocksize, overlap=overlap, dtype="float32",
                               always_2d=True):
            if not len(block):
                continue
            _check_samples(block, path)
            decoded += len(block) - (overlap if decoded else 0)
            yield block[:, 0]
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise PipelineError(f"not readable as audio ({exc})", path) from exc
    if decoded != info.frames:
        raise PipelineError(f"truncated: header promises {info.frames} samples, "
                            f"{decoded} decoded", path)


def read_audio_info(path: str | Path) -> sf._SoundFileInfo:
    """soundfile's header info (rate, frames, duration), with read_audio's file checks."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError("audio file not found" if not path.exists() else
                            "not a regular file", path)
    _check_wav_complete(path)
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise PipelineError(f"not readable as audio ({exc})", path) from exc
    if info.frames == 0:
        raise PipelineError("audio file holds no samples", path)
    _check_subtype(info.subtype, path)
    return info
