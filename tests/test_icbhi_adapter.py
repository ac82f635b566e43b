"""The ICBHI adapter: records from a (partial) copy, the verified download, the official layout."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import pytest
from tests.icbhi_fixture import ABSENT, PATIENTS, make_icbhi_copy, recording_name

from pipeline.datasets import get_dataset
from pipeline.datasets.icbhi.adapter import DATABASE_DIR, DIAGNOSIS_FILE, SPLIT_FILE, ICBHI
from pipeline.errors import PipelineError
from pipeline.stages.download import download


@pytest.fixture
def copy_root(tmp_path) -> Path:
    make_icbhi_copy(tmp_path / "shared")
    return tmp_path / "shared"


def test_registered_with_official_sources():
    dataset = get_dataset("icbhi")
    assert isinstance(dataset, ICBHI)
    urls = [s.url for s in dataset.sources]
    assert [u.rsplit("/", 1)[1] for u in urls] == [
        "ICBHI_final_database.zip", "ICBHI_challenge_train_test.txt", "ICBHI_Challenge_diagnosis.txt",
    ]
    assert all(u.startswith("https://bhichallenge.med.auth.gr/") for u in urls)


def test_read_records_drops_cycle_past_audio_end(copy_root, caplog):
    with caplog.at_level(logging.INFO):
        records, report = ICBHI().read_records_and_report(copy_root / "icbhi")
    # 10 recordings x 3 cycles, plus patient 101's fourth cycle (past the end: dropped)
    assert len(records) == 30
    assert report["cycles_dropped_past_audio_end"] == 1
    assert report["dropped_cycles"][0]["recording"] == recording_name(101)
    assert (report["recordings_present"], report["recordings_listed"]) == (10, 11)
    assert "audio for 10 of 11 listed recordings" in caplog.text
    assert "past_audio_end" in caplog.text
    assert records["cycle_id"].is_unique
    first = records.set_index("cycle_id").loc[f"{recording_name(101)}:1"]
    assert first.file == first.audio_path
    assert first.file in (f"{DATABASE_DIR}/{recording_name(101)}.flac",
                          f"{DATABASE_DIR}/{recording_name(101)}.wav")
    assert (copy_root / "icbhi" / first.file).is_file()
    assert first.diagnosis == "Healthy" and first.label4 == "crackle"
    assert records.loc[records.patient == 104, "diagnosis"].iloc[0] == "COPD"
    assert ABSENT not in set(records["recording"])
    assert set(records["patient"]) == set(PATIENTS)


def test_read_records_without_diagnosis_list(copy_root):
    (copy_root / "icbhi" / DIAGNOSIS_FILE).unlink()
    records = ICBHI().read_records(copy_root / "icbhi")
    assert records["diagnosis"].isna().all() and len(records) == 30


def test_download_from_partial_local_copy(copy_root, tmp_path):
    raw, table, report = tmp_path / "raw" / "icbhi", tmp_path / "records.parquet", tmp_path / "r.json"
    records = download("icbhi", raw, table, copy_root, report_path=report)
    assert records["sha256"].notna().all()
    assert (raw / SPLIT_FILE).is_file() and not (raw / "SHA256SUMS").exists()
    found = json.loads(report.read_text())
    assert (found["recordings_present"], found["recordings_listed"], found["records"]) == (10, 11, 30)
    assert found["source"].endswith("icbhi")


def test_download_refuses_a_tampered_copy(copy_root, tmp_path):
    audio = next((copy_root / "icbhi" / DATABASE_DIR).glob("*.wav"))
    audio.write_bytes(audio.read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(PipelineError, match="checksum mismatch"):
        download("icbhi", tmp_path / "raw", tmp_path / "records.parquet", copy_root)
    assert not (tmp_path / "raw").exists()


def test_unpack_lays_official_files_out_like_the_local_copy(tmp_path):
    archive = tmp_path / "ICBHI_final_database.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ICBHI_final_database/101_1b1_Al_sc_Meditron.wav", b"RIFF")
        zf.writestr("ICBHI_final_database/101_1b1_Al_sc_Meditron.txt", "0.0\t1.0\t0\t0\n")
        zf.writestr("ICBHI_final_database/filename_format.txt", "format\n")
        zf.writestr("__MACOSX/ICBHI_final_database/._101_1b1_Al_sc_Meditron.wav", b"junk")
    split = tmp_path / SPLIT_FILE
    split.write_text("101_1b1_Al_sc_Meditron\ttrain\r\n")
    diagnosis = tmp_path / "ICBHI_Challenge_diagnosis.txt"
    diagnosis.write_text("101\tURTI\r\n")
    dest = tmp_path / "out"
    for path in (archive, split, diagnosis):
        ICBHI().unpack(path, dest)
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert files == {
        f"{DATABASE_DIR}/101_1b1_Al_sc_Meditron.txt", f"{DATABASE_DIR}/101_1b1_Al_sc_Meditron.wav",
        SPLIT_FILE, "filename_format.txt", DIAGNOSIS_FILE,
    }
