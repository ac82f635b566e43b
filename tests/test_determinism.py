"""The same input gives the same bytes: two projects run from one copy produce identical outputs."""

from __future__ import annotations

import pytest

from tests.hls_fixture import make_hls_copy
from tests.test_hls_pipeline import run_stages

OUTPUTS = [
    "data/records/hls-cmds.parquet",
    "data/features/hls-cmds/windows.parquet",
    "data/splits/hls-cmds.parquet",
    "models/hls_ae/model.pt",
    "data/scores/hls_ae/val.parquet",
    "models/hls_ae/threshold.json",
    "data/scores/hls_ae/test.parquet",
    "metrics/hls_ae.json",
    "metrics/hls_ae/history.csv",
    "metrics/hls_ae/scores.csv",
]

pytestmark = pytest.mark.slow  # trains models / runs every stage


def test_two_runs_write_identical_bytes(tmp_path):
    copy = tmp_path / "copy"
    make_hls_copy(copy)
    first, second = tmp_path / "first", tmp_path / "second"
    run_stages(first, copy, stages=())
    run_stages(second, copy, stages=())
    for output in OUTPUTS:
        assert (first / output).read_bytes() == (second / output).read_bytes(), output
