"""Stage 0: the code each command runs, one fingerprint file per command (and dataset).

``data/code/<command>.json`` (``data/code/<command>/<dataset>.json`` for the dataset
commands) maps every pipeline file the command imports to its sha256
(``pipeline/import_graph.py``). Each stage lists its command's file as its one code
dependency, so DVC re-runs a stage exactly when code it runs changes, and the file says
which code that is. Written whole or not at all.
"""

from __future__ import annotations

import json
import logging

from pipeline import datasets, paths
from pipeline.import_graph import DATASET_COMMANDS, command_code
from pipeline.io import atomic_dir

log = logging.getLogger(__name__)

# commands whose code is the same whatever they are run on (they find every study)
STUDY_COMMANDS = ("train", "calibrate", "evaluate", "semi-summary", "report")


def fingerprints(commands: dict[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    """``{path under data/code: {file: sha256}}`` for every command a stage runs;
    ``commands`` is the CLI's table (name -> (module, help))."""
    out = {}
    for command in STUDY_COMMANDS:
        out[str(paths.code_fingerprint(command).relative_to(paths.CODE))] = command_code(
            commands[command][0], command)
    for name in datasets.names():
        for command in DATASET_COMMANDS:
            if datasets.offers(name, command):
                path = paths.code_fingerprint(command, name).relative_to(paths.CODE)
                out[str(path)] = command_code(commands[command][0], command, name)
    return out


def command() -> None:
    """Write the code each command runs (file by file, with hashes) to data/code/."""
    from pipeline.cli import COMMANDS

    found = fingerprints(COMMANDS)
    with atomic_dir(paths.CODE) as folder:
        for relative, files in found.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(json.dumps(files, indent=1) + "\n")
    log.info("code of %d commands written to %s", len(found), paths.CODE)
