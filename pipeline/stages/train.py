"""Stage 4: train a study's model (GPU when present), keep the best checkpoint.

Writes ``models/<study>/model.pt`` (model name, arguments, weights, fitted scaler),
``metrics/<study>/history.csv`` (training curves, a DVC plot) and the validation
scores ``data/scores/<study>/val.parquet`` that calibration reads. ``--fold K`` trains
fold K of a cross-validated study instead (``<study>/folds/<K>`` in every path) and
also scores the fold's test units, ``test.parquet``, which evaluate pools.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
import typer

from pipeline import paths, plots
from pipeline.io import write_csv, write_parquet
from pipeline.models import build
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.studies import Study, get_study
from pipeline.training import TrainConfig, fit, predict_scores, resolve_device, save_checkpoint

log = logging.getLogger(__name__)


def _semi_objective(study: Study, params: dict, supervised, model: torch.nn.Module,
                    x_train: np.ndarray, labelled: np.ndarray):
    """The semi-supervised objective and its unlabelled inputs (the pool it draws from)."""
    from pipeline import semi

    settings = study.params(params, "settings")[study.semi_method] or {}
    objective = semi.make_objective(study.semi_method, settings, supervised, model,
                                    torch.from_numpy(x_train[:1]))
    return objective, x_train if objective.pool == "all" else x_train[~labelled]


def train(study: Study, params: dict
          ) -> tuple[torch.nn.Module, pd.DataFrame, dict[str, pd.DataFrame], dict]:
    """The trained model, its history, its scores of validation (and, for a fold, of test)
    and what its checkpoint keeps."""
    scored = ["val", "test"] if study.partition.startswith("fold") else ["val"]
    data = study.samples(["train", *scored], params)
    train_set, val_set = data["train"], data["val"]
    cfg = TrainConfig.from_params(study.params(params, "train"))
    # the scaler sees every training input; a semi-supervised study hides labels (-1), not inputs
    scaler = Scaler(study.params(params, "train").get("scaler", "none")).fit(train_set.x)
    # in place: the loaded splits are this function's own copies, scaled ones need no second
    x_train, x_val = scaler.transform(train_set.x, in_place=True), scaler.transform(val_set.x, in_place=True)
    labelled = train_set.y >= 0

    model_params = dict(study.params(params, "model"))
    model_name = model_params.pop("name")
    model_kwargs = {**model_params, **study.model_inputs(x_train)}
    if study.objective == "classification":
        model_kwargs["n_classes"] = len(train_set.classes)
    torch.manual_seed(cfg.seed)  # the same initial weights on every run
    model = build(model_name, **model_kwargs)
    objective = study.make_objective(train_set.y[labelled], model_kwargs.get("n_classes"))
    trained_by, unlabelled, steps = objective, None, 0  # semi-supervised: a wrapper trains
    if study.semi_method:
        trained_by, unlabelled = _semi_objective(study, params, objective, model, x_train, labelled)
        steps = -(-len(x_train) // cfg.batch_size)  # every method: one pass's worth of all cycles
    log.info("%s: %s on %d training (%d labelled) / %d validation samples", study.name, model_name,
             len(x_train), int(labelled.sum()), len(x_val))
    labelled_pair = (x_train, train_set.y) if labelled.all() else (x_train[labelled], train_set.y[labelled])
    model, history = fit(model, trained_by, labelled_pair, (x_val, val_set.y), cfg,
                         unlabelled=unlabelled, steps_per_epoch=steps)
    device = resolve_device(cfg.device)
    scores = {"val": objective.score_table(predict_scores(model, objective, x_val, device), val_set.meta)}
    if "test" in data:
        x_test = scaler.transform(data["test"].x, in_place=True)
        scores["test"] = objective.score_table(predict_scores(model, objective, x_test, device),
                                               data["test"].meta)
    checkpoint_extra = {
        "scaler": scaler.state(), "objective": study.objective, "study": study.name,
        "classes": list(train_set.classes),
        "features": study.params(params, study.features) if study.features else None,
    }
    return model, history, scores, {
        "model_name": model_name, "model_kwargs": model_kwargs, **checkpoint_extra,
    }


def command(study: str = typer.Argument(..., help="study name, e.g. hls_ae"),
            fold: int | None = typer.Option(None, help="train this fold of a cross-validated study")
            ) -> None:
    """Train STUDY's model; write checkpoint, training curves and validation scores."""
    spec = get_study(study, fold)
    model, history, scores, info = train(spec, load_params())
    save_checkpoint(spec.model_dir / "model.pt", info.pop("model_name"), info.pop("model_kwargs"),
                    model, **info)
    write_csv(paths.METRICS / spec.name / "history.csv", history)
    plots.training_curves(history, paths.REPORTS / spec.name / "training_curves.png", spec.name)
    for split, frame in scores.items():
        write_parquet(paths.SCORES / spec.name / f"{split}.parquet", frame)
