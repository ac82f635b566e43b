"""Training noise: its band, and the report cell that shows it beside each headline figure."""

import json

import pytest

from pipeline.stages import report
from pipeline.training_noise import TrainingNoise, read_noise_file


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
