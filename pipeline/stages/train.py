"""Stage 4: train a study's model (GPU when present), keep the best checkpoint.

Writes ``models/<study>/model.pt`` (model name, arguments, weights, fitted scaler),
``metrics/<study>/history.csv`` (training curves, a DVC plot) and the validation
scores ``data/scores/<study>/val.parquet`` that calibration reads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import typer

from pipeline import plots
from pipeline.io import write_csv, write_parquet
from pipeline.models import build
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.studies import Study, get_study
from pipeline.training import (
    Classification, Reconstruction, TrainConfig, fit, predict_scores, resolve_device,
    save_checkpoint,
)

log = logging.getLogger(__name__)


def make_objective(study: Study, labels: np.ndarray, n_classes: int | None = None):
    if study.objective == "reconstruction":
        return Reconstruction()
    counts = np.bincount(labels, minlength=n_classes or 0).astype(np.float32)
    weights = counts.sum() / (len(counts) * np.maximum(counts, 1))  # "balanced" weighting
    return Classification(torch.from_numpy(weights))


def score_frame(objective, scores: np.ndarray, meta: pd.DataFrame) -> pd.DataFrame:
    """Per-sample scores next to their metadata. ``score`` is the abnormality score."""
    frame = meta.reset_index(drop=True).copy()
    if scores.ndim == 1:
        frame["score"] = scores
    else:
        for k in range(scores.shape[1]):
            frame[f"prob_{k}"] = scores[:, k]
        frame["score"] = 1.0 - scores[:, 0]  # class 0 is "normal"
    return frame


def _semi_objective(study: Study, params: dict, supervised, model: torch.nn.Module,
                    x_train: np.ndarray, labelled: np.ndarray):
    """The semi-supervised objective and its unlabelled inputs (the pool it draws from)."""
    from pipeline import semi

    settings = study.params(params, "settings")[study.semi_method] or {}
    objective = semi.make_objective(study.semi_method, settings, supervised, model,
                                    torch.from_numpy(x_train[:1]))
    return objective, x_train if objective.pool == "all" else x_train[~labelled]


def train(study: Study, params: dict) -> tuple[torch.nn.Module, pd.DataFrame, pd.DataFrame, dict]:
    data = study.load(["train", "val"], params)
    train_set, val_set = data["train"], data["val"]
    cfg = TrainConfig.from_params(study.params(params, "train"))
    # the scaler sees every training input; a semi-supervised study hides labels (-1), not inputs
    scaler = Scaler(study.params(params, "train").get("scaler", "none")).fit(train_set.x)
    x_train, x_val = scaler.transform(train_set.x), scaler.transform(val_set.x)
    labelled = train_set.y >= 0

    model_params = dict(study.params(params, "model"))
    model_name = model_params.pop("name")
    model_kwargs = {**model_params, **study.model_inputs(x_train)}
    if study.objective == "classification":
        model_kwargs["n_classes"] = len(train_set.classes)
    torch.manual_seed(cfg.seed)  # the same initial weights on every run
    model = build(model_name, **model_kwargs)
    objective = make_objective(study, train_set.y[labelled], model_kwargs.get("n_classes"))
    unlabelled, steps = None, 0
    if study.semi_method:
        objective, unlabelled = _semi_objective(study, params, objective, model, x_train, labelled)
        steps = -(-len(x_train) // cfg.batch_size)  # every method: one pass's worth of all cycles
    log.info("%s: %s on %d training (%d labelled) / %d validation samples", study.name, model_name,
             len(x_train), int(labelled.sum()), len(x_val))
    labelled_pair = (x_train, train_set.y) if labelled.all() else (x_train[labelled], train_set.y[labelled])
    model, history = fit(model, objective, labelled_pair, (x_val, val_set.y), cfg,
                         unlabelled=unlabelled, steps_per_epoch=steps)
    val_scores = predict_scores(model, objective, x_val, resolve_device(cfg.device))
    checkpoint_extra = {
        "scaler": scaler.state(), "objective": study.objective, "study": study.name,
        "classes": list(train_set.classes),
        "features": study.params(params, study.features) if study.features else None,
    }
    return model, history, score_frame(objective, val_scores, val_set.meta), {
        "model_name": model_name, "model_kwargs": model_kwargs, **checkpoint_extra,
    }


def command(study: str = typer.Argument(..., help="study name, e.g. hls_ae")) -> None:
    """Train STUDY's model; write checkpoint, training curves and validation scores."""
    spec = get_study(study)
    model, history, val_scores, info = train(spec, load_params())
    save_checkpoint(spec.model_dir / "model.pt", info.pop("model_name"), info.pop("model_kwargs"),
                    model, **info)
    write_csv(Path("metrics") / study / "history.csv", history)
    plots.training_curves(history, Path("reports") / study / "training_curves.png", study)
    write_parquet(Path("data/scores") / study / "val.parquet", val_scores)
