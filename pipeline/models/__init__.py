"""Model registry: each model is a small ``nn.Module`` registered under a name.

``params.yaml`` names a model and its keyword arguments; ``build`` makes it. Keeping the
constructor arguments next to the weights (see ``pipeline.training.save_checkpoint``)
lets ``predict`` rebuild exactly what was trained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

MODELS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = cls
        return cls

    return add


def build(name: str, **kwargs: Any) -> nn.Module:
    _load_builtin_models()
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


def _load_builtin_models() -> None:
    # Importing the modules runs their @register decorators.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
