"""The import graph of ``pipeline``: stages do not import each other, and no module
imports itself back through others (a circle makes import order matter)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"


def _graph() -> dict[str, set[str]]:
    """module -> the pipeline modules it imports, at any depth of its code (lazy ones too)."""
    modules = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_no_stage_imports_another_stage():
    graph = _graph()
    pairs = [(a, b) for a, deps in graph.items() for b in deps
             if a.startswith("pipeline.stages.") and b.startswith("pipeline.stages.")]
    assert pairs == []


def test_no_import_circle():
    graph = _graph()

    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return seen

    assert [m for m in graph if m in reaches(m)] == []
