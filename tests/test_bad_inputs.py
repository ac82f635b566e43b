"""Malformed inputs, generated here, each get one clear error line naming the file or the
params key (exit 1, no traceback) and leave every output as it was; or, where a policy
allows skipping, a reported quarantine. Never a silent wrong answer."""

from __future__ import annotations

import hashlib
import io as stdio
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.io import LOCKS, TEMP_PREFIX
from pipeline.datasets.base import extract_zip, read_checksums
from pipeline.errors import PipelineError
from pipeline.features import mfcc_windows
from pipeline.datasets.icbhi.study import PREDICT_BATCH, _featurize_icbhi
from tests.hls_fixture import make_hls_copy, tone, write_checksums, write_wav
from tests.project_params import project_params
from tests.test_hls_pipeline import PARAMS, project  # noqa: F401 - the trained-project fixture


def _tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (temporaries included) with its content's hash; the
    single-writer locks (which hold the last run's pid) are no output."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
            and LOCKS.name not in p.relative_to(folder).parts}


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    """A project whose download stage has run once on a good generated copy."""
    root = tmp_path_factory.mktemp("bad")
    copy = make_hls_copy(root / "copy")
    folder = root / "project"
    folder.mkdir()
    (folder / "params.yaml").write_text(
        yaml.safe_dump(project_params({"download": {"local_copy": str(root / "copy")}, **PARAMS})))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        assert CliRunner().invoke(app, ["download", "hls-cmds"]).exit_code == 0
    return folder, copy


# ---------------------------------------------------------------- bad copies of the data
def _unlisted(copy):
    write_wav(copy / "HS/extra.wav", tone(99, False))


def _empty_sums(copy):
    (copy / "SHA256SUMS").write_text("")


def _duplicate_line(copy):
    lines = (copy / "SHA256SUMS").read_text().splitlines(keepends=True)
    (copy / "SHA256SUMS").write_text("".join(lines) + lines[0].replace(lines[0][:64], "0" * 64))


def _symlink(copy):
    os.symlink("/etc/passwd", copy / "HS/passwd.wav")


def _no_sums(copy):
    (copy / "SHA256SUMS").unlink()


def _csv_edit(old: str, new: str):
    def edit(copy):
        path = next(p for p in copy.glob("*.csv") if old in p.read_text())
        path.write_text(path.read_text().replace(old, new))
        write_checksums(copy)  # listed and verified: the content itself is what is wrong
    return edit


def _truncated(copy):
    path = copy / "HS/F_N_RC.wav"
    path.write_bytes(path.read_bytes()[:5000])
    write_checksums(copy)


def _eight_bit(copy):
    sf.write(copy / "HS/F_N_RC.wav", tone(0, False), 4000, subtype="PCM_U8")
    write_checksums(copy)


def _huge_float(copy):
    sf.write(copy / "HS/F_N_RC.wav", tone(0, False) * 1e30, 4000, subtype="FLOAT")
    write_checksums(copy)


BAD_COPIES = [
    (_unlisted, "not listed in the checksums"),
    (_empty_sums, "lists no files"),
    (_duplicate_line, "is listed twice"),
    (_symlink, "symbolic links are refused"),
    (_no_sums, "listed in the checksums are missing"),  # the shipped list: the real files
    (_csv_edit("F_N_LC", "../../../etc/passwd"), "Heart Sound ID '../../../etc/passwd' is not a plain"),
    (_csv_edit("Normal,LC", "Nromal,LC"), "Heart Sound Type 'Nromal' is not one of"),
    (_truncated, "truncated WAV"),
    (_eight_bit, "PCM_U8 samples are too coarse"),
    (_huge_float, "far beyond full scale"),
]


@pytest.mark.parametrize("spoil, message", BAD_COPIES, ids=[f.__name__ for f, _ in BAD_COPIES])
def test_a_bad_copy_is_one_clear_error_and_changes_no_output(downloaded, tmp_path, monkeypatch,
                                                             spoil, message):
    root, good = downloaded
    copy = tmp_path / "copy" / "hls-cmds"
    shutil.copytree(good, copy)
    spoil(copy)
    monkeypatch.chdir(root)
    params = yaml.safe_load(Path("params.yaml").read_text())
    before = _tree(root)
    Path("params.yaml").write_text(yaml.safe_dump({**params, "download": {"local_copy":
                                                                          str(copy.parent)}}))
    try:
        result = CliRunner().invoke(app, ["download", "hls-cmds"])
    finally:
        Path("params.yaml").write_text(yaml.safe_dump(params))
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith("error: ")
    # the file at fault named where the user can open it, never in the staging folder
    assert str(copy) in result.output and TEMP_PREFIX not in result.output
    assert _tree(root) == before


