"""`pipeline compare`: paired bootstrap intervals, verdicts, DeLong, and reading through git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from pipeline import compare
from pipeline.training_noise import TrainingNoise, study_settings
from pipeline.unit_scores import write_unit_scores
from pipeline.cli import app
from tests.project_params import project_params

CFG = {"bootstrap": 1000, "seed": 7, "level": 0.95}


def _frame(labels, scores, predicted=None, groups=None) -> pd.DataFrame:
    n = len(scores)
    return pd.DataFrame({
        "unit": [f"u{i:04d}" for i in range(n)],
        "group": pd.NA if groups is None else [str(g) for g in groups],
        "label": labels, "predicted": predicted if predicted is not None else pd.NA,
        "score": np.asarray(scores, float),
    })


def _rows(result: dict) -> dict[str, dict]:
    return {r["metric"]: r for r in result["rows"]}


# ---------------------------------------------------------------- DeLong
def _delong_by_definition(labels, score_a, score_b) -> tuple[float, float]:
    """DeLong et al. (1988) as written: placement values from every abnormal-normal pair
    (psi = 1 above, 1/2 tied, 0 below), their covariances, z of B - A. O(m n)."""
    labels = np.asarray(labels) != 0
    v10, v01, aucs = [], [], []
    for s in (np.asarray(score_a, float), np.asarray(score_b, float)):
        x, y = s[labels], s[~labels]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    m, n = labels.sum(), (~labels).sum()
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    var = s10[0, 0] / m + s01[0, 0] / n + s10[1, 1] / m + s01[1, 1] / n - 2 * (
        s10[0, 1] / m + s01[0, 1] / n)
    return aucs[1] - aucs[0], (aucs[1] - aucs[0]) / np.sqrt(var)


def test_delong_matches_the_definition_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 150)
    score_a = np.round(rng.normal(labels * 0.6, 1.0), 1)  # rounded: many tied scores
    score_b = np.round(score_a + rng.normal(labels * 0.5, 0.7), 1)
    result = compare.delong_test(labels, score_a, score_b)
    delta, z = _delong_by_definition(labels, score_a, score_b)
    assert result["auroc_a"] == pytest.approx(roc_auc_score(labels, score_a))
    assert result["auroc_b"] == pytest.approx(roc_auc_score(labels, score_b))
    assert result["auroc_b"] - result["auroc_a"] == pytest.approx(delta)
    assert result["z"] == pytest.approx(z, rel=1e-9)
    assert result["p"] == pytest.approx(2 * norm.sf(abs(z)))


def test_delong_of_identical_scores_is_no_difference():
    labels, scores = np.array([0, 0, 1, 1, 0, 1]), np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    assert compare.delong_test(labels, scores, scores) == {
        "auroc_a": pytest.approx(8 / 9), "auroc_b": pytest.approx(8 / 9), "z": 0.0, "p": 1.0}


# ---------------------------------------------------------------- paired bootstrap
def test_identical_sides_change_nothing():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200)
    a = _frame(labels, rng.normal(labels, 1.0), predicted=labels)
    rows = _rows(compare.compare_study("s", a, a.copy(), CFG))
    for row in rows.values():
        assert row["change"] == 0 and row["low"] == 0 and row["high"] == 0
        assert row["verdict"] == "no evidence"
    assert rows["auroc"]["delong_p"] == 1.0


def test_a_clearly_better_model_is_better_and_the_reverse_worse():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    weak = _frame(labels, rng.normal(labels * 0.2, 1.0), predicted=rng.integers(0, 2, 300))
    strong = _frame(labels, rng.normal(labels * 3.0, 1.0), predicted=labels)
    forward = compare.compare_study("s", weak, strong, CFG)
    assert forward["paired"] and "300 shared units" in forward["note"]
    for metric, row in _rows(forward).items():
        assert row["verdict"] == "better", metric
        assert row["low"] <= row["change"] <= row["high"]
    assert _rows(forward)["auroc"]["delong_p"] < 1e-6
    assert all(r["verdict"] == "worse" for r in compare.compare_study("s", strong, weak, CFG)["rows"])


def test_mean_error_interval_matches_the_normal_approximation():
    """Unlabelled scores (mnist_ae): mean error, lower is better. B = A + 0.1 +- 0.05 per
    unit, so the change's interval is 0.1 +- 1.96 * 0.05 / sqrt(400), and B is worse."""
    rng = np.random.default_rng(4)
    base = rng.uniform(0.02, 0.08, 400)
    delta = 0.1 + 0.05 * rng.standard_normal(400)
    a, b = _frame([np.nan] * 400, base), _frame([np.nan] * 400, base + delta)
    row = _rows(compare.compare_study("s", a, b, {**CFG, "bootstrap": 4000}))["mean_score"]
    half = 1.96 * delta.std(ddof=1) / np.sqrt(400)
    assert row["change"] == pytest.approx(delta.mean())
    assert row["low"] == pytest.approx(delta.mean() - half, abs=0.15 * half)
    assert row["high"] == pytest.approx(delta.mean() + half, abs=0.15 * half)
    assert row["verdict"] == "worse"


