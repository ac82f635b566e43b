"""The training loop every study shares, and the checkpoint format ``predict`` reads.

An objective says what a batch's loss is and what a sample's score is:
reconstruction (autoencoders: target = input, score = per-sample mean squared error)
or classification (cross-entropy with class weights, score = class probabilities).
"""

from __future__ import annotations

import copy
import logging
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from pipeline.io import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    patience: int
    seed: int
    device: str = "auto"
    weight_decay: float = 0.0

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> TrainConfig:
        known = {k: section[k] for k in cls.__dataclass_fields__ if k in section}
        return cls(**known)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class Reconstruction:
    """Autoencoders: reconstruct the input; a sample's score is its mean squared error."""

    name = "reconstruction"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(model(x), x)

    def scores(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return (model(x) - x).pow(2).flatten(1).mean(dim=1)


class Classification:
    """Classifiers: cross-entropy (optionally class-weighted); scores are probabilities."""

    name = "classification"

    def __init__(self, class_weights: torch.Tensor | None = None):
        self.class_weights = class_weights

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weights = None if self.class_weights is None else self.class_weights.to(x.device)
        return F.cross_entropy(model(x), y, weight=weights)

    def scores(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(x), dim=1)


def batches(x: np.ndarray, y: np.ndarray, size: int, device: torch.device,
            generator: np.random.Generator | None = None):
    """Yield (x, y) tensors on ``device``; shuffled when a generator is given."""
    order = np.arange(len(x)) if generator is None else generator.permutation(len(x))
    for start in range(0, len(x), size):
        idx = order[start : start + size]
        yield (torch.from_numpy(x[idx]).to(device), torch.from_numpy(y[idx]).to(device))


@torch.no_grad()
def predict_scores(model: nn.Module, objective, x: np.ndarray, device: torch.device,
                   batch_size: int = 512) -> np.ndarray:
    model.eval()
    dummy = np.zeros(len(x), dtype=np.int64)
    parts = [objective.scores(model, xb).cpu().numpy() for xb, _ in batches(x, dummy, batch_size, device)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)


@torch.no_grad()
def mean_loss(model: nn.Module, objective, x: np.ndarray, y: np.ndarray, device, batch_size) -> float:
    model.eval()
    total = 0.0
    for xb, yb in batches(x, y, batch_size, device):
        total += objective.loss(model, xb, yb).item() * len(xb)
    return total / len(x)


class EpochProgress:
    """Progress of a training run: a tqdm bar that moves every epoch on a terminal; one plain
    line per epoch when stderr is a log (no carriage-return lines piling up in a file)."""

    def __init__(self, epochs: int, desc: str):
        self.epochs, self.desc = epochs, desc
        self.bar = (tqdm(total=epochs, desc=desc, unit="epoch", mininterval=0.5, dynamic_ncols=True)
                    if sys.stderr.isatty() else None)

    def epoch(self, epoch: int, train_loss: float, val_loss: float) -> None:
        if self.bar is None:
            log.info("%s: epoch %d/%d  train loss %.5g  val loss %.5g", self.desc, epoch,
                     self.epochs, train_loss, val_loss)
            return
        self.bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Leaves the bar's final count on screen (closing twice is harmless)."""
        if self.bar is not None:
            self.bar.close()


def fit(model: nn.Module, objective, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray], cfg: TrainConfig) -> tuple[nn.Module, pd.DataFrame]:
    """Adam with early stopping on validation loss; returns the best model and the history."""
    if len(train[0]) == 0 or len(val[0]) == 0:
        raise ValueError(f"need training and validation samples, got {len(train[0])} and {len(val[0])}")
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    model = model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    shuffle = np.random.default_rng(cfg.seed)
    best_loss, best_state, best_epoch, history = np.inf, None, 0, []
    progress = EpochProgress(cfg.epochs, f"train ({device.type})")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total = 0.0
        for xb, yb in batches(*train, cfg.batch_size, device, shuffle):
            optimiser.zero_grad()
            loss = objective.loss(model, xb, yb)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(xb)
        val_loss = mean_loss(model, objective, *val, device, cfg.batch_size)
        history.append({"epoch": epoch, "train_loss": total / len(train[0]), "val_loss": val_loss})
        progress.epoch(epoch, history[-1]["train_loss"], val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= cfg.patience:
            progress.close()  # the bar's last state first, then why it stopped
            log.info("early stop at epoch %d: best validation loss %.5g at epoch %d",
                     epoch, best_loss, best_epoch)
            break
    progress.close()
    model.load_state_dict(best_state)
    return model, pd.DataFrame(history)


def save_checkpoint(path: Path, model_name: str, model_kwargs: dict, model: nn.Module,
                    **extra: Any) -> None:
    """Everything needed to rebuild and use the model: name, arguments, weights, extras."""
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    # through a file object: torch.save names the archive inside after a path it is given,
    # and the temporary path is random, which would make identical models differ bytewise
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save({"model": model_name, "model_kwargs": model_kwargs, "state_dict": state, **extra}, f)


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    from pipeline.models import build

    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model = build(checkpoint["model"], **checkpoint["model_kwargs"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model, checkpoint
