"""The autoencoder studies (mnist_ae, mnist_novelty, sines_ae) through their stages, on
generated data: the MNIST adapter, its split, the study loaders, the sines generate stage,
the mnist_ae evaluation hook, and every stage through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.datasets import mnist
from pipeline.errors import PipelineError
from pipeline.params import load_params
from pipeline.evaluations import mnist_ae_report
from pipeline.models.conv_ae import ConvAutoencoder
from pipeline.datasets.mnist import mnist_split
from pipeline.studies import Samples, get_study
from tests.ae_fixture import make_mnist_copy
from tests.project_params import merged, project_params

TRAIN = {"device": "cpu", "scaler": "none", "train_images": 100, "val_images": None, "epochs": 2,
         "batch_size": 32, "lr": 0.002, "patience": 2, "seeds": [0]}
CALIBRATE = {"method": "percentile", "percentile": 95, "k": 3, "aggregate": "mean"}
PARAMS = {
    "mnist": {
        "features": {},
        "split": {"n_val": 40, "seed": 0},
        "model": {"name": "mnist_conv_ae", "latent": 2},
        "train": TRAIN,
        "evaluate": {"knn_k": 5, "knn_fit_codes": 50, "grid": 8, "seed": 0},
        "novelty": {
            "model": {"name": "mnist_conv_ae", "latent": 4},
            "train": {**TRAIN, "train_images": None, "val_images": 20, "unseen_digit": 3, "seeds": [0]},
            "calibrate": CALIBRATE,
            "evaluate": {"bootstrap": 50, "seed": 0},
        },
    },
    "sines": {
        "generate": {"n_train": 24, "n_val": 8, "n_test": 24, "anomaly_fraction": 0.5,
                     "anomaly_types": ["spikes", "flat_segment", "frequency_shift"],
                     "amplitude_range": [0.5, 1.5], "frequency_range": [2.0, 12.0],
                     "noise_std": 0.05, "length": 200, "seed": 0},
        "model": {"name": "conv1d_ae"},
        "train": {**{k: v for k, v in TRAIN.items() if not k.endswith("_images")}, "batch_size": 8,
                  "seeds": [0]},
        "calibrate": CALIBRATE,
        "evaluate": {"bootstrap": 50, "seed": 0},
    },
}


def _invoke(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def fake_archives(tmp_path, monkeypatch):
    """A generated copy under ``tmp_path/copy/mnist``, its md5s made the known ones."""
    archives = make_mnist_copy(tmp_path / "copy")
    for key, archive in archives.items():
        monkeypatch.setitem(mnist.ARCHIVES, key, archive)
    return tmp_path / "copy"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder where every stage of the three studies has run once."""
    root = tmp_path_factory.mktemp("ae")
    with pytest.MonkeyPatch.context() as mp:
        for key, archive in make_mnist_copy(root / "copy").items():
            mp.setitem(mnist.ARCHIVES, key, archive)
        project = root / "project"
        project.mkdir()
        params = project_params({"download": {"local_copy": str(root / "copy")}, **PARAMS})
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        mp.chdir(project)
        for stage in ("download", "features", "split"):
            _invoke(stage, "mnist")
        _invoke("generate", "sines")
        _invoke("train", "mnist_ae")
        _invoke("evaluate", "mnist_ae")
        for study in ("mnist_novelty", "sines_ae"):
            for stage in ("train", "evaluate"):
                _invoke(stage, study)
        _invoke("report")
    return project


# ---------------------------------------------------------------- MNIST adapter
def test_read_records_one_row_per_image(fake_archives):
    records = mnist.MNIST().read_records(fake_archives / "mnist")
    assert list(records.columns) == ["file", "set", "index", "label"]
    assert records["set"].value_counts().to_dict() == {"train": 200, "test": 60}
    train = records[records["set"] == "train"]
    assert (train["file"] == "train-images-idx3-ubyte.gz").all()
    np.testing.assert_array_equal(train["index"], np.arange(200))
    np.testing.assert_array_equal(train["label"], np.arange(200) % 10)
    assert (records.loc[records["set"] == "test", "file"] == "t10k-images-idx3-ubyte.gz").all()


def test_read_records_checks_md5(fake_archives, monkeypatch):
    monkeypatch.setitem(mnist.ARCHIVES, "test_labels",
                        mnist.Archive("t10k-labels-idx1-ubyte.gz", "0" * 32))
    with pytest.raises(PipelineError, match="md5"):
        mnist.MNIST().read_records(fake_archives / "mnist")