def test_groups_are_resampled_whole():
    """Ten identical copies of each of 40 units: resampling units would pretend there are
    400 independent ones; resampling groups gives the 40-unit interval, about sqrt(10) wider."""
    rng = np.random.default_rng(5)
    base, delta = rng.uniform(0, 1, 40), rng.normal(0.05, 0.1, 40)
    copies = np.repeat(np.arange(40), 10)
    a = _frame([np.nan] * 400, base[copies], groups=copies)
    b = _frame([np.nan] * 400, (base + delta)[copies], groups=copies)
    grouped = _rows(compare.compare_study("s", a, b, CFG))["mean_score"]
    alone = _rows(compare.compare_study("s", a.assign(group=pd.NA), b.assign(group=pd.NA),
                                        CFG))["mean_score"]
    ratio = (grouped["high"] - grouped["low"]) / (alone["high"] - alone["low"])
    assert 2.6 < ratio < 3.8


def test_the_bootstrap_is_seeded():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, 100)
    a, b = _frame(labels, rng.normal(size=100), labels), _frame(labels, rng.normal(size=100), labels)
    assert compare.compare_study("s", a, b, CFG) == compare.compare_study("s", a, b, CFG)
    other = compare.compare_study("s", a, b, {**CFG, "seed": 8})
    assert _rows(other)["auroc"]["low"] != _rows(compare.compare_study("s", a, b, CFG))["auroc"]["low"]


def test_different_units_compare_marginal_figures_only():
    labels = np.array([0, 1] * 20)
    a = _frame(labels, np.linspace(0, 1, 40), labels)
    b = _frame(labels[:30], np.linspace(0, 1, 30), labels[:30])
    result = compare.compare_study("s", a, b, CFG)
    assert not result["paired"] and "units differ (A: 40, B: 30" in result["note"]
    for row in result["rows"]:
        assert row["verdict"] == "units differ" and np.isnan(row["low"]) and "delong_p" not in row


def test_multiclass_sensitivity_needs_the_exact_class():
    labels = np.array([0, 0, 1, 2, 3, 3])
    frame = _frame(labels, [0.1, 0.2, 0.9, 0.8, 0.7, 0.6], predicted=[0, 1, 1, 3, 3, 0])
    assert compare.point(compare.LABELLED[1], frame) == pytest.approx(2 / 4)  # 1 and one 3
    assert compare.point(compare.LABELLED[2], frame) == pytest.approx(1 / 2)


# ---------------------------------------------------------------- training noise
def _two_seeds_apart():
    """B is A's scores nudged up for the abnormal units: a small, consistent AUROC gain
    that the paired bootstrap alone calls better."""
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, 400)
    base = rng.normal(labels * 1.0, 1.0)
    return (_frame(labels, base, predicted=(base > 0.5).astype(int)),
            _frame(labels, base + 0.15 * labels, predicted=(base + 0.15 * labels > 0.5).astype(int)))


def test_training_noise_of_a_difference_adds_both_runs():
    one = TrainingNoise({"auroc": 0.03, "sensitivity": 0.04}, runs=5)
    other = TrainingNoise({"auroc": 0.04}, runs=3)
    both = one + other
    assert both.sd == {"auroc": pytest.approx(0.05)} and both.runs == 3
    assert (one + one).sd["sensitivity"] == pytest.approx(0.04 * np.sqrt(2))


def test_a_change_within_training_noise_is_no_evidence():
    a, b = _two_seeds_apart()
    alone = _rows(compare.compare_study("s", a, b, CFG))
    assert alone["auroc"]["verdict"] == "better"  # test sampling alone: a verdict
    noisy = compare.compare_study("s", a, b, CFG, TrainingNoise({"auroc": 0.03}, runs=5))
    row = _rows(noisy)["auroc"]
    assert row["verdict"] == "no evidence" and row["noise_sd"] == 0.03
    assert row["low"] < alone["auroc"]["low"] and row["high"] > alone["auroc"]["high"]
    assert "each run's sd over 5 noise-only runs" in noisy["note"]
    assert "none measured for sensitivity, specificity, balanced_accuracy" in noisy["note"]
    # unmeasured metrics keep the bootstrap's own interval
    assert _rows(noisy)["specificity"]["low"] == alone["specificity"]["low"]


