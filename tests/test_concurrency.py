"""Direct `pipeline` runs: a second writer of the same outputs stops at once with the
holder's pid (never a traceback or a half state), and a refused permission names the folder
and the permission, not a temporary file."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from pipeline import cli
from pipeline.cli import app, permission_message
from pipeline.errors import PipelineError
from pipeline.io import LOCKS, single_writer


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_second_writer_of_the_same_outputs_stops_naming_the_first(project):
    with single_writer("download hls-cmds"):
        result = CliRunner().invoke(app, ["download", "hls-cmds"])
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: another `pipeline download hls-cmds` (pid {os.getpid()}) is "
                                     "running in this project: wait for it to finish, or stop it")


def test_the_lock_is_per_command_and_target_and_freed_when_its_holder_dies(project):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time\nfrom pipeline.io import single_writer\n"
        "with single_writer('features hls-cmds'):\n    print('held', flush=True)\n    time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PipelineError, match=rf"\(pid {holder.pid}\)"), single_writer("features hls-cmds"):
            pass
        with single_writer("features icbhi"), single_writer("split hls-cmds"):
            pass  # other datasets and other commands are not held up
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    while True:  # the kernel drops a dead process's lock
        try:
            with single_writer("features hls-cmds"):
                break
        except PipelineError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert (LOCKS / "features_hls-cmds.lock").is_file()


def test_a_refused_write_names_the_folder_and_the_missing_permission(project, monkeypatch):
    (project / "models" / "hls_ae").mkdir(parents=True)
    refused = PermissionError(13, "Permission denied",
                              "models/hls_ae/.pipeline-tmp-threshold.json.abcd1234.tmp")
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK)
    assert permission_message(refused) == ("models/hls_ae: permission denied: no write permission on "
                                           "this folder")


def test_a_stage_refused_a_permission_is_one_line(project, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(project / "reports"))

    (project / "reports").mkdir()
    wrapped = cli._reporting_errors("report", refuse)
    with pytest.raises(SystemExit) as stopped:
        wrapped()
    assert stopped.value.code == 1