# ---------------------------------------------------------------- bad params, any stage
BAD_PARAMS = [
    ({"train": {**PARAMS["train"], "epoch": 3}}, "train.epoch: unknown key (did you mean train.epochs?)"),
    ({"model": {"name": "mlp_ae", "latent": -1}}, "model.latent: Input should be greater than 0"),
    ({"split": {**PARAMS["split"], "fractions": [0, 1, 0]}}, "split.fractions[0]"),
    ({"featurs": {}}, "featurs: unknown key (did you mean features?)"),
]


@pytest.mark.parametrize("change, message", BAD_PARAMS, ids=[m.split(":")[0] for _, m in BAD_PARAMS])
@pytest.mark.parametrize("stage", [["download", "hls-cmds"], ["features", "hls-cmds"],
                                   ["train", "hls_ae"]])
def test_bad_params_stop_every_stage_before_it_writes(downloaded, monkeypatch, change, message,
                                                      stage):
    monkeypatch.chdir(downloaded[0])
    good = Path("params.yaml").read_text()
    before = _tree(downloaded[0])
    Path("params.yaml").write_text(yaml.safe_dump({**yaml.safe_load(good), **change}))
    try:
        result = CliRunner().invoke(app, stage)
    finally:
        Path("params.yaml").write_text(good)
    assert result.exit_code == 1
    assert result.output.startswith(f"error: params.yaml: {message}")
    assert _tree(downloaded[0]) == before


# ---------------------------------------------------------------- checksum lists, archives
@pytest.mark.parametrize("text, message", [
    ("", "lists no files"),
    (f"{'a' * 64}  x.wav\n{'b' * 64}  x.wav\n", "x.wav is listed twice"),
    (f"{'a' * 64}  ../outside.wav\n", "points outside"),
    (f"{'z' * 64}  x.wav\n", "is not '<sha256>  <path>'"),
])
def test_checksum_lists_that_would_verify_nothing_are_refused(text, message):
    with pytest.raises(PipelineError, match=message):
        read_checksums(text, "SHA256SUMS")


def _zip(path: Path, members: dict[str, bytes], link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (0o120777 << 16)  # a symlink entry
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize("members, link, message", [
    ({"../escape.txt": b"x"}, None, "would land outside"),
    ({"/abs.txt": b"x"}, None, "would land outside"),
    ({"ok.txt": b"x"}, "link.wav", "is a symbolic link"),
    ({"bomb.bin": bytes(5_000_000)}, None, "ratio"),
])
def test_archives_that_escape_link_or_explode_are_refused(tmp_path, members, link, message):
    archive = _zip(tmp_path / "a.zip", members, link)
    with pytest.raises(PipelineError, match=message):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_a_member_larger_than_it_declares_is_refused(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"a.txt": b"y" * 1000})
    data = bytearray(archive.read_bytes())
    # shrink the declared size in both headers: the data now unpacks to more than declared
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(header) + offset
        data[at:at + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(PipelineError, match="not a readable zip|more than the 10 bytes"):
        extract_zip(archive, tmp_path / "out")


def test_a_good_archive_unpacks(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"d/a.txt": b"hello", "b.txt": stdio.BytesIO(b"x").read()})
    extract_zip(archive, tmp_path / "out")
    assert (tmp_path / "out/d/a.txt").read_bytes() == b"hello"


# ---------------------------------------------------------------- predict
def _predict(*files: Path, as_json: bool = True):
    args = ["predict", "--study", "hls_ae", *(["--json"] if as_json else []), *map(str, files)]
    return CliRunner().invoke(app, args)


def test_predict_never_decides_on_bad_audio_and_keeps_good_results(project, monkeypatch):  # noqa: F811
    monkeypatch.chdir(project)
    inputs = project / "bad-inputs"
    inputs.mkdir()
    good = inputs / "good.wav"
    write_wav(good, tone(100, False))
    y = tone(100, False).astype(np.float32)
    sf.write(inputs / "huge.wav", y * 1e30, 4000, subtype="FLOAT")
    sf.write(inputs / "eight_bit.wav", y, 4000, subtype="PCM_U8")
    nan = y.copy()
    nan[100] = np.nan
    sf.write(inputs / "nan.wav", nan, 4000, subtype="FLOAT")
    (inputs / "folder.wav").mkdir()
    files = [inputs / "huge.wav", good, inputs / "nan.wav", inputs / "eight_bit.wav",
             inputs / "folder.wav", inputs / "missing.wav"]
    result = _predict(*files)
    assert result.exit_code == 1
    payload = json.loads(result.stdout)  # valid JSON, with the good file's result
    assert [r["file"] for r in payload["results"]] == [str(good)]
    errors = {Path(e["file"]).name: e["error"] for e in payload["errors"]}
    assert "far beyond full scale" in errors["huge.wav"]
    assert "NaN or infinite" in errors["nan.wav"]
    assert "too coarse" in errors["eight_bit.wav"]
    assert "not a regular file" in errors["folder.wav"]
    assert "not found" in errors["missing.wav"]
    table = _predict(*files, as_json=False)
    lines = table.stdout.splitlines()
    assert lines[0] == "unit\tscore\tthreshold\tdecision" and lines[1].startswith(str(good))
    assert len(lines[1].split("\t")) == 4 and "Traceback" not in table.output


