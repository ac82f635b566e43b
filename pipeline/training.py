"""The training loop every study shares, and the checkpoint format ``predict`` reads.

An objective says what a batch's loss is and what a sample's score is:
reconstruction (autoencoders: target = input, score = per-sample mean squared error)
or classification (cross-entropy with class weights, score = class probabilities).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.io import atomic_path
from pipeline.models.ensemble import SeedEnsemble
from pipeline.objectives import combine_members

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    seed: int
    # the loop's own settings: a model fitted in closed form (``fit_closed_form``) has none
    epochs: int = 1
    batch_size: int = 256
    lr: float = 0.0
    patience: int = 1
    device: str = "auto"
    weight_decay: float = 0.0
    # best: the best epoch by `monitor` (early stopping after `patience` epochs without a
    # better one); last: a fixed schedule, every epoch trained and the last one kept
    select: str = "best"
    monitor: str = "loss"  # loss: lowest validation loss; auroc: highest validation AUROC
    schedule: str = "constant"  # constant or cosine (annealed to 0 over `epochs`)
    # False: no validation pass after each epoch, for a fixed schedule (``select: last``)
    # whose curve nobody reads: a cross-fit inner model's (its held-out units choose nothing)
    curves: bool = True

    def __post_init__(self) -> None:
        for key, value, allowed in (("select", self.select, ("best", "last")),
                                    ("monitor", self.monitor, ("loss", "auroc")),
                                    ("schedule", self.schedule, ("constant", "cosine"))):
            if value not in allowed:
                raise PipelineError(f"train.{key} must be one of {allowed}, got {value!r}")
        if not self.curves and self.select != "last":
            raise PipelineError("a run without validation curves cannot select its best epoch")

    @classmethod
    def per_seed(cls, section: dict[str, Any]) -> list[TrainConfig]:
        """One config per seed of the section's ``seeds``: a study's members."""
        known = {k: section[k] for k in cls.__dataclass_fields__ if k in section and k != "seed"}
        return [cls(seed=seed, **known) for seed in section["seeds"]]

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> TrainConfig:
        """The first member's config (what the members share: device, schedule, ...)."""
        return cls.per_seed(section)[0]


# CPU kernels split reductions by thread, so the thread count is part of the result: one
# fixed count makes a checkpoint the same bytes on machines with any number of cores.
CPU_THREADS = 2


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name`` (auto: CUDA when present), with CPU threads pinned; a
    device this machine's torch lacks is a PipelineError, before anything is trained."""
    torch.set_num_threads(CPU_THREADS)
    # A collapsed network (dead units, vanishing gradients) fills its tensors with subnormal
    # floats (below 1.2e-38), which x86 computes in microcode: one such mnist_novelty member
    # ran 8x slower. Flushed to zero, it runs as fast as the others, to the same bytes.
    torch.set_flush_denormal(True)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    kind = name.split(":")[0]  # cuda:1 is a CUDA device
    if not available.get(kind, False):
        raise PipelineError(f"train.device is {name}, but this torch has no {kind.upper()}; "
                            "use auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def batches(x: np.ndarray, y: np.ndarray, size: int, device: torch.device,
            generator: np.random.Generator | None = None):
    """Yield (x, y) tensors on ``device``; shuffled when a generator is given."""
    order = np.arange(len(x)) if generator is None else generator.permutation(len(x))
    for start in range(0, len(x), size):
        idx = order[start : start + size]
        yield (torch.from_numpy(x[idx]).to(device), torch.from_numpy(y[idx]).to(device))


# Scoring batches hold at most this many bytes of inputs (and at most MAX_PREDICT_BATCH
# samples): a convolution's activations grow with its input, so this bounds evaluate's and
# predict's memory whatever the test set's size (ICBHI log-mels: 130 cycles per batch).
PREDICT_INPUT_BYTES = 4 << 20
MAX_PREDICT_BATCH = 512


