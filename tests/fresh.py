"""Running a snippet in a fresh interpreter, for tests of what gets imported (the test
process itself has imported torch and the whole package long ago)."""

from __future__ import annotations

import subprocess
import sys


def printed_by(code: str) -> str:
    """What ``code`` prints, stripped, run by a new Python; its failure fails the test."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()
