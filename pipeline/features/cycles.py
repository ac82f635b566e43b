"""Respiratory cycles as fixed-size log-mel images.

Recordings come at 4, 10 and 44.1 kHz; each is read once, resampled to one rate, cut into
its annotated cycles, and each cycle is brought to one length (tiled or zero-padded when
short, cropped when long) so every cycle gives a spectrogram of the same shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from pipeline.audio import read_audio, read_audio_info, stream_audio
from pipeline.features.parallel import map_in_chunks
from pipeline.features.spectral import Backend, MelSettings, log_mel

if TYPE_CHECKING:
    import soundfile as sf
from pipeline.progress import bar as progress_bar

PadMode = Literal["repeat", "zeros"]
# Predict reads a recording in blocks of this many samples (1.5 s at 44.1 kHz) ...
STREAM_BLOCK = 65_536
# ... and holds the resampled audio from one batch's first cycle start on: at most this span
# of starts (10 MB at 4 kHz), which keeps every ICBHI recording (at most 90 s) in one batch.
BATCH_SPAN_S = 600.0
# Named rather than left to librosa's default, which may change between releases.
RESAMPLE_TYPE = "soxr_hq"


@dataclass(frozen=True)
class CycleFeatures:
    """The ``icbhi.features`` params: one rate, one cycle length, one log-mel shape."""

    sample_rate: int
    cycle_s: float
    pad_mode: PadMode
    n_mels: int
    n_fft: int
    hop_length: int
    min_cycle_s: float = 0.0
    fmin: float = 0.0
    fmax: float | None = None
    backend: Backend = "librosa"

    def __post_init__(self) -> None:
        if self.cycle_s <= 0 or self.min_cycle_s < 0:
            raise ValueError(f"cycle_s must be positive and min_cycle_s non-negative: {self}")
        if self.pad_mode not in ("repeat", "zeros"):
            raise ValueError(f"pad_mode must be 'repeat' or 'zeros', got {self.pad_mode!r}")
        self.mel  # noqa: B018 - validates the mel settings now, not mid-extraction

    @property
    def mel(self) -> MelSettings:
        return MelSettings(self.sample_rate, self.n_fft, self.hop_length, self.n_mels,
                           fmin=self.fmin, fmax=self.fmax)

    @property
    def frames(self) -> int:
        return 1 + round(self.cycle_s * self.sample_rate) // self.hop_length


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``y`` at ``target_sr``, float32."""
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr:
        return y
    import librosa  # here: loading a study's settings should not import librosa

    resampled = librosa.resample(y=y, orig_sr=orig_sr, target_sr=target_sr, res_type=RESAMPLE_TYPE)
    return resampled.astype(np.float32, copy=False)


def resample_stream(blocks: Iterable[np.ndarray], orig_sr: int, target_sr: int,
                    total: int) -> Iterator[np.ndarray]:
    """``resample`` of the ``total`` samples that ``blocks`` hold, block by block: the same
    samples (soxr's stream gives its one-shot output, and the end is zero-padded to the
    length librosa gives), with memory flat in the length."""
    if orig_sr == target_sr:
        yield from blocks
        return
    import soxr

    stream = soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32", quality=RESAMPLE_TYPE)
    left = int(np.ceil(total * (float(target_sr) / orig_sr)))  # the length librosa.resample gives
    for block in blocks:
        out = stream.resample_chunk(block)[:left]
        left -= len(out)
        yield out
    out = stream.resample_chunk(np.zeros(0, np.float32), last=True)[:left]
    yield np.pad(out, (0, left - len(out)))


