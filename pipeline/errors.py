"""The one error type users see: it names the file at fault and the cause."""

from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """A problem with the user's data or configuration (not a bug).

    The CLI prints it as ``error: <path>: <cause>`` and exits non-zero, without a traceback.
    """

    def __init__(self, cause: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}" if self.path is not None else cause)
