"""Semi-supervised ICBHI: each method's mechanics, the label selection and the grid's pooling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline import semi
from pipeline.errors import PipelineError
from pipeline.models.cnn import SimpleCNN
from pipeline.stages.semi_summary import cluster_bootstrap, gap_closed
from pipeline.datasets.icbhi.study import labelled_training_rows
from pipeline.studies import get_study
from pipeline.objectives import Classification
from pipeline.training import TrainConfig, fit

N_MELS, FRAMES = 8, 8


def toy_spectrograms(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two clusters in a toy log-mel space: class 1 has energy in the upper bands."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, 1, N_MELS, FRAMES)).astype(np.float32)
    x[y == 1, :, N_MELS // 2:, :] += 1.0
    return x, y.astype(np.int64)


def model() -> SimpleCNN:
    torch.manual_seed(0)
    return SimpleCNN(n_mels=N_MELS, frames=FRAMES, hidden=8)


def objective(method: str, **settings) -> semi.SemiSupervised:
    return semi.make_objective(method, settings, Classification(), model(),
                               torch.zeros(1, 1, N_MELS, FRAMES))


@pytest.mark.parametrize("method", ["reconstruction", "pi_model", "vat", "pseudo_label"])
def test_unlabelled_loss_sends_gradients_into_the_classifier(method):
    net = model()
    settings = {"threshold": 0.0} if method == "pseudo_label" else {}  # every prediction a target
    chosen = semi.make_objective(method, settings, Classification(), net, torch.zeros(1, 1, N_MELS, FRAMES))
    x, _ = toy_spectrograms(16, seed=1)
    chosen.unlabelled_loss(net, torch.from_numpy(x), epoch=10).backward()
    encoder_grad = net.features[0].weight.grad
    assert encoder_grad is not None and encoder_grad.abs().sum() > 0


def test_supervised_baseline_adds_nothing():
    x, _ = toy_spectrograms(4, seed=2)
    assert objective("supervised").unlabelled_loss(model(), torch.from_numpy(x), epoch=5).item() == 0.0


def test_ramp_up_starts_near_zero_and_reaches_the_weight():
    assert semi.ramp_up(0, 5) == pytest.approx(np.exp(-5))
    assert semi.ramp_up(5, 5) == semi.ramp_up(9, 5) == 1.0
    assert semi.ramp_up(0, 0) == 1.0
    pi = objective("pi_model", weight=2.0, ramp_up=4)
    x = torch.from_numpy(toy_spectrograms(16, seed=3)[0])
    torch.manual_seed(0)
    early = pi.unlabelled_loss(model(), x, epoch=0)
    torch.manual_seed(0)
    late = pi.unlabelled_loss(model(), x, epoch=4)
    assert early.item() == pytest.approx(late.item() * np.exp(-5), rel=1e-5)


def test_pseudo_labels_respect_the_confidence_threshold():
    net = model().eval()
    x = torch.from_numpy(toy_spectrograms(64, seed=4)[0])
    with torch.no_grad():
        confidence = torch.softmax(net(x), dim=1).max(dim=1).values
    cut = float(confidence.median())
    pseudo = objective("pseudo_label", threshold=cut)
    _, confident = pseudo.pseudo_targets(net, x)
    assert torch.equal(confident, confidence >= cut)
    assert objective("pseudo_label", threshold=1.01).unlabelled_term(net, x).item() == 0.0


def test_reconstruction_head_rebuilds_the_input_shape():
    head = objective("reconstruction")
    net = model()
    x = torch.from_numpy(toy_spectrograms(2, seed=5)[0])
    assert head.decoder(net.encode(x)).shape == x.shape


def test_unlabelled_data_trains_with_the_same_steps_for_every_method():
    x, y = toy_spectrograms(96, seed=6)
    x_val, y_val = toy_spectrograms(32, seed=7)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01, patience=5, seed=0, device="cpu", select="last")
    losses = {}
    for method in semi.METHODS:
        net = model()
        chosen = semi.make_objective(method, {}, Classification(), net, torch.from_numpy(x[:1]))
        _, history = fit(net, chosen, (x[:8], y[:8]), (x_val, y_val), cfg, unlabelled=x, steps_per_epoch=6)
        assert list(history["epoch"]) == [1, 2]
        losses[method] = history["train_loss"].iloc[-1]
    assert len(set(losses.values())) == len(losses)  # each method's unlabelled term changes training


def test_pseudo_labelling_helps_on_separable_clusters():
    """Few labels, many unlabelled cycles from the same two clusters: pseudo-labels add the rest."""
    x, y = toy_spectrograms(256, seed=8)
    x_test, y_test = toy_spectrograms(256, seed=9)
    cfg = TrainConfig(epochs=8, batch_size=32, lr=0.01, patience=8, seed=0, device="cpu", select="last")
    accuracy = {}
    for method in ("supervised", "pseudo_label"):
        net = model()
        settings = {"threshold": 0.8, "weight": 1.0} if method == "pseudo_label" else {}
        chosen = semi.make_objective(method, settings, Classification(), net, torch.from_numpy(x[:1]))
        trained, _ = fit(net, chosen, (x[:4], y[:4]), (x_test, y_test), cfg, unlabelled=x[4:])
        with torch.no_grad():
            accuracy[method] = float((trained(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    assert accuracy["pseudo_label"] >= accuracy["supervised"]
    assert accuracy["pseudo_label"] > 0.9


def test_labelled_rows_are_whole_patients_near_the_fraction():
    meta = pd.DataFrame({"patient": np.repeat(np.arange(20), 10),
                         "label4": np.tile(["normal", "normal", "crackle", "wheeze", "both"] * 2, 20)})
    keep = labelled_training_rows(meta, 0.25, seed=0)
    by_patient = pd.Series(keep).groupby(meta["patient"]).agg(["min", "max"])
    assert (by_patient["min"] == by_patient["max"]).all()  # a patient is labelled whole or not at all
    assert keep.mean() == pytest.approx(0.25, abs=0.05)
    assert labelled_training_rows(meta, 1.0, seed=0).all()
    with pytest.raises(Exception, match="label_fraction"):
        labelled_training_rows(meta, 0.0, seed=0)


def test_grid_cell_names_resolve_to_semi_studies():
    study = get_study("icbhi_semi/vat/0.25")
    assert (study.semi_method, study.key("train"), study.key("calibrate")) == (
        "vat", "icbhi.semi.train", "icbhi.calibrate")
    with pytest.raises(PipelineError, match="unknown semi-supervised method"):
        get_study("icbhi_semi/mixup/0.25")


def test_cluster_bootstrap_resamples_whole_patients():
    frame = pd.DataFrame({"patient": [1, 1, 2, 2, 3, 3], "label": [0, 1, 0, 1, 0, 0],
                          "score": [0.1, 0.9, 0.2, 0.8, 0.3, 0.4]})
    result = cluster_bootstrap(frame, threshold=0.5, n_boot=200, seed=0)
    assert result["auroc"] == 1.0 and result["sensitivity"] == 1.0 and result["specificity"] == 1.0
    assert result["auroc_ci_low"] == 1.0  # every resample of whole patients still ranks perfectly
    assert (result["n_test"], result["n_test_patients"]) == (6, 3)


def test_gap_closed_is_the_best_methods_share_of_the_supervised_gap():
    cells = {"supervised@0.25": {"auroc": 0.6}, "supervised@1.0": {"auroc": 0.8},
             "vat@0.25": {"auroc": 0.7}, "vat@1.0": {"auroc": 0.8},
             "pi_model@0.25": {"auroc": 0.65}, "pi_model@1.0": {"auroc": 0.79}}
    result = gap_closed(cells, ["supervised", "vat", "pi_model"], [0.25, 1.0])
    assert result["0.25"]["best_method"] == "vat"
    assert result["0.25"]["gap_closed"] == pytest.approx(0.5)


AUDIT = Path(__file__).resolve().parents[1] / "reports" / "audit" / "icbhi_semi.json"


@pytest.mark.skipif(not AUDIT.exists(), reason="no committed icbhi_semi audit")
def test_committed_audit_shows_unlabelled_cycles_from_training_patients_only():
    fractions = json.loads(AUDIT.read_text())["fractions"]
    assert fractions
    for entry in fractions.values():
        assert set(entry["overlap"].values()) == {0}
        assert entry["labelled_cycles"] > 0


def test_empty_unlabelled_pool_trains_on_labels_alone():
    """Pseudo-labelling at label fraction 1: no unlabelled cycle, the same steps, no hang."""
    x, y = toy_spectrograms(32, seed=10)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=0.01, patience=1, seed=0, device="cpu", select="last")
    chosen = objective("pseudo_label")
    _, history = fit(model(), chosen, (x, y), (x, y), cfg, unlabelled=x[:0], steps_per_epoch=4)
    assert list(history["epoch"]) == [1]
