"""ICBHI through the shared stages: features, patient-disjoint splits, calibration, evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.icbhi_fixture import PATIENTS, TRAIN_PATIENTS, make_icbhi_copy, recording_name
from tests.project_params import project_params

from pipeline.cli import app
from pipeline.datasets.icbhi.adapter import DATABASE_DIR, ICBHI, LABEL4
from pipeline.errors import PipelineError
from pipeline.features.cycles import CycleFeatures, cycle_log_mels
from pipeline.stages import download, evaluate, features, split, train
from pipeline.calibration import calibrate as calibrate_scores
from pipeline.objectives import Classification
from pipeline.datasets.icbhi.prepare import cycle_features, patient_split
from pipeline.splitting import audit, hold_out_groups

FEATURES = {"sample_rate": 4000, "cycle_s": 1.0, "pad_mode": "repeat", "min_cycle_s": 0.8,
            "n_mels": 16, "n_fft": 128, "hop_length": 64, "fmin": 50.0, "fmax": None,
            "backend": "librosa"}


# ---------------------------------------------------------------- features
def test_cycle_features_shape_order_and_min_length(tmp_path, caplog):
    folder = make_icbhi_copy(tmp_path)
    records = ICBHI().read_records(folder)
    cfg = CycleFeatures(**FEATURES)
    x, index = cycle_features(records, folder, cfg)
    short = records["duration"] < cfg.min_cycle_s  # the 0.7 s third cycles
    assert short.sum() == 10 and "dropped 10 of 30" in caplog.text
    assert x.shape == (20, 1, 16, 1 + 4000 // 64) == (20, 1, cfg.n_mels, cfg.frames)
    assert x.dtype == np.float32
    assert index["cycle_id"].tolist() == records.loc[~short, "cycle_id"].tolist()
    assert index["row"].tolist() == list(range(20))
    assert "file" not in index and "audio_path" not in index
    # row i of the array is the cycle named in row i of the index
    one = records[records["cycle_id"] == index["cycle_id"].iloc[7]]
    alone = cycle_log_mels(one, folder, target_sr=4000, cycle_s=1.0, pad_mode="repeat",
                           mel=cfg.mel)
    np.testing.assert_allclose(x[7], alone[0], atol=1e-5)


def test_cycle_features_rejects_bad_settings():
    with pytest.raises(ValueError, match="pad_mode"):
        CycleFeatures(**{**FEATURES, "pad_mode": "reflect"})
    with pytest.raises(ValueError, match="fmax"):
        CycleFeatures(**{**FEATURES, "fmax": 3000.0})


# ---------------------------------------------------------------- splits
def _index(n_patients: int = 30, seed: int = 0) -> pd.DataFrame:
    """A synthetic features index: 2-12 cycles per patient, classes mixed, sides by patient."""
    rng = np.random.default_rng(seed)
    rows = []
    for patient in range(n_patients):
        side = "test" if patient % 5 < 2 else "train"
        for cycle in range(int(rng.integers(2, 13))):
            label4 = LABEL4[int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.1]))]
            rows.append({"cycle_id": f"{patient}_x:{cycle}", "recording": f"{patient}_x",
                         "patient": patient, "device": "Meditron", "label4": label4,
                         "label_binary": int(label4 != "normal"), "sha256": f"h{patient}",
                         "official_split": side, "listed_split": side})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("scheme", ["official", "grouped"])
def test_patient_split_is_patient_disjoint_and_audited(scheme):
    index = _index()
    manifest = patient_split(index, scheme, val_fraction=0.1, seed=3, test_fraction=0.3)
    assert manifest["cycle_id"].tolist() == index["cycle_id"].tolist()
    report = audit(manifest, group_column="patient", class_column="label4")
    assert report["patient_overlap"] == 0 and report["sha256_overlap"] == 0
    assert all(report["groups"][s] >= 1 for s in ("train", "val", "test"))
    assert sum(c["total"] for c in report["counts"].values()) == len(index)
    assert sum(report["counts_by_class"]["val"].values()) == report["counts"]["val"]["total"]
    if scheme == "official":
        official_test = manifest["official_split"] == "test"
        assert (manifest.loc[official_test, "split"] == "test").all()
        assert (manifest.loc[~official_test, "split"] != "test").all()  # val from train patients
    else:
        assert 0.2 < (manifest["split"] == "test").mean() < 0.4


def test_patient_split_is_seeded():
    index = _index()
    first = patient_split(index, "grouped", 0.1, seed=1, test_fraction=0.3)
    again = patient_split(index, "grouped", 0.1, seed=1, test_fraction=0.3)
    other = patient_split(index, "grouped", 0.1, seed=2, test_fraction=0.3)
    assert first["split"].tolist() == again["split"].tolist()
    assert first["split"].tolist() != other["split"].tolist()


def test_hold_out_groups_matches_class_shares():
    index = _index(60)
    held = hold_out_groups(index, 0.25, seed=0)
    share = index[held].groupby("label4").size() / index.groupby("label4").size()
    assert share.between(0.15, 0.35).all()
    assert index.loc[held, "patient"].nunique() < index["patient"].nunique()


@pytest.mark.parametrize("scheme", ["official", "grouped"])
def test_audit_raises_on_an_injected_patient_leak(scheme):
    manifest = patient_split(_index(), scheme, val_fraction=0.1, seed=3, test_fraction=0.3)
    train_row = manifest.index[manifest["split"] == "train"][0]
    manifest.loc[train_row, "split"] = "test"
    with pytest.raises(PipelineError, match="leaks: 1 patient"):
        audit(manifest, group_column="patient", class_column="label4")


def test_patient_split_rejects_unknown_scheme_and_fractions():
    with pytest.raises(PipelineError, match="scheme"):
        patient_split(_index(), "random", 0.1, seed=0)
    with pytest.raises(PipelineError, match="fractions"):
        patient_split(_index(), "official", 1.5, seed=0)


# ---------------------------------------------------------------- calibration and evaluation
# Four classes: 0 normal, 1 crackle, 2 wheeze, 3 both (the hand-worked example of
# test_icbhi_metrics): Sp = 3/4, exact-class Se = 3/6, ICBHI score 0.625.
Y_TRUE_4 = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3]
Y_PRED_4 = [0, 0, 0, 3, 1, 2, 0, 2, 2, 1]


def _scores(y_true, probs) -> pd.DataFrame:
    probs = np.asarray(probs, dtype=float)
    frame = pd.DataFrame({"unit": [f"c{i}" for i in range(len(y_true))], "label": y_true,
                          "device": ["A"] * 5 + ["B"] * (len(y_true) - 5),
                          "label4": [LABEL4[y] for y in y_true]})
    for k in range(probs.shape[1]):
        frame[f"prob_{k}"] = probs[:, k]
    frame["score"] = 1.0 - probs[:, 0]
    return frame


def _one_hot_probs(predicted, n_classes, confidence=0.7):
    probs = np.full((len(predicted), n_classes), (1 - confidence) / (n_classes - 1))
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


def test_multiclass_calibration_is_argmax():
    result = calibrate_scores(_scores(Y_TRUE_4, _one_hot_probs(Y_PRED_4, 4)), {"method": "youden"})
    assert result["decision"] == "argmax" and result["threshold"] is None
    assert result["n_classes"] == 4


def test_four_class_evaluation_uses_exact_class_sensitivity():
    samples = _scores(Y_TRUE_4, _one_hot_probs(Y_PRED_4, 4))
    calibration = calibrate_scores(samples, {"method": "youden"})
    metrics, by_type = Classification().assess(
        samples, samples, calibration, {"bootstrap": 50, "seed": 0}, LABEL4, ("label4",)
    )
    test = metrics["test"]
    assert metrics["task"] == "multiclass" and metrics["decision"] == "argmax"
    assert (test["sensitivity"], test["specificity"], test["icbhi_score"]) == pytest.approx(
        (0.5, 0.75, 0.625))
    assert test["accuracy"] == pytest.approx(0.6)
    # per-class F1 = 2TP / (2TP + FP + FN): normal (tp 3, fp 1, fn 1) 0.75, crackle (1, 1, 2)
    # 0.4, wheeze (2, 1, 0) 0.8, both (0, 1, 1) 0
    assert test["f1_macro"] == pytest.approx((0.75 + 0.4 + 0.8 + 0) / 4)
    assert (test["n"], test["n_normal"], test["n_crackle"], test["n_wheeze"], test["n_both"]) == (
        10, 4, 3, 2, 1)
    assert "tp" not in test
    # abnormal flagged = predicted anything but normal: crackle 2 of 3, wheeze 2/2, both 1/1
    assert by_type["label4:crackle"] == {"n": 3, "detected": 2, "rate": pytest.approx(2 / 3)}
    assert by_type["label4:both"]["rate"] == 1.0


def test_binary_evaluation_thresholds_the_calibrated_score():
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    p_abnormal = np.array([0.1, 0.2, 0.6, 0.3, 0.7, 0.4, 0.9, 0.8])
    samples = _scores(y, np.column_stack([1 - p_abnormal, p_abnormal]))
    calibration = {"decision": "threshold", "threshold": 0.5, "aggregate": "mean"}
    metrics, _ = Classification().assess(samples, samples, calibration, {"bootstrap": 50, "seed": 0},
                                         ("normal", "abnormal"))
    test = metrics["test"]
    assert metrics["task"] == "binary"
    assert (test["tp"], test["fn"], test["tn"], test["fp"]) == (3, 1, 3, 1)
    assert (test["sensitivity"], test["specificity"], test["icbhi_score"]) == pytest.approx(
        (0.75, 0.75, 0.75))
    assert test["auroc"] == pytest.approx(15 / 16)  # one pair misordered: normal 0.6 > abnormal 0.4
    assert test["auroc_ci_low"] <= test["auroc"] <= test["auroc_ci_high"]
    assert test["sensitivity_ci_low"] <= test["sensitivity"] <= test["sensitivity_ci_high"]
    assert (test["f1"], test["pauc"] > 0.5) == (pytest.approx(0.75), True)


def test_binary_calibration_youden_on_probabilities():
    y = [0, 0, 0, 1, 1, 1]
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    result = calibrate_scores(_scores(y, np.column_stack([1 - p, p])), {"method": "youden"})
    assert result["decision"] == "threshold" and 0.3 <= result["threshold"] < 0.6


# ---------------------------------------------------------------- the stages end to end
FOLDS = {"kfold": [1, 2], "official": [1], "grouped": [1]}


def _project(tmp_path: Path, task: str, scheme: str, model: str) -> Path:
    make_icbhi_copy(tmp_path / "shared")
    project = tmp_path / "project"
    project.mkdir()
    train_cfg = {"device": "cpu", "scaler": "standard", "epochs": 2, "batch_size": 8,
                 "lr": 0.001, "patience": 2, "seeds": [0]}
    models = {"cnn": {"name": "simple_cnn", "hidden": 8},
              "crnn": {"name": "cnn_gru", "channels": [4, 8], "gru_hidden": 8}}
    params = project_params({
        "download": {"local_copy": str(tmp_path / "shared")},
        "icbhi": {
            "features": {**FEATURES, "min_cycle_s": 0.0},
            "split": {"scheme": scheme, "folds": FOLDS[scheme], "val_fraction": 0.2,
                      "test_fraction": 0.3, "stratify": "label4", "seed": 1},
            "cnn": {"model": models["cnn"], "train": {**train_cfg, "task": task, "seeds": [0]}},
            "crnn": {"model": models["crnn"], "train": {**train_cfg, "task": task, "seeds": [0]}},
            "calibrate": {"method": "youden", "value": 0.5, "aggregate": "mean"},
            "evaluate": {"bootstrap": 20, "seed": 0},
        },
    })
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return project


@pytest.mark.parametrize("task, scheme, model", [
    ("binary", "official", "cnn"), ("multiclass", "grouped", "crnn"), ("binary", "kfold", "cnn"),
])
def test_stages_end_to_end_on_the_fixture(tmp_path, monkeypatch, task, scheme, model):
    monkeypatch.chdir(_project(tmp_path, task, scheme, model))
    study = f"icbhi_{model}"
    download.command("icbhi")
    features.command("icbhi")
    split.command("icbhi")
    x = np.load("data/features/icbhi/cycles.npz")["x"]
    assert x.shape == (30, 1, 16, 63)
    manifest = pd.read_parquet("data/splits/icbhi.parquet")
    report = json.loads(Path("reports/audit/icbhi.json").read_text())
    folds = FOLDS[scheme]  # a holdout scheme is one fold
    assert report["scheme"] == scheme and report["folds"] == len(folds)
    assert report["tested_once"] == (scheme == "kfold")  # a holdout tests its test split only
    assert all(part["patient_overlap"] == 0 for part in report["by_partition"].values())
    assert report["download"]["recordings_present"] == 10
    assert set(manifest.loc[manifest["official"] != "test", "patient"]) == set(TRAIN_PATIENTS)
    if scheme == "official":
        assert (manifest["fold1"] == manifest["official"]).all()
    for fold in [*folds, None]:
        train.command(study, fold=fold)
    evaluate.command(study)
    metrics = json.loads(Path(f"metrics/{study}/details.json").read_text())
    n_classes = 2 if task == "binary" else 4
    tested = sum((manifest[f"fold{k}"] == "test").sum() for k in folds)
    assert metrics["task"] == task and metrics["test"]["n"] == tested
    for key in ("auroc", "sensitivity", "specificity", "icbhi_score", "accuracy", "f1_macro"):
        assert key in metrics["test"]
    confusion = pd.read_csv(f"metrics/{study}/confusion.csv")
    names = ("normal", "abnormal") if task == "binary" else LABEL4
    assert set(confusion["actual"]) <= set(names) and list(confusion.columns) == [
        "cycle", "actual", "predicted"]
    report = json.loads(Path(f"metrics/{study}/classification_report.json").read_text())
    assert set(names) <= set(report)
    by_device = json.loads(Path(f"metrics/{study}/by_group.json").read_text())
    assert set(by_device) <= {"Meditron", "Litt3200"}
    assert json.loads(Path(f"models/{study}/threshold.json").read_text())["decision"] == (
        "threshold" if task == "binary" else "argmax")
    assert Path(f"metrics/{study}/roc.json").is_file()
    scores = pd.read_csv(f"metrics/{study}/scores.csv")  # one row per cycle, grouped by patient
    assert len(scores) == metrics["test"]["n"] and scores["group"].notna().all()
    assert set(scores["predicted"]) <= set(range(n_classes))
    assert len(pd.read_parquet(f"data/scores/{study}/test.parquet").filter(like="prob_").columns) == (
        n_classes)
    assert set(pd.read_parquet("data/records/icbhi.parquet")["patient"]) == set(PATIENTS)
    _check_predict(study, names)


def _check_predict(study: str, names: tuple[str, ...]) -> None:
    """Annotated recordings are scored per cycle, bare ones per file."""
    source = Path("data/raw/icbhi") / DATABASE_DIR
    annotated, bare = Path("inputs/annotated"), Path("inputs/bare")
    for folder in (annotated, bare):
        folder.mkdir(parents=True)
    name = recording_name(PATIENTS[1])
    audio = next(source.glob(f"{name}.*[!t]"))  # .wav or .flac, not the .txt
    shutil.copyfile(audio, annotated / audio.name)
    shutil.copyfile(source / f"{name}.txt", annotated / f"{name}.txt")
    shutil.copyfile(audio, bare / audio.name)
    backwards = Path("inputs/backwards")  # the annotation's lines in reverse order
    backwards.mkdir()
    shutil.copyfile(audio, backwards / audio.name)
    lines = (source / f"{name}.txt").read_text().splitlines()
    (backwards / f"{name}.txt").write_text("\n".join(reversed(lines)) + "\n")
    result = CliRunner().invoke(app, ["predict", "--study", study, "--json",
                                      str(annotated / audio.name), str(bare / audio.name),
                                      str(backwards / audio.name)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    per_cycle = [r for r in rows if r["file"] == str(annotated / audio.name)]
    assert [r["unit"].rsplit("#", 1)[1] for r in per_cycle] == ["cycle0", "cycle1", "cycle2"]
    # featurised in start order, shown in the file's order: the same cycles, reversed
    reversed_rows = [r for r in rows if r["file"] == str(backwards / audio.name)]
    assert [r["unit"].rsplit("#", 1)[1] for r in reversed_rows] == ["cycle0", "cycle1", "cycle2"]
    assert [(r["start"], r["end"]) for r in reversed_rows] == [(r["start"], r["end"])
                                                              for r in per_cycle[::-1]]
    assert [r["score"] for r in reversed_rows] == pytest.approx([r["score"] for r in per_cycle[::-1]],
                                                                abs=1e-5)
    per_file = [r for r in rows if r["file"] == str(bare / audio.name)]
    assert len(per_file) == 1 and per_file[0]["unit"] == str(bare / audio.name)
    assert {r["decision"] for r in rows} <= set(names)
