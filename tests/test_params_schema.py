"""The params schema: the real params.yaml passes; bad values and misspelled keys are one
clear error naming the key (and the nearest valid key), never a traceback or a silent default."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import get_args

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.datasets.hls_cmds import SUBSETS
from pipeline.datasets.sines import ANOMALIES
from pipeline.errors import PipelineError
from pipeline.features.mfcc_windows import NORMALISATIONS
from pipeline.models import MODULES
from pipeline.params import load_params
from pipeline.params_schema import (
    MODEL_SCHEMAS, Aggregate, AnomalyType, ClassifierCalibrate, HLSSplit, ICBHISplit, MFCCFeatures,
    ScalerKind, SemiMethod, ThresholdCalibrate, _tag,
)
from pipeline.scalers import Scaler
from pipeline.metrics import AGGREGATES
from pipeline.semi import METHODS as SEMI_METHODS
from pipeline.calibration import METHODS as CALIBRATION_METHODS
from pipeline.datasets.icbhi.prepare import ICBHI_SCHEMES

ROOT = Path(__file__).resolve().parents[1]
REAL = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_real_params_file_passes_and_loads_unchanged():
    loaded = load_params(ROOT / "params.yaml")
    assert loaded == REAL  # nothing added, dropped or changed for a valid file


def test_dvc_exp_run_style_edits_pass(tmp_path):
    # `dvc exp run -S model.latent=16` rewrites the file with block lists and empty nulls
    text = (ROOT / "params.yaml").read_text().replace("  latent: 32", "  latent: 16")
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml")["model"]["latent"] == 16
    assert load_params(tmp_path / "params.yaml")["icbhi"]["features"]["fmax"] is None


def test_schema_choices_match_the_code():
    # the seed ensemble is built by train from a study's seeds, never named in params
    assert {_tag(m) for m in MODEL_SCHEMAS} == set(MODULES) - {"seed_ensemble"}
    assert set(get_args(ScalerKind)) == set(Scaler.KINDS)
    assert set(get_args(Aggregate)) == set(AGGREGATES)
    assert set(get_args(AnomalyType)) == set(ANOMALIES)
    assert set(get_args(HLSSplit.model_fields["subset"].annotation)) == set(SUBSETS)
    assert set(get_args(MFCCFeatures.model_fields["normalise"].annotation)) == set(NORMALISATIONS)
    assert set(get_args(ICBHISplit.model_fields["scheme"].annotation)) == set(ICBHI_SCHEMES)
    assert set(get_args(SemiMethod)) == set(SEMI_METHODS)
    calibrations = {m for section in (ThresholdCalibrate, ClassifierCalibrate)
                    for m in get_args(section.model_fields["method"].annotation)}
    assert calibrations == set(CALIBRATION_METHODS)


def _with(dotted: str, value) -> dict:
    params = copy.deepcopy(REAL)
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return params


# (key set, value, text the one-line error must hold)
BAD = [
    ("model.latent", -1, "model.latent: Input should be greater than 0"),
    ("model.latent", "abc", "model.latent: Input should be a valid integer"),
    ("model.latent", 0, "model.latent: Input should be greater than 0"),
    ("model.latent", 2.5, "model.latent: Input should be a valid integer"),
    ("model.latent", "16", "model.latent: Input should be a valid integer"),  # quoted: strict
    ("model.name", "nope", "model.name: Input should be 'mlp_ae'"),
    ("split.fractions", [0.5, 0.3, 0.3], "split.fractions: train/val/test shares must sum to 1"),
    ("split.fractions", [0, 1, 0], "split.fractions[0]: Input should be greater than 0"),
    ("split.fractions", [0.5, 0.5], "split.fractions: List should have at least 3 items"),
    ("split.group_by", ["family"], "split.group_by: must include sha256"),
    ("train.epochs", 0, "train.epochs: Input should be greater than 0"),
    ("train.batch_size", 0, "train.batch_size: Input should be greater than 0"),
    ("train.lr", "fast", "train.lr: Input should be a valid number"),
    ("train.device", "tpu", "train.device: must be auto, cpu, cuda"),
    ("train.scaler", "robust", "train.scaler: Input should be 'minmax', 'standard' or 'none'"),
    ("evaluate.bootstrap", 0, "evaluate.bootstrap: Input should be greater than or equal to 10"),
    ("calibrate.method", "youden", "calibrate.method: Input should be 'percentile', 'gamma' or 'mean_std'"),
    ("calibrate.percentile", 101, "calibrate.percentile: Input should be less than or equal to 100"),
    ("features.n_mfcc", 80, "features: n_mfcc (80) must not exceed n_mels (40)"),
    ("features.sample_rate", None, "features.sample_rate: Input should be a valid integer"),
    ("train.epoch", 3, "train.epoch: unknown key (did you mean train.epochs?)"),
    ("calibrate.percentil", 90, "calibrate.percentil: unknown key (did you mean calibrate.percentile?)"),
    ("split.fraction", [1.0], "split.fraction: unknown key (did you mean split.fractions?)"),
    ("featurs", {}, "featurs: unknown key (did you mean features?)"),
    ("icbhi.cnn.train.task", "ternary", "icbhi.cnn.train.task: Input should be 'binary' or 'multiclass'"),
    ("icbhi.cnn.model.name", "nope", "icbhi.cnn.model.name: Input tag 'nope'"),
    ("icbhi.cnn.model.hiden", 8, "icbhi.cnn.model.hiden: unknown key (did you mean icbhi.cnn.model.hidden?)"),
    ("icbhi.crnn.model.channels", [0], "icbhi.crnn.model.channels[0]: Input should be greater than 0"),
    ("icbhi.features.fmax", 5000, "icbhi.features: need fmin < fmax <= 2000 Hz"),
    ("icbhi.features.min_cycle_s", 5.0, "icbhi.features: min_cycle_s (5) must be below cycle_s"),
    ("icbhi.split.val_fraction", 1.5, "icbhi.split.val_fraction: Input should be less than 1"),
    ("mnist.novelty.train.unseen_digit", 10,
     "mnist.novelty.train.unseen_digit: Input should be less than or equal to 9"),
    ("mnist.features.dtype", "float", "mnist.features.dtype: unknown key (this section takes no keys)"),
    ("icbhi.semi.label_fraction", [0.25, 1.5], "icbhi.semi.label_fraction[1]: Input should be less"),
    ("icbhi.semi.method", ["mixmatch"], "icbhi.semi.method[0]: Input should be 'supervised'"),
    ("icbhi.semi.settings.vatt", {}, "icbhi.semi.settings.vatt: unknown key (did you mean"),
    ("icbhi.semi.train.select", "first", "icbhi.semi.train.select: Input should be 'best' or 'last'"),
    ("icbhi.semi.settings", {"supervised": None}, "icbhi.semi: settings has no entry for method(s)"),
    ("sines.train.train_images", 10, "sines.train.train_images: unknown key"),
    ("sines.generate.anomaly_types", ["nope"], "sines.generate.anomaly_types[0]: Input should be"),
    ("sines.generate.amplitude_range", [2.0, 1.0], "amplitude_range: low must not exceed high"),
    # the index of datasets and studies: its names, and the sections it points at
    ("studies.holdout.sines_ae.dataset", "sinez",
     "studies.holdout.sines_ae.dataset: 'sinez' is not in the datasets index"),
    ("studies.cross_validated.hls_ae.objective", "regression",
     "studies.cross_validated.hls_ae.objective: Input should be 'reconstruction', 'anomaly_score' or "
     "'classification'"),
    ("studies.cross_validated.hls_ae.modle", "model",
     "studies.cross_validated.hls_ae.modle: unknown key "
     "(did you mean studies.cross_validated.hls_ae.model?)"),
    ("studies.holdout.sines_ae.evaluate", "sines.evaluation",
     "studies.holdout.sines_ae.evaluate: sines.evaluation is not in the file"),
    ("studies.cross_validated.hls_ae.train", "icbhi.features",
     "studies.cross_validated.hls_ae.train: icbhi.features holds no train settings"),
    ("studies.holdout.sines_ae.model", "sines.train",
     "studies.holdout.sines_ae.model: sines.train holds no model settings"),
    ("datasets.downloaded.icbhi.split", "icbhi.splt",
     "datasets.downloaded.icbhi.split: icbhi.splt is not in the file"),
    ("sines2", {"model": {"name": "conv1d_ae"}}, "sines2: unknown key (did you mean sines?)"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_values_and_misspelled_keys_are_one_clear_error(tmp_path, key, value, message):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(_with(key, value)))
    with pytest.raises(PipelineError) as caught:
        load_params(path)
    assert caught.value.path == path
    assert message in caught.value.cause


def test_a_section_the_index_adds_is_checked_as_the_role_it_plays(tmp_path):
    params = copy.deepcopy(REAL)
    params["studies"]["holdout"]["toy_ae"] = {**params["studies"]["holdout"]["sines_ae"],
                                               "model": "toy.model", "train": "toy.train"}
    params["toy"] = {"model": {"name": "conv1d_ae"}, "train": {"epochs": 2}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match="toy.train.batch_size: Field required"):
        load_params(path)


@pytest.mark.parametrize("key", ["train.epochs", "studies.holdout.sines_ae.calibrate"])
def test_a_missing_required_key_is_named(tmp_path, key):
    params = copy.deepcopy(REAL)
    *parents, last = key.split(".")
    section = params
    for part in parents:
        section = section[part]
    del section[last]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match=re.escape(f"{key}: required key missing")):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("text, message", [
    ("train: [1,\n", "not valid YAML at line 2"),
    ("- just\n- a list\n", "Input should be a valid dictionary"),
])
def test_unreadable_files_are_one_clear_error(tmp_path, text, message):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(PipelineError, match=message):
        load_params(tmp_path / "params.yaml")


def test_check_params_validates_without_running_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with("train.epoch", 3)))
    result = CliRunner().invoke(app, ["check-params"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: params.yaml: train.epoch: unknown key (did you mean train.epochs?)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(REAL))
    result = CliRunner().invoke(app, ["check-params"])
    assert result.exit_code == 0 and "params.yaml: valid" in result.output


@pytest.mark.parametrize("command", [["train", "nosuch"], ["predict", "--study", "nope", "x.wav"]])
def test_unknown_study_is_one_clear_error(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(REAL))
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1, result.output
    assert "unknown study 'no" in result.output and "Traceback" not in result.output


def test_keys_that_mean_nothing_under_the_scheme_are_not_required(tmp_path):
    """split.fractions are the holdout scheme's shares: kfold needs none, holdout does."""
    params = copy.deepcopy(REAL)
    del params["split"]["fractions"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert "fractions" not in load_params(path)["split"]
    params["split"].update(scheme="holdout", folds=[1])
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match="fractions .* are required by the holdout scheme"):
        load_params(path)
