"""The shared training loop: determinism on CPU, early stopping, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.models import build
from pipeline.scalers import Scaler
from pipeline.training import (
    Reconstruction, TrainConfig, fit, load_checkpoint, predict_scores, save_checkpoint,
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


def test_keeps_best_epoch_and_stops_early():
    model, history = _train()
    best = history["val_loss"].min()
    assert len(history) <= CFG.epochs
    if len(history) < CFG.epochs:  # stopped: the last `patience` epochs were no better
        assert (history["val_loss"].iloc[-CFG.patience:] >= best).all()
    _, val = _data()
    assert np.isclose(predict_scores(model, Reconstruction(), val[0], torch.device("cpu")).mean(), best)


def test_checkpoint_round_trip(tmp_path):
    model, _ = _train()
    scaler = Scaler("minmax").fit(_data()[0][0])
    save_checkpoint(tmp_path / "m.pt", "mlp_ae", {"input_dim": 6, "hidden": 8, "latent": 2},
                    model, scaler=scaler.state())
    loaded, checkpoint = load_checkpoint(tmp_path / "m.pt")
    x = torch.rand(3, 6)
    assert torch.equal(loaded(x), model.eval()(x))
    assert np.array_equal(Scaler.from_state(checkpoint["scaler"]).scale, scaler.scale)


def test_minmax_scaler_uses_training_range():
    scaler = Scaler("minmax").fit(np.array([[0.0, 10.0], [2.0, 10.0]], np.float32))
    out = scaler.transform(np.array([[1.0, 10.0], [4.0, 11.0]], np.float32))
    assert out.tolist() == [[0.5, 0.0], [2.0, 1.0]]  # constant column: span taken as 1


def test_checkpoints_of_the_same_model_are_byte_identical(tmp_path):
    model, _ = _train()
    kwargs = {"input_dim": 6, "hidden": 8, "latent": 2}
    save_checkpoint(tmp_path / "a.pt", "mlp_ae", kwargs, model)
    save_checkpoint(tmp_path / "b.pt", "mlp_ae", kwargs, model)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_progress_in_a_log_is_one_plain_line_per_epoch(caplog, capsys):
    """stderr is not a terminal under pytest: no bar, no carriage returns, a line per epoch."""
    with caplog.at_level("INFO", logger="pipeline.training"):
        _, history = _train()
    lines = [r.getMessage() for r in caplog.records if "/15  train loss" in r.getMessage()]
    assert len(lines) == len(history)
    assert lines[0].startswith("train (cpu): epoch 1/15  train loss ")
    assert "\r" not in capsys.readouterr().err
