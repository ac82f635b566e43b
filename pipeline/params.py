"""Reading ``params.yaml``, the single source of knobs, validated against its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from pipeline.errors import PipelineError
from pipeline.params_schema import MISSING, Datasets, Studies, find, validate

PARAMS_FILE = Path("params.yaml")


class StrictLoader(yaml.SafeLoader):
    """YAML as DVC reads params: a key twice in one mapping is an error (not the last one
    winning), and aliases (``*name``) are refused, so a small file cannot expand into an
    unbounded one (an alias bomb)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, f"aliases are not allowed in params (*{event.anchor})", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


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
        raw = yaml.load(path.read_text(), Loader=StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise PipelineError(f"not valid YAML{line}: {getattr(exc, 'problem', exc)}", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"not readable ({exc})", path) from None
    if raw is None:
        raise PipelineError("empty: no sections (a pipeline needs its params)", path)
    try:
        validate(raw)
    except ValueError as exc:
        raise PipelineError(str(exc), path) from None
    return raw


def lookup(params: dict[str, Any], dotted: str, path: str | Path = PARAMS_FILE) -> Any:
    """``lookup(p, "icbhi.train")`` -> ``p["icbhi"]["train"]``, with a clear error if absent."""
    node = find(params, dotted)
    if node is MISSING:
        raise PipelineError(f"missing key {dotted!r}", path)
    return node


# the index's groups (params.yaml `datasets` and `studies`), in the order they are searched
DATASET_GROUPS = tuple(Datasets.model_fields)
STUDY_GROUPS = tuple(Studies.model_fields)


def index(params: dict[str, Any], section: str) -> dict[str, tuple[str, dict[str, str]]]:
    """``name -> (group, entry)`` for every entry of the index ``section`` (params.yaml
    ``datasets`` or ``studies``), group by group in the schema's order, then the file's."""
    groups = DATASET_GROUPS if section == "datasets" else STUDY_GROUPS
    found = params.get(section) or {}
    return {name: (group, entry) for group in groups for name, entry in (found.get(group) or {}).items()}


def dataset_entry(params: dict[str, Any], name: str) -> dict[str, str]:
    """Dataset ``name``'s entry in the index (params.yaml ``datasets``): its sections' keys."""
    datasets = index(params, "datasets")
    if name not in datasets:
        raise PipelineError(f"dataset {name!r} is not in the datasets index (known: "
                            f"{', '.join(sorted(datasets)) or 'none'})", PARAMS_FILE)
    return datasets[name][1]


def dataset_settings(params: dict[str, Any], name: str, role: str) -> Any:
    """The section dataset ``name``'s entry names for ``role`` (features, split, generate)."""
    return lookup(params, dataset_entry(params, name)[role])


def study_entry(params: dict[str, Any], name: str) -> tuple[str, dict[str, str]]:
    """(group, entry) of study ``name`` in the index (params.yaml ``studies``)."""
    studies = index(params, "studies")
    if name not in studies:
        raise PipelineError(f"unknown study {name!r}; the studies index holds "
                            f"{', '.join(sorted(studies)) or 'none'}", PARAMS_FILE)
    return studies[name]


def command(
    path: Path = typer.Argument(PARAMS_FILE, help="params file to check"),
) -> None:
    """Validate PATH against the params schema without running anything."""
    sections = load_params(path)
    typer.echo(f"{path}: valid ({', '.join(sections)})")
