"""``pipeline predict``: score new recordings with a trained study.

Loads the study's checkpoint (weights, fitted scaler, the feature settings it was
trained with) and its calibrated threshold, featurises each file with the training
feature code, and prints one line per decision unit: a recording (HLS-CMDS; ICBHI
without annotations, scored in consecutive cycle-length segments), or each cycle of an
ICBHI recording with its annotation file ``<name>.txt`` beside it. A bad file gets its
own error line; the others are still scored, and the exit status is non-zero if any
file failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import typer

from pipeline.errors import PipelineError
from pipeline.io import read_json
from pipeline.scalers import Scaler
from pipeline.scoring import aggregate_units
from pipeline.stages.evaluate import decide
from pipeline.stages.train import score_frame
from pipeline.studies import Study, get_study
from pipeline.training import Classification, Reconstruction, load_checkpoint, predict_scores


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
            raise PipelineError(f"study {study_name!r} does not score new files")
        for needed in ("model.pt", "threshold.json"):
            if not (study.model_dir / needed).is_file():
                raise PipelineError("not found: run `dvc repro` first", study.model_dir / needed)
        model, checkpoint = load_checkpoint(study.model_dir / "model.pt")
        return cls(study, model, checkpoint, read_json(study.model_dir / "threshold.json"))

    def score_file(self, path: Path) -> list[dict]:
        samples = self.study.featurize_file(path, self.checkpoint["features"])
        if len(samples.x) == 0:
            raise PipelineError("nothing to score in this file", path)
        objective = Reconstruction() if self.study.objective == "reconstruction" else Classification()
        x = Scaler.from_state(self.checkpoint["scaler"]).transform(samples.x)
        scores = predict_scores(self.model, objective, x, device=self.model_device)
        units = aggregate_units(score_frame(objective, scores, samples.meta), self.calibration["aggregate"])
        classes = self.checkpoint.get("classes", ("normal", "abnormal"))
        decisions = [classes[k] for k in decide(units, self.calibration)]
        return [
            {"file": str(path), "unit": unit, "score": float(score),
             "threshold": self.calibration["threshold"], "decision": decision}
            for unit, score, decision in zip(units["unit"], units["score"], decisions, strict=True)
        ]

    @property
    def model_device(self):
        return next(self.model.parameters()).device


def predict_files(study_name: str, files: list[Path]) -> tuple[list[dict], list[dict]]:
    """(results, errors): one result per decision unit, one error per failed file."""
    predictor = Predictor.load(study_name)
    results, errors = [], []
    for path in files:
        try:
            results.extend(predictor.score_file(Path(path)))
        except PipelineError as exc:
            errors.append({"file": str(path), "error": exc.cause})
    return results, errors


def command(
    files: list[Path] = typer.Argument(..., help="audio files to score"),
    study: str = typer.Option("hls_ae", "--study", help="trained study to use"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Score FILES with a trained study: score and decision per recording (or annotated cycle)."""
    results, errors = predict_files(study, files)
    if as_json:
        typer.echo(json.dumps({"study": study, "results": results, "errors": errors}, indent=2))
    else:
        for r in results:
            label = r["file"] if r["unit"] == r["file"] else r["unit"]
            typer.echo(f"{label}\t{r['score']:.6g}\t{r['decision']}")
        for e in errors:
            typer.secho(f"error: {e['file']}: {e['error']}", err=True, fg="red")
    if errors:
        raise typer.Exit(code=1)
