"""Reading ``params.yaml``, the single source of knobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import PipelineError

PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise PipelineError("params file not found (run from the project root)", path)
    with open(path) as f:
        return yaml.safe_load(f) or {}


def lookup(params: dict[str, Any], dotted: str, path: str | Path = PARAMS_FILE) -> Any:
    """``lookup(p, "icbhi.train")`` -> ``p["icbhi"]["train"]``, with a clear error if absent."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise PipelineError(f"missing key {dotted!r}", path)
        node = node[part]
    return node
