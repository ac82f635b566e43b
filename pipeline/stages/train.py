"""Stage 4: train a study's models (GPU when present), keep the best checkpoints.

Writes ``models/<study>/model.pt`` (model name, arguments, weights, fitted scaler),
``metrics/<study>/history.csv`` (training curves, a DVC plot) and the validation
scores ``data/scores/<study>/val.parquet`` that calibration reads. A cross-validated
study trains every fold of its split manifest first, in the same run (the data and the
libraries load once): fold K's files are under ``<study>/folds/<K>`` in every path, and
its test units' scores, ``test.parquet``, are what evaluate pools; ``--fold K`` trains
that fold alone. With ``train.cross_fit`` (hls_ae), inner models cross-fit the whole
training side and their scores join the validation scores: the threshold then rests on
every training-side group.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
import typer

from pipeline import paths, plots
from pipeline.errors import PipelineError
from pipeline.splitting import grouped_folds
from pipeline.io import read_json, write_csv, write_parquet
from pipeline.models import build
from pipeline.models.ensemble import SeedEnsemble
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.studies import Samples, Study, fold_numbers, get_study
from pipeline.training import (
    TrainConfig,
    fit,
    fit_closed_form,
    kept_epoch,
    predict_scores,
    resolve_device,
    save_checkpoint,
    stalled,
)

log = logging.getLogger(__name__)


def _semi_objective(study: Study, params: dict, supervised, model: torch.nn.Module,
                    x_train: np.ndarray, labelled: np.ndarray):
    """The semi-supervised objective and its unlabelled inputs (the pool it draws from)."""
    settings = study.params(params, "settings")[study.semi_method] or {}
    objective = study.make_semi_objective(study.semi_method, settings, supervised, model,
                                          torch.from_numpy(x_train[:1]))
    return objective, x_train if objective.pool == "all" else x_train[~labelled]


@dataclass
class Fitted:
    model: torch.nn.Module
    history: pd.DataFrame
    scaler: Scaler
    objective: object
    model_name: str
    model_kwargs: dict


def fit_model(study: Study, params: dict, train_set: Samples, val_set: Samples,
              cfg: TrainConfig) -> Fitted:
    """``study``'s model trained on ``train_set``, stopped (or not, ``cfg.select``) on
    ``val_set``; both sets are scaled in place by the scaler fitted on ``train_set``."""
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
    mixup = study.params(params, "train").get("mixup", 0.0)  # a classifier's alone (the schema)
    objective = study.make_objective(train_set.y[labelled], model_kwargs.get("n_classes"),
                                     **({"mixup": mixup} if mixup else {}))
    trained_by, unlabelled, steps = objective, None, 0  # semi-supervised: a wrapper trains
    if study.semi_method:
        trained_by, unlabelled = _semi_objective(study, params, objective, model, x_train, labelled)
        steps = -(-len(x_train) // cfg.batch_size)  # every method: one pass's worth of all cycles
    log.info("%s: %s on %d training (%d labelled) / %d validation samples", study.name, model_name,
             len(x_train), int(labelled.sum()), len(x_val))
    labelled_pair = (x_train, train_set.y) if labelled.all() else (x_train[labelled], train_set.y[labelled])
    if getattr(model, "closed_form", False):
        model, history = fit_closed_form(model, objective, labelled_pair, (x_val, val_set.y), cfg)
    else:
        model, history = fit(model, trained_by, labelled_pair, (x_val, val_set.y), cfg,
                             unlabelled=unlabelled, steps_per_epoch=steps)
    return Fitted(model, history, scaler, objective, model_name, model_kwargs)


def cross_fitted_scores(study: Study, params: dict, cfg: TrainConfig, training_side: Samples,
                        inner_folds: int, epochs: int, deal_seed: int) -> pd.DataFrame:
    """Scores of every training-side unit (train and validation, unscaled) by an inner model
    that did not train on its group: the groups are dealt to ``inner_folds`` folds (by
    ``deal_seed``, one dealing for every seed member), and inner model j trains on the
    others for ``epochs`` epochs (the outer model's kept one), a fixed schedule, so that
    nothing is chosen on the units it scores. A threshold from these scores rests on every
    training-side group rather than on the few that validation holds; no test unit is
    among them."""
    group = study.bootstrap_group or "unit"
    try:
        fold_of = grouped_folds(training_side.meta, inner_folds, deal_seed, group_column=group,
                                stratify=study.group_column or "label")
    except PipelineError as exc:
        raise PipelineError(f"{study.key('train')}.cross_fit = {inner_folds}: {exc} on the "
                            f"training side of {study.name} (lower it, or 0 to calibrate on "
                            "validation alone)") from exc
    fixed = replace(cfg, epochs=epochs, select="last", curves=False)
    tables = []
    for j in range(1, inner_folds + 1):
        held = fold_of == j
        log.info("%s: cross-fit %d/%d, %d epochs, scoring %d held-out unit(s)", study.name, j,
                 inner_folds, epochs, training_side.meta.loc[held, "unit"].nunique())
        inner = fit_model(study, params, training_side.take(np.flatnonzero(~held)),
                          training_side.take(np.flatnonzero(held)), fixed)
        x_held = inner.scaler.transform(training_side.x[held])
        scores = predict_scores(inner.model, inner.objective, x_held, resolve_device(cfg.device))
        tables.append(inner.objective.score_table(scores, training_side.meta[held]).assign(inner_fold=j))
    return pd.concat(tables, ignore_index=True)


@dataclass
class Member:
    """One seed's trained model and its scores of validation (and, for a fold, of test)."""

    seed: int
    fitted: Fitted
    scores: dict[str, pd.DataFrame]


def train_member(study: Study, params: dict, data: dict[str, Samples], cfg: TrainConfig,
                 deal_seed: int) -> Member:
    """One member trained with ``cfg.seed``; ``data`` is its own (the fit scales it in place).
    With ``train.cross_fit``, the validation scores also hold the cross-fitted scores of
    the whole training side (``cross_fitted_scores``, rows with ``inner_fold`` > 0; the
    model's own have 0), and calibration reads those."""
    train_set, val_set = data["train"], data["val"]
    inner_folds = study.params(params, "train").get("cross_fit")
    # copied before the fit scales the loaded sets in place: the inner models fit their own scalers
    training_side = Samples.concat([train_set, val_set]) if inner_folds else None
    fitted = fit_model(study, params, train_set, val_set, cfg)
    if stalled(fitted.history):
        log.warning("%s: seed %d: the training loss stopped moving after epoch 2 (%.5g): this "
                    "member looks collapsed, and its scores still enter the ensemble", study.name,
                    cfg.seed, fitted.history["train_loss"].iloc[-1])
    model, objective = fitted.model, fitted.objective
    device = resolve_device(cfg.device)
    scores = {"val": objective.score_table(predict_scores(model, objective, val_set.x, device), val_set.meta)}
    if training_side is not None:
        cross_fitted = cross_fitted_scores(study, params, cfg, training_side, inner_folds,
                                           kept_epoch(fitted.history, cfg), deal_seed)
        scores["val"] = pd.concat([scores["val"].assign(inner_fold=0), cross_fitted], ignore_index=True)
    if "test" in data:
        x_test = fitted.scaler.transform(data["test"].x, in_place=True)
        scores["test"] = objective.score_table(predict_scores(model, objective, x_test, device),
                                               data["test"].meta)
    return Member(cfg.seed, fitted, scores)


def own_copy(data: dict[str, Samples]) -> dict[str, Samples]:
    return {split: part.take(np.arange(len(part.x))) for split, part in data.items()}


def ensemble(study: Study, trained: list[Member]
             ) -> tuple[torch.nn.Module, str, dict, pd.DataFrame, dict[str, pd.DataFrame]]:
    """The study's model from its members (one member: itself), its name, arguments,
    training history (a ``seed`` column when there are several) and scores."""
    first = trained[0].fitted
    if len(trained) == 1:
        return first.model, first.model_name, first.model_kwargs, first.history, trained[0].scores
    objective = first.objective
    seeds = [m.seed for m in trained]
    scales = [objective.member_scale(m.scores["val"]) for m in trained]
    kwargs = {"member": first.model_name, "member_kwargs": first.model_kwargs, "seeds": seeds,
              "scales": scales}
    model = SeedEnsemble.of([m.fitted.model for m in trained], **kwargs)
    scores = {split: objective.ensemble_table([m.scores[split] for m in trained], scales)
              for split in trained[0].scores}
    history = pd.concat([m.fitted.history.assign(seed=m.seed) for m in trained], ignore_index=True)
    log.info("%s: the ensemble of seeds %s (score scales %s)", study.name, seeds,
             ", ".join(f"{s:.4g}" for s in scales))
    return model, "seed_ensemble", kwargs, history, scores


def train(study: Study, params: dict
          ) -> tuple[torch.nn.Module, pd.DataFrame, dict[str, pd.DataFrame], dict, list[Member]]:
    """The trained model (the ensemble of one member per ``train.seeds``), its history,
    its scores of validation (and, for a fold, of test), what its checkpoint keeps, and
    the members."""
    configs = TrainConfig.per_seed(study.params(params, "train"))
    if len(configs) > 1 and not study.thresholded:
        raise PipelineError(f"{study.key('train')}.seeds: {study.name} has no threshold, and its "
                            "figures are one model's: give it one seed")
    scored = ["val", "test"] if study.manifest_column.startswith("fold") else ["val"]
    data = study.samples(["train", *scored], params)
    trained = []
    for i, cfg in enumerate(configs, 1):
        if len(configs) > 1:
            log.info("%s: seed %d (member %d/%d)", study.name, cfg.seed, i, len(configs))
        own = data if i == len(configs) else own_copy(data)  # the last member may scale the loaded sets
        trained.append(train_member(study, params, own, cfg, deal_seed=configs[0].seed))
    model, model_name, model_kwargs, history, scores = ensemble(study, trained)
    fitted = trained[0].fitted
    checkpoint_extra = {
        "scaler": fitted.scaler.state(), "objective": study.objective, "study": study.name,
        "classes": list(data["train"].classes),
        # the settings the features were made with: `pipeline predict` makes a new file's alike
        "features": read_json(paths.feature_settings(study.dataset)),
    }
    return model, history, scores, {
        "model_name": model_name, "model_kwargs": model_kwargs, **checkpoint_extra,
    }, trained


def train_and_write(study: Study, params: dict) -> None:
    """Train ``study``'s model and write its checkpoint, curves and scores, and each seed
    member's scores (``<scores>/seeds/<seed>/``, what evaluate's seed spreads read)."""
    model, history, scores, info, trained = train(study, params)
    save_checkpoint(study.model_dir / "model.pt", info.pop("model_name"), info.pop("model_kwargs"),
                    model, **info)
    write_csv(paths.METRICS / study.name / "history.csv", history)
    plots.training_curves(history, paths.figures(study.name) / "training_curves.png", study.name)
    for split, frame in scores.items():
        write_parquet(paths.SCORES / study.name / f"{split}.parquet", frame)
    for member in trained:
        for split, frame in member.scores.items():
            write_parquet(paths.member_scores(study.name, member.seed, split), frame)


def members(study: Study, fold: int | None) -> list[Study]:
    """What one run trains: fold ``fold`` alone; or, for a cross-validated study, every fold
    of its split manifest and then the final model; or the study's one model."""
    if fold is not None:
        return [study.fold(fold)]
    if not study.cross_validated:
        return [study]
    return [*(study.fold(k) for k in fold_numbers(study.dataset)), study]


def command(study: str = typer.Argument(..., help="study name, e.g. hls_ae"),
            fold: int | None = typer.Option(None, help="train this fold of a cross-validated study alone")
            ) -> None:
    """Train STUDY's models (every fold, then the final one); write checkpoints, curves, scores."""
    params = load_params()
    trained = members(get_study(study, params=params), fold)
    for i, member in enumerate(trained, 1):
        started = time.monotonic()
        if len(trained) > 1:
            log.info("%s: model %d/%d", member.name, i, len(trained))
        train_and_write(member, params)
        log.info("%s: trained in %.0f s", member.name, time.monotonic() - started)
