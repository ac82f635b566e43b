"""Every HLS-CMDS stage through the CLI, on a generated copy: the outputs a user reads."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from typer.testing import CliRunner

from pipeline.cli import app

PARAMS = {
    "features": {"backend": "librosa", "sample_rate": 4000, "window_s": 1.0, "hop_s": 0.5,
                 "n_mfcc": 13, "n_fft": 256, "hop_length": 64, "n_mels": 32, "pooling": "mean_std"},
    "split": {"subset": "all", "fractions": [0.7, 0.15, 0.15], "seed": 0},
    "model": {"name": "mlp_ae", "hidden": 16, "latent": 4},
    "train": {"device": "cpu", "scaler": "minmax", "epochs": 20, "batch_size": 8, "lr": 0.01,
              "patience": 5, "seed": 0},
    "calibrate": {"method": "percentile", "percentile": 95, "k": 3, "aggregate": "mean"},
    "evaluate": {"bootstrap": 200, "seed": 0},
}


def _write_params(folder, hls_copy):
    params = {"download": {"local_copy": str(hls_copy)}, **PARAMS}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


def _invoke(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_stages_end_to_end(hls_copy, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    _write_params(project, hls_copy)
    for stage in ("download", "features", "split"):
        _invoke(stage, "hls-cmds")
    for stage in ("train", "calibrate", "evaluate"):
        _invoke(stage, "hls_ae")

    metrics = json.loads((project / "metrics" / "hls_ae.json").read_text())
    for key in ("auroc", "pauc", "auprc", "sensitivity", "specificity", "f1", "accuracy",
                "mean_error_normal", "mean_error_abnormal", "separation", "auroc_ci_low",
                "auroc_ci_high", "n_normal", "n_abnormal"):
        assert key in metrics["test"], key
    assert "auroc" in metrics["test_windows"] and "threshold" in metrics
    assert metrics["test"]["n_normal"] + metrics["test"]["n_abnormal"] == len(
        pd.read_parquet(project / "data/splits/hls-cmds.parquet").query("split == 'test'")
    )
    roc = json.loads((project / "metrics/hls_ae/roc.json").read_text())["roc"]
    assert {"fpr", "tpr", "threshold"} <= set(roc[0])
    confusion = pd.read_csv(project / "metrics/hls_ae/confusion.csv")
    assert set(confusion.columns) == {"recording", "actual", "predicted"}
    assert (project / "metrics/hls_ae/history.csv").is_file()
    for figure in ("score_histogram.png", "roc.png", "training_curves.png"):
        assert (project / "reports/hls_ae" / figure).stat().st_size > 1000
    audit = json.loads((project / "reports/audit/hls-cmds.json").read_text())
    assert audit["group_overlap"] == 0


def test_a_bad_file_is_one_clear_error_line(hls_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_params(tmp_path, hls_copy)
    bad = hls_copy / "hls-cmds" / "HS" / "M_AF_A.wav"
    bad.write_bytes(bad.read_bytes()[:4000])
    result = CliRunner().invoke(app, ["download", "hls-cmds"])
    assert result.exit_code == 1
    assert "M_AF_A.wav" in result.output and "checksum mismatch" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "data" / "raw" / "hls-cmds").exists()
