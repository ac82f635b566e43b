"""The pipeline's own import graph, read from its source, and the code each command runs.

A command ``pipeline <name>`` runs ``pipeline/cli.py`` and its stage module; the code it
depends on is every pipeline module those import, at any depth (imports inside
functions too), with the packages holding them (a package's ``__init__`` runs first).
Two kinds of import happen by name, and are followed as such:

- ``pipeline.models.build`` imports the module of the model it is asked for
  (``pipeline.models.MODULES``): a study command's code includes its study's model;
- a command imports the packages of the datasets it runs on: a dataset command (download,
  generate, features, split) its dataset's package, named on the command line
  (``pipeline.datasets.dataset_package``); a study command the ``study`` module of its
  study's dataset (``pipeline.studies.get_study``). ``command_code`` takes those datasets.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.datasets import PARTS

PACKAGE = Path(__file__).resolve().parent
DATASET_COMMANDS = tuple(PARTS)  # the commands run on one dataset, whose package they import


def modules() -> dict[str, Path]:
    """Every module of ``pipeline`` by dotted name (a package by its own name)."""
    root = PACKAGE.parent
    return {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(PACKAGE.rglob("*.py"))}


def static_imports(known: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> the pipeline modules it names in an import statement, anywhere in it
    (``known``: ``modules()``, given when the caller has it)."""
    known = known if known is not None else modules()
    graph = {}
    for name, path in known.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in known and m != name}
    return graph


def closure(start: set[str], graph: dict[str, set[str]]) -> set[str]:
    """``start`` and every module it imports, transitively, with the packages holding them."""
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(graph.get(name, ()))
        if "." in name:
            todo.append(name.rpartition(".")[0])
    return seen


@dataclass
class SourceTree:
    """The package's modules, their imports and their files' hashes, read once for the
    fingerprints of many commands."""

    modules: dict[str, Path]
    imports: dict[str, set[str]]
    hashes: dict[Path, str] = field(default_factory=dict)  # filled as files are asked for

    @classmethod
    def read(cls) -> SourceTree:
        known = modules()
        return cls(known, static_imports(known))

    def sha256(self, path: Path) -> str:
        if path not in self.hashes:
            self.hashes[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self.hashes[path]


def command_code(module: str, command: str, datasets: list[str] = (), models: list[str] = (), *,
                 tree: SourceTree | None = None) -> dict[str, str]:
    """The code ``pipeline <command>`` runs on ``datasets`` with ``models`` (``module``: its
    stage module), as ``{path relative to the repository: sha256 of the file}``: a dataset
    command imports each one's package, any other command each one's ``study`` module, and
    each model's module (``tree``: ``SourceTree.read()``, given when called many times)."""
    from pipeline.models import module_of

    tree = tree if tree is not None else SourceTree.read()
    start = {"pipeline.cli", module, *map(module_of, models)}
    for dataset in datasets:
        package = f"pipeline.datasets.{dataset.replace('-', '_')}"
        start.add(package if command in DATASET_COMMANDS else f"{package}.study")
    files = sorted(tree.modules[m] for m in closure(start, tree.imports) if m in tree.modules)
    root = PACKAGE.parent
    return {str(p.relative_to(root)): tree.sha256(p) for p in files}