def fix_length(y: np.ndarray, n_samples: int, mode: PadMode = "repeat") -> np.ndarray:
    """Exactly ``n_samples`` long: longer input cropped, shorter tiled (repeat) or zero-padded."""
    if mode not in ("repeat", "zeros"):
        raise ValueError(f"unknown pad mode {mode!r}: use 'repeat' or 'zeros'")
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    if len(y) >= n_samples:
        return y[:n_samples]
    if mode == "zeros":
        return np.pad(y, (0, n_samples - len(y)))
    if len(y) == 0:
        raise ValueError("cannot repeat an empty cycle")
    return np.tile(y, -(-n_samples // len(y)))[:n_samples]


def _cycle_samples(
    y: np.ndarray, sample_rate: int, rows: pd.DataFrame, n_samples: int, pad_mode: PadMode
) -> np.ndarray:
    """(cycles, n_samples): each row's [start, end) of ``y``, fixed to ``n_samples``."""
    return np.stack([
        fix_length(y[round(start * sample_rate):round(end * sample_rate)], n_samples, pad_mode)
        for start, end in zip(rows["start"], rows["end"], strict=True)
    ])


def cycle_log_mel_chunks(
    cycles: pd.DataFrame,
    folder: str | Path,
    *,
    target_sr: int,
    cycle_s: float,
    pad_mode: PadMode,
    mel: MelSettings,
    backend: Backend = "librosa",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(positions, log-mels)`` for successive chunks of recordings: the (n, 1, n_mels, frames)
    float32 log-mels of the table rows at ``positions``. At most one chunk of audio and its
    features is held at a time, whatever the number of recordings.

    ``cycles`` needs audio_path (relative to ``folder``), sample_rate, start and end, as
    ``pipeline.datasets.icbhi.build_cycle_table`` gives them.
    """
    if mel.sample_rate != target_sr:
        raise ValueError(f"mel settings are for {mel.sample_rate} Hz, cycles are at {target_sr} Hz")
    folder = Path(folder)
    n_samples = round(cycle_s * target_sr)
    table = cycles.reset_index(drop=True)
    recordings = list(table.groupby("audio_path", sort=False).indices.items())

    def segments(recording: tuple[str, np.ndarray]) -> np.ndarray:
        """One recording read, resampled and cut into its fixed-length cycles (on a thread)."""
        audio_path, positions = recording
        rows = table.iloc[positions]
        y, sr = read_audio(folder / audio_path, expected_sr=int(rows["sample_rate"].iloc[0]),
                           channels=1)
        return _cycle_samples(resample(y, sr, target_sr), target_sr, rows, n_samples, pad_mode)

    with progress_bar(total=len(recordings), desc="cycle log-mels", unit="recording") as progress:
        for part, cut in map_in_chunks(segments, recordings):
            positions = np.concatenate([p for _, p in part])
            yield positions, log_mel(np.concatenate(cut), mel, backend)[:, None]  # one batched call
            progress.update(len(part))


def cycle_log_mels(cycles: pd.DataFrame, folder: str | Path, *, target_sr: int, cycle_s: float,
                   pad_mode: PadMode, mel: MelSettings, backend: Backend = "librosa") -> np.ndarray:
    """(N, 1, n_mels, frames) float32 log-mels, one per row of the cycle table, in its order."""
    frames = 1 + round(cycle_s * target_sr) // mel.hop_length  # centred frames, as log_mel gives
    features = np.empty((len(cycles), 1, mel.n_mels, frames), dtype=np.float32)
    for positions, chunk in cycle_log_mel_chunks(cycles, folder, target_sr=target_sr, cycle_s=cycle_s,
                                                 pad_mode=pad_mode, mel=mel, backend=backend):
        features[positions] = chunk
    return features


def _start_ordered_batches(first: np.ndarray, size: int, span: int) -> Iterator[np.ndarray]:
    """Positions in start order, cut into batches of at most ``size`` whose starts lie within
    ``span`` samples of each other."""
    batch: list[int] = []
    for position in np.argsort(first, kind="stable"):
        if batch and (len(batch) == size or first[position] - first[batch[0]] > span):
            yield np.array(batch)
            batch = []
        batch.append(int(position))
    if batch:
        yield np.array(batch)


def recording_cycle_log_mels(path: str | Path, cycles: pd.DataFrame, cfg: CycleFeatures, *,
                             batch: int, info: sf._SoundFileInfo | None = None
                             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(positions, log-mels)`` of one recording's cycles (rows of ``cycles``: start, end),
    cut as ``cycle_log_mels`` cuts them, in batches of at most ``batch`` cycles taken in start
    order. The file is read and resampled block by block and only the audio from the
    batch's first start on is held, so memory stays flat in the recording's length; every
    sample is read, so a bad one anywhere fails the iteration. ``info``: the file's
    ``read_audio_info``, where the caller has read it already."""
    info = info if info is not None else read_audio_info(path)
    chunks = resample_stream(stream_audio(path, blocksize=STREAM_BLOCK, info=info), info.samplerate,
                             cfg.sample_rate, info.frames)
    rate, n_samples = cfg.sample_rate, round(cfg.cycle_s * cfg.sample_rate)
    first = np.array([round(start * rate) for start in cycles["start"]], dtype=np.int64)
    # the cycle's samples that fix_length keeps: from its start, at most n_samples
    last = np.minimum([round(end * rate) for end in cycles["end"]], first + n_samples)
    held, held_from = np.zeros(0, np.float32), 0  # the audio's samples [held_from, +len(held))
    for positions in _start_ordered_batches(first, batch, round(BATCH_SPAN_S * rate)):
        while True:
            drop = min(first[positions[0]] - held_from, len(held))  # what no batch needs again
            held, held_from = held[drop:], held_from + drop
            chunk = None if held_from + len(held) >= last[positions].max() else next(chunks, None)
            if chunk is None:  # enough held, or the file ended: cycles past it are cut short
                break
            held = np.concatenate([held, chunk])
        cut = np.stack([fix_length(held[first[k] - held_from:last[k] - held_from], n_samples,
                                   cfg.pad_mode) for k in positions])
        yield positions, log_mel(cut, cfg.mel, cfg.backend)[:, None]
    for _ in chunks:  # the rest of the file is read for its checks
        pass
