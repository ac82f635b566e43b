"""Stage 0: the code each command runs, one fingerprint file per command and argument.

``data/code/<command>/<dataset>.json`` for the dataset commands (download, generate,
features, split), ``data/code/<command>/<study>.json`` for the study commands (train,
evaluate; a grid's cells share their study's file) and
``data/code/<command>.json`` for the commands that pool studies (report, semi-summary)
map every pipeline file the command imports to its sha256 (``pipeline/import_graph.py``):
its own modules, the package of each dataset it runs on and, for train and evaluate, the
module of the study's model, found through the datasets and studies index of params.yaml
(so the stage reads the whole file: a study's model name lives in its model section).
Each stage lists its command's file as its one code dependency, so DVC re-runs a stage
exactly when code it runs changes, and the file says which code that is. Written whole or
not at all.
"""

from __future__ import annotations

import json
import logging

from pipeline import datasets, paths
from pipeline.import_graph import DATASET_COMMANDS, SourceTree, command_code
from pipeline.io import atomic_dir
from pipeline.params import STUDY_GROUPS, index, load_params, lookup

log = logging.getLogger(__name__)

STUDY_COMMANDS = ("train", "evaluate")  # run on one study
MODEL_COMMANDS = ("train", "evaluate")  # build their study's model (evaluate: from its checkpoint)
# run on every study of these index groups at once
POOLING_COMMANDS = {"semi-summary": ("semi_supervised",), "report": STUDY_GROUPS}


def fingerprints(commands: dict[str, tuple[str, str]], params: dict) -> dict[str, dict[str, str]]:
    """``{path under data/code: {file: sha256}}`` for every command a stage runs;
    ``commands`` is the CLI's table (name -> (module, help)), ``params`` the loaded params."""
    studies = index(params, "studies")

    tree = SourceTree.read()

    def write(command: str, argument: str | None, on: list[str], models: list[str] = ()) -> None:
        path = paths.code_fingerprint(command, argument).relative_to(paths.CODE)
        out[str(path)] = command_code(commands[command][0], command, on, models, tree=tree)

    out: dict[str, dict[str, str]] = {}
    for command in STUDY_COMMANDS:
        for name, (_, entry) in studies.items():
            models = [lookup(params, f"{entry['model']}.name")] if command in MODEL_COMMANDS else []
            write(command, name, [entry["dataset"]], models)
    for command, groups in POOLING_COMMANDS.items():
        write(command, None, sorted({e["dataset"] for g, e in studies.values() if g in groups}))
    for name in datasets.names():
        for command in DATASET_COMMANDS:
            if datasets.offers(name, command):
                write(command, name, [name])
    return out


def command() -> None:
    """Write the code each command runs (file by file, with hashes) to data/code/."""
    from pipeline.cli import COMMANDS

    found = fingerprints(COMMANDS, load_params())
    with atomic_dir(paths.CODE) as folder:
        for relative, files in found.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(json.dumps(files, indent=1) + "\n")
    log.info("code of %d commands written to %s", len(found), paths.CODE)
