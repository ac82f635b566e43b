"""The synthetic sines study (``sines_ae``): the Conv1D autoencoder over the generated series."""

from __future__ import annotations

from pipeline.studies import Study, load_generated_series

STUDIES = {
    "sines_ae": Study(
        name="sines_ae", load=load_generated_series, model_inputs=lambda x: {}, unit="series",
        type_columns=("anomaly_type",), group_column="anomaly_type", evaluation="series",
        headline=("test.auroc", "test.auroc_ci_low", "test.auroc_ci_high", "test.pauc",
                  "test.sensitivity", "test.specificity", "test.f1"),
    ),
}
