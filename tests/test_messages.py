"""Messages name the user's files: an archive nested in another by its place in the outer
one, an annotation file by itself, a file name with a tab as one escaped table cell."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pipeline.datasets import get_dataset
from pipeline.errors import PipelineError
from pipeline.predict import predict_files, shown


def test_a_bad_nested_archive_is_named_inside_the_outer_one(tmp_path):
    inner = tmp_path / "HS.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("../escape.wav", b"x")
    outer = tmp_path / "hls-cmds-v3.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "v3/HS.zip")
    with pytest.raises(PipelineError, match="would land outside the folder") as caught:
        get_dataset("hls-cmds").unpack(outer, tmp_path / "out")
    assert caught.value.path == outer / "v3" / "HS.zip"


class _Refusing:
    """A predictor whose annotation file is bad."""

    def score_file(self, path: Path):
        raise PipelineError("line 2: cycle ends (1.0) at or before it starts (2.0)", path.with_suffix(".txt"))


def test_an_annotation_error_names_the_annotation_file():
    ((kind, path, rows),) = list(predict_files(_Refusing(), [Path("101_1b1_Al_sc_Meditron.wav")]))
    assert kind == "error" and rows[0]["file"] == "101_1b1_Al_sc_Meditron.wav"
    assert rows[0]["error"].startswith("101_1b1_Al_sc_Meditron.txt: line 2: cycle ends")


def test_file_names_are_escaped_for_the_text_table():
    assert shown("plain name.wav") == "plain name.wav"
    assert shown("a\tb\nc.wav") == "a\\tb\\nc.wav"
    assert "\t" not in shown("a\tb") and "\n" not in shown("x\ny")
