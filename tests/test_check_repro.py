"""check-repro: a re-run that matches its commit passes; a perturbed metric or output fails."""

import json
import subprocess

import pytest
from typer.testing import CliRunner

from pipeline.check_repro import check, compare_values, flatten
from pipeline.cli import app

LOCK = """schema: '2.0'
stages:
  train@toy:
    cmd: pipeline train toy
    outs:
    - path: models/toy/model.pt
      md5: {md5}
      size: 10
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repo holding committed metrics and a dvc.lock, the working tree equal to HEAD."""
    (tmp_path / "metrics" / "toy").mkdir(parents=True)
    (tmp_path / "metrics" / "toy.json").write_text(json.dumps({"toy": {"auroc": 0.812345, "n": 40}}))
    (tmp_path / "metrics" / "toy" / "history.csv").write_text("epoch,loss\n1,0.5\n2,0.25\n")
    (tmp_path / "dvc.lock").write_text(LOCK.format(md5="a" * 32))
    for args in (["init", "-q"], ["add", "."],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "numbers"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_flatten_names_nested_keys_and_list_items():
    assert flatten({"test": {"auroc": 0.8, "ci": [0.7, 0.9]}}) == {
        "test.auroc": 0.8, "test.ci.0": 0.7, "test.ci.1": 0.9}


def test_values_within_tolerance_pass_and_outside_fail():
    assert compare_values("m.json", {"a": 1.0}, {"a": 1.0 + 1e-9}, rtol=1e-6, atol=0) == []
    (difference,) = compare_values("m.json", {"a": 1.0, "b": 2}, {"a": 1.01, "b": 2}, rtol=1e-6, atol=0)
    found = (difference.file, difference.key, difference.committed, difference.new)
    assert found == ("m.json", "a", 1.0, 1.01)
    assert difference.fails


def test_unchanged_checkout_has_no_difference(repo):
    assert check(repo, "HEAD", rtol=1e-6, atol=1e-9, bytes_fail=True) == []


def test_perturbed_metric_fails_with_file_key_and_both_values(repo):
    (repo / "metrics" / "toy.json").write_text(json.dumps({"toy": {"auroc": 0.9, "n": 40}}))
    result = CliRunner().invoke(app, ["check-repro", "--no-run"])  # no band for toy: tolerance
    assert result.exit_code == 1
    assert ("metrics/toy.json  toy.auroc  0.812345 -> 0.9  (no band for toy in reports/seed_noise.json"
            in result.output)
    assert "1 difference(s) outside tolerance" in result.output


def test_perturbed_csv_cell_and_missing_file_fail(repo):
    (repo / "metrics" / "toy" / "history.csv").write_text("epoch,loss\n1,0.5\n2,0.26\n")
    (repo / "metrics" / "toy.json").unlink()
    keys = {(d.file, d.key) for d in check(repo, "HEAD", 1e-6, 1e-9, bytes_fail=True)}
    assert keys == {("metrics/toy/history.csv", "row 1.loss"), ("metrics/toy.json", "(file)")}


def test_files_git_ignores_are_not_compared(repo):
    (repo / "metrics" / "toy" / "details.json").write_text("{}")  # a DVC-cached output
    (repo / "metrics" / "toy" / ".gitignore").write_text("/details.json\n")
    assert check(repo, "HEAD", 1e-6, 1e-9, bytes_fail=True) == []


def test_changed_output_hash_fails_or_warns(repo):
    (repo / "dvc.lock").write_text(LOCK.format(md5="b" * 32))
    assert CliRunner().invoke(app, ["check-repro", "--no-run", "--bytes", "fail"]).exit_code == 1
    result = CliRunner().invoke(app, ["check-repro", "--no-run", "--bytes", "warn"])
    assert result.exit_code == 0
    assert "warn  dvc.lock  train@toy: out models/toy/model.pt" in result.output


def _commit_fingerprint(repo, kernels: dict) -> None:
    from pipeline.check_repro import FINGERPRINT_FILE

    (repo / FINGERPRINT_FILE).parent.mkdir(exist_ok=True)
    (repo / FINGERPRINT_FILE).write_text(json.dumps({"kernels": kernels, "cpu": {"model": "elsewhere"}}))
    for args in (["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "cpu"]):
        subprocess.run(["git", *args], cwd=repo, check=True)


def test_bytes_auto_is_exact_where_the_kernels_match_the_commits(repo):
    from pipeline.cpu import fingerprint

    _commit_fingerprint(repo, fingerprint()["kernels"])  # another CPU model, the same kernels
    (repo / "dvc.lock").write_text(LOCK.format(md5="b" * 32))
    result = CliRunner().invoke(app, ["check-repro", "--no-run"])
    assert result.exit_code == 1
    assert "the CPU kernels match the commit's: byte-exact" in result.output


def test_bytes_auto_warns_where_the_kernels_differ_and_names_them(repo):
    from pipeline.cpu import fingerprint

    _commit_fingerprint(repo, {**fingerprint()["kernels"], "torch_capability": "AVX512"})
    (repo / "dvc.lock").write_text(LOCK.format(md5="b" * 32))
    result = CliRunner().invoke(app, ["check-repro", "--no-run"])
    assert result.exit_code == 0
    assert "torch_capability: AVX512 -> AVX2" in result.output
    assert "warn  dvc.lock  train@toy" in result.output


def test_record_writes_this_machines_fingerprint(repo):
    from pipeline.check_repro import FINGERPRINT_FILE

    assert CliRunner().invoke(app, ["check-repro", "--record"]).exit_code == 0
    assert json.loads((repo / FINGERPRINT_FILE).read_text())["kernels"]["torch_capability"] == "AVX2"


def _commit_band(repo, sd: dict, runs: int = 5) -> None:
    (repo / "reports").mkdir(exist_ok=True)
    band = {"studies": {"toy": {"runs": runs, "sd": sd}}}
    (repo / "reports" / "seed_noise.json").write_text(json.dumps(band))
    _commit_fingerprint(repo, {"torch_capability": "AVX512"})  # kernels other than this machine's


def test_other_kernels_are_judged_by_the_committed_band(repo):
    """sd 0.01 over 5 runs: a rebuild may move by t(4) * sqrt(2) * 0.01 = 0.039."""
    _commit_band(repo, {"auroc": 0.01, "n": 0.0})
    (repo / "metrics" / "toy.json").write_text(json.dumps({"toy": {"auroc": 0.84, "n": 40}}))
    (repo / "metrics" / "toy" / "history.csv").write_text("epoch,loss\n1,0.51\n2,0.26\n")
    result = CliRunner().invoke(app, ["check-repro", "--no-run"])
    assert result.exit_code == 0, result.output
    assert "noise  metrics/toy.json  toy.auroc  0.812345 -> 0.84  (moved +0.02765, band +-0.03926: within)" \
        in result.output
    assert ("warn  metrics/toy/history.csv  row 0.loss  0.5 -> 0.51  (the first of 2 moved values out "
            "of 4; not judged)") in result.output
    assert "0 difference(s) outside tolerance, 1 within their training-noise band, 1 reported" \
        in result.output
    assert "reproduces within noise: 1 headline figure(s) moved" in result.output


def test_a_figure_outside_its_band_or_without_one_fails(repo):
    _commit_band(repo, {"auroc": 0.01, "n": 0.0})
    (repo / "metrics" / "toy.json").write_text(json.dumps({"toy": {"auroc": 0.86, "n": 41}}))
    result = CliRunner().invoke(app, ["check-repro", "--no-run"])
    assert result.exit_code == 1
    assert "FAIL  metrics/toy.json  toy.auroc  0.812345 -> 0.86  (moved +0.04766, band +-0.03926: outside)" \
        in result.output
    assert "FAIL  metrics/toy.json  toy.n  40 -> 41  (moved +1, band +-0: outside)" in result.output
    assert "reproduces within noise" not in result.output


def test_a_figure_the_band_does_not_cover_says_why_it_fails(repo):
    _commit_band(repo, {"auroc": 0.01})
    (repo / "metrics" / "toy.json").write_text(json.dumps({"toy": {"auroc": 0.82, "n": 41}}))
    result = CliRunner().invoke(app, ["check-repro", "--no-run"])
    assert result.exit_code == 1
    assert "FAIL  metrics/toy.json  toy.n  40 -> 41  (toy's band has no sd for n)" in result.output


def test_a_bad_band_is_one_error_naming_the_key(repo):
    _commit_band(repo, {"auroc": float("nan")})
    result = CliRunner().invoke(app, ["check-repro", "--no-run"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "reports/seed_noise.json: studies.toy.sd.auroc: a finite number >= 0 expected, got nan " \
        "(the file at HEAD;" in result.output
