"""A model file is data, not code: checkpoints load with torch's weights-only loader, and a
damaged, foreign or malicious file is one clear error naming it (pipeline/training.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.models import build
from pipeline.scalers import Scaler
from pipeline.training import load_checkpoint, save_checkpoint

KWARGS = {"input_dim": 6, "hidden": 8, "latent": 2}


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build("mlp_ae", **KWARGS)
    scaler = Scaler("minmax").fit(np.random.default_rng(0).random((10, 6), dtype=np.float32))
    path = tmp_path / "model.pt"
    save_checkpoint(path, "mlp_ae", KWARGS, model, scaler.state(), study="hls_ae",
                    classes=["normal", "abnormal"], features={"n_mfcc": 20})
    return path, model, scaler


def test_round_trip_keeps_weights_scaler_and_header(checkpoint):
    path, model, scaler = checkpoint
    loaded, header = load_checkpoint(path, "hls_ae")
    x = torch.rand(3, 6)
    assert torch.equal(loaded(x), model.eval()(x))
    restored = Scaler.from_state(header["scaler"])
    assert restored.kind == "minmax" and np.array_equal(restored.offset, scaler.offset)
    assert header["classes"] == ["normal", "abnormal"] and header["features"] == {"n_mfcc": 20}


class Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_runs_code_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"format": 2, "header": Payload(marker)}, path)  # a real torch zip archive
    with pytest.raises(PipelineError, match="not a readable checkpoint") as caught:
        load_checkpoint(path, "hls_ae")
    assert not marker.exists()
    assert str(path) in str(caught.value)
    path.write_bytes(pickle.dumps(Payload(marker)))  # a bare pickle, the legacy format
    with pytest.raises(PipelineError, match="not a readable checkpoint"):
        load_checkpoint(path, "hls_ae")
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "not a readable checkpoint"),
    (lambda b: b"just some text\n", "not a readable checkpoint"),
    (lambda b: b"", "not a readable checkpoint"),
])
def test_damaged_files_are_one_line_naming_the_file(checkpoint, damage, message):
    path = checkpoint[0]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(PipelineError, match=message) as caught:
        load_checkpoint(path, "hls_ae")
    assert caught.value.path == path and "\n" not in str(caught.value)


def test_another_studys_checkpoint_is_named_as_such(checkpoint):
    with pytest.raises(PipelineError, match="holds study 'hls_ae', not 'icbhi_cnn'"):
        load_checkpoint(checkpoint[0], "icbhi_cnn")


def test_an_older_format_asks_for_a_rebuild(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": "mlp_ae", "model_kwargs": KWARGS, "state_dict": {}}, path)
    with pytest.raises(PipelineError, match="format None, this pipeline reads format 2"):
        load_checkpoint(path)


def test_weights_of_another_shape_are_refused(checkpoint, tmp_path):
    payload = torch.load(checkpoint[0], weights_only=True)
    payload["header"] = payload["header"].replace('"input_dim": 6', '"input_dim": 7')
    torch.save(payload, checkpoint[0])
    with pytest.raises(PipelineError, match="do not fit model 'mlp_ae'"):
        load_checkpoint(checkpoint[0], "hls_ae")


def test_a_missing_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(PipelineError, match="train the study first"):
        load_checkpoint(tmp_path / "absent.pt")
