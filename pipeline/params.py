"""Reading ``params.yaml``, the single source of knobs, validated against its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from pipeline.errors import PipelineError
from pipeline.params_schema import Datasets, Studies, validate

PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """The params as plain dicts, after one validation of the whole file.

    Raises PipelineError naming the file and every bad key (with the nearest valid key for
    a misspelled one) when the YAML does not parse or does not fit ``params_schema``.
    The params are returned as written (the schema is strict: it converts nothing), and keys
    left out stay out, so the code's defaults (which the schema documents) apply.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError("params file not found (run from the project root)", path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise PipelineError(f"not valid YAML{line}: {getattr(exc, 'problem', exc)}", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"not readable ({exc})", path) from None
    try:
        validate(raw or {})
    except ValueError as exc:
        raise PipelineError(str(exc), path) from None
    return raw or {}


def lookup(params: dict[str, Any], dotted: str, path: str | Path = PARAMS_FILE) -> Any:
    """``lookup(p, "icbhi.train")`` -> ``p["icbhi"]["train"]``, with a clear error if absent."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise PipelineError(f"missing key {dotted!r}", path)
        node = node[part]
    return node


# the index's groups (params.yaml `datasets` and `studies`), in the order they are searched
DATASET_GROUPS = tuple(Datasets.model_fields)
STUDY_GROUPS = tuple(Studies.model_fields)


def dataset_entry(params: dict[str, Any], name: str) -> dict[str, str]:
    """Dataset ``name``'s entry in the index (params.yaml ``datasets``): its sections' keys."""
    index = params.get("datasets") or {}
    for group in DATASET_GROUPS:
        if name in (index.get(group) or {}):
            return index[group][name]
    known = sorted(n for g in DATASET_GROUPS for n in index.get(g) or {})
    raise PipelineError(f"dataset {name!r} is not in the datasets index (known: "
                        f"{', '.join(known) or 'none'})", PARAMS_FILE)


def study_entry(params: dict[str, Any], name: str) -> tuple[str, dict[str, str]]:
    """(group, entry) of study ``name`` in the index (params.yaml ``studies``)."""
    index = params.get("studies") or {}
    for group in STUDY_GROUPS:
        if name in (index.get(group) or {}):
            return group, index[group][name]
    known = sorted(n for g in STUDY_GROUPS for n in index.get(g) or {})
    raise PipelineError(f"unknown study {name!r}; the studies index holds "
                        f"{', '.join(known) or 'none'}", PARAMS_FILE)


def command(
    path: Path = typer.Argument(PARAMS_FILE, help="params file to check"),
) -> None:
    """Validate PATH against the params schema without running anything."""
    sections = load_params(path)
    typer.echo(f"{path}: valid ({', '.join(sections) or 'no sections'})")