def test_official_sources_carry_the_published_md5s():
    sources = mnist.MNIST().sources
    assert [s.filename for s in sources] == [a.filename for a in mnist.ARCHIVES.values()]
    assert all(s.known_hash == f"md5:{a.md5}" for s, a in zip(sources, mnist.ARCHIVES.values(),
                                                              strict=True))


def test_download_verifies_copy_and_maps_sha256(project):
    records = pd.read_parquet(project / "data/records/mnist.parquet")
    assert len(records) == 260 and records["sha256"].str.len().eq(64).all()
    assert records.groupby("file")["sha256"].nunique().eq(1).all()
    with np.load(project / "data/features/mnist/images.npz") as arrays:
        assert arrays["train_images"].dtype == np.uint8
        assert arrays["train_images"].shape == (200, 28, 28)
        assert arrays["test_images"].shape == (60, 28, 28)
        np.testing.assert_array_equal(arrays["train_labels"], np.arange(200) % 10)


# ---------------------------------------------------------------- MNIST split
def _records(train_labels: np.ndarray, test_labels: np.ndarray) -> pd.DataFrame:
    return pd.concat([
        pd.DataFrame({"file": f"{s}.gz", "set": s, "index": np.arange(len(y)), "label": y})
        for s, y in (("train", train_labels), ("test", test_labels))
    ], ignore_index=True)