def predict_batch_size(x: np.ndarray) -> int:
    sample_bytes = max(1, x[:1].nbytes)
    return max(1, min(MAX_PREDICT_BATCH, PREDICT_INPUT_BYTES // sample_bytes))


@torch.no_grad()
def predict_scores(model: nn.Module, objective, x: np.ndarray, device: torch.device,
                   batch_size: int | None = None) -> np.ndarray:
    """Scores of every sample, in batches of ``batch_size`` (by default: a fixed memory budget);
    a seed ensemble's are its members' normalised scores, combined."""
    if isinstance(model, SeedEnsemble):
        return combine_members([predict_scores(member, objective, x, device, batch_size)
                                for member in model.members], model.scales)
    model.eval()
    batch_size = batch_size or predict_batch_size(x)
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


def _endless(x: np.ndarray, y: np.ndarray, size: int, device: torch.device,
             generator: np.random.Generator):
    """Shuffled (x, y) batches without end (reshuffled on every pass)."""
    while True:
        yield from batches(x, y, size, device, generator)


def epoch_batches(train: tuple[np.ndarray, np.ndarray], unlabelled: np.ndarray | None, size: int,
                  device: torch.device, shuffle: np.random.Generator, streams: dict, steps: int):
    """One epoch of (x, y, x_unlabelled) batches.

    Without unlabelled data: one pass over ``train``, x_unlabelled None. With it, ``steps``
    pairs of batches, labelled and unlabelled each drawn from its own endless stream (kept
    in ``streams`` across epochs).
    """
    if unlabelled is None:
        for xb, yb in batches(*train, size, device, shuffle):
            yield xb, yb, None
        return
    if not streams:
        streams["labelled"] = _endless(*train, size, device, shuffle)
        no_labels = np.zeros(len(unlabelled), dtype=np.int64)
        # an empty pool (every cycle labelled) leaves the unlabelled term out, same steps
        streams["unlabelled"] = (_endless(unlabelled, no_labels, size, device, shuffle) if len(unlabelled)
                                 else itertools.repeat((None, None)))
    for _ in range(steps):
        xb, yb = next(streams["labelled"])
        yield xb, yb, next(streams["unlabelled"])[0]


class EpochProgress:
    """Progress of a training run: a tqdm bar that moves every epoch on a terminal; one plain
    line per epoch when stderr is a log (no carriage-return lines piling up in a file)."""

    def __init__(self, epochs: int, desc: str):
        self.epochs, self.desc = epochs, desc
        self.bar = (tqdm(total=epochs, desc=desc, unit="epoch", mininterval=0.5, dynamic_ncols=True)
                    if sys.stderr.isatty() else None)

    def epoch(self, epoch: int, train_loss: float, val_loss: float | None) -> None:
        val = "" if val_loss is None else f"{val_loss:.5g}"
        if self.bar is None:
            log.info("%s: epoch %d/%d  train loss %.5g%s", self.desc, epoch, self.epochs,
                     train_loss, val and f"  val loss {val}")
            return
        self.bar.set_postfix(train=f"{train_loss:.4g}", **({"val": val} if val else {}), refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Leaves the bar's final count on screen (closing twice is harmless)."""
        if self.bar is not None:
            self.bar.close()


def _require_samples(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]) -> None:
    if len(train[0]) == 0 or len(val[0]) == 0:
        raise ValueError(f"need training and validation samples, got {len(train[0])} and {len(val[0])}")


def fit(model: nn.Module, objective, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray], cfg: TrainConfig,
        unlabelled: np.ndarray | None = None, steps_per_epoch: int = 0) -> tuple[nn.Module, pd.DataFrame]:
    """Adam with early stopping on validation loss (or AUROC, ``cfg.monitor``); returns the
    best model and the history.

    ``unlabelled``: inputs for a semi-supervised objective's ``unlabelled_loss`` (see
    pipeline/semi.py), in ``steps_per_epoch`` steps an epoch (0: as many as ``unlabelled``
    fills); an objective that is an ``nn.Module`` has its own parameters trained too.
    """
    _require_samples(train, val)
    if cfg.monitor == "auroc" and len(np.unique(np.asarray(val[1]) != 0)) < 2:
        raise PipelineError("train.monitor auroc needs normal and abnormal validation samples "
                            "(use loss)")
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    model = model.to(device)
    trained = list(model.parameters())
    if isinstance(objective, nn.Module):
        trained += list(objective.to(device).parameters())
    # fused: one kernel per step for every parameter rather than a handful of passes per
    # tensor; on CPU that halves an MLP autoencoder's step (hls_ae's 3,760-wide layers)
    optimiser = torch.optim.Adam(trained, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 fused=device.type in ("cpu", "cuda"))
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.epochs)
                if cfg.schedule == "cosine" else None)
    shuffle = np.random.default_rng(cfg.seed)
    streams: dict = {}
    if unlabelled is not None and not steps_per_epoch:
        steps_per_epoch = math.ceil(len(unlabelled) / cfg.batch_size)
    best, best_state, best_epoch, history = -np.inf, None, 0, []
    progress = EpochProgress(cfg.epochs, f"train ({device.type})")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for xb, yb, xu in epoch_batches(train, unlabelled, cfg.batch_size, device, shuffle, streams,
                                           steps_per_epoch):
            optimiser.zero_grad()
            loss = objective.loss(model, xb, yb)
            if xu is not None:
                loss = loss + objective.unlabelled_loss(model, xu, epoch)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(xb)
            seen += len(xb)
        if schedule is not None:
            schedule.step()
        history.append({"epoch": epoch, "train_loss": total / seen})
        if cfg.curves:
            history[-1]["val_loss"] = mean_loss(model, objective, *val, device, cfg.batch_size)
            if cfg.monitor == "auroc":
                history[-1]["val_auroc"] = validation_auroc(model, objective, val, device)
        progress.epoch(epoch, history[-1]["train_loss"], history[-1].get("val_loss"))
        if cfg.select == "last":  # the model as it ends is the one kept: nothing to copy
            continue
        quality = history[-1]["val_auroc"] if cfg.monitor == "auroc" else -history[-1]["val_loss"]
        if quality > best:
            best, best_epoch = quality, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= cfg.patience:
            progress.close()  # the bar's last state first, then why it stopped
            log.info("early stop at epoch %d: best validation %s %.5g at epoch %d", epoch,
                     cfg.monitor, abs(best), best_epoch)
            break
    progress.close()
    if cfg.select == "best":
        if best_state is None:
            raise PipelineError(f"no epoch had a finite validation {cfg.monitor}: nothing to keep "
                                "(a diverging run? lower train.lr)")
        model.load_state_dict(best_state)
    return model, pd.DataFrame(history)


