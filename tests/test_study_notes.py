"""Study notes that quote the data take it from the split audit."""

from __future__ import annotations

from pipeline.study_notes import NOTES, notes
from pipeline.studies import study_names


def _fold(train: int, val: int) -> dict:
    return {"counts": {"train": {"normal": train}, "val": {"normal": val}}}


def test_hls_fold_counts_come_from_the_audit():
    audit = {"by_partition": {"fold1": _fold(30, 7), "fold2": _fold(31, 8), "final": _fold(60, 15)}}
    text = " ".join(notes("hls_ae", audit).limitations)
    assert "trains on about 30 and stops early on about 8" in text


def test_every_study_has_notes():
    assert set(NOTES) == set(study_names())
