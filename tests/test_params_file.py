"""params.yaml is written the way `dvc exp run -S` writes it, so an experiment's diff is its change alone."""

import difflib
import shutil
from pathlib import Path

from dvc.utils.hydra import apply_overrides

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def test_set_param_changes_only_its_line_and_setting_it_back_restores_the_bytes(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(PARAMS, params)
    original = params.read_text()

    apply_overrides(str(params), ["model.latent=16"])  # what `dvc exp run -S model.latent=16` does
    changed = [line for line in difflib.unified_diff(original.splitlines(), params.read_text().splitlines(),
                                                     lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-  latent: 32", "+  latent: 16"]

    apply_overrides(str(params), ["model.latent=32"])
    assert params.read_text() == original
