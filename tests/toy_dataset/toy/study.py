"""The study over toy: the Conv1D autoencoder of sines_ae, with its series loader and figure."""

from __future__ import annotations

from pipeline.studies import Study, load_generated_series

STUDIES = {
    "toy_ae": Study(
        name="toy_ae", load=load_generated_series, model_inputs=lambda x: {}, unit="series",
        type_columns=("anomaly_type",), group_column="anomaly_type", evaluation="series",
        headline=("test.auroc", "test.sensitivity", "test.specificity"),
    ),
}
