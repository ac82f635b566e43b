"""Every HLS-CMDS stage through the CLI, on a generated copy: the outputs a user reads."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from tests.hls_fixture import make_hls_copy, tone, write_wav
from tests.project_params import project_params

PARAMS = {
    "features": {"backend": "librosa", "sample_rate": 4000, "window_s": 1.0, "hop_s": 0.5,
                 "n_mfcc": 13, "n_fft": 256, "hop_length": 64, "n_mels": 32, "pooling": "mean_std"},
    "split": {"subset": "all", "scheme": "kfold", "folds": [1, 2], "val_fraction": 0.3,
              "fractions": [0.7, 0.15, 0.15], "seed": 0},
    "model": {"name": "mlp_ae", "hidden": 16, "latent": 4},
    "train": {"device": "cpu", "scaler": "minmax", "epochs": 20, "batch_size": 8, "lr": 0.01,
              "patience": 5, "seeds": [0], "cross_fit": 2},
    "calibrate": {"method": "percentile", "percentile": 95, "k": 3, "aggregate": "mean"},
    "evaluate": {"bootstrap": 200, "seed": 0},
}

pytestmark = pytest.mark.slow  # trains models / runs every stage


def _write_params(folder, hls_copy):
    params = project_params({"download": {"local_copy": str(hls_copy)}, **PARAMS})
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


def _invoke(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def run_stages(project: Path, copy: Path, stages: tuple[str, ...] = ("report",)) -> Path:
    """A new project folder where every HLS-CMDS stage (and ``stages``) ran once on ``copy``."""
    project.mkdir()
    _write_params(project, copy)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        for stage in ("download", "features", "split"):
            _invoke(stage, "hls-cmds")
        for stage in ("train", "evaluate"):  # train: every fold, then the final model
            _invoke(stage, "hls_ae")
        for stage in stages:
            _invoke(stage)
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder where every HLS-CMDS stage has run once, on a generated copy."""
    root = tmp_path_factory.mktemp("hls")
    copy = root / "copy"
    make_hls_copy(copy)
    return run_stages(root / "project", copy)


def test_stage_outputs(project):
    metrics = json.loads((project / "metrics/hls_ae/details.json").read_text())
    for key in ("auroc", "pauc", "auprc", "sensitivity", "specificity", "f1", "accuracy",
                "mean_error_normal", "mean_error_abnormal", "separation", "auroc_ci_low",
                "auroc_ci_high", "n_normal", "n_abnormal"):
        assert key in metrics["test"], key
    assert "auroc" in metrics["test_windows"] and "threshold" in metrics
    # cross-validated: every recording is scored once, out of fold
    assert metrics["test"]["n_normal"] + metrics["test"]["n_abnormal"] == len(
        pd.read_parquet(project / "data/splits/hls-cmds.parquet"))
    assert metrics["test"]["specificity_target"] == 0.95 and metrics["cv"]["folds"] == 2
    for end in ("low", "high"):
        assert f"sensitivity_ci_{end}" in metrics["test"] and f"specificity_ci_{end}" in metrics["test"]
    folds = json.loads((project / "metrics/hls_ae/folds.json").read_text())
    assert set(folds) == {"1", "2"} and all(f["n_val_units"] > 0 for f in folds.values())
    roc = json.loads((project / "metrics/hls_ae/roc.json").read_text())["roc"]
    assert {"fpr", "tpr", "threshold"} <= set(roc[0])
    pr = json.loads((project / "metrics/hls_ae/pr.json").read_text())["pr"]
    assert {"recall", "precision", "threshold"} <= set(pr[0])
    confusion = pd.read_csv(project / "metrics/hls_ae/confusion.csv")
    assert set(confusion.columns) == {"recording", "actual", "predicted"}
    assert (project / "metrics/hls_ae/history.csv").is_file()
    for figure in ("score_histogram.png", "roc.png", "training_curves.png", "confusion.png"):
        assert (project / "reports/figures/hls_ae" / figure).stat().st_size > 1000
    scores = pd.read_csv(project / "metrics/hls_ae/scores.csv")
    assert len(scores) == metrics["test"]["n_normal"] + metrics["test"]["n_abnormal"]
    assert scores["group"].notna().all()  # recordings are resampled by split group
    audit = json.loads((project / "reports/audit/hls-cmds.json").read_text())
    assert audit["tested_once"] and all(
        part["group_overlap"] == part["sha256_overlap"] == 0 for part in audit["by_partition"].values())


def test_the_loader_gives_each_split_its_own_row_major_array(project, monkeypatch):
    """Row-major: a training batch is a block of rows (pandas hands over column-major);
    its own: the fit scales it in place."""
    from pipeline.params import load_params
    from pipeline.studies import get_study

    monkeypatch.chdir(project)
    params = load_params()
    data = get_study("hls_ae", fold=1, params=params).samples(["train", "val"], params)
    for part in data.values():
        assert part.x.flags["C_CONTIGUOUS"] and part.x.flags["OWNDATA"] and part.x.flags["WRITEABLE"]


