"""Classical baselines: closed-form detectors that score like autoencoders, and a logistic
regression on band statistics; all of them travel as data-only checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import build
from pipeline.objectives import Reconstruction
from pipeline.params_schema import validate
from pipeline.scalers import Scaler
from pipeline.training import TrainConfig, fit_closed_form, load_checkpoint, save_checkpoint
from tests.project_params import project_params

CFG = TrainConfig(seed=0, device="cpu")


def _low_rank(n: int, rank: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, rank)) @ rng.normal(size=(rank, width)) + 3.0).astype(np.float32)


def test_pca_reconstructs_its_subspace_and_scores_what_leaves_it():
    x = _low_rank(60, 3, 20)
    model, history = fit_closed_form(build("pca_ae", input_dim=20, components=3), Reconstruction(),
                                     (x, np.zeros(60, np.int64)), (x[:5], np.zeros(5, np.int64)), CFG)
    assert list(history.columns) == ["epoch", "train_loss", "val_loss"] and len(history) == 1
    inside = torch.from_numpy(_low_rank(1, 3, 20, seed=0)[:1])  # a point of the same subspace
    assert torch.allclose(model(torch.from_numpy(x)), torch.from_numpy(x), atol=1e-3)
    off = inside + torch.from_numpy(np.random.default_rng(9).normal(size=(1, 20)).astype(np.float32))
    scores = Reconstruction().scores(model, torch.cat([torch.from_numpy(x[:1]), off]))
    assert scores[0] < 1e-5 < scores[1]


def test_pca_keeps_fewer_axes_than_asked_when_the_data_has_fewer_rows():
    x = _low_rank(4, 4, 10)
    model = build("pca_ae", input_dim=10, components=8).fit(torch.from_numpy(x))
    assert model.axes.shape == (8, 10) and (model.axes[4:] == 0).all()


def test_nearest_neighbour_error_is_the_squared_distance_to_the_nearest_training_input():
    bank = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    model = build("knn_ae", input_dim=2, k=1).fit(bank)
    x = torch.tensor([[1.0, 1.0], [10.0, 0.0], [9.0, 3.0]])
    expected = torch.tensor([2.0, 0.0, 10.0]) / 2  # mean over the 2 inputs
    assert torch.allclose(Reconstruction().scores(model, x), expected)
    two = build("knn_ae", input_dim=2, k=2).fit(bank)
    assert torch.allclose(two(torch.tensor([[0.0, 1.0]])), torch.tensor([[0.0, 5.0]]))
    with pytest.raises(ValueError, match="k = 4 nearest neighbours need as many"):
        build("knn_ae", input_dim=2, k=4).fit(bank)


@pytest.mark.parametrize("name, kwargs", [("pca_ae", {"components": 2}), ("knn_ae", {"k": 1})])
def test_a_closed_form_model_travels_as_a_data_only_checkpoint(tmp_path, name, kwargs):
    x = _low_rank(30, 2, 6)
    model = build(name, input_dim=6, **kwargs).fit(torch.from_numpy(x))
    path = tmp_path / "model.pt"
    save_checkpoint(path, name, {"input_dim": 6, **kwargs}, model, Scaler("none").fit(x).state(),
                    study="hls_pca")
    loaded, _ = load_checkpoint(path, "hls_pca")  # the bank's length comes from the file
    probe = torch.from_numpy(_low_rank(5, 2, 6, seed=3))
    assert torch.equal(loaded(probe), model(probe))


def test_band_statistics_logistic_regression_shapes_and_input_check():
    model = build("band_stats_linear", n_mels=8, frames=12, n_classes=2, band_norm=True)
    x = torch.randn(5, 1, 8, 12)
    logits = model(x)
    assert logits.shape == (5, 2)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1, 1])).backward()
    assert model.linear.weight.grad.abs().sum() > 0
    model.eval()  # band_norm: a constant offset per band (a device's response) changes nothing
    shifted = x + torch.arange(8.0)[None, None, :, None]
    assert torch.allclose(model(shifted), model(x), atol=1e-5)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(5, 1, 9, 12))


def test_a_closed_form_fit_takes_no_loop_settings():
    raw = project_params({"baselines": {"pca": {"train": {"epochs": 10}}}})
    with pytest.raises(ValueError, match=r"baselines\.pca\.train\.epochs: unknown key"):
        validate(raw)


def test_predict_finds_the_device_of_a_model_of_buffers_only():
    from pipeline.predict import Predictor

    model = build("knn_ae", input_dim=3, k=1).fit(torch.zeros(2, 3))
    assert not list(model.parameters())  # a closed-form model: buffers only
    assert Predictor(study=None, model=model, checkpoint={}, calibration={}).model_device.type == "cpu"