def fit_closed_form(model: nn.Module, objective, train: tuple[np.ndarray, np.ndarray],
                    val: tuple[np.ndarray, np.ndarray], cfg: TrainConfig) -> tuple[nn.Module, pd.DataFrame]:
    """A model with ``closed_form`` set, fitted by one call of its ``fit`` on the training
    inputs and labels (principal axes, a bank of neighbours, scikit-learn's trees) rather
    than by the loop; its history is one row: the objective's mean loss on the training and
    validation inputs."""
    from threadpoolctl import threadpool_limits

    _require_samples(train, val)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    x, y = (torch.from_numpy(a).to(device) for a in train)
    # scikit-learn's OpenMP sums split by thread, as torch's do: the same fixed count
    with threadpool_limits(CPU_THREADS):
        model = model.to(device).fit(x, y)
    size = predict_batch_size(train[0])
    history = pd.DataFrame([{"epoch": 1, "train_loss": mean_loss(model, objective, *train, device, size),
                             "val_loss": mean_loss(model, objective, *val, device, size)}])
    log.info("fitted in closed form: train loss %.5g  val loss %.5g", *history.iloc[0, 1:])
    return model.eval(), history


def kept_epoch(history: pd.DataFrame, cfg: TrainConfig) -> int:
    """The epoch whose weights ``fit`` kept, read from its history by the same rule: the
    last (``select: last``), or the first best by ``cfg.monitor``."""
    if cfg.select == "last":
        return int(history["epoch"].iloc[-1])
    quality = history["val_auroc"] if cfg.monitor == "auroc" else -history["val_loss"]
    return int(history["epoch"][quality.idxmax()])


