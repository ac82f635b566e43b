"""A tiny generated ICBHI copy laid out like ../shared/datasets/icbhi (shared by tests).

Ten patients with one 3 s, 4 kHz recording each (WAV or FLAC), three annotated cycles
per recording covering all four classes, the official split list (CRLF), the diagnosis
list and a SHA256SUMS file. Patient 101 has a fourth cycle running past the end of its
audio; patient 111 is listed and annotated but has no audio (a partial copy).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.datasets.icbhi.adapter import DATABASE_DIR, DIAGNOSIS_FILE, SPLIT_FILE

SAMPLE_RATE = 4000
AUDIO_S = 3.0
# cycle (start, end, crackle, wheeze); the second and third vary by patient
_CYCLE_FLAGS = [((1, 0), (0, 0)), ((0, 1), (0, 0)), ((1, 1), (1, 0)), ((0, 0), (0, 1)),
                ((1, 0), (0, 1)), ((0, 1), (1, 1)), ((1, 0), (0, 0)), ((0, 1), (1, 0)),
                ((1, 1), (0, 0)), ((1, 0), (0, 1))]
PATIENTS = list(range(101, 111))
TRAIN_PATIENTS = PATIENTS[:6]  # the official list puts 107-110 in test
ABSENT = "111_1b1_Al_sc_Meditron"


def recording_name(patient: int) -> str:
    device = "Meditron" if patient % 2 else "Litt3200"
    return f"{patient}_1b1_Al_sc_{device}"


def _write_audio(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SAMPLE_RATE * AUDIO_S)) / SAMPLE_RATE
    y = 0.1 * rng.standard_normal(len(t)) + 0.3 * np.sin(2 * np.pi * (150 + 10 * seed) * t)
    sf.write(path, y.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def make_icbhi_copy(root: Path) -> Path:
    """Write the fixture under ``root/icbhi`` and return that folder."""
    folder = root / "icbhi"
    database = folder / DATABASE_DIR
    database.mkdir(parents=True)
    split_lines, diagnosis_lines = [], []
    for number, patient in enumerate(PATIENTS):
        name = recording_name(patient)
        second, third = _CYCLE_FLAGS[number]
        cycles = [(0.0, 0.9, 0, 0), (0.9, 1.9, *second), (1.9, 2.6, *third)]
        if patient == 101:
            cycles.append((2.6, 3.4, 0, 0))  # past the 3.0 s of audio
        (database / f"{name}.txt").write_text(
            "".join(f"{s}\t{e}\t{c}\t{w}\n" for s, e, c, w in cycles)
        )
        _write_audio(database / f"{name}{'.flac' if patient % 3 else '.wav'}", number)
        side = "train" if patient in TRAIN_PATIENTS else "test"
        split_lines.append(f"{name}\t{side}\r\n")
        diagnosis_lines.append(f"{patient},{'Healthy' if patient % 4 else 'COPD'}\r\n")
    (database / f"{ABSENT}.txt").write_text("0.0\t1.0\t0\t0\n")
    split_lines.append(f"{ABSENT}\ttest\r\n")
    (folder / SPLIT_FILE).write_text("".join(split_lines), newline="")
    (folder / DIAGNOSIS_FILE).write_text("".join(diagnosis_lines), newline="")
    (folder / "filename_format.txt").write_text("patient_recordingIndex_chestLocation_mode_device\n")
    sums = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}\n"
        for p in sorted(folder.rglob("*")) if p.is_file()
    ]
    (folder / "SHA256SUMS").write_text("".join(sums))
    return folder
