"""Seeds as an axis (train.seeds): members trained alone, their ensemble as the study's model,
and each headline figure's spread over the members."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from dvc.utils.hydra import apply_overrides
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import PipelineError
from pipeline.models import build
from pipeline.models.ensemble import SeedEnsemble
from pipeline.objectives import Classification, Reconstruction, combine_members
from pipeline.params import load_params
from pipeline.scalers import Scaler
from pipeline.training import load_checkpoint, predict_scores, save_checkpoint
from tests.hls_fixture import make_hls_copy
from tests.project_params import ROOT, project_params
from tests.test_hls_pipeline import PARAMS as HLS_PARAMS, _invoke, run_stages


# ---------------------------------------------------------------- combining members
def test_members_are_averaged_over_their_own_scales():
    a, b = np.array([1.0, 2.0, 4.0], np.float32), np.array([10.0, 10.0, 40.0], np.float32)
    np.testing.assert_allclose(combine_members([a, b], [2.0, 10.0]), [0.75, 1.0, 3.0])
    assert combine_members([a, b], [2.0, 10.0]).dtype == np.float32


def _table(scores, labels=(0, 0, 1), **extra) -> pd.DataFrame:
    return pd.DataFrame({"unit": ["a", "b", "c"], "label": list(labels), **extra, "score": scores})


def test_a_reconstruction_members_scale_is_its_median_normal_calibration_error():
    val = _table([1.0, 3.0, 100.0]).assign(inner_fold=[0, 1, 1])
    # the cross-fitted rows are what calibration reads: "b" alone is a normal one there
    assert Reconstruction().member_scale(val) == 3.0
    assert Reconstruction().member_scale(_table([1.0, 3.0, 100.0])) == 2.0


def test_reconstruction_ensemble_table_keeps_the_samples_and_averages_normalised_errors():
    objective = Reconstruction()
    tables = [_table(np.float32([1, 2, 8]), inner_fold=[0, 1, 2]),
              _table(np.float32([2, 2, 20]), inner_fold=[0, 1, 2])]
    out = objective.ensemble_table(tables, [1.0, 2.0])
    assert list(out["unit"]) == ["a", "b", "c"] and list(out["inner_fold"]) == [0, 1, 2]
    np.testing.assert_allclose(out["score"], [1.0, 1.5, 9.0])


def test_classifier_ensemble_averages_probabilities():
    objective = Classification()
    p = [np.float32([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), np.float32([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]])]
    tables = [objective.score_table(x, _table([0, 0, 0]).drop(columns="score")) for x in p]
    assert [objective.member_scale(t) for t in tables] == [1.0, 1.0]
    out = objective.ensemble_table(tables, [1.0, 1.0])
    np.testing.assert_allclose(out[["prob_0", "prob_1"]], (p[0] + p[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out["score"], 1 - (p[0][:, 0] + p[1][:, 0]) / 2, rtol=1e-6)


def test_members_of_other_samples_are_refused():
    other = _table([1.0, 2.0, 3.0]).assign(unit=["a", "c", "b"])
    with pytest.raises(ValueError, match="do not align"):
        Reconstruction().ensemble_table([_table([1.0, 2.0, 3.0]), other], [1.0, 1.0])


def test_an_ensemble_checkpoint_loads_and_scores_as_its_members_combined(tmp_path):
    kwargs = {"input_dim": 6, "hidden": 4, "latent": 2}
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        members.append(build("mlp_ae", **kwargs))
    ensemble = SeedEnsemble.of(members, "mlp_ae", kwargs, [0, 1], [0.5, 2.0])
    scaler = Scaler("none").fit(np.zeros((2, 6), np.float32)).state()
    save_checkpoint(tmp_path / "model.pt", "seed_ensemble", {"member": "mlp_ae", "member_kwargs": kwargs,
                                                              "seeds": [0, 1], "scales": [0.5, 2.0]},
                    ensemble, scaler=scaler, study="toy")
    loaded, header = load_checkpoint(tmp_path / "model.pt", "toy")
    assert isinstance(loaded, SeedEnsemble) and loaded.seeds == [0, 1]
    x = np.random.default_rng(0).random((5, 6), dtype=np.float32)
    objective, cpu = Reconstruction(), torch.device("cpu")
    alone = [predict_scores(m, objective, x, cpu) for m in members]
    np.testing.assert_array_equal(predict_scores(loaded, objective, x, cpu),
                                  combine_members(alone, [0.5, 2.0]))


# ---------------------------------------------------------------- the params
def _params_with(tmp_path: Path, *overrides: str) -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    apply_overrides(str(path), list(overrides))
    return path


def test_a_single_seed_run_as_the_readme_types_it(tmp_path):
    path = _params_with(tmp_path, "train.seeds=[0]")
    assert load_params(path)["train"]["seeds"] == [0]


@pytest.mark.parametrize("seeds, message", [([], "at least 1"), ([1, 1], "distinct"),
                                            ([-1], "greater than or equal to 0")])
def test_bad_seeds_name_the_key(tmp_path, seeds, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["seeds"] = seeds
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match=message) as caught:
        load_params(tmp_path / "params.yaml")
    assert "train.seeds" in str(caught.value)


# ---------------------------------------------------------------- a study of two seeds
SINES = {"generate": {"n_train": 24, "n_val": 8, "n_test": 24, "length": 200},
         "train": {"device": "cpu", "epochs": 2, "batch_size": 8, "patience": 2},
         "evaluate": {"bootstrap": 50}}


def _sines_project(root: Path, seeds: list[int]) -> Path:
    params = project_params({"sines": {**SINES, "train": {**SINES["train"], "seeds": seeds}}})
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for command in (("generate", "sines"), ("train", "sines_ae"), ("evaluate", "sines_ae")):
            _invoke(*command)
    return root


@pytest.fixture(scope="module")
def sines(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    return {"one": _sines_project(root / "one", [0]), "two": _sines_project(root / "two", [0, 3])}


def test_a_member_trains_as_it_would_alone(sines):
    alone = sines["one"] / "data/scores/sines_ae/val.parquet"
    member = sines["two"] / "data/scores/sines_ae/seeds/0/val.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(member), pd.read_parquet(alone))


def test_the_study_model_is_the_seed_ensemble(sines):
    model, header = load_checkpoint(sines["two"] / "models/sines_ae/model.pt", "sines_ae")
    assert isinstance(model, SeedEnsemble) and header["model_kwargs"]["seeds"] == [0, 3]
    members = [pd.read_parquet(sines["two"] / f"data/scores/sines_ae/seeds/{s}/val.parquet") for s in (0, 3)]
    ensemble = pd.read_parquet(sines["two"] / "data/scores/sines_ae/val.parquet")
    scales = header["model_kwargs"]["scales"]
    assert scales == [float(np.median(m["score"])) for m in members]  # every validation series is normal
    np.testing.assert_array_equal(ensemble["score"], combine_members([m["score"].to_numpy() for m in members],
                                                                     scales))
    history = pd.read_csv(sines["two"] / "metrics/sines_ae/history.csv")
    assert set(history["seed"]) == {0, 3}


def test_headline_figures_carry_their_seed_spread(sines):
    one = json.loads((sines["one"] / "metrics/sines_ae.json").read_text())["sines_ae"]
    two = json.loads((sines["two"] / "metrics/sines_ae.json").read_text())["sines_ae"]
    assert "seeds" not in one and "auroc_seed_sd" not in one
    assert two["seeds"] == 2
    spread = json.loads((sines["two"] / "metrics/sines_ae/details.json").read_text())["seed_spread"]
    assert spread["seeds"] == [0, 3] and set(spread["by_seed"]) == {"0", "3"}
    # the seed-0 member alone is the one-seed study
    assert spread["by_seed"]["0"]["auroc"] == pytest.approx(one["auroc"], abs=1e-6)
    assert spread["by_seed"]["0"]["sensitivity"] == pytest.approx(one["sensitivity"], abs=1e-6)
    aurocs = [spread["by_seed"][s]["auroc"] for s in ("0", "3")]
    assert two["auroc_seed_mean"] == pytest.approx(np.mean(aurocs), abs=1e-6)
    assert two["auroc_seed_sd"] == pytest.approx(np.std(aurocs, ddof=1), abs=1e-6)
    for name in ("sens", "spec"):
        assert f"{name}_seed_mean" in two and f"{name}_seed_sd" in two


def test_a_study_without_a_threshold_keeps_one_seed(sines, monkeypatch):
    monkeypatch.chdir(sines["two"])
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["mnist"]["train"]["seeds"] = [0, 1]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["train", "mnist_ae"])
    assert result.exit_code == 1
    assert "mnist.train.seeds" in result.output and "one seed" in result.output


@pytest.mark.slow  # trains every fold of two HLS-CMDS projects
def test_cross_validated_members_pool_alone_and_predict_uses_the_ensemble(tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    make_hls_copy(copy)
    one = run_stages(tmp_path / "one", copy, stages=())
    monkeypatch.setitem(HLS_PARAMS, "train", {**HLS_PARAMS["train"], "seeds": [0, 1]})
    two = run_stages(tmp_path / "two", copy, stages=())
    for k in HLS_PARAMS["split"]["folds"]:
        for split in ("val", "test"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(two / f"data/scores/hls_ae/folds/{k}/seeds/0/{split}.parquet"),
                pd.read_parquet(one / f"data/scores/hls_ae/folds/{k}/{split}.parquet"))
    spread = json.loads((two / "metrics/hls_ae/details.json").read_text())["seed_spread"]
    alone = json.loads((one / "metrics/hls_ae.json").read_text())["hls_ae"]
    assert spread["by_seed"]["0"]["auroc"] == pytest.approx(alone["auroc"], abs=1e-6)
    # predict scores a recording by the ensemble, as training recorded it for the final model
    monkeypatch.chdir(two)
    scores = pd.read_parquet("data/scores/hls_ae/val.parquet").query("inner_fold == 0")
    record = scores["unit"].iloc[0]
    result = _invoke("predict", "--study", "hls_ae", "--json", f"data/raw/hls-cmds/{record}.wav")
    assert json.loads(result.stdout)["results"][0]["score"] == pytest.approx(
        scores.loc[scores["unit"] == record, "score"].mean(), rel=1e-5)


def test_training_curves_of_several_seeds_list_each_seed_and_each_curve_once(tmp_path, monkeypatch):
    """A colour per seed and a line style per curve: 2 + 2 legend entries, not 2 x 2."""
    from pipeline import plots

    drawn = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.setdefault("fig", fig))
    history = pd.DataFrame({"epoch": [1, 2, 1, 2], "train_loss": [0.4, 0.3, 0.5, 0.2],
                            "val_loss": [0.45, 0.35, 0.5, 0.3], "seed": [42, 42, 1, 1]})
    plots.training_curves(history, tmp_path / "curves.png", "study")
    ax = drawn["fig"].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["seed 42", "seed 1", "train loss",
                                                                   "val loss"]
    drawn_lines = [line for line in ax.get_lines() if len(line.get_xdata())]
    assert len({line.get_color() for line in drawn_lines}) == 2  # one per seed
    assert len({line.get_linestyle() for line in drawn_lines}) == 2  # one per curve
