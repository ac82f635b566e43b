"""Stage 3: subject-independent splits with an audit that fails the stage on any leak.

The dataset's package splits (``split``): the clinical datasets are cross-validated
(``scheme: kfold``, the default): whole groups are dealt to K folds, each fold tested by
a model that never saw its groups, so every unit is scored exactly once, out of fold.
The manifest holds one role column per partition (``fold1`` .. ``foldK``, and ``final``:
the model `pipeline predict` uses), each row's role in it: train, val, test or unused. A
holdout scheme is one fold. This stage writes the manifest and the audit, with what the
download found.
"""

from __future__ import annotations

import logging

import typer

from pipeline import paths
from pipeline.datasets import part
from pipeline.io import read_json, write_json, write_parquet
from pipeline.params import dataset_settings, load_params

log = logging.getLogger(__name__)


def command(dataset: str = typer.Argument(..., help="dataset name, e.g. hls-cmds")) -> None:
    """Split DATASET's records into train/val/test; write the manifest and the audit."""
    split = part(dataset, "split")
    params = load_params()
    manifest, report = split(dataset, dataset_settings(params, dataset, "split"))
    found = read_json(paths.download_report(dataset))
    report["download"] = {k: v for k, v in found.items() if not isinstance(v, (dict, list))}
    write_parquet(paths.split_manifest(dataset), manifest)
    write_json(paths.audit_report(dataset), report)
    log.info("%s split: %s", dataset, report["counts"])
