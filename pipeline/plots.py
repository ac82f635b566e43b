"""PNG figures (matplotlib, no display needed). Each function writes one file atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.io import atomic_path  # noqa: E402


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def score_histogram(frame: pd.DataFrame, threshold: float | None, path: Path, title: str,
                    xlabel: str = "reconstruction error") -> None:
    """Score distribution by class, with the calibrated threshold (if any) as a line."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    scores = frame["score"].to_numpy(dtype=float)
    bins = np.histogram_bin_edges(scores, bins=40)
    for label, name, colour in ((0, "normal", "tab:blue"), (1, "abnormal", "tab:red")):
        part = scores[frame["label"].to_numpy() == label]
        if len(part):
            ax.hist(part, bins=bins, alpha=0.6, color=colour, label=f"{name} (n={len(part)})",
                    density=True)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel=xlabel, ylabel="density", title=title)
    ax.legend()
    _save(fig, path)


def roc_figure(roc: pd.DataFrame, auroc: float, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(roc["fpr"], roc["tpr"], label=f"AUROC {auroc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    _save(fig, path)


def training_curves(history: pd.DataFrame, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for column in [c for c in history.columns if c != "epoch"]:
        ax.plot(history["epoch"], history[column], label=column.replace("_", " "))
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend()
    _save(fig, path)
