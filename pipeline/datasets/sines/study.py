"""The synthetic sines study (``sines_ae``): the Conv1D autoencoder's loader."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.studies import Samples, Study, indexed_array


def load_sines(study: Study, splits: list[str], params: dict) -> dict[str, Samples]:
    """Generated series (N, 1, length); label 1 = abnormal, ``anomaly_type`` names the fault."""
    manifest = pd.read_parquet(paths.split_manifest("sines"))
    x = indexed_array(paths.generated_series("sines"), manifest["series"], "pipeline generate sines")
    out = {}
    for split in splits:
        rows = manifest[manifest["split"] == split].reset_index(drop=True)
        meta = rows[["series", "label", "anomaly_type"]].assign(unit=rows["series"])
        out[split] = Samples(x=np.asarray(x[rows["series"].to_numpy()]), y=rows["label"].to_numpy(np.int64),
                             meta=meta)
    return out


STUDIES = {
    "sines_ae": Study(
        name="sines_ae", load=load_sines, model_inputs=lambda x: {}, unit="series",
        type_columns=("anomaly_type",), group_column="anomaly_type", evaluation="series",
        headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high", "test.pauc",
                  "test.sensitivity", "test.specificity", "test.f1"),
    ),
}
