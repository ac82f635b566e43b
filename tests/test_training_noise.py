"""Training noise: its band, and the report cell that shows it beside each headline figure."""

import json

import pytest

from pipeline.errors import PipelineError
from pipeline.stages import report
from pipeline.training_noise import TrainingNoise, read_noise_file, study_settings
from tests.project_params import project_params


def test_the_seed_sd_cell_names_the_runs_or_says_unmeasured():
    noise = TrainingNoise({"auroc": 0.01234, "sensitivity": 0.2}, runs=5)
    assert report.noise_cell(noise, "auroc") == "0.012 (5 runs)"
    assert report.noise_cell(noise, "mse") == "not measured"
    assert report.noise_cell(None, "auroc") == "not measured"
    assert "seed sd" in report.SUMMARY_HEADER


def test_the_band_is_read_from_the_committed_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert read_noise_file() == {}  # none committed: every cell says so
    (tmp_path / "reports").mkdir()
    band = {"hls_ae": {"runs": 5, "sd": {"auroc": 0.002}}}
    (tmp_path / "reports" / "seed_noise.json").write_text(json.dumps({"studies": band}))
    assert read_noise_file() == {"hls_ae": TrainingNoise({"auroc": 0.002}, 5)}


def test_a_band_is_two_runs_of_noise_at_students_t():
    """sd 0.01 over 5 runs: t(0.975, 4) = 2.776, times sqrt(2): 0.0393."""
    noise = TrainingNoise({"auroc": 0.01, "n": 0.0}, runs=5)
    assert noise.band("auroc") == pytest.approx(2.7764 * 0.01 * 2 ** 0.5, rel=1e-4)
    assert noise.band("n") == 0.0 and noise.band("mse") is None
    assert TrainingNoise({"auroc": 0.01}, runs=1).band("auroc") is None


def test_a_seed_spread_is_judged_by_its_figures_band():
    noise = TrainingNoise({"auroc": 0.01, "sensitivity": 0.02}, runs=5)
    assert noise.band("auroc_seed_sd") == noise.band("auroc_seed_mean") == noise.band("auroc")
    assert noise.band("sens_seed_sd") == noise.band("sensitivity")
    assert noise.band("spec_seed_sd") is None  # specificity was not measured


def test_a_studys_settings_are_every_key_its_figures_rest_on():
    params = project_params({})
    hls = study_settings(params, "hls_ae")
    assert hls["features.normalise"] == params["features"]["normalise"]
    assert hls["model.latent"] == params["model"]["latent"] and hls["split.seed"] == params["split"]["seed"]
    assert hls["hls_ae.objective"] == "reconstruction" and "icbhi.cnn.model.name" not in hls
    cell = study_settings(params, "icbhi_semi/vat/0.25")  # a grid cell: its grid's
    assert any(k.startswith("icbhi.semi.settings.vat.") for k in cell)
    assert any(k.startswith("icbhi.features.") for k in cell)


def test_a_band_says_which_settings_moved_since_its_runs():
    params = project_params({})
    band = TrainingNoise({"auroc": 0.01}, 5, study_settings(params, "hls_ae"))
    assert band.moved(study_settings(params, "hls_ae")) == []
    moved = study_settings(project_params({"model": {"latent": 16}}), "hls_ae")
    moved.pop("features.normalise")
    assert band.moved(moved) == ['features.normalise: "recording" -> (unset)', "model.latent: 32 -> 16"]
    assert TrainingNoise({"auroc": 0.01}, 5).moved(moved) == []  # no settings recorded: nothing to say
    assert (band + band).settings == band.settings
    assert (band + TrainingNoise({"auroc": 0.01}, 5, {"x": 1})).settings is None


def test_the_settings_of_a_band_are_read_with_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    path = tmp_path / "reports" / "seed_noise.json"
    band = {"runs": 5, "sd": {}, "settings": {"model.latent": 32}}
    path.write_text(json.dumps({"studies": {"hls_ae": band}}))
    assert read_noise_file()["hls_ae"].settings == {"model.latent": 32}
    path.write_text(json.dumps({"studies": {"hls_ae": {"runs": 5, "sd": {}, "settings": [32]}}}))
    with pytest.raises(PipelineError, match="studies.hls_ae.settings: a mapping of key -> value expected"):
        read_noise_file()
