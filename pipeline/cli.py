"""``pipeline`` command line: one command per stage (see dvc.yaml)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

import typer

from pipeline import compare, predict
from pipeline.errors import PipelineError
from pipeline.stages import calibrate, download, evaluate, features, generate, report, split, train

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _stage(name: str, func: Callable) -> None:
    """Register ``func`` as a command that reports PipelineError as one clear line."""

    @functools.wraps(func)  # typer reads the signature and annotations through __wrapped__
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except PipelineError as exc:
            typer.secho(f"error: {exc}", err=True, fg="red")
            sys.exit(1)

    app.command(name)(run)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )


_stage("download", download.command)
_stage("generate", generate.command)
_stage("features", features.command)
_stage("split", split.command)
_stage("train", train.command)
_stage("calibrate", calibrate.command)
_stage("evaluate", evaluate.command)
_stage("report", report.command)
_stage("predict", predict.command)
_stage("compare", compare.command)
