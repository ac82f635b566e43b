"""Spectrogram classifiers: output shapes, one training step, SpecAugment masking."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.models import build
from pipeline.models.spectrogram_layers import SpecAugment

MASKING = {"freq_masks": 1, "freq_width": 4, "time_masks": 1, "time_width": 6}
MODELS = [
    ("simple_cnn", {}),
    ("simple_cnn", {"hidden": 16, "dropout": 0.2, "spec_augment": MASKING}),
    ("cnn_gru", {}),
    ("cnn_gru", {"channels": [8, 8, 8], "gru_hidden": 8, "bidirectional": False,
                 "spec_augment": MASKING}),
]


@pytest.mark.parametrize("name, kwargs", MODELS)
@pytest.mark.parametrize("n_mels, frames", [(32, 40), (30, 37)])  # odd sizes: pooling floors
def test_forward_gives_logits_per_example(name, kwargs, n_mels, frames):
    model = build(name, n_mels=n_mels, frames=frames, n_classes=4, **kwargs).eval()
    assert model(torch.randn(3, 1, n_mels, frames)).shape == (3, 4)


@pytest.mark.parametrize("name, kwargs", MODELS)
def test_one_training_step_updates_weights(name, kwargs):
    torch.manual_seed(0)
    model = build(name, n_mels=16, frames=24, n_classes=2, **kwargs).train()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 1, 16, 24)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("name", ["simple_cnn", "cnn_gru"])
def test_wrong_input_shape_is_named(name):
    model = build(name, n_mels=16, frames=24)
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 16"):
        model(torch.randn(2, 1, 20, 24))


@pytest.mark.parametrize("name", ["simple_cnn", "cnn_gru"])
def test_too_small_spectrogram_is_refused(name):
    with pytest.raises(ValueError, match="poolings need"):
        build(name, n_mels=2, frames=24)


def test_cnn_gru_accepts_other_lengths():
    model = build("cnn_gru", n_mels=16, frames=24).eval()
    assert model(torch.randn(2, 1, 16, 50)).shape == (2, 2)


def test_spec_augment_masks_in_training_only():
    torch.manual_seed(0)
    layer = SpecAugment(freq_masks=2, freq_width=4, time_masks=2, time_width=5)
    x = torch.randn(8, 1, 16, 30)
    assert torch.equal(layer.eval()(x), x)
    masked = layer.train()(x)
    changed = masked != x
    assert changed.any()
    # masked cells hold their example's mean; masks span whole mel rows or frame columns
    means = x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
    assert torch.equal(masked[changed], means[changed])
    rows = changed.all(dim=3)  # (N, 1, n_mels): a masked frequency band
    columns = changed.all(dim=2)  # (N, 1, frames): a masked time span
    assert torch.equal(changed, rows[..., None] | columns[:, :, None, :])
    assert rows.sum(dim=2).max() <= 2 * 4 and columns.sum(dim=2).max() <= 2 * 5


def test_spec_augment_zero_width_is_identity():
    layer = SpecAugment(freq_width=0, time_width=0).train()
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(layer(x), x)


@pytest.mark.parametrize("name", ["simple_cnn", "cnn_gru"])
def test_a_saved_and_loaded_model_keeps_its_channels_last_weights_and_its_scores(name, tmp_path):
    """The layout is the model's own (set at construction): a loaded checkpoint sums in the
    same order as the model that training scored with, so predict gives the same bytes."""
    from pipeline.training import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = build(name, n_mels=16, frames=24, n_classes=2).eval()
    conv = [p for p in model.parameters() if p.ndim == 4]
    assert conv and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv)
    scaler = {"kind": "none", "offset": 0.0, "scale": 1.0}
    save_checkpoint(tmp_path / "model.pt", name, {"n_mels": 16, "frames": 24, "n_classes": 2}, model,
                    scaler, study="s")
    loaded, _ = load_checkpoint(tmp_path / "model.pt", "s")
    x = torch.randn(5, 1, 16, 24)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in loaded.parameters() if p.ndim == 4)


def test_time_shift_rolls_each_example_within_its_bound_in_training_only():
    from pipeline.models.spectrogram_layers import TimeShift

    torch.manual_seed(0)
    x = torch.randn(16, 1, 3, 20)
    shift = TimeShift(4)
    assert torch.equal(shift.eval()(x), x)
    shifted = shift.train()(x)
    rolls = set()
    for row, out in zip(x, shifted, strict=True):
        found = [k for k in range(-4, 5) if torch.equal(torch.roll(row, k, dims=-1), out)]
        assert found, "each example is its own circular shift by at most 4 frames"
        rolls.add(found[0])
    assert len(rolls) > 1  # each example draws its own shift
    assert torch.equal(TimeShift(0).train()(x), x)


def test_models_take_time_shift_as_an_input_layer():
    model = build("simple_cnn", n_mels=16, frames=24, n_classes=2, time_shift=3, band_norm=True)
    assert [type(layer).__name__ for layer in model.augment] == ["BandNorm", "TimeShift"]
    with pytest.raises(ValueError, match="time_shift"):
        build("cnn_gru", n_mels=16, frames=24, time_shift=-1)


def test_mixup_blends_inputs_and_labels_in_training_and_never_in_validation():
    from torch.nn import functional as F

    from pipeline.objectives import Classification

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    x, y = torch.randn(8, 1, 2, 3), torch.tensor([0, 1] * 4)
    mixed = Classification(mixup=0.4)
    model.eval()
    assert torch.equal(mixed.loss(model, x, y), F.cross_entropy(model(x), y))
    model.train()
    torch.manual_seed(1)
    loss = mixed.loss(model, x, y)
    torch.manual_seed(1)  # the same draws, by hand
    share = torch.distributions.Beta(0.4, 0.4).sample().item()
    partner = torch.randperm(8)
    logits = model(share * x + (1 - share) * x[partner])
    expected = share * F.cross_entropy(logits, y) + (1 - share) * F.cross_entropy(logits, y[partner])
    assert torch.allclose(loss, expected) and not torch.allclose(loss, F.cross_entropy(model(x), y))
