"""The autoencoders match the workshop's layer tables: shapes and parameter counts."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import build
from pipeline.models.conv1d_ae import Conv1dAutoencoder
from pipeline.models.conv_ae import ConvAutoencoder
from tests.fresh import printed_by


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def output_shapes(layers: torch.nn.Sequential, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    for layer in layers:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    return shapes


def test_registry_builds_both_models():
    assert isinstance(build("mnist_conv_ae", latent=2), ConvAutoencoder)
    assert isinstance(build("conv1d_ae"), Conv1dAutoencoder)


def test_mnist_conv_ae_parameter_count_matches_the_table():
    assert n_params(ConvAutoencoder(latent=2)) == 200_963


@torch.no_grad()
def test_mnist_conv_ae_layer_shapes():
    model = ConvAutoencoder(latent=2)
    images = torch.rand(3, 1, 28, 28)
    encoder_shapes = output_shapes(model.encoder, images)
    assert encoder_shapes == [
        (32, 28, 28), (32, 28, 28), (64, 14, 14), (64, 14, 14),
        (64, 7, 7), (64, 7, 7), (64, 7, 7), (3136,), (2,),
    ]  # fmt: skip
    decoder_shapes = output_shapes(model.decoder, torch.zeros(3, 2))
    assert decoder_shapes == [
        (3136,), (64, 7, 7), (64, 7, 7), (64, 7, 7), (64, 13, 13), (64, 13, 13),
        (32, 27, 27), (32, 27, 27), (1, 55, 55), (1, 28, 28), (1, 28, 28),
    ]  # fmt: skip


@torch.no_grad()
def test_mnist_conv_ae_encode_decode_round_trip():
    model = ConvAutoencoder(latent=3)
    images = torch.rand(4, 1, 28, 28)
    codes = model.encode(images)
    assert codes.shape == (4, 3)
    reconstruction = model.decode(codes)
    assert torch.equal(reconstruction, model(images))
    assert reconstruction.min() > 0 and reconstruction.max() < 1


def test_conv1d_ae_parameter_count_matches_the_table():
    assert n_params(Conv1dAutoencoder()) == 5_217


@torch.no_grad()
def test_conv1d_ae_shapes():
    model = Conv1dAutoencoder()
    series = torch.randn(2, 1, 1000)
    assert output_shapes(model.encoder, series)[-1] == (16, 250)
    assert model(series).shape == (2, 1, 1000)


@pytest.mark.parametrize(
    ("name", "input_shape"), [("mnist_conv_ae", (2, 1, 28, 28)), ("conv1d_ae", (2, 1, 1000))]
)
def test_every_parameter_gets_a_gradient(name, input_shape):
    model = build(name)
    x = torch.rand(input_shape)
    torch.nn.functional.mse_loss(model(x), x).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_every_model_module_registers_what_modules_says():
    import importlib
    import pkgutil

    import pipeline.models as registry

    for info in pkgutil.iter_modules(registry.__path__):
        importlib.import_module(f"pipeline.models.{info.name}")
    assert set(registry.MODELS) == set(registry.MODULES)
    for name, cls in registry.MODELS.items():
        assert cls.__module__ == registry.module_of(name)


def test_build_imports_the_named_models_module_alone():
    code = ("import sys; import pipeline; from pipeline.models import build; "
            "build('mlp_ae', input_dim=4); "
            "print(sorted(m for m in sys.modules if m.startswith('pipeline.models.')))")
    assert printed_by(code) == "['pipeline.models.mlp_ae']"
    with pytest.raises(KeyError, match="unknown model 'nope'; known: band_stats_boosting, band_stats_"):
        build("nope")
