"""ICBHI reader: names, annotations, split quirks, and the cycle table on tiny fixtures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.datasets.icbhi.adapter import (
    DATABASE_DIR,
    SPLIT_FILE,
    build_cycle_table,
    make_patient_disjoint,
    parse_annotations,
    parse_recording_name,
    read_diagnosis,
    read_official_split,
)
from pipeline.errors import PipelineError
from tests.conftest import SHARED_DATASETS

REAL_ICBHI = SHARED_DATASETS / "icbhi"


# ---------------------------------------------------------------- names
def test_parse_recording_name():
    assert parse_recording_name("226_1b1_Pl_sc_LittC2SE") == {
        "patient": 226, "recording_index": "1b1", "location": "Pl", "mode": "sc",
        "device": "LittC2SE",
    }


@pytest.mark.parametrize("name", [
    "101_1b1_Al_sc",                 # 4 fields
    "101_1b1_Al_sc_Meditron_x",      # 6 fields
    "10a_1b1_Al_sc_Meditron",        # patient not a number
    "101_b1_Al_sc_Meditron",         # recording index
    "101_1b1_Xx_sc_Meditron",        # location
    "101_1b1_Al_zz_Meditron",        # mode
    "101_1b1_Al_sc_Meditron.wav",    # device token with an extension
])
def test_parse_recording_name_rejects_malformed(name):
    with pytest.raises(PipelineError, match="recording name") as error:
        parse_recording_name(name)
    assert name in str(error.value)


# ---------------------------------------------------------------- annotations
def test_parse_annotations_tabs_spaces_and_blank_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("0.036\t0.579\t0\t0\n0.579 2.45  1 1\r\n\n")
    table = parse_annotations(path)
    assert table.columns.tolist() == ["start", "end", "crackle", "wheeze"]
    assert table.values.tolist() == [[0.036, 0.579, 0, 0], [0.579, 2.45, 1, 1]]


@pytest.mark.parametrize("bad_line, cause", [
    ("0.5\t1.0\t0", "expected 4 fields"),
    ("0.5\t1.0\t0\t0\t1", "expected 4 fields"),
    ("0.5\tabc\t0\t0", "could not convert"),
    ("0.5\t1.0\t2\t0", "not 0 or 1"),
    ("0.5\t1.0\t0\t0.5", "not 0 or 1"),
    ("1.0\t0.5\t0\t0", "at or before it starts"),
    ("1.0\t1.0\t0\t0", "at or before it starts"),
    ("nan\t1.0\t0\t0", "finite"),
])
def test_parse_annotations_names_file_and_line(tmp_path, bad_line, cause):
    path = tmp_path / "101_1b1_Al_sc_Meditron.txt"
    path.write_text(f"0.0\t0.5\t0\t0\n{bad_line}\n")
    with pytest.raises(PipelineError, match=cause) as error:
        parse_annotations(path)
    assert error.value.path == path
    assert "line 2" in str(error.value)


def test_parse_annotations_rejects_empty_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("\n")
    with pytest.raises(PipelineError, match="no respiratory cycles"):
        parse_annotations(path)


# ---------------------------------------------------------------- split and diagnosis
def test_read_official_split_crlf_and_226_quirk(tmp_path, caplog):
    path = tmp_path / SPLIT_FILE
    path.write_bytes(b"226_1b1_Pl_sc_Meditron\ttrain\r\n101_1b1_Al_sc_Meditron\ttest\r\n")
    assert read_official_split(path) == {
        "226_1b1_Pl_sc_Meditron": "train", "101_1b1_Al_sc_Meditron": "test",
    }
    recordings = ["226_1b1_Pl_sc_LittC2SE", "101_1b1_Al_sc_Meditron"]
    with caplog.at_level(logging.WARNING):
        split = read_official_split(path, recordings=recordings)
    assert split == {"226_1b1_Pl_sc_LittC2SE": "train", "101_1b1_Al_sc_Meditron": "test"}
    assert "226_1b1_Pl_sc_LittC2SE" in caplog.text


def test_read_official_split_keeps_names_matching_nothing(tmp_path):
    path = tmp_path / SPLIT_FILE
    path.write_text("101_1b1_Al_sc_Meditron train\n")
    assert read_official_split(path, recordings=[]) == {"101_1b1_Al_sc_Meditron": "train"}


@pytest.mark.parametrize("text, cause", [
    ("101_1b1_Al_sc_Meditron\tvalid\n", "line 1"),
    ("101_1b1_Al_sc_Meditron\n", "line 1"),
    ("101_1b1_Al_sc_Meditron train\n101_1b1_Al_sc_Meditron test\n", "listed twice"),
])
def test_read_official_split_rejects_malformed(tmp_path, text, cause):
    path = tmp_path / SPLIT_FILE
    path.write_text(text)
    with pytest.raises(PipelineError, match=cause):
        read_official_split(path)


def test_read_official_split_rejects_ambiguous_device_match(tmp_path):
    path = tmp_path / SPLIT_FILE
    path.write_text("226_1b1_Pl_sc_Meditron train\n")
    recordings = ["226_1b1_Pl_sc_LittC2SE", "226_1b1_Pl_sc_AKGC417L"]
    with pytest.raises(PipelineError, match="matches several"):
        read_official_split(path, recordings=recordings)


def test_read_diagnosis_crlf_comma_or_tab(tmp_path):
    path = tmp_path / "patient_diagnosis.csv"
    path.write_bytes(b"101,URTI\r\n102\tHealthy\r\n")
    assert read_diagnosis(path) == {101: "URTI", 102: "Healthy"}


def test_make_patient_disjoint_tie_goes_to_train():
    split = {"156_1b1_Al_mc_AKGC417L": "train", "156_1b1_Ar_mc_AKGC417L": "test",
             "101_1b1_Al_sc_Meditron": "test"}
    counts = dict.fromkeys(split, 3)
    new_split, moved = make_patient_disjoint(split, counts)
    assert new_split["156_1b1_Ar_mc_AKGC417L"] == "train"
    assert new_split["101_1b1_Al_sc_Meditron"] == "test"
    assert moved == {156: {"to": "train", "cycles_listed": {"train": 3, "test": 3},
                           "recordings_moved": ["156_1b1_Ar_mc_AKGC417L"]}}


# ---------------------------------------------------------------- cycle table
def _write_audio(path: Path, sample_rate: int, seconds: float, subtype: str) -> None:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    sf.write(path, 0.5 * np.sin(2 * np.pi * 200 * t), sample_rate, subtype=subtype)


def _write_cycles(path: Path, cycles: list[tuple]) -> None:
    path.write_text("".join("\t".join(map(str, c)) + "\n" for c in cycles))


# name: (listed name, side, audio (extension, rate, seconds, subtype) or None, cycles)
FIXTURE = {
    "101_1b1_Al_sc_Meditron": ("101_1b1_Al_sc_Meditron", "test", (".wav", 4000, 2.0, "PCM_16"),
                               [(0.1, 0.9, 0, 0), (0.9, 1.7, 1, 0), (1.7, 2.5, 0, 1)]),
    "102_1b1_Ar_sc_Meditron": ("102_1b1_Ar_sc_Meditron", "train",
                               (".flac", 44100, 1.0, "PCM_24"),
                               [(0.0, 0.5, 1, 1), (0.5, 0.6, 0, 0)]),
    "226_1b1_Pl_sc_LittC2SE": ("226_1b1_Pl_sc_Meditron", "train",
                               (".flac", 10000, 1.0, "PCM_16"), [(0.2, 0.8, 0, 0)]),
    "156_1b1_Al_mc_AKGC417L": ("156_1b1_Al_mc_AKGC417L", "test", (".wav", 4000, 1.0, "PCM_16"),
                               [(0.0, 0.4, 0, 1)]),
    "156_1b1_Ar_mc_AKGC417L": ("156_1b1_Ar_mc_AKGC417L", "train", None,
                               [(0.0, 0.4, 0, 0), (0.4, 0.8, 0, 0)]),
    "103_1b1_Tc_sc_Litt3200": ("103_1b1_Tc_sc_Litt3200", "test", None, [(0.0, 1.0, 0, 0)]),
}


@pytest.fixture
def icbhi_folder(tmp_path) -> Path:
    database = tmp_path / DATABASE_DIR
    database.mkdir()
    (database / "filename_format.txt").write_text("not an annotation file\n")
    split_lines = []
    for name, (listed, side, audio, cycles) in FIXTURE.items():
        _write_cycles(database / f"{name}.txt", cycles)
        if audio is not None:
            extension, rate, seconds, subtype = audio
            _write_audio(database / f"{name}{extension}", rate, seconds, subtype)
        split_lines.append(f"{listed}\t{side}\r\n")
    (tmp_path / SPLIT_FILE).write_text("".join(split_lines), newline="")
    return tmp_path


def test_build_cycle_table_counts_recordings_and_drops(icbhi_folder, caplog):
    with caplog.at_level(logging.INFO):
        cycles, report = build_cycle_table(icbhi_folder, min_cycle_s=0.2)
    assert report["recordings_listed"] == 6
    assert report["recordings_present"] == 4
    assert report["cycles_listed"] == 10
    assert report["cycles_with_audio"] == 7
    assert report["cycles_kept"] == len(cycles) == 5
    assert report["cycles_dropped"] == {"past_audio_end": 1, "shorter_than_min_cycle": 1}
    assert [(d["recording"], d["cycle_index"], d["reason"]) for d in report["dropped_cycles"]] == [
        ("101_1b1_Al_sc_Meditron", 2, "past_audio_end"),
        ("102_1b1_Ar_sc_Meditron", 1, "shorter_than_min_cycle"),
    ]
    assert "past_audio_end" in caplog.text and "shorter_than_min_cycle" in caplog.text


def test_build_cycle_table_columns(icbhi_folder):
    cycles, _ = build_cycle_table(icbhi_folder, min_cycle_s=0.0)
    row = cycles.set_index(["recording", "cycle_index"]).loc[("102_1b1_Ar_sc_Meditron", 0)]
    assert row.audio_path == f"{DATABASE_DIR}/102_1b1_Ar_sc_Meditron.flac"
    assert (row.sample_rate, row.audio_subtype, row.recording_duration) == (44100, "PCM_24", 1.0)
    assert (row.label4, row.label_binary, row.duration) == ("both", 1, 0.5)
    assert row[["patient", "location", "mode", "device"]].tolist() == [102, "Ar", "sc", "Meditron"]
    labels = cycles.set_index(["recording", "cycle_index"]).label4
    assert labels[("101_1b1_Al_sc_Meditron", 1)] == "crackle"
    assert labels[("156_1b1_Al_mc_AKGC417L", 0)] == "wheeze"
    assert cycles.label_binary.tolist() == [0, 1, 1, 0, 1, 0]
    assert cycles.audio_path.str.endswith(".wav").sum() == 3  # both extensions read


def test_build_cycle_table_resolves_226_quirk(icbhi_folder):
    cycles, report = build_cycle_table(icbhi_folder, min_cycle_s=0.0)
    assert report["split_name_fixes"] == {"226_1b1_Pl_sc_Meditron": "226_1b1_Pl_sc_LittC2SE"}
    row = cycles[cycles.recording == "226_1b1_Pl_sc_LittC2SE"].iloc[0]
    assert (row.official_split, row.sample_rate) == ("train", 10000)


def test_build_cycle_table_makes_split_patient_disjoint(icbhi_folder):
    cycles, report = build_cycle_table(icbhi_folder, min_cycle_s=0.0)
    # patient 156: train holds 2 listed cycles (audio missing), test 1, so all go to train
    assert report["patients_moved"] == {156: {
        "to": "train", "cycles_listed": {"train": 2, "test": 1},
        "recordings_moved": ["156_1b1_Al_mc_AKGC417L"],
    }}
    row = cycles[cycles.patient == 156].iloc[0]
    assert (row.official_split, row.listed_split) == ("train", "test")
    assert (cycles.groupby("patient").official_split.nunique() == 1).all()
    assert report["cycles_by_split_and_label"] == {
        "train": {"normal": 2, "crackle": 0, "wheeze": 1, "both": 1},
        "test": {"normal": 1, "crackle": 1, "wheeze": 0, "both": 0},
    }


def test_build_cycle_table_requires_every_recording_in_split(icbhi_folder):
    split = icbhi_folder / SPLIT_FILE
    split.write_text("".join(split.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(PipelineError, match="missing from the split") as error:
        build_cycle_table(icbhi_folder, min_cycle_s=0.0)
    assert error.value.path == split


def test_build_cycle_table_names_unreadable_audio(icbhi_folder):
    bad = icbhi_folder / DATABASE_DIR / "103_1b1_Tc_sc_Litt3200.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(PipelineError, match="not readable") as error:
        build_cycle_table(icbhi_folder, min_cycle_s=0.0)
    assert error.value.path == bad


def test_build_cycle_table_names_malformed_annotation_file_name(icbhi_folder):
    bad = icbhi_folder / DATABASE_DIR / "104_1b1_Xx_sc_Meditron.txt"
    _write_cycles(bad, [(0.0, 1.0, 0, 0)])
    with pytest.raises(PipelineError, match="location 'Xx'") as error:
        build_cycle_table(icbhi_folder, min_cycle_s=0.0)
    assert error.value.path == bad


def test_build_cycle_table_needs_database_folder(tmp_path):
    with pytest.raises(PipelineError, match=DATABASE_DIR):
        build_cycle_table(tmp_path, min_cycle_s=0.0)


# ---------------------------------------------------------------- the real partial copy
@pytest.mark.integration
@pytest.mark.skipif(not REAL_ICBHI.is_dir(), reason="local ICBHI copy absent")
def test_real_icbhi_copy_matches_readme_figures():
    cycles, report = build_cycle_table(REAL_ICBHI, min_cycle_s=0.0)
    assert (report["recordings_present"], report["recordings_listed"]) == (115, 920)
    assert report["cycles_listed"] == 6898
    assert cycles.label4.value_counts().to_dict() == {
        "normal": 685, "crackle": 193, "wheeze": 142, "both": 33,
    }
    assert report["cycles_dropped"] == {"past_audio_end": 0, "shorter_than_min_cycle": 0}
    assert report["cycles_by_split_and_label"] == {
        "train": {"normal": 304, "crackle": 144, "wheeze": 73, "both": 22},
        "test": {"normal": 381, "crackle": 49, "wheeze": 69, "both": 11},
    }
    assert report["recordings_by_split"] == {"train": 54, "test": 61}
    assert report["split_name_fixes"] == {"226_1b1_Pl_sc_Meditron": "226_1b1_Pl_sc_LittC2SE"}
    assert {p: m["to"] for p, m in report["patients_moved"].items()} == {
        156: "train", 218: "test",
    }
    recordings = cycles.drop_duplicates("recording")
    assert recordings.groupby(["sample_rate", "audio_subtype"]).size().to_dict() == {
        (4000, "PCM_16"): 45, (10000, "PCM_16"): 6, (44100, "PCM_16"): 15, (44100, "PCM_24"): 49,
    }
    assert recordings.device.value_counts().to_dict() == {
        "Meditron": 51, "Litt3200": 32, "AKGC417L": 22, "LittC2SE": 10,
    }


@pytest.mark.integration
@pytest.mark.skipif(not REAL_ICBHI.is_dir(), reason="local ICBHI copy absent")
def test_real_icbhi_full_split_becomes_patient_disjoint():
    database = REAL_ICBHI / DATABASE_DIR
    names = [p.stem for p in database.glob("*_*.txt")]
    split = read_official_split(REAL_ICBHI / SPLIT_FILE, recordings=names)
    assert sorted(split) == sorted(names)
    counts = {name: len(parse_annotations(database / f"{name}.txt")) for name in names}
    disjoint, moved = make_patient_disjoint(split, counts)
    assert sorted(moved) == [156, 218]
    sides_per_patient = {}
    for name, side in disjoint.items():
        sides_per_patient.setdefault(parse_recording_name(name)["patient"], set()).add(side)
    assert all(len(sides) == 1 for sides in sides_per_patient.values())
    assert len(sides_per_patient) == 126
