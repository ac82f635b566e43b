"""The command line: commands registered without importing them, clean help text."""

from __future__ import annotations

import importlib
import inspect

import pytest
from typer.testing import CliRunner

from pipeline.cli import COMMANDS, app
from tests.fresh import printed_by

HEAVY = ("torch", "sklearn", "matplotlib", "librosa", "pandas")


def _help_is_clean(text: str) -> None:
    assert "``" not in text, text  # reST markup reads as noise in a terminal
    assert "<bool>" not in text, text


def test_importing_the_cli_imports_no_heavy_library():
    # a fresh interpreter: this test process has imported torch long ago
    code = f"import sys, pipeline.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    assert printed_by(code) == "[]"


def test_top_level_help_lists_every_command_without_importing_it():
    code = ("import sys; from typer.testing import CliRunner; from pipeline.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "print([m for m in sys.modules if m.startswith('pipeline.stages') or m == 'torch'])")
    assert printed_by(code) == "[]"
    result = CliRunner().invoke(app, ["--help"])
    _help_is_clean(result.output)
    for name in COMMANDS:
        assert f"  {name} " in result.output


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_help_line_is_its_command_docstring(name):
    module, help_line = COMMANDS[name]
    docstring = inspect.getdoc(importlib.import_module(module).command)
    assert " ".join(docstring.split("\n\n")[0].split()) == help_line
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    _help_is_clean(result.output)


def test_unknown_command_is_refused():
    result = CliRunner().invoke(app, ["no-such-stage"])
    assert result.exit_code == 2
    assert "No such command" in result.output

