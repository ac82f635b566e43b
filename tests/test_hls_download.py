"""Download stage on a generated HLS-CMDS copy: records, quirks, verification, atomicity."""

from __future__ import annotations

import shutil
import zipfile

import pandas as pd
import pytest

from pipeline.datasets.hls_cmds import HLSCMDS
from pipeline.errors import PipelineError
from pipeline.stages.download import download
from tests.hls_fixture import write_checksums


def _run(copy_root, tmp_path):
    return download("hls-cmds", tmp_path / "raw", tmp_path / "records.parquet", copy_root,
                    cache_dir=tmp_path / "cache")


def test_records_table(hls_copy, tmp_path):
    records = _run(hls_copy, tmp_path)
    assert len(records) == 4 + 5 + 3
    assert records.equals(pd.read_parquet(tmp_path / "records.parquet"))
    by_record = records.set_index("record")
    # LS.csv quirks: "C" means fine crackles (FC), and a leading space is dropped
    assert by_record.loc["LS/F_FC_LUA", "lung_type"] == "Fine Crackles"
    assert by_record.loc["LS/M_W_LMA", "label"] == 1
    assert by_record.loc["HS/F_N_RC", ["kind", "label"]].tolist() == ["heart", 0]
    # a mixture is normal only if both its sounds are; its sources carry their own type
    assert by_record.loc["Mix/M0001", ["kind", "label", "family"]].tolist() == ["mixture", 1, "M0001"]
    assert by_record.loc["Mix/H0001", ["kind", "label"]].tolist() == ["heart_source", 0]
    assert by_record.loc["Mix/H0001", "sha256"] == by_record.loc["HS/F_N_RC", "sha256"]
    assert (tmp_path / "raw" / "Mix" / "M0001.wav").is_file()


def _expect_failure(copy_root, tmp_path, match):
    with pytest.raises(PipelineError, match=match) as info:
        _run(copy_root, tmp_path)
    assert not (tmp_path / "raw").exists(), "no half-copied dataset may be left"
    assert not (tmp_path / "records.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".raw")]
    return info.value


def test_checksum_mismatch_names_the_file(hls_copy, tmp_path):
    target = hls_copy / "hls-cmds" / "LS" / "F_N_LUA.wav"
    target.write_bytes(target.read_bytes()[:-2] + b"\x00\x01")
    error = _expect_failure(hls_copy, tmp_path, "checksum mismatch")
    assert error.path == target


def test_missing_file_names_the_file(hls_copy, tmp_path):
    (hls_copy / "hls-cmds" / "HS" / "F_N_LC.wav").unlink()
    error = _expect_failure(hls_copy, tmp_path, "missing")
    assert error.path.name == "F_N_LC.wav"


def test_metadata_without_audio(hls_copy, tmp_path):
    folder = hls_copy / "hls-cmds"
    with open(folder / "HS.csv", "a") as f:
        f.write("F,S3,Apex,F_S3_A\n")
    write_checksums(folder)
    error = _expect_failure(hls_copy, tmp_path, "listed in the metadata is missing")
    assert error.path.name == "F_S3_A.wav"


def test_audio_without_metadata(hls_copy, tmp_path):
    folder = hls_copy / "hls-cmds"
    shutil.copyfile(folder / "HS" / "F_N_LC.wav", folder / "HS" / "F_X_LC.wav")
    write_checksums(folder)
    error = _expect_failure(hls_copy, tmp_path, "not described")
    assert error.path.name == "F_X_LC.wav"


def test_malformed_csv(hls_copy, tmp_path):
    folder = hls_copy / "hls-cmds"
    (folder / "LS.csv").write_text("Gender,Type\nF,Normal\n")
    write_checksums(folder)
    error = _expect_failure(hls_copy, tmp_path, "missing column")
    assert error.path.name == "LS.csv"


def test_no_local_copy_says_how_to_fix(tmp_path):
    _expect_failure(tmp_path / "nowhere", tmp_path, "download.local_copy")


def test_official_archive_is_laid_out_like_the_local_copy(hls_copy, tmp_path):
    """Mendeley's archive nests HS.zip, LS.zip and Mix.zip beside the CSVs."""
    folder = hls_copy / "hls-cmds"
    archive = tmp_path / "official.zip"
    with zipfile.ZipFile(archive, "w") as outer:
        for name in ("HS", "LS", "Mix"):
            inner = tmp_path / f"{name}.zip"
            with zipfile.ZipFile(inner, "w") as zf:
                for wav in (folder / name).glob("*.wav"):
                    zf.write(wav, f"{name}/{wav.name}")
            outer.write(inner, f"dataset/{name}.zip")
        for csv in folder.glob("*.csv"):
            outer.write(csv, f"dataset/{csv.name}")
    dest = tmp_path / "unpacked"
    HLSCMDS().unpack(archive, dest)
    assert len(HLSCMDS().read_records(dest)) == 12
