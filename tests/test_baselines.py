"""Classical baselines: closed-form detectors that score like autoencoders or by an anomaly
score of their own (scikit-learn's, recomputed in torch), a logistic regression and
boosted trees on band statistics; all of them travel as data-only checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import build
from pipeline.objectives import AnomalyScore, Classification, Reconstruction
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


def _sklearn_seed(seed: int) -> int:
    """The random_state a closed-form fit hands scikit-learn after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return int(torch.randint(0, 2**31 - 1, ()).item())


def test_isolation_forest_scores_are_scikit_learns():
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(0)
    x, probe = rng.normal(size=(300, 12)).astype(np.float32), rng.normal(size=(50, 12)).astype(np.float32) * 2
    torch.manual_seed(5)
    model = build("isolation_forest", input_dim=12, trees=40, max_samples=128).fit(torch.from_numpy(x))
    reference = IsolationForest(n_estimators=40, max_samples=128, random_state=_sklearn_seed(5)).fit(x)
    scores = AnomalyScore().scores(model, torch.from_numpy(probe)).numpy()
    np.testing.assert_allclose(scores, -reference.score_samples(probe), rtol=1e-6)
    assert scores.min() > 0 and scores.max() <= 1
    with pytest.raises(ValueError, match=r"expected input \(N, 12\)"):
        model(torch.zeros(2, 13))


def test_mixture_score_is_the_negative_log_likelihood_above_the_mixtures_floor():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (100, 5)), rng.normal(6, 0.5, (100, 5))]).astype(np.float32)
    torch.manual_seed(2)
    model = build("gmm_density", input_dim=5, components=2).fit(torch.from_numpy(x))
    reference = GaussianMixture(2, covariance_type="diag", random_state=_sklearn_seed(2)).fit(
        x.astype(np.float64))
    probe = torch.from_numpy(rng.normal(3, 3, (40, 5)).astype(np.float32))
    np.testing.assert_allclose(model.log_likelihood(probe).numpy(),
                               reference.score_samples(probe.numpy().astype(np.float64)), rtol=1e-10)
    scores = AnomalyScore().scores(model, probe)
    assert (scores >= 0).all()
    # a point between the clusters is less likely than one at a cluster's centre
    assert model(torch.tensor([[3.0] * 5])) > model(torch.tensor([[6.0] * 5]))
    with pytest.raises(ValueError, match="3 mixture components need as many"):
        build("gmm_density", input_dim=5, components=3).fit(torch.from_numpy(x[:2]))


@pytest.mark.parametrize("n_classes", [2, 4])
def test_boosted_trees_probabilities_are_scikit_learns(n_classes):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from pipeline.models.baselines import BandStatistics

    rng = np.random.default_rng(3)
    x = rng.normal(size=(240, 1, 8, 12)).astype(np.float32)
    spread = x[:, 0, :2].std(-1).mean(-1)  # what the classes are made of
    y = (np.digitize(spread, [0.9, 1.0, 1.1]) if n_classes == 4 else spread > 1).astype(np.int64)
    objective = Classification.for_training(y, n_classes)
    model, history = fit_closed_form(
        build("band_stats_boosting", n_mels=8, frames=12, n_classes=n_classes, iterations=20),
        objective, (x, y), (x[:10], y[:10]), CFG)  # the loop's path: labels reach fit
    statistics = BandStatistics(8, 12, band_norm=True)(torch.from_numpy(x)).numpy()
    reference = HistGradientBoostingClassifier(
        max_iter=20, early_stopping=False,
        random_state=_sklearn_seed(CFG.seed)).fit(statistics, y)
    probabilities = objective.scores(model, torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(probabilities, reference.predict_proba(statistics), atol=1e-6)
    assert len(history) == 1
    with pytest.raises(ValueError, match="fit it on labels"):
        build("band_stats_boosting", n_mels=8, frames=12).fit(torch.from_numpy(x))


def _fitted(name: str) -> tuple[torch.nn.Module, dict, torch.Tensor]:
    """A small fitted closed-form model of each kind, its arguments and a probe."""
    if name == "band_stats_boosting":
        x = np.random.default_rng(4).normal(size=(60, 1, 4, 6)).astype(np.float32)
        kwargs = {"n_mels": 4, "frames": 6, "n_classes": 2, "iterations": 5}
        y = torch.from_numpy((x[:, 0, 0].mean(-1) > 0).astype(np.int64))
        return build(name, **kwargs).fit(torch.from_numpy(x), y), kwargs, torch.from_numpy(x[:7])
    kwargs = {"pca_ae": {"components": 2}, "knn_ae": {"k": 1}, "gmm_density": {"components": 2},
              "isolation_forest": {"trees": 5, "max_samples": 16}}[name]
    x = _low_rank(30, 2, 6)
    model = build(name, input_dim=6, **kwargs).fit(torch.from_numpy(x))
    return model, {"input_dim": 6, **kwargs}, torch.from_numpy(_low_rank(5, 2, 6, seed=3))


@pytest.mark.parametrize("name", ["pca_ae", "knn_ae", "gmm_density", "isolation_forest",
                                  "band_stats_boosting"])
def test_a_closed_form_model_travels_as_a_data_only_checkpoint(tmp_path, name):
    model, kwargs, probe = _fitted(name)
    path = tmp_path / "model.pt"
    save_checkpoint(path, name, kwargs, model, Scaler("none").fit(probe.numpy()).state(), study="hls_pca")
    loaded, _ = load_checkpoint(path, "hls_pca")  # a bank's or a forest's size comes from the file
    assert torch.equal(loaded(probe), model(probe))


def test_band_statistics_leave_out_the_means_that_band_normalisation_zeroes():
    from pipeline.models.baselines import BandStatistics

    x = torch.randn(3, 1, 4, 10) + torch.arange(4.0)[None, None, :, None]
    normalised, raw = BandStatistics(4, 10, band_norm=True), BandStatistics(4, 10, band_norm=False)
    assert normalised(x).shape == (3, 12) and normalised.features == 12
    assert raw(x).shape == (3, 16) and raw.features == 16
    assert torch.allclose(raw(x)[:, :4], x[:, 0].mean(-1))  # the means, then what both share
    assert torch.allclose(raw(x)[:, 4:], normalised(x), atol=1e-6)


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


def test_predict_loads_a_model_with_evaluates_cpu_settings(monkeypatch, tmp_path):
    """Threads and subnormal flushing are part of a score's bytes: predict sets what
    evaluate scored with, whatever the process had before."""
    from types import SimpleNamespace

    from pipeline import predict
    from pipeline.training import CPU_THREADS

    study = SimpleNamespace(name="s", featurize_file=object(), model_dir=tmp_path)
    monkeypatch.setattr(predict, "get_study", lambda name: study)
    monkeypatch.setattr(predict, "load_checkpoint", lambda path, name: (None, {}))
    monkeypatch.setattr(predict, "read_calibration", lambda path: {})
    torch.set_num_threads(1)
    torch.set_flush_denormal(False)
    try:
        predict.Predictor.load("s")
        assert torch.get_num_threads() == CPU_THREADS
        assert torch.tensor([1e-323], dtype=torch.float64).item() == 0.0  # a subnormal, flushed
    finally:  # the settings every other test runs with, even when this one fails
        torch.set_num_threads(CPU_THREADS)
        torch.set_flush_denormal(True)
