"""``pipeline predict``: score new recordings with a trained study.

Loads the study's checkpoint (weights, fitted scaler, the feature settings it was
trained with) and its calibrated threshold, featurises each file with the training
feature code, and prints one line per decision unit: a recording (HLS-CMDS; ICBHI
without annotations, scored in consecutive cycle-length segments), or each cycle of an
ICBHI recording with its annotation file ``<name>.txt`` beside it, shown with its start
and end times.

Every failure is its file's own error line, whatever raised it; the other files are
still scored, results already computed are always printed, and the exit status is 1 if
any file failed. Annotated cycles that training would also have dropped (past the end of
the audio, shorter than ``min_cycle_s``, empty) are skipped and counted, not scored. A
score that is not finite is an error, never a decision.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from pipeline.calibration import read_calibration
from pipeline.errors import PipelineError
from pipeline.io import jsonable
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.metrics import aggregate_units
from pipeline.studies import Study, get_study, study_names
from pipeline.training import load_checkpoint, predict_scores, resolve_device

log = logging.getLogger(__name__)


def scoring_studies() -> list[str]:
    """The studies of the index whose dataset's package featurizes a new recording."""
    params = load_params()
    return [n for n in study_names(params) if get_study(n, params=params).featurize_file is not None]


def _study_help() -> str:
    """``--study``'s help, naming the studies that can score (read from params.yaml, so that
    `pipeline predict --help` outside the project still answers)."""
    try:
        return f"trained study to use: {', '.join(scoring_studies())}"
    except PipelineError:
        return "trained study to use: one whose dataset featurizes new recordings"

@dataclass
class Predictor:
    study: Study
    model: object
    checkpoint: dict
    calibration: dict

    @classmethod
    def load(cls, study_name: str) -> Predictor:
        study = get_study(study_name)
        if study.featurize_file is None:
            raise PipelineError(f"study {study_name!r} does not score new files; "
                                f"use one of {', '.join(scoring_studies())}")
        # each reader names its file when it is missing or damaged
        model, checkpoint = load_checkpoint(study.model_dir / "model.pt", study.name)
        calibration = read_calibration(study.model_dir / "threshold.json")
        resolve_device("cpu")  # evaluate's CPU settings (threads, subnormals): its very scores
        return cls(study, model, checkpoint, calibration)

    def score_file(self, path: Path) -> tuple[list[dict], list[dict]]:
        """(one result per decision unit, the annotated cycles skipped and why)."""
        skipped, batches = self.study.featurize_file(path, self.checkpoint["features"])
        objective = self.study.make_objective()
        scaler = Scaler.from_state(self.checkpoint["scaler"])
        frames = [objective.score_table(predict_scores(self.model, objective,
                                                        scaler.transform(samples.x),
                                                        device=self.model_device), samples.meta)
                  for samples in batches]  # per-sample scores only: the features are dropped
        scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if scores.empty:
            raise PipelineError("nothing to score in this file", path)
        if "position" in scores:  # units featurised out of the file's order go back to it
            scores = scores.sort_values("position", kind="stable").drop(columns="position")
        units = aggregate_units(scores, self.calibration["aggregate"])
        bad = ~np.isfinite(units["score"].to_numpy())
        if bad.any():
            raise PipelineError(f"{int(bad.sum())} of {len(units)} unit score(s) are NaN or "
                                "infinite: no decision can be made", path)
        classes = self.checkpoint.get("classes", ("normal", "abnormal"))
        decisions = [classes[k] for k in objective.decide(units, self.calibration)]
        times = units[["start", "end"]] if "start" in units else pd.DataFrame(
            {"start": [None] * len(units), "end": None})
        results = [
            {"file": str(path), "unit": unit, "start": start, "end": end, "score": float(score),
             "threshold": self.calibration["threshold"], "decision": decision}
            for unit, start, end, score, decision in zip(
                units["unit"], times["start"], times["end"], units["score"], decisions, strict=True)
        ]
        return results, skipped

    @property
    def model_device(self):
        # a closed-form baseline (pca_ae, knn_ae) holds buffers only
        return next(itertools.chain(self.model.parameters(), self.model.buffers())).device


def predict_files(predictor: Predictor, files: list[Path]) -> Iterator[tuple[str, Path, list[dict]]]:
    """Per file, in order: ``("results" | "skipped" | "error", path, rows)``.

    Any exception while scoring one file becomes that file's error (the traceback goes to
    the debug log), so the other files are still scored.
    """
    for path in map(Path, files):
        try:
            results, skipped = predictor.score_file(path)
        except PipelineError as exc:
            # a file beside the audio (its annotations) is named when it is the one at fault
            at_fault = exc.cause if exc.path in (None, path) else str(exc)
            yield "error", path, [{"file": str(path), "error": at_fault}]
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file must not cost the others' results
            log.debug("scoring %s failed", path, exc_info=True)
            yield "error", path, [{"file": str(path), "error": f"{type(exc).__name__}: {exc}"}]
            continue
        yield "results", path, results
        if skipped:
            yield "skipped", path, skipped


def shown(name: str | Path) -> str:
    """``name`` for a line of text: a tab, a newline or another control character in a file
    name is written escaped (``\\t``, ``\\n``), so that a row stays one row of its columns."""
    name = str(name)
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def _label(result: dict) -> str:
    if result["start"] is None:
        return shown(result["file"])
    return f"{shown(result['file'])} [{result['start']:.3f}-{result['end']:.3f} s]"


def _skip_note(path: Path, skipped: list[dict]) -> str:
    reasons = pd.Series([s["reason"] for s in skipped]).value_counts()
    return (f"note: {shown(path)}: {len(skipped)} annotated cycle(s) skipped, as in training: "
            + ", ".join(f"{n} {why}" for why, n in reasons.items()))


def command(
    files: list[str] = typer.Argument(..., help="audio files to score (.wav or .flac)",
                                      show_default=False),
    study: str = typer.Option(
        "hls_ae", "--study", help=_study_help()),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Score FILES with a trained study: score, threshold and decision per recording (or per
    annotated cycle, with its start and end in seconds)."""
    found: dict[str, list[dict]] = {"results": [], "skipped": [], "error": []}
    try:
        predictor = Predictor.load(study)  # its errors (no such study, no model) stop everything
        if not as_json:
            typer.echo("unit\tscore\tthreshold\tdecision")
        for kind, path, rows in predict_files(predictor, [Path(f) for f in files]):
            found[kind] += rows
            if as_json:
                continue
            if kind == "results":  # printed as each file is done
                for r in rows:
                    typer.echo(f"{_label(r)}\t{r['score']:.6g}\t{r['threshold']:.6g}\t{r['decision']}")
            elif kind == "skipped":
                typer.secho(_skip_note(path, rows), err=True, fg="yellow")
            else:
                typer.secho(f"error: {shown(path)}: {rows[0]['error']}", err=True, fg="red")
    finally:
        if as_json:  # always one valid JSON document, even when interrupted
            payload = {"study": study, "results": found["results"], "skipped": found["skipped"],
                       "errors": found["error"]}
            typer.echo(json.dumps(jsonable(payload), indent=2, allow_nan=False))
    if found["error"]:
        raise typer.Exit(code=1)
