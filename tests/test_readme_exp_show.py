"""The README's `dvc exp show` filters, run on a scratch DVC repository that has this
project's params.yaml, a headline metrics file per study and one saved experiment."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.stages.evaluate import headline
from pipeline.params import load_params
from pipeline.studies import get_study, study_names

ROOT = Path(__file__).resolve().parents[1]
STUDIES = study_names(load_params(ROOT / "params.yaml"))
pytestmark = pytest.mark.slow
# kept out of the overview: 200 columns
BASELINES = ("hls_pca", "hls_knn", "hls_gmm", "hls_iforest", "icbhi_logreg", "icbhi_hgb")


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [line for line in text.splitlines() if line.startswith("dvc exp show ")]


def _run(command: str, cwd: Path, **env: str) -> str:
    done = subprocess.run(shlex.split(command), cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _write_metrics(root: Path, value: float) -> None:
    for study in (get_study(name, params=load_params(ROOT / "params.yaml")) for name in STUDIES):
        metrics: dict = {}
        for key in study.headline:  # a full metrics tree holding every headline key
            *parents, last = key.split(".")
            node = metrics
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        path = root / "metrics" / f"{study.name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(headline(study, metrics)))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    if shutil.which("dvc") is None or shutil.which("git") is None:
        pytest.skip("needs dvc and git")
    root = tmp_path_factory.mktemp("exp")
    shutil.copy(ROOT / "params.yaml", root)
    stages = {s: {"cmd": "true", "params": ["model.latent"],
                  "metrics": [{f"metrics/{s}.json": {"cache": False}}]} for s in STUDIES}
    (root / "dvc.yaml").write_text(json.dumps({"stages": stages}))
    _write_metrics(root, 0.5)
    for command in ("git init -q -b main", "git config user.email t@example.org",
                    "git config user.name t", "dvc init -q", "git add -A", "git commit -qm base"):
        _run(command, root)
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params.replace("  latent: 32\n", "  latent: 16\n", 1))
    _write_metrics(root, 0.123456789)
    _run("dvc exp save -q -n latent-16", root)
    return root


def test_the_readme_has_its_filters():
    assert len(_readme_commands()) == 2


@pytest.mark.parametrize("command", _readme_commands())
def test_readme_filter_fits_200_columns_and_shows_what_changed(repo, command):
    table = _run(command + " --md", repo)
    lines = table.strip().splitlines()
    assert max(len(line) for line in lines) < 200, table
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[0] == "Experiment" and "model.latent" in header
    assert any("latent-16" in line for line in lines)
    metrics = [c for c in header if re.match(r"[a-z]+_\w*\.", c)]
    if "hls_ae\\." in command:  # one study: its ranking and operating point
        assert metrics == [f"hls_ae.{k}" for k in ("auroc", "auroc_lo", "auroc_hi", "specificity",
                                                   "spec_target")]
    else:  # every study but the classical baselines: its first headline number
        assert sorted(metrics) == sorted(f"{s}.{'mse' if s == 'mnist_ae' else 'auroc'}"
                                         for s in STUDIES if s not in BASELINES)
    terminal = _run(command + " --no-pager", repo, COLUMNS="200")
    assert "…" not in terminal
