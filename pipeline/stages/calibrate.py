"""Stage 5: the final model's decision threshold from its validation scores only
(``pipeline/calibration.py`` says how each method works)."""

from __future__ import annotations


import pandas as pd
import typer

from pipeline import paths
from pipeline.calibration import calibrate
from pipeline.io import write_json
from pipeline.params import load_params
from pipeline.studies import get_study


def command(name: str = typer.Argument(..., metavar="study", help="study name, e.g. hls_ae")) -> None:
    """Calibrate STUDY's decision threshold on its validation scores."""
    params = load_params()
    study = get_study(name, params=params)
    val_scores = pd.read_parquet(paths.SCORES / name / "val.parquet")
    cfg = study.params(params, "calibrate")
    write_json(study.model_dir / "threshold.json", calibrate(val_scores, cfg), digits=None)
