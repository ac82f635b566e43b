"""dvc.yaml and pipeline/paths.py name the same folders: a path renamed in one and not the
other would make a stage write where DVC does not track, or track what nothing writes."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

from pipeline import paths

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {p.as_posix() for p in (paths.RAW, paths.RECORDS, paths.FEATURES, paths.SPLITS,
                                  paths.SCORES, paths.MODELS, paths.METRICS, paths.REPORTS, paths.CODE)}
# files one per dataset (or study) directly in a folder, and the helper that names them
NAMED = {paths.RECORDS: paths.records, paths.SPLITS: paths.split_manifest,
         paths.AUDIT: paths.audit_report, paths.DOWNLOAD_REPORTS: paths.download_report}
TOP = {PurePosixPath(f).parts[0] for f in FOLDERS}  # data, models, metrics, reports


def _stage_paths() -> set[str]:
    """Every path in a stage's deps, outs, metrics and plots (a dict entry's key)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    found = set()
    for stage in stages.values():
        body = stage.get("do", stage)
        for section in ("deps", "outs", "metrics", "plots"):
            for entry in body.get(section, []):
                found.update(entry if isinstance(entry, dict) else [entry])
    return found


def _folder(path: PurePosixPath) -> str:
    """``data/<folder>`` under data, else the top folder (models, metrics, reports)."""
    return "/".join(path.parts[:2] if path.parts[0] == "data" else path.parts[:1])


def test_every_dvc_path_under_a_pipeline_folder_is_one_paths_names():
    checked = 0
    for text in _stage_paths():
        path = PurePosixPath(text)
        if path.parts[0] not in TOP or path.parts[0] == "data" and len(path.parts) < 2:
            continue
        if path.parts[0] == "data" and path.parts[1].startswith("${"):  # split_reads: data/<a path>
            continue
        assert _folder(path) in FOLDERS, f"dvc.yaml: {text} is under no folder of pipeline/paths.py"
        helper = NAMED.get(Path(path.parent))
        if helper is not None:
            expected = helper(path.name.removesuffix(helper("x").suffix))  # <dataset><suffix>
            assert expected.as_posix() == text, f"dvc.yaml: {text} != {expected}"
        checked += 1
    assert checked > 50


def test_every_folder_in_paths_appears_in_dvc_yaml():
    used = {_folder(PurePosixPath(text)) for text in _stage_paths()}
    assert used >= FOLDERS, f"not in dvc.yaml: {sorted(FOLDERS - used)}"
    folders = {PurePosixPath(t).parent for t in _stage_paths()}
    for folder in NAMED:
        assert PurePosixPath(folder.as_posix()) in folders, f"dvc.yaml names nothing in {folder}"
