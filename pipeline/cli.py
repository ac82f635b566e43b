"""pipeline command line: one command per stage (see dvc.yaml)."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

# name -> (module whose `command` runs it, one-line help for `pipeline --help`).
# Modules are imported only when their command runs (or its own --help is asked for):
# each stage then pays for the libraries it uses, not for torch, sklearn and matplotlib
# all at once. tests/test_cli.py checks each line against its command's docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "code": ("pipeline.stages.code",
             "Write the code each command runs (file by file, with hashes) to data/code/."),
    "download": ("pipeline.stages.download",
                 "Fetch DATASET (local copy or official source), verify it, write its records table."),
    "generate": ("pipeline.stages.generate", "Generate DATASET's series, labels and split (no download)."),
    "features": ("pipeline.stages.features", "Extract DATASET's features into data/features/DATASET/."),
    "split": ("pipeline.stages.split",
              "Split DATASET's records into train/val/test; write the manifest and the audit."),
    "train": ("pipeline.stages.train",
              "Train STUDY's models (every fold, then the final one); write checkpoints, curves, scores."),
    "evaluate": ("pipeline.stages.evaluate",
                 "Calibrate STUDY's threshold on validation, evaluate it on test: metrics, plots, figures."),
    "semi-summary": ("pipeline.stages.semi_summary",
                     "Pool the semi-supervised grid: metrics, the label-fraction curve and the label audit."),
    "report": ("pipeline.stages.report",
               "Write reports/index.html, reports/summary.md and a model card per study."),
    "predict": ("pipeline.predict",
                "Score FILES with a trained study: score, threshold and decision per recording (or per "
                "annotated cycle, with its start and end in seconds)."),
    "compare": ("pipeline.compare",
                "Compare every study's headline metrics between A and B, with paired intervals."),
    "check-params": ("pipeline.params", "Validate PATH against the params schema without running anything."),
    "check-repro": ("pipeline.check_repro",
                    "Re-run the pipeline and compare its metrics and dvc.lock with a commit's."),
}


# commands that write a stage's outputs: one run of each (command, dataset or study) at a time
WRITERS = {"code", "download", "generate", "features", "split", "train", "evaluate",
           "semi-summary", "report"}


def permission_message(exc: PermissionError) -> str:
    """A refused read or write as the user can act on it: the folder (not a temporary file
    of ours inside it) and the permission it lacks."""
    from pipeline.io import TEMP_PREFIX

    target = Path(exc.filename) if exc.filename else Path.cwd()
    folder = target if target.is_dir() else target.parent
    lacking = [word for word, mode in (("write", os.W_OK), ("read", os.R_OK), ("search", os.X_OK))
               if not os.access(folder, mode)]
    what = f"no {' or '.join(lacking)} permission on this folder" if lacking else exc.strerror
    shown = "" if target == folder or target.name.startswith(TEMP_PREFIX) else f" ({target.name})"
    return f"{folder}: permission denied{shown}: {what}"


def _reporting_errors(name: str, func: Callable) -> Callable:
    """``func`` reporting PipelineError and refused permissions as one red line and exit
    status 1; a stage command holding its single-writer lock while it runs."""
    from pipeline.errors import PipelineError
    from pipeline.io import single_writer

    @functools.wraps(func)  # typer reads the signature and annotations through __wrapped__
    def run(*args, **kwargs):
        try:
            if name not in WRITERS:
                return func(*args, **kwargs)
            target = kwargs.get("study") or kwargs.get("dataset") or ""
            with single_writer(f"{name} {target}".strip()):
                return func(*args, **kwargs)
        except PipelineError as exc:
            typer.secho(f"error: {exc}", err=True, fg="red")
            sys.exit(1)
        except PermissionError as exc:
            typer.secho(f"error: {permission_message(exc)}", err=True, fg="red")
            sys.exit(1)

    return run


class LazyGroup(TyperGroup):
    """A command group that imports a command's module only when that command is used."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, cmd_name: str):
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module = importlib.import_module(COMMANDS[cmd_name][0])
            info = CommandInfo(name=cmd_name, callback=_reporting_errors(cmd_name, module.command))
            self.commands[cmd_name] = get_command_from_info(
                info, pretty_exceptions_short=True, rich_markup_mode=None
            )
        return self.commands.get(cmd_name)

    def format_commands(self, ctx, formatter) -> None:
        # the help lines of the table: listing commands must not import them
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_line) for name, (_, help_line) in COMMANDS.items()])


# rich_markup_mode=None: plain click help, without rich's type column ("<bool>" beside flags)
app = typer.Typer(cls=LazyGroup, add_completion=False, no_args_is_help=True, help=__doc__,
                  rich_markup_mode=None)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
