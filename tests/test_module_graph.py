"""The import graph of ``pipeline``: stages do not import each other, and no module
imports itself back through others (a circle makes import order matter)."""

from __future__ import annotations

from pipeline.import_graph import static_imports


def test_no_stage_imports_another_stage():
    graph = static_imports()
    pairs = [(a, b) for a, deps in graph.items() for b in deps
             if a.startswith("pipeline.stages.") and b.startswith("pipeline.stages.")]
    assert pairs == []


def test_no_import_circle():
    graph = static_imports()

    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return seen

    assert [m for m in graph if m in reaches(m)] == []
