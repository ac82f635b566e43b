"""Datasets by name: one package each, ``pipeline/datasets/<package>/``, found by name
(a ``-`` in a dataset's name is ``_`` in its package's: ``hls-cmds`` is ``hls_cmds``).

A package's module (its ``__init__``) is the dataset's adapter and data preparation, each
part named for the stage that uses it:

- ``DATASET``: the ``Dataset`` adapter (where the files come from, how records, subjects
  and labels are read; ``pipeline/datasets/base.py``), for ``pipeline download``;
- ``extract(name, records, raw_dir, params)``: writes its features, for ``pipeline features``;
- ``split(name, params) -> (manifest, audit)``: its split, for ``pipeline split``;
- or, for generated data, ``generate(settings) -> (x, table, audit)``, for ``pipeline generate``.

Its ``study.py`` declares the studies over it (``STUDIES``, by name), with their loaders
and the features ``pipeline predict`` makes of a new file. Packages are imported only when
asked for, so a stage imports the code of its own dataset alone.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

from pipeline.errors import PipelineError

# what a dataset's package offers each dataset command (see above)
PARTS = {"download": "DATASET", "generate": "generate", "features": "extract", "split": "split"}


def names() -> list[str]:
    """Every dataset with a package here, by name."""
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if m.ispkg)


def dataset_package(name: str) -> ModuleType:
    """The package of dataset ``name``."""
    if name not in names():
        raise PipelineError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def part(name: str, command: str):
    """What ``pipeline <command> <name>`` runs: that part (``PARTS``) of the dataset's package."""
    attribute = PARTS[command]
    found = getattr(dataset_package(name), attribute, None)
    if found is None:
        raise PipelineError(f"dataset {name!r} has no {attribute} (pipeline/datasets/"
                            f"{name.replace('-', '_')}/__init__.py), so no `pipeline {command} {name}`")
    return found


def offers(name: str, command: str) -> bool:
    """Whether dataset ``name``'s package has the part ``pipeline <command>`` runs."""
    return hasattr(dataset_package(name), PARTS[command])


def get_dataset(name: str):
    """The adapter (``Dataset``) of dataset ``name``."""
    return part(name, "download")


def study_module(name: str) -> ModuleType:
    """The ``study`` module of dataset ``name``'s package: the studies over it."""
    package = dataset_package(name)
    if not (Path(package.__file__).parent / "study.py").is_file():
        raise PipelineError(f"dataset {name!r} declares no studies (no pipeline/datasets/"
                            f"{name.replace('-', '_')}/study.py)")
    return importlib.import_module(f"{package.__name__}.study")
