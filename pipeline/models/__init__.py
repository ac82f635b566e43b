"""Model registry: each model is a small ``nn.Module`` registered under a name.

``params.yaml`` names a model and its keyword arguments; ``build`` makes it. Keeping the
constructor arguments next to the weights (see ``pipeline.training.save_checkpoint``)
lets ``predict`` rebuild exactly what was trained.

``MODULES`` says which module defines each name, so ``build`` imports that module alone,
and a model's code is a dependency of the studies that use it and of no other
(``pipeline.import_graph``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

MODULES = {  # model name -> its module under pipeline/models/
    "mlp_ae": "mlp_ae",
    "conv1d_ae": "conv1d_ae",
    "mnist_conv_ae": "conv_ae",
    "simple_cnn": "cnn",
    "cnn_gru": "crnn",
    "pca_ae": "baselines",
    "knn_ae": "baselines",
    "gmm_density": "baselines",
    "isolation_forest": "baselines",
    "band_stats_linear": "baselines",
    "band_stats_boosting": "baselines",
    "seed_ensemble": "ensemble",
}
MODELS: dict[str, type[nn.Module]] = {}  # filled as their modules are imported


def module_of(name: str) -> str:
    """The dotted module that defines model ``name``."""
    if name not in MODULES:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODULES))}")
    return f"{__name__}.{MODULES[name]}"


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        if MODULES.get(name) != cls.__module__.rpartition(".")[2]:
            raise ValueError(f"model {name!r} is defined in {cls.__module__}, but MODULES "
                             f"says {MODULES.get(name)!r}: add it to pipeline.models.MODULES")
        MODELS[name] = cls
        return cls

    return add


def build(name: str, **kwargs: Any) -> nn.Module:
    importlib.import_module(module_of(name))  # runs its @register
    return MODELS[name](**kwargs)