def test_a_change_beyond_training_noise_keeps_its_verdict():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    weak = _frame(labels, rng.normal(labels * 0.2, 1.0), predicted=rng.integers(0, 2, 300))
    strong = _frame(labels, rng.normal(labels * 3.0, 1.0), predicted=labels)
    noise = TrainingNoise({"auroc": 0.02, "sensitivity": 0.03, "specificity": 0.03,
                                   "balanced_accuracy": 0.02}, runs=4)
    assert all(r["verdict"] == "worse" for r in compare.compare_study("s", strong, weak, CFG, noise)["rows"])


def test_few_noise_runs_widen_the_interval():
    """The same sd measured over 3 runs rather than 30: Student's t with 2 degrees of
    freedom, a wider interval than with 29."""
    a, b = _two_seeds_apart()
    width = {}
    for runs in (3, 30):
        noise = TrainingNoise({"auroc": 0.02}, runs)
        row = _rows(compare.compare_study("s", a, b, CFG, noise))["auroc"]
        width[runs] = row["high"] - row["low"]
    assert width[3] > 1.3 * width[30]


# ---------------------------------------------------------------- through git
def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A git repository: main holds a weak sines_ae, the workspace a strong one, and a DVC
    experiment ref (refs/exps/...) holds the weak one again."""
    _git("init", "-q", "-b", "main", cwd=tmp_path)
    _git("config", "user.email", "t@example.org", cwd=tmp_path)
    _git("config", "user.name", "t", cwd=tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(project_params(
        {"compare": {"baseline": "main", "bootstrap": 500, "seed": 42, "level": 0.95}})))
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 2, 200)
    monkeypatch.chdir(tmp_path)
    write_unit_scores("sines_ae", _frame(labels, rng.normal(labels * 0.1, 1), labels))
    _git("add", "-A", cwd=tmp_path)
    _git("commit", "-qm", "weak", cwd=tmp_path)
    head = _git("rev-parse", "HEAD", cwd=tmp_path)
    _git("update-ref", f"refs/exps/{head[:2]}/{head[2:]}/weak-exp", head, cwd=tmp_path)
    write_unit_scores("sines_ae", _frame(labels, rng.normal(labels * 3, 1), labels))
    return tmp_path


def test_compare_cli_reads_both_sides_through_git(repo):
    result = CliRunner().invoke(app, ["compare"])  # main against the workspace
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("sines_ae") and "auroc" in x)
    assert line.split()[-2:][0] == "better"
    assert "no metrics/hls_ae/scores.csv in main and workspace" in result.output
    md = CliRunner().invoke(app, ["compare", "main", "workspace", "--md"]).output
    assert "| study | metric | A | B | change | noise sd | 95% interval | verdict | DeLong p |" in md
    assert "training noise not measured for this study (no reports/seed_noise.json at main or " \
        "workspace)" in md
    as_json = json.loads(CliRunner().invoke(app, ["compare", "weak-exp", "main", "--json"]).output)
    sines = next(s for s in as_json["studies"] if s["study"] == "sines_ae")
    assert sines["paired"] and all(r["change"] == 0 for r in sines["rows"])  # same commit


def test_compare_baseline_is_the_default_a(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["compare"]["baseline"] = "weak-exp"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["compare", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["a"] == "weak-exp"


def test_compare_html_is_offline_with_roc_overlays(repo):
    result = CliRunner().invoke(app, ["compare", "--html", "diff.html"])
    assert result.exit_code == 0, result.output
    page = (repo / "diff.html").read_text()
    assert "data:image/png;base64," in page and "<script" not in page
    assert "http://" not in page and "https://" not in page


def test_an_unknown_revision_is_one_clear_error(repo):
    result = CliRunner().invoke(app, ["compare", "no-such-branch"])
    assert result.exit_code == 1
    assert "no git revision or DVC experiment named 'no-such-branch'" in result.output
    assert "Traceback" not in result.output


def test_between_compares_two_studies_of_one_revision_unit_by_unit(repo):
    # the workspace's strong sines_ae against main's weak one, written as another study
    weak = compare.read_scores("main", "sines_ae")
    write_unit_scores("mnist_novelty", weak)
    result = CliRunner().invoke(app, ["compare", "--between", "mnist_novelty,sines_ae", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["a"] == "mnist_novelty at workspace"
    (only,) = found["studies"]
    assert only["study"] == "sines_ae - mnist_novelty" and only["paired"]
    assert _rows(only)["auroc"]["verdict"] == "better"
    for wrong, message in (("sines_ae", "two studies of the index"), ("sines_ae,nope", "nope unknown"),
                           ("sines_ae,hls_ae", "no scores of hls_ae in workspace")):
        failed = CliRunner().invoke(app, ["compare", "--between", wrong])
        assert failed.exit_code == 1 and message in failed.output, failed.output


def _commit_noise(repo: Path, studies: dict) -> None:
    path = repo / "reports" / "seed_noise.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"studies": studies}))
    _git("add", "reports", cwd=repo)  # the band alone: the workspace's scores stay B
    _git("commit", "-qm", "band", cwd=repo)


def test_compare_reads_the_committed_training_noise(repo):
    _commit_noise(repo, {"sines_ae": {"runs": 5, "sd": {"auroc": 0.01, "sensitivity": 0.02}}})
    rows = json.loads(CliRunner().invoke(app, ["compare", "main", "workspace", "--json"]).output)
    sines = next(s for s in rows["studies"] if s["study"] == "sines_ae")
    assert "each run's sd over 5 noise-only runs (reports/seed_noise.json at workspace)" in sines["note"]
    assert sines["noise"]["runs"] == 5 and sines["noise"]["source"] == "reports/seed_noise.json at workspace"
    by_metric = {r["metric"]: r for r in sines["rows"]}
    assert by_metric["auroc"]["noise_sd"] == pytest.approx(0.01 * np.sqrt(2))  # one run a side
    assert by_metric["specificity"]["noise_sd"] is None
    assert by_metric["auroc"]["verdict"] == "better"  # weak against strong: far beyond the noise


@pytest.mark.parametrize("entry, says", [
    ({"sd": {"auroc": 0.01}}, "studies.sines_ae.runs: a whole number >= 2 expected, got None"),
    ({"runs": 1, "sd": {"auroc": 0.01}}, "studies.sines_ae.runs: a whole number >= 2 expected, got 1"),
    ({"runs": True, "sd": {"auroc": 0.01}}, "studies.sines_ae.runs: a whole number >= 2 expected, got True"),
    ({"runs": 5, "sd": {"auroc": -0.01}}, "studies.sines_ae.sd.auroc: a finite number >= 0 expected"),
    ({"runs": 5, "sd": {"auroc": float("nan")}}, "studies.sines_ae.sd.auroc: a finite number >= 0"),
    ({"runs": 5, "sd": [0.01]}, "studies.sines_ae.sd: a mapping of figure -> sd expected"),
])
def test_a_malformed_noise_file_is_one_error_naming_the_key(repo, entry, says):
    _commit_noise(repo, {"sines_ae": entry})
    result = CliRunner().invoke(app, ["compare"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"reports/seed_noise.json: {says}" in result.output and "(the file at workspace;" in result.output


def test_an_empty_band_in_b_is_used_not_skipped_for_a(repo):
    """B's file decides even when it measures nothing; A's is read only where B has none."""
    _commit_noise(repo, {"sines_ae": {"runs": 5, "sd": {"auroc": 0.01}}})
    (repo / "reports" / "seed_noise.json").write_text(json.dumps({"studies": {}}))
    rows = json.loads(CliRunner().invoke(app, ["compare", "main", "workspace", "--json"]).output)
    sines = next(s for s in rows["studies"] if s["study"] == "sines_ae")
    assert sines["noise"] is None and "reports/seed_noise.json at workspace" in sines["note"]


def test_tiny_bounds_print_in_scientific_notation_not_as_zero():
    assert compare._signed(3e-6) == "+3.0e-06" and compare._signed(0.0123) == "+0.0123"
    assert compare._signed(0.0) == "+0.0000"


def test_between_refuses_two_revisions_and_a_page(repo):
    for args in (["compare", "main", "weak-exp", "--between", "sines_ae,hls_ae"],
                 ["compare", "--between", "sines_ae,hls_ae", "--html", "x.html"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and "--between" in result.output and "Traceback" not in result.output
    assert not (repo / "x.html").exists()


def test_a_band_measured_under_other_settings_says_which_moved(repo):
    """B's band was measured before B's params changed: the verdict still counts it, and
    the note names each moved key, side by side."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    settings = study_settings(params, "sines_ae")
    _commit_noise(repo, {"sines_ae": {"runs": 5, "sd": {"auroc": 0.01}, "settings": settings}})
    found = json.loads(CliRunner().invoke(app, ["compare", "main", "workspace", "--json"]).output)
    sines = next(s for s in found["studies"] if s["study"] == "sines_ae")
    assert sines["noise"]["moved_settings"] == [] and "other settings" not in sines["note"]
    params["sines"]["generate"]["seed"] = settings["sines.generate.seed"] + 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    found = json.loads(CliRunner().invoke(app, ["compare", "main", "workspace", "--json"]).output)
    sines = next(s for s in found["studies"] if s["study"] == "sines_ae")
    seed = settings["sines.generate.seed"]
    assert sines["noise"]["moved_settings"] == [f"B: sines.generate.seed: {seed} -> {seed + 1}"]
    moved = f"B: sines.generate.seed: {seed} -> {seed + 1}"
    assert f"the band's runs had other settings ({moved})" in sines["note"]
