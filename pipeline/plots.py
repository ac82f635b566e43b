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


def latent_space(points: np.ndarray, digits: np.ndarray, axes: tuple[str, str], path: Path,
                 title: str) -> None:
    """2-D points (codes, or their projection) coloured by digit."""
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    cmap = plt.get_cmap("tab10")
    for digit in np.unique(digits):
        mine = digits == digit
        ax.scatter(points[mine, 0], points[mine, 1], s=2, alpha=0.5, color=cmap(int(digit) % 10),
                   label=str(digit), rasterized=True)
    ax.set(xlabel=axes[0], ylabel=axes[1], title=title)
    ax.legend(title="digit", markerscale=5, loc="center left", bbox_to_anchor=(1, 0.5))
    _save(fig, path)


def image_grid(inputs: np.ndarray, outputs: np.ndarray, captions: list[str], path: Path,
               title: str) -> None:
    """Inputs (top row) over their reconstructions (bottom row), one column per image."""
    n = len(inputs)
    fig, axes = plt.subplots(2, n, figsize=(0.9 * n + 0.4, 2.6), squeeze=False)
    for col in range(n):
        for row, images in enumerate((inputs, outputs)):
            ax = axes[row, col]
            ax.imshow(images[col], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, col].set_title(captions[col], fontsize=8)
    axes[0, 0].set_ylabel("input", fontsize=8)
    axes[1, 0].set_ylabel("output", fontsize=8)
    fig.suptitle(title, fontsize=9, y=1.0 + 0.25 / fig.get_figheight())  # above the captions
    _save(fig, path)


def series_examples(inputs: np.ndarray, outputs: np.ndarray, names: list[str], errors: np.ndarray,
                    threshold: float, path: Path, title: str) -> None:
    """One panel per series: input and reconstruction, with its error against the threshold."""
    fig, axes = plt.subplots(len(inputs), 1, figsize=(8, 1.7 * len(inputs)), sharex=True,
                             squeeze=False)
    for ax, x, y, name, error in zip(axes[:, 0], inputs, outputs, names, errors, strict=True):
        ax.plot(x, color="tab:blue", linewidth=0.8, label="input")
        ax.plot(y, color="tab:orange", linewidth=0.8, label="reconstruction")
        flagged = "flagged" if error > threshold else "not flagged"
        ax.set_title(f"{name}: error {error:.4g} ({flagged}, threshold {threshold:.4g})", fontsize=9)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("sample")
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    _save(fig, path)


def label_fraction_curve(metrics: dict, path: Path) -> None:
    """Test AUROC against the share of labelled training cycles, one line per method, with
    the patient-cluster bootstrap interval as error bars."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    fractions = metrics["label_fractions"]
    for offset, method in enumerate(metrics["methods"]):
        cells = [metrics["cells"][f"{method}@{f}"] for f in fractions]
        auroc = np.array([c["auroc"] for c in cells])
        errors = np.array([[a - c["auroc_ci_low"], c["auroc_ci_high"] - a]
                           for a, c in zip(auroc, cells, strict=True)]).T
        x = np.array(fractions) * (1 + 0.02 * (offset - len(metrics["methods"]) / 2))  # spread the bars
        ax.errorbar(x, auroc, yerr=errors, marker="o", capsize=3, label=method)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xscale("log")
    ax.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
    ax.minorticks_off()
    ax.set(xlabel="labelled share of the training cycles (whole patients)", ylabel="test AUROC",
           title="icbhi_semi: AUROC by label fraction (95% patient-bootstrap intervals)")
    ax.legend(fontsize="small")
    _save(fig, path)