def stalled(history: pd.DataFrame, rtol: float = 1e-5) -> bool:
    """True when the training loss stopped moving after the first epoch: a collapsed network
    (every unit dead, every input reconstructed alike) rather than a slow one, since
    shuffled batches move a training network's epoch loss by far more than ``rtol``."""
    loss = history["train_loss"].to_numpy()
    return len(loss) >= 3 and bool(np.allclose(loss[2:], loss[1], rtol=rtol, atol=0))


def validation_auroc(model: nn.Module, objective, val: tuple[np.ndarray, np.ndarray],
                     device: torch.device) -> float:
    """AUROC of abnormal (label != 0) against normal validation samples by the objective's
    abnormality score; NaN with one class."""
    from pipeline.metrics import auroc

    scores = objective.abnormality(predict_scores(model, objective, val[0], device))
    return auroc((np.asarray(val[1]) != 0).astype(int), scores)


# A checkpoint is data only: a JSON header (model name and arguments, the study, its classes
# and feature settings, the scaler's kind) and tensors, read back with torch's weights-only
# loader, which builds nothing but tensors and containers: a file that holds anything
# else (a pickled object whose loading would run code) is refused, not run.
CHECKPOINT_FORMAT = 2


def save_checkpoint(path: Path, model_name: str, model_kwargs: dict, model: nn.Module,
                    scaler: dict, **header: Any) -> None:
    """Everything needed to rebuild and use the model: name, arguments, weights, the fitted
    scaler (``Scaler.state()``) and ``header``'s JSON-compatible extras (study, classes...)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    text = json.dumps({"model": model_name, "model_kwargs": model_kwargs, "scaler_kind": scaler["kind"],
                       **header}, sort_keys=True)
    payload = {"format": CHECKPOINT_FORMAT, "header": text, "state_dict": state,
               "scaler": {k: torch.from_numpy(np.array(scaler[k], dtype=np.float32))
                          for k in ("offset", "scale")}}
    # through a file object: torch.save names the archive inside after a path it is given,
    # and the temporary path is random, which would make identical models differ bytewise
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


def _first_line(exc: Exception) -> str:
    """An exception's message for one line of ours: its first line (torch's run long)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def load_checkpoint(path: Path, study: str | None = None) -> tuple[nn.Module, dict]:
    """The model in ``path`` (in eval mode) and its header, with ``scaler`` as
    ``Scaler.state()`` reads it. ``study``: the study it must hold. Any file that is not a
    checkpoint of this format, or of another study, is a PipelineError naming it."""
    from pipeline.models import build

    path = Path(path)
    if not path.is_file():
        raise PipelineError("no checkpoint here (train the study first: `dvc repro`)", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise PipelineError(f"not a readable checkpoint ({type(exc).__name__}: {_first_line(exc)}); "
                            "rebuild it with `dvc repro`", path) from None
    found = payload.get("format") if isinstance(payload, dict) else None
    if found != CHECKPOINT_FORMAT:
        raise PipelineError(f"checkpoint format {found!r}, this pipeline reads format "
                            f"{CHECKPOINT_FORMAT}: rebuild it with `dvc repro`", path)
    try:
        header = json.loads(payload["header"])
        scaler = {"kind": header["scaler_kind"],
                  **{k: payload["scaler"][k].numpy() for k in ("offset", "scale")}}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PipelineError(f"damaged checkpoint header ({exc!r}): rebuild it with `dvc repro`",
                            path) from None
    if study is not None and header.get("study") != study:
        raise PipelineError(f"this checkpoint holds study {header.get('study')!r}, not {study!r} "
                            "(a file copied from another study? rebuild it with `dvc repro`)", path)
    try:
        model = build(header["model"], **header["model_kwargs"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise PipelineError(f"the weights do not fit model {header.get('model')!r} ({_first_line(exc)}): "
                            "rebuild it with `dvc repro`", path) from None
    model.eval()
    return model, {**header, "scaler": scaler}
