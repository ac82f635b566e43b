"""Every stage's code dependency is exactly the code its command runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import paths
from pipeline.cli import COMMANDS
from pipeline.import_graph import command_code
from pipeline.params import load_params
from pipeline.stages.code import fingerprints

ROOT = Path(__file__).resolve().parents[1]


def _code_file(cmd: str) -> Path:
    """The code file of ``pipeline <command> [<dataset or study>]``: a grid cell
    (icbhi_semi/<method>/<fraction>) shares its study's."""
    words = cmd.split()
    argument = words[2].split("/")[0] if len(words) > 2 else None
    return paths.code_fingerprint(words[1], argument)


def _stages():
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return [s for s in repo.index.stages if s.cmd and s.cmd.startswith("pipeline ")]


@pytest.mark.parametrize("stage", _stages(), ids=lambda s: s.addressing)
def test_each_stage_depends_on_its_commands_code_file_and_on_no_source_file(stage):
    words = stage.cmd.split()
    deps = [d.def_path for d in stage.deps if d.def_path != "params.yaml"]  # params: not files
    if words[1] == "code":
        assert deps == ["pipeline"] and [o.def_path for o in stage.outs] == [str(paths.CODE)]
        return
    code = [d for d in deps if d.startswith(f"{paths.CODE}/")]
    assert code == [str(_code_file(stage.cmd))]
    # data inside the package (the verified copies' checksums) is not code
    assert all(not d.endswith(".py") and Path(ROOT, d).is_dir() and not list(Path(ROOT, d).rglob("*.py"))
               for d in deps if d.startswith("pipeline"))


def test_a_commands_code_follows_imports_made_by_name():
    train = command_code("pipeline.stages.train", "train", ["hls-cmds"], ["mlp_ae"])
    for path in ("pipeline/stages/train.py", "pipeline/objectives.py", "pipeline/models/mlp_ae.py",
                 "pipeline/models/__init__.py", "pipeline/datasets/hls_cmds/study.py",
                 "pipeline/datasets/hls_cmds/__init__.py", "pipeline/cli.py"):
        assert path in train, path
    assert "pipeline/stages/evaluate.py" not in train and "pipeline/compare.py" not in train
    # a study's code holds its own dataset's package and its own model alone: ICBHI edits,
    # the CNNs' code included, leave hls_ae be
    assert not any(p.startswith(("pipeline/datasets/icbhi", "pipeline/datasets/mnist")) for p in train)
    assert not any(p.startswith(("pipeline/models/crnn", "pipeline/models/cnn",
                                 "pipeline/models/spectrogram_layers")) for p in train)
    # evaluate writes the per-unit scores compare reads, through a module of their own: a
    # change to compare (its verdicts, its noise) reruns no evaluate stage
    evaluate = command_code("pipeline.stages.evaluate", "evaluate", ["hls-cmds"], ["mlp_ae"])
    assert "pipeline/unit_scores.py" in evaluate and "pipeline/compare.py" not in evaluate
    crnn = command_code("pipeline.stages.train", "train", ["icbhi"], ["cnn_gru"])
    assert {"pipeline/models/crnn.py", "pipeline/models/spectrogram_layers.py"} <= set(crnn)
    assert "pipeline/models/mlp_ae.py" not in crnn
    report = command_code("pipeline.stages.report", "report", ["hls-cmds", "icbhi"])
    assert {"pipeline/datasets/hls_cmds/study.py", "pipeline/datasets/icbhi/study.py"} <= set(report)
    mnist = command_code("pipeline.stages.features", "features", ["mnist"])
    assert "pipeline/datasets/mnist/__init__.py" in mnist
    assert not any(p.startswith("pipeline/datasets/icbhi") for p in mnist)  # its own dataset only


def test_fingerprints_are_exactly_the_files_the_stages_read():
    written = set(fingerprints(COMMANDS, load_params(ROOT / "params.yaml")))
    listed = {str(_code_file(s.cmd).relative_to(paths.CODE))
              for s in _stages() if s.cmd.split()[1] != "code"}
    assert listed == written  # every stage has its file, and no file is an orphan


def test_the_lock_holds_no_stage_that_dvc_yaml_lost():
    import yaml

    locked = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    assert locked <= {s.addressing for s in _stages()}


def test_what_git_tracks_stays_out_of_the_dvc_cache():
    """An output in git must be `cache: false` (a YAML alias of a plot's path alone, without
    its mapping, once dropped that and stopped the repro)."""
    import subprocess

    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    cached = [o.def_path for s in _stages() for o in s.outs if o.use_cache and o.def_path in tracked]
    assert not cached
