"""A tiny HLS-CMDS-shaped local copy, generated: same layout, CSV quirks and checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 4000
SECONDS = 4.0

# (folder, file id, kind of sound): normal = steady tones, abnormal = tones + noise bursts
HEART = [("F", "Normal", "RC", "F_N_RC"), ("F", "Normal", "LC", "F_N_LC"),
         ("M", "Normal", "RUSB", "M_N_RUSB"), ("M", "Atrial Fibrillation", "A", "M_AF_A")]
LUNG = [("M", "Normal", "RUA", "M_N_RUA"), ("F", "Normal", "LUA", "F_N_LUA"),
        ("F", "Normal", "RMA", "F_N_RMA"), ("F", "Fine Crackles", "LUA", "F_C_LUA"),
        ("M", "Wheezing", "LMA", " M_W_LMA")]
# mixture M0001 = normal heart F_N_RC (reused as H0001) + wheezing lung M_W_LMA (as L0001)
MIX = [("F", "Normal", "Wheezing", "RC", "H0001", "L0001", "M0001")]


def tone(seed: int, abnormal: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SAMPLE_RATE * SECONDS)) / SAMPLE_RATE
    y = sum(0.2 * np.sin(2 * np.pi * f * t) for f in rng.uniform(40, 400, size=3))
    y = y + 0.01 * rng.standard_normal(len(t))
    if abnormal:
        y = y + 0.3 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 2 * t) > 0.5)
    return (y / np.abs(y).max() * 0.8).astype(np.float32)


def write_wav(path: Path, y: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sample_rate, subtype="PCM_16")


def make_hls_copy(root: Path) -> Path:
    """Write ``root/hls-cmds`` (HS, LS, Mix folders, three CSVs, SHA256SUMS); return it."""
    folder = root / "hls-cmds"
    audio = {}
    for seed, (_, kind, _, ident) in enumerate(HEART):
        audio[f"HS/{ident}.wav"] = tone(seed, kind != "Normal")
    for seed, (_, kind, _, ident) in enumerate(LUNG, start=10):
        file_id = ident.strip().replace("_C_", "_FC_")
        audio[f"LS/{file_id}.wav"] = tone(seed, kind != "Normal")
    audio["Mix/H0001.wav"] = audio["HS/F_N_RC.wav"]  # identical audio, as in the real data
    audio["Mix/L0001.wav"] = audio["LS/M_W_LMA.wav"]
    audio["Mix/M0001.wav"] = (audio["Mix/H0001.wav"] + audio["Mix/L0001.wav"]) / 2
    for rel, y in audio.items():
        write_wav(folder / rel, y)
    (folder / "HS.csv").write_text(
        "Gender,Heart Sound Type,Location,Heart Sound ID\n"
        + "".join(",".join(row) + "\n" for row in HEART)
    )
    (folder / "LS.csv").write_text(
        "Gender,Lung Sound Type,Location,Lung Sound ID\n"
        + "".join(",".join(row) + "\n" for row in LUNG)
    )
    (folder / "Mix.csv").write_text(
        "Gender,Heart Sound Type,Lung Sound Type,Location,Heart Sound ID,Lung Sound ID,Mixed Sound ID\n"
        + "".join(",".join(row) + "\n" for row in MIX)
    )
    write_checksums(folder)
    return folder


def write_checksums(folder: Path) -> None:
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}\n"
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "SHA256SUMS"
    ]
    (folder / "SHA256SUMS").write_text("".join(lines))
