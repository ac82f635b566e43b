"""Each default lives once: a ``.get(key, default)`` in ``pipeline/`` on a key the params
schema defines must fall back to the schema's own default for that key."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from pipeline import params_schema

PACKAGE = Path(params_schema.__file__).parent
# .get calls on other mappings whose keys share a param's name: (file, key)
NOT_PARAMS = {("pipeline/stages/report.py", "scheme")}  # the split audit's JSON


def schema_defaults() -> dict[str, list]:
    """Every schema field's name -> the defaults it has in the sections that define it."""
    found: dict[str, list] = {}
    for model in vars(params_schema).values():
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, field in model.model_fields.items():
                if field.default is not PydanticUndefined:
                    found.setdefault(name, []).append(field.default)
    return found


def get_calls() -> list[tuple[str, int, str, object]]:
    """(file, line, key, default) of every ``.get("key", default)`` in the package, the
    default read as a literal or as a name the module defines."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = None
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "get" and len(node.args) == 2
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                continue
            default = node.args[1]
            if isinstance(default, ast.Name):
                dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
                module = module or importlib.import_module(dotted.removesuffix(".__init__"))
                if not hasattr(module, default.id):
                    continue  # a local variable: not a default written here
                value = getattr(module, default.id)
            else:
                try:
                    value = ast.literal_eval(default)
                except ValueError:
                    continue
            calls.append((str(path.relative_to(PACKAGE.parent)), node.lineno, node.args[0].value, value))
    return calls


def _same(a, b) -> bool:
    return list(a) == list(b) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b


def test_no_fallback_disagrees_with_the_schema():
    defaults = schema_defaults()
    checked = [(f, line, key, value) for f, line, key, value in get_calls()
               if key in defaults and (f, key) not in NOT_PARAMS]
    assert len(checked) >= 8  # device, scaler, percentile, k, aggregate, task, stratify, group_by
    wrong = [f"{f}:{line}: .get({key!r}, {value!r}), schema: {defaults[key]!r}"
             for f, line, key, value in checked
             if not any(_same(value, d) for d in defaults[key])]
    assert wrong == []
