from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls_fixture import make_hls_copy

# the verified data copy beside the project (integration tests skip when it is absent)
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def hls_copy(tmp_path) -> Path:
    """A local-copy root (``<root>/hls-cmds``) with a tiny generated HLS-CMDS."""
    root = tmp_path / "copy"
    make_hls_copy(root)
    return root
