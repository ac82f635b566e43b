"""The shared training loop: determinism on CPU, early stopping, checkpoint round trip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.models import build
from pipeline.objectives import Classification, Reconstruction
from pipeline.scalers import Scaler
from pipeline.training import (
    TrainConfig, fit, kept_epoch, predict_scores, save_checkpoint, stalled, validation_auroc,
)

CFG = TrainConfig(epochs=15, batch_size=8, lr=1e-2, patience=3, seed=5, device="cpu")


def _data():
    rng = np.random.default_rng(0)
    x = rng.random((40, 6)).astype(np.float32)
    return (x[:30], np.zeros(30, np.int64)), (x[30:], np.zeros(10, np.int64))


def _train():
    torch.manual_seed(CFG.seed)
    model = build("mlp_ae", input_dim=6, hidden=8, latent=2)
    return fit(model, Reconstruction(), *_data(), CFG)


def test_two_cpu_runs_are_identical():
    (m1, h1), (m2, h2) = _train(), _train()
    assert h1.equals(h2)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_keeps_the_best_epochs_weights():
    model, history = _train()
    _, val = _data()
    best = history["val_loss"].min()
    assert np.isclose(predict_scores(model, Reconstruction(), val[0], torch.device("cpu")).mean(), best)


def test_stops_after_patience_epochs_without_a_better_one():
    # lr 0: the weights never move, so no epoch after the first is better (a tie is not)
    torch.manual_seed(CFG.seed)
    model = build("mlp_ae", input_dim=6, hidden=8, latent=2)
    frozen = replace(CFG, lr=0.0, epochs=50)
    _, history = fit(model, Reconstruction(), *_data(), frozen)
    assert len(history) == 1 + frozen.patience
    assert kept_epoch(history, frozen) == 1


def test_kept_epoch_names_the_epoch_whose_weights_fit_kept():
    model, history = _train()
    kept = history.set_index("epoch").loc[kept_epoch(history, CFG), "val_loss"]
    _, val = _data()
    assert np.isclose(predict_scores(model, Reconstruction(), val[0], torch.device("cpu")).mean(), kept)
    assert kept_epoch(history, replace(CFG, select="last")) == len(history)


def test_a_fixed_schedule_without_curves_trains_the_same_model_without_validation_passes():
    """A cross-fit inner model (``curves=False``) skips the per-epoch validation pass, which
    chooses nothing under ``select: last``: the same weights and training losses, no curve."""
    fixed = replace(CFG, epochs=6, select="last")
    runs = []
    for cfg in (fixed, replace(fixed, curves=False)):
        torch.manual_seed(cfg.seed)
        runs.append(fit(build("mlp_ae", input_dim=6, hidden=8, latent=2), Reconstruction(), *_data(), cfg))
    (with_curves, h1), (without, h2) = runs
    assert list(h1.columns) == ["epoch", "train_loss", "val_loss"]
    assert list(h2.columns) == ["epoch", "train_loss"] and len(h2) == 6
    assert h2.equals(h1[["epoch", "train_loss"]])
    for a, b in zip(with_curves.state_dict().values(), without.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(PipelineError, match="cannot select its best epoch"):
        replace(CFG, curves=False)


def test_a_run_whose_validation_loss_is_never_finite_is_an_error_not_a_model():
    class Diverged(Reconstruction):
        def loss(self, model, x, y):  # finite while training, NaN when validating
            return super().loss(model, x, y) * (1.0 if model.training else float("nan"))

    torch.manual_seed(CFG.seed)
    with pytest.raises(PipelineError, match="no epoch had a finite validation loss"):
        fit(build("mlp_ae", input_dim=6, hidden=8, latent=2), Diverged(), *_data(), CFG)


def test_minmax_scaler_uses_training_range():
    scaler = Scaler("minmax").fit(np.array([[0.0, 10.0], [2.0, 10.0]], np.float32))
    out = scaler.transform(np.array([[1.0, 10.0], [4.0, 11.0]], np.float32))
    assert out.tolist() == [[0.5, 0.0], [2.0, 1.0]]  # constant column: span taken as 1


def test_checkpoints_of_the_same_model_are_byte_identical(tmp_path):
    model, _ = _train()
    kwargs = {"input_dim": 6, "hidden": 8, "latent": 2}
    scaler = Scaler("minmax").fit(_data()[0][0]).state()
    save_checkpoint(tmp_path / "a.pt", "mlp_ae", kwargs, model, scaler, study="s")
    save_checkpoint(tmp_path / "b.pt", "mlp_ae", kwargs, model, scaler, study="s")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_progress_in_a_log_is_one_plain_line_per_epoch(caplog, capsys):
    """stderr is not a terminal under pytest: no bar, no carriage returns, a line per epoch."""
    with caplog.at_level("INFO", logger="pipeline.training"):
        _, history = _train()
    lines = [r.getMessage() for r in caplog.records if "/15  train loss" in r.getMessage()]
    assert len(lines) == len(history)
    assert lines[0].startswith("train (cpu): epoch 1/15  train loss ")
    assert "\r" not in capsys.readouterr().err


def _classifier_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 1, 8, 8)).astype(np.float32)
    y = (np.arange(60) % 2).astype(np.int64)
    x[y == 1] += 0.8  # separable enough that AUROC moves
    return (x[:40], y[:40]), (x[40:], y[40:])


def test_monitor_auroc_keeps_the_epoch_of_best_validation_auroc_and_cosine_runs():
    cfg = TrainConfig(epochs=6, batch_size=8, lr=1e-2, patience=6, seed=0, device="cpu",
                      monitor="auroc", schedule="cosine")
    torch.manual_seed(0)
    model, history = fit(build("simple_cnn", n_mels=8, frames=8, hidden=8), Classification(),
                         *_classifier_data(), cfg)
    assert "val_auroc" in history and len(history) == 6
    best = history["val_auroc"].max()
    assert np.isclose(validation_auroc(model, Classification(), _classifier_data()[1],
                                       torch.device("cpu")), best)


def test_monitor_auroc_needs_both_classes_in_validation():
    (x, y), (vx, _) = _classifier_data()
    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-2, patience=2, seed=0, device="cpu", monitor="auroc")
    with pytest.raises(PipelineError, match="monitor auroc"):
        fit(build("simple_cnn", n_mels=8, frames=8, hidden=8), Classification(), (x, y),
            (vx, np.zeros(len(vx), np.int64)), cfg)


def test_band_norm_removes_a_constant_offset_per_band():
    torch.manual_seed(0)
    model = build("cnn_gru", n_mels=8, frames=8, channels=[4], gru_hidden=4, band_norm=True).eval()
    x = torch.randn(2, 1, 8, 8)
    offset = torch.linspace(-20, 20, 8).view(1, 1, 8, 1)  # a device's response: dB per band
    assert torch.allclose(model(x), model(x + offset), atol=1e-5)


@pytest.mark.parametrize("losses, expected", [
    ([0.1145, 0.10833, 0.10833, 0.10833], True),  # mnist_novelty's collapsed seed-1 member
    ([0.1145, 0.10833, 0.1083301], True),  # moves at the 7th digit only
    ([0.069, 0.0548, 0.0524], False),  # a training network
    ([0.069, 0.0548], False),  # too short to tell
])
def test_stalled_flags_a_training_loss_that_stops_moving(losses, expected):
    history = pd.DataFrame({"epoch": range(1, len(losses) + 1), "train_loss": losses})
    assert stalled(history) is expected


def test_a_training_network_is_not_stalled():
    _, history = _train()
    assert len(history) >= 3 and not stalled(history)
