"""params.yaml is refused the way DVC refuses it: a key twice, an empty file, aliases; and a
device this torch lacks is one line when a stage starts, not a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import PipelineError
from pipeline.params import load_params
from pipeline.training import resolve_device

REAL = Path(__file__).resolve().parents[1] / "params.yaml"


def _check(path: Path):
    return CliRunner().invoke(app, ["check-params", str(path)])


def test_a_key_twice_is_an_error_naming_the_key_and_line(tmp_path):
    text = REAL.read_text().replace("  epochs: 300\n", "  epochs: 300\n  epochs: 5\n", 1)
    (tmp_path / "params.yaml").write_text(text)
    result = _check(tmp_path / "params.yaml")
    assert result.exit_code == 1
    assert "duplicate key 'epochs'" in result.output
    line = text.splitlines().index("  epochs: 5") + 1
    assert f"at line {line}" in result.output


def test_an_empty_file_is_an_error(tmp_path):
    for text in ("", "# only a comment\n"):
        (tmp_path / "params.yaml").write_text(text)
        result = _check(tmp_path / "params.yaml")
        assert result.exit_code == 1 and "empty: no sections" in result.output


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    (tmp_path / "params.yaml").write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(PipelineError, match=r"aliases are not allowed in params \(\*a0\)"):
        load_params(tmp_path / "params.yaml")
    assert time.monotonic() - started < 5


def test_the_real_params_file_still_loads():
    assert "studies" in load_params(REAL)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it_is_one_line():
    message = "train.device is cuda, but this torch has no CUDA; use auto or cpu"
    with pytest.raises(PipelineError, match=message):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
