"""toy: square waves, some of the test ones with a spike. The worked example of the README's
"Adding a dataset": a generated dataset in one seeded stage, ``pipeline generate toy``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.splitting import audit


def generate(settings: dict) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Series (N, 1, length), their table (series, split, label, anomaly_type) and its audit."""
    rng = np.random.default_rng(settings["seed"])
    n, length = settings["n"], settings["length"]
    wave = np.sign(np.sin(np.linspace(0, 4 * np.pi, length)))
    x = wave + rng.normal(0, 0.05, (n, length))
    split = np.array(["train", "val", "test"])[np.arange(n) % 5 // 2]  # 2:2:1 in turn
    label = ((split == "test") & (np.arange(n) % 2 == 0)).astype(int)
    x[label == 1, length // 2] += 3.0  # the anomaly: one spike
    table = pd.DataFrame({"series": np.arange(n), "split": split, "label": label,
                          "anomaly_type": np.where(label == 1, "spike", "none")})
    report = audit(table, group_column="series")
    report.update(dataset="toy", scheme="generated", seed=settings["seed"])
    return x[:, None].astype(np.float32), table, report