def test_mnist_split_sizes_and_stratification():
    train_labels = np.repeat(np.arange(10), [80 + 8 * d for d in range(10)])  # unequal classes
    records = _records(np.random.default_rng(0).permutation(train_labels), np.arange(50) % 10)
    manifest, report = mnist_split(records, n_val=len(train_labels) // 5, seed=1)
    counts = manifest["split"].value_counts().to_dict()
    assert counts == {"train": len(train_labels) * 4 // 5, "val": len(train_labels) // 5, "test": 50}
    assert (manifest.loc[manifest["set"] == "test", "split"] == "test").all()
    assert manifest["image"].is_unique and report["image_overlap"] == 0
    overall = np.bincount(train_labels) / len(train_labels)
    val = manifest.loc[manifest["split"] == "val", "digit"].to_numpy()
    np.testing.assert_allclose(np.bincount(val, minlength=10) / len(val), overall, atol=0.01)
    assert report["counts"]["val"]["total"] == len(val)
    assert sum(report["counts"]["train"][f"digit_{d}"] for d in range(10)) == counts["train"]
    again, _ = mnist_split(records.sample(frac=1, random_state=3), n_val=len(train_labels) // 5, seed=1)
    pd.testing.assert_frame_equal(again, manifest)
    other, _ = mnist_split(records, n_val=len(train_labels) // 5, seed=2)
    assert not other["split"].equals(manifest["split"])


def test_mnist_split_stage_writes_manifest_and_audit(project):
    manifest = pd.read_parquet(project / "data/splits/mnist.parquet")
    assert manifest["split"].value_counts().to_dict() == {"train": 160, "val": 40, "test": 60}
    audit = json.loads((project / "reports/audit/mnist.json").read_text())
    assert audit["counts"]["val"]["total"] == 40 and audit["image_overlap"] == 0
    assert audit["scheme"] == "stratified_holdout"


# ---------------------------------------------------------------- study loaders
def test_novelty_split_through_the_study_loader(project, monkeypatch):
    monkeypatch.chdir(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    data = get_study("mnist_novelty", params=params).samples(["train", "val", "test"], params)
    manifest = pd.read_parquet("data/splits/mnist.parquet")
    for split in ("train", "val"):
        assert 3 not in set(data[split].meta["digit"])
        assert (data[split].y == 0).all()
    assert len(data["train"].x) == int(((manifest["split"] == "train") & (manifest["digit"] != 3)).sum())
    assert len(data["val"].x) == 20  # capped by val_images, stratified over the seen digits
    test = data["test"]
    assert len(test.x) == 60
    np.testing.assert_array_equal(test.y, (test.meta["digit"] == 3).astype(int))
    np.testing.assert_array_equal(test.meta["label"], test.y)
    assert test.meta["unit"].is_unique
    assert test.x.dtype == np.float32 and test.x.shape == (60, 1, 28, 28)
    assert test.x.min() >= 0 and test.x.max() == 1.0
    unseen_10 = merged(params, {"mnist": {"novelty": {"train": {"unseen_digit": 10}}}})
    with pytest.raises(PipelineError, match="mnist.novelty.train.unseen_digit"):
        get_study("mnist_novelty", params=unseen_10).samples(["train"], unseen_10)


def test_mnist_ae_loader_scales_and_caps(project, monkeypatch):
    monkeypatch.chdir(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    data = get_study("mnist_ae", params=params).samples(["train", "val", "test"], params)
    assert [len(data[s].x) for s in ("train", "val", "test")] == [100, 40, 60]
    assert np.bincount(data["train"].y, minlength=10).tolist() == [10] * 10  # stratified cap
    with np.load("data/features/mnist/images.npz") as arrays:
        first = data["test"].meta["image"][0]
        np.testing.assert_allclose(data["test"].x[0, 0],
                                   arrays["test_images"][int(first.split("/")[1])] / 255)


# ---------------------------------------------------------------- sines generate stage
def test_generate_stage_output_layout(project, monkeypatch):
    with np.load(project / "data/features/sines/series.npz") as arrays:
        x = arrays["x"]
    assert x.dtype == np.float32 and x.shape == (56, 1, 200)
    settings = json.loads((project / "data/features/sines/settings.json").read_text())
    assert settings == PARAMS["sines"]["generate"]
    table = pd.read_parquet(project / "data/records/sines.parquet")
    assert list(table.columns) == ["series", "split", "label", "anomaly_type"]
    assert table["split"].value_counts().to_dict() == {"train": 24, "test": 24, "val": 8}
    assert (table.loc[table["split"] != "test", "label"] == 0).all()
    test = table[table["split"] == "test"]
    assert test["label"].sum() == 12
    assert set(test.loc[test["label"] == 1, "anomaly_type"]) == {"spikes", "flat_segment",
                                                                  "frequency_shift"}
    pd.testing.assert_frame_equal(pd.read_parquet(project / "data/splits/sines.parquet"), table)
    audit = json.loads((project / "reports/audit/sines.json").read_text())
    assert audit["counts"]["test"] == {"normal": 12, "abnormal": 12, "total": 24}
    assert audit["abnormal_by_type"]["test"] == {"flat_segment": 4, "frequency_shift": 4, "spikes": 4}
    monkeypatch.chdir(project)
    samples = get_study("sines_ae").samples(["val", "test"], load_params())
    assert samples["test"].x.shape == (24, 1, 200)
    assert set(samples["test"].meta.columns) >= {"unit", "label", "anomaly_type"}


def test_generate_rejects_bad_settings(tmp_path, monkeypatch):
    params = project_params({"sines": {"generate": {"anomaly_types": ["nope"]}}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["generate", "sines"])
    assert result.exit_code == 1 and "sines.generate" in result.output


# ---------------------------------------------------------------- mnist_ae evaluation hook
def _images(n: int, seed: int) -> Samples:
    rng = np.random.default_rng(seed)
    digits = np.arange(n) % 10
    x = rng.random((n, 1, 28, 28)).astype(np.float32)
    meta = pd.DataFrame({"digit": digits, "unit": np.arange(n)})
    return Samples(x=x, y=digits, meta=meta)


@pytest.mark.parametrize("latent", [2, 3])
def test_mnist_ae_report_on_a_tiny_model(tmp_path, latent):
    torch.manual_seed(0)
    cfg = {"knn_k": 5, "knn_fit_codes": 30, "grid": 6, "seed": 0}
    metrics, errors = mnist_ae_report(ConvAutoencoder(latent=latent), _images(50, 0),
                                      _images(20, 1), cfg, tmp_path, torch.device("cpu"))
    test = metrics["test"]
    assert errors.shape == (20,) and np.isclose(errors.mean(), test["mse"])
    assert metrics["latent"] == latent and test["n"] == 20
    assert 0 <= test["latent_knn_accuracy"] <= 1
    assert test["latent_knn_fit_codes"] == 30 and test["latent_knn_fit_subsampled"]
    assert test["mse"] > 0 and test["bce"] > 0
    assert sorted(test["mse_by_digit"]) == [str(d) for d in range(10)]
    assert np.isclose(np.mean(list(test["mse_by_digit"].values())), test["mse"])  # equal counts
    for figure in ("latent_space.png", "reconstructions.png"):
        assert (tmp_path / figure).stat().st_size > 1000


def test_mnist_ae_report_encodes_the_test_images_once(tmp_path):
    torch.manual_seed(0)
    model, test = ConvAutoencoder(latent=2), _images(20, 1)
    seen = []
    model.encoder.register_forward_hook(lambda _m, inputs, _out: seen.append(len(inputs[0])))
    cfg = {"knn_k": 5, "knn_fit_codes": 30, "grid": 6, "seed": 0}
    metrics, _ = mnist_ae_report(model, _images(50, 0), test, cfg, tmp_path, torch.device("cpu"))
    assert sum(seen) == 20 + 30  # the test images once, then the codes fitted for 5-NN
    with torch.no_grad():  # the same numbers as a full forward pass
        mse = (model(torch.from_numpy(test.x)) - torch.from_numpy(test.x)).pow(2).mean().item()
    assert metrics["test"]["mse"] == pytest.approx(mse, rel=1e-6)


# ---------------------------------------------------------------- stage outputs
def test_mnist_ae_stage_outputs(project):
    metrics = json.loads((project / "metrics/mnist_ae/details.json").read_text())
    assert {"mse", "bce", "mse_by_digit", "latent_knn_accuracy"} <= set(metrics["test"])
    assert metrics["latent"] == 2 and metrics["n_train_images"] == 100
    assert metrics["data"]["train"]["units"] == 100
    headline = json.loads((project / "metrics/mnist_ae.json").read_text())["mnist_ae"]
    assert headline["mse"] == metrics["test"]["mse"] and headline["latent"] == 2
    scores = pd.read_csv(project / "metrics/mnist_ae/scores.csv")
    assert len(scores) == metrics["test"]["n"] and scores["label"].isna().all()
    assert np.isclose(scores["score"].mean(), metrics["test"]["mse"], rtol=1e-4)
    assert not (project / "models/mnist_ae/threshold.json").exists()
    for figure in ("latent_space.png", "reconstructions.png", "training_curves.png"):
        assert (project / "reports/figures/mnist_ae" / figure).stat().st_size > 1000


@pytest.mark.parametrize("study", ["mnist_novelty", "sines_ae"])
def test_thresholded_stage_outputs(project, study):
    metrics = json.loads((project / f"metrics/{study}/details.json").read_text())
    for key in ("auroc", "pauc", "sensitivity", "specificity", "f1", "n_normal", "n_abnormal"):
        assert key in metrics["test"], key
    assert "threshold" in metrics
    headline = json.loads((project / f"metrics/{study}.json").read_text())
    assert list(headline) == [study] and 6 <= len(headline[study]) <= 10
    assert headline[study]["auroc"] == metrics["test"]["auroc"]
    scores = pd.read_csv(project / f"metrics/{study}/scores.csv")
    assert len(scores) == metrics["test"]["n_normal"] + metrics["test"]["n_abnormal"]
    assert scores["unit"].is_unique and set(scores["label"]) <= {0, 1}
    for figure in ("examples.png", "score_histogram.png", "roc.png", "training_curves.png",
                   "confusion.png"):
        assert (project / f"reports/figures/{study}" / figure).stat().st_size > 1000


def test_sines_detection_by_type(project):
    by_type = json.loads((project / "metrics/sines_ae/detection_by_type.json").read_text())
    assert set(by_type) == {f"anomaly_type:{t}" for t in ("spikes", "flat_segment", "frequency_shift")}
    assert all(v["n"] == 4 and 0 <= v["rate"] <= 1 for v in by_type.values())


def test_novelty_counts_the_unseen_digit_as_abnormal(project):
    metrics = json.loads((project / "metrics/mnist_novelty/details.json").read_text())
    test = pd.read_parquet(project / "data/splits/mnist.parquet").query("split == 'test'")
    # the study's own training data holds no image of the unseen digit (only normal labels)
    assert set(metrics["data"]["train"]) == {"units", "samples", "label_0"}
    assert metrics["test"]["n_abnormal"] == int((test["digit"] == 3).sum())
    assert metrics["test"]["n_normal"] == int((test["digit"] != 3).sum())


def test_report_lists_the_new_studies(project):
    summary = (project / "reports/summary.md").read_text()
    for study in ("mnist_ae", "mnist_novelty", "sines_ae"):
        assert f"**{study}**" in summary
        assert (project / f"reports/model_cards/{study}.md").is_file()
    assert "| latent_knn_accuracy |" in summary
    assert summary.index("| study | headline metric |") < summary.index("**mnist_ae**")
    sines_card = (project / "reports/model_cards/sines_ae.md").read_text()
    assert "generated by `pipeline generate sines`" in sines_card
    assert "## Known limitations" in sines_card
    assert "yann.lecun.com" in (project / "reports/model_cards/mnist_ae.md").read_text()
    assert Path(project / "reports/index.html").stat().st_size > 10_000


def test_report_leads_with_the_summary_and_shows_each_audit_once(project):
    page = (project / "reports/index.html").read_text()
    assert page.index("<th>headline metric</th>") < page.index("<section")
    assert page.count("Dataset: mnist") == 1 and page.count("Split audit and dataset params") == 2
    sines = page[page.index("id='sines_ae'"):]
    assert sines.index('alt="roc"') < sines.index('alt="score_histogram"') < sines.index(
        'alt="confusion"') < sines.index('alt="training_curves"') < sines.index('alt="examples"')
    assert "seriess" not in page and "<script" not in page
    assert "<details>" in page
