"""The report's summary says how far each headline figure moves with the training seed."""

import json

from pipeline.stages import report


def test_the_seed_sd_cell_names_the_runs_or_says_unmeasured():
    band = {"runs": 5, "sd": {"auroc": 0.01234, "sensitivity": 0.2}}
    assert report.noise_cell(band, "auroc") == "0.012 (5 runs)"
    assert report.noise_cell(band, "mse") == "not measured"
    assert report.noise_cell(None, "auroc") == "not measured"


def test_the_band_is_read_from_the_committed_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert report.training_noise() == {}  # none committed: every cell says so
    (tmp_path / "reports").mkdir()
    band = {"hls_ae": {"runs": 5, "sd": {"auroc": 0.002}}}
    (tmp_path / "reports" / "seed_noise.json").write_text(json.dumps({"studies": band}))
    assert report.training_noise() == band
    assert "seed sd" in report.SUMMARY_HEADER
