from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls_fixture import make_hls_copy

SHARED_DATASETS = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


@pytest.fixture
def hls_copy(tmp_path) -> Path:
    """A local-copy root (``<root>/hls-cmds``) with a tiny generated HLS-CMDS."""
    root = tmp_path / "copy"
    make_hls_copy(root)
    return root


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets not present")
    return SHARED_DATASETS.resolve()