def test_predict_turns_an_unexpected_failure_into_that_files_error(project, monkeypatch):  # noqa: F811
    monkeypatch.chdir(project)
    good = project / "bad-inputs-2" / "good.wav"
    write_wav(good, tone(100, False))

    def explode(path, cfg):
        if "boom" in str(path):
            raise OverflowError("cannot convert float infinity to integer")
        return real(path, cfg)

    real = mfcc_windows.recording_feature_blocks
    monkeypatch.setattr("pipeline.datasets.hls_cmds.study.recording_feature_blocks", explode)
    result = _predict(good.with_name("boom.wav"), good)
    payload = json.loads(result.stdout)
    assert result.exit_code == 1 and [r["file"] for r in payload["results"]] == [str(good)]
    assert payload["errors"] == [{"file": str(good.with_name("boom.wav")),
                                  "error": "OverflowError: cannot convert float infinity to integer"}]


def test_predict_refuses_a_nan_score(project, monkeypatch):  # noqa: F811
    monkeypatch.chdir(project)
    good = project / "bad-inputs-3" / "good.wav"
    write_wav(good, tone(100, False))
    monkeypatch.setattr("pipeline.predict.predict_scores",
                        lambda model, objective, x, device: np.full(len(x), np.nan, np.float32))
    result = _predict(good)
    payload = json.loads(result.stdout)
    assert result.exit_code == 1 and payload["results"] == []
    assert "NaN or infinite: no decision" in payload["errors"][0]["error"]


def test_predict_help_lists_the_studies():
    result = CliRunner().invoke(app, ["predict", "--help"])
    assert "hls_ae" in result.output and "icbhi_crnn" in result.output


CYCLE_SETTINGS = {"sample_rate": 4000, "cycle_s": 1.0, "pad_mode": "repeat", "n_mels": 16,
                  "n_fft": 256, "hop_length": 128, "min_cycle_s": 0.2}


def test_predict_handles_annotated_cycles_as_training_does(tmp_path):
    audio = tmp_path / "101_1b1_Al_sc_Meditron.wav"
    write_wav(audio, tone(1, False)[:4000 * 4])  # 4 s
    cycles = ["0.0 1.0 0 0", "1.0 1.0001 0 1", "2.0 1e308 1 0", "3.5 4.5 0 0"]
    cycles += [f"{0.001 * i:.3f} {0.001 * i + 0.5:.3f} 0 0" for i in range(600)]
    audio.with_suffix(".txt").write_text("\n".join(cycles) + "\n")
    skipped, batches = _featurize_icbhi(audio, CYCLE_SETTINGS)
    assert [(s["unit"].rsplit("#", 1)[1], s["reason"]) for s in skipped] == [
        ("cycle1", "shorter_than_min_cycle"), ("cycle2", "past_audio_end"),
        ("cycle3", "past_audio_end")]
    sizes, units = [], []
    for samples in batches:  # featurised lazily, one bounded batch at a time
        sizes.append(len(samples.x))
        units += list(samples.meta["unit"])
        assert set(samples.meta.columns) == {"unit", "start", "end", "position"}
    assert max(sizes) == PREDICT_BATCH and sum(sizes) == 601
    assert units[0].endswith("#cycle0") and units[1].endswith("#cycle4")


def test_predict_names_the_annotation_when_no_cycle_can_be_scored(tmp_path):
    audio = tmp_path / "101_1b1_Al_sc_Meditron.wav"
    write_wav(audio, tone(1, False)[:4000 * 2])
    audio.with_suffix(".txt").write_text("1.0 1.0001 0 0\n5.0 6.0 0 0\n")
    with pytest.raises(PipelineError) as caught:
        _featurize_icbhi(audio, CYCLE_SETTINGS)
    assert caught.value.path == audio.with_suffix(".txt")
    assert "none of the 2 annotated cycle(s)" in caught.value.cause


def test_a_truncated_flac_fails_where_it_is_read(tmp_path):
    from pipeline.audio import read_audio
    path = tmp_path / "a.flac"
    sf.write(path, tone(1, False), 4000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with pytest.raises(PipelineError, match="not readable as audio|truncated"):
        read_audio(path)


def test_json_output_never_holds_a_bare_nan():
    from pipeline.io import jsonable
    payload = {"score": np.float32("nan"), "scores": np.array([1.0, np.inf]), "n": np.int64(2)}
    assert json.loads(json.dumps(jsonable(payload), allow_nan=False)) == {
        "score": None, "scores": [1.0, None], "n": 2}
