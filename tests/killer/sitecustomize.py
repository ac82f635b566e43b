"""Loaded by every Python started with this folder on PYTHONPATH (tests/test_remote.py):
the first time a ``pipeline`` stage moves a finished temporary output into place, the
whole process group (``dvc repro`` and its stage) is killed, as by a power cut mid-write."""

import os
import signal

_replace, _rename = os.replace, os.rename


def _kill_before_moving(move):
    def moved(src, dst, *args, **kwargs):
        if ".pipeline-tmp-" in os.fspath(src):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        return move(src, dst, *args, **kwargs)

    return moved


os.replace, os.rename = _kill_before_moving(_replace), _kill_before_moving(_rename)