def test_cross_fitted_thresholds_rest_on_the_whole_training_side_and_never_on_test(project):
    manifest = pd.read_parquet(project / "data/splits/hls-cmds.parquet")
    folds = json.loads((project / "metrics/hls_ae/folds.json").read_text())
    for k in PARAMS["split"]["folds"]:
        role = manifest.set_index("record")[f"fold{k}"]
        scores = pd.read_parquet(project / f"data/scores/hls_ae/folds/{k}/val.parquet")
        assert set(scores.loc[scores["inner_fold"] == 0, "unit"]) == set(role.index[role == "val"])
        scored = scores[scores["inner_fold"] > 0]
        # every train and validation recording of the fold, each by one inner model, blind to its group
        assert set(scored["unit"]) == set(role.index[role.isin(["train", "val"])])
        assert set(scored["inner_fold"]) == {1, 2}
        assert (scored.groupby("group")["inner_fold"].nunique() == 1).all()
        assert not set(scored["unit"]) & set(role.index[role == "test"])
        assert folds[str(k)]["n_val_units"] == scored["unit"].nunique()
    threshold = json.loads((project / "models/hls_ae/threshold.json").read_text())
    assert threshold["source"].startswith("cross-fitted") and threshold["n_val_units"] == (
        manifest["final"].isin(["train", "val"]).sum())


def test_more_inner_folds_than_training_groups_is_a_clear_error(project, tmp_path, monkeypatch):
    copy = tmp_path / "project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("raw"))
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["train"]["cross_fit"] = 40
    (copy / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(copy)
    result = CliRunner().invoke(app, ["train", "hls_ae", "--fold", "1"])
    assert result.exit_code == 1
    assert "train.cross_fit = 40" in result.output and "need at least 40 group" in result.output


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


def test_report_is_offline_and_lists_the_study(project):
    page = (project / "reports/index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing links or loads out
    assert "<script" not in page
    assert "hls_ae" in page and "data:image/png;base64," in page
    assert "hls_ae" in (project / "reports/summary.md").read_text()
    card = (project / "reports/model_cards/hls_ae.md").read_text()
    for heading in ("## Data", "## Split", "## Model", "## Calibrated threshold",
                    "## Test metrics", "## Known limitations"):
        assert heading in card


def test_the_report_is_the_same_on_any_branch(project, monkeypatch):
    """No hidden input: on a branch other than compare.baseline, with the baseline's scores
    in git, the report is still written from what its stage declares alone."""
    monkeypatch.chdir(project)
    before = {name: (project / "reports" / name).read_bytes() for name in ("index.html", "summary.md")}
    git = {"cwd": project, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q", "-b", "main"], **git)
    try:
        subprocess.run(["git", "add", "metrics"], **git)
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm",
                        "base"], **git)
        subprocess.run(["git", "checkout", "-qb", "feature"], **git)
        _invoke("report")
        assert {name: (project / "reports" / name).read_bytes() for name in before} == before
    finally:
        shutil.rmtree(project / ".git")  # the module's other tests use a plain folder


def test_predict_scores_good_files_and_names_bad_ones(project, monkeypatch):
    monkeypatch.chdir(project)
    inputs = project / "inputs"
    write_wav(inputs / "normal.wav", tone(100, abnormal=False))
    write_wav(inputs / "abnormal.wav", tone(101, abnormal=True))
    (inputs / "notes.wav").write_text("not audio")
    (inputs / "empty.wav").write_bytes(b"")
    sf.write(inputs / "stereo.wav", np.zeros((8000, 2), np.float32), 4000)
    write_wav(inputs / "short.wav", tone(102, abnormal=False)[:1000])  # 0.25 s < one window
    files = ["normal.wav", "abnormal.wav", "notes.wav", "empty.wav", "stereo.wav", "short.wav",
             "missing.wav"]
    result = CliRunner().invoke(app, ["predict", "--study", "hls_ae", "--json",
                                      *[str(inputs / f) for f in files]])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    scored = {Path(r["file"]).name: r for r in payload["results"]}
    assert set(scored) == {"normal.wav", "abnormal.wav"}
    threshold = json.loads((project / "models/hls_ae/threshold.json").read_text())["threshold"]
    for r in scored.values():
        assert r["decision"] == ("abnormal" if r["score"] > threshold else "normal")
    errors = {Path(e["file"]).name: e["error"] for e in payload["errors"]}
    assert set(errors) == {"notes.wav", "empty.wav", "stereo.wav", "short.wav", "missing.wav"}
    assert "channel" in errors["stereo.wav"] and "shorter" in errors["short.wav"]
    assert "not found" in errors["missing.wav"]


def test_predict_uses_the_training_features(project, monkeypatch):
    """Scoring a recording through predict gives the score training recorded for the final
    model (its validation recordings; the others were scored by inner models)."""
    monkeypatch.chdir(project)
    scores = pd.read_parquet(project / "data/scores/hls_ae/val.parquet").query("inner_fold == 0")
    record = scores["unit"].iloc[0]
    expected = scores.loc[scores["unit"] == record, "score"].mean()
    path = project / "data/raw/hls-cmds" / f"{record}.wav"
    result = _invoke("predict", "--study", "hls_ae", "--json", str(path))
    assert json.loads(result.stdout)["results"][0]["score"] == pytest.approx(expected, rel=1e-5)


def test_a_bad_recording_stops_features_without_partial_output(hls_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_params(tmp_path, hls_copy)
    _invoke("download", "hls-cmds")
    bad = tmp_path / "data/raw/hls-cmds/LS/F_N_RMA.wav"
    bad.chmod(0o644)  # DVC may have linked it read-only
    write_wav(bad, tone(3, False), sample_rate=8000)
    result = CliRunner().invoke(app, ["features", "hls-cmds"])
    assert result.exit_code == 1
    assert "F_N_RMA.wav" in result.output and "8000 Hz, expected 4000 Hz" in result.output
    assert not (tmp_path / "data/features").exists() or not any((tmp_path / "data/features").iterdir())
