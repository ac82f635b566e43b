"""The real params.yaml, shrunk for a test's project: tests run on the file users run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, mapping by mapping (any other value replaces)."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = (merged(base[key], value) if isinstance(value, dict) and value
                    and isinstance(base.get(key), dict) else value)
    return out


def project_params(overrides: dict[str, Any]) -> dict[str, Any]:
    """The real params.yaml (its datasets and studies index, every section) with a test's
    ``overrides``: smaller data, fewer epochs, a local copy."""
    return merged(load_params(ROOT / "params.yaml"), overrides)
