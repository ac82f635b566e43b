"""The README's "Adding a dataset", followed: a toy generated dataset and a holdout study
over it take two files (``tests/toy_dataset/toy/``) and the README's params entries, and
the stages DVC then lists for them run through the CLI and write every output DVC tracks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline import datasets
from pipeline.cli import app
from tests.project_params import ROOT, merged, project_params

TOY_PACKAGES = Path(__file__).resolve().parent / "toy_dataset"
pytestmark = pytest.mark.slow


def readme_entries() -> dict:
    """The params entries the README's "Adding a dataset" section gives for the toy."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Adding a dataset"):]
    return yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project (params.yaml with the README's entries, dvc.yaml as it is),
    with the toy package found beside the real ones."""
    monkeypatch.setattr(datasets, "__path__", [*datasets.__path__, str(TOY_PACKAGES)])
    params = merged(project_params({}), readme_entries())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("pipeline.datasets.toy")]:
        del sys.modules[name]


def _toy_stages(root: Path) -> list:
    from dvc.repo import Repo

    Repo.init(str(root), no_scm=True)
    with Repo(str(root)) as repo:
        return [s for s in repo.index.stages if "toy" in s.addressing]


def _invoke(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


def test_a_toy_dataset_and_study_take_two_files_and_params_entries(project):
    stages = {s.addressing: s for s in _toy_stages(project)}
    assert set(stages) == {"generate@toy", "train_holdout@toy_ae", "evaluate_holdout@toy_ae"}
    _invoke("code")
    for name in ("generate@toy", "train_holdout@toy_ae", "evaluate_holdout@toy_ae"):
        stage = stages[name]
        code = [d.def_path for d in stage.deps if d.def_path.startswith("data/code/")]
        assert code and all(Path(p).is_file() for p in code), name  # the code stage wrote it
        _invoke(*stage.cmd.split()[1:])
        missing = [o.def_path for o in stage.outs if not Path(o.def_path).exists()]
        assert not missing, f"{name} did not write {missing}"
    code = json.loads(Path("data/code/train/toy_ae.json").read_text())
    assert not any("datasets/hls_cmds" in p or "datasets/icbhi" in p for p in code)
    headline = json.loads(Path("metrics/toy_ae.json").read_text())["toy_ae"]
    assert headline["auroc"] >= 0.9, headline  # one +3 spike on a clean square wave: easy to find
    _invoke("report")
    assert "toy_ae" in Path("reports/index.html").read_text()


def test_a_study_naming_a_missing_section_is_one_clear_error(project):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["studies"]["holdout"]["toy_ae"]["evaluate"] = "toy.evaluation"
    Path("params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["generate", "toy"])
    assert result.exit_code == 1
    assert "studies.holdout.toy_ae.evaluate: toy.evaluation is not in the file" in result.output
