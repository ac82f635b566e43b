"""Print the autoencoder studies' headline figures against the issue's targets.

Reads the metrics the pipeline wrote (it trains nothing, and it is not a test):

    python benchmarks/autoencoders.py            # this project's metrics/
    python benchmarks/autoencoders.py OTHER_DIR  # another checkout's, e.g. an experiment's

Targets: MNIST test MSE <= 0.035 at latent 2 and <= 0.010 at latent 16; sines test
AUROC >= 0.99. The default params train briefly (CI time); the targets are meant for
experiments with all training images and more epochs, e.g.

    dvc exp run -S mnist.train.train_images=null -S mnist.train.val_images=null \\
        -S mnist.train.epochs=20 -S mnist.train.patience=5
    dvc exp run -S mnist.model.latent=16 -S mnist.train.train_images=null ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MSE_TARGETS = {2: 0.035, 16: 0.010}  # latent size -> MNIST test MSE target
SINES_AUROC_TARGET = 0.99


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _history(root: Path, study: str) -> str:
    path = root / "metrics" / study / "history.csv"
    if not path.is_file():
        return "history: -"
    rows = path.read_text().strip().splitlines()[1:]
    epoch, _, val = min((r.split(",") for r in rows), key=lambda r: float(r[2]))
    return f"epochs run: {len(rows)}, best val loss {float(val):.5f} at epoch {epoch}"


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(root: Path) -> list[str]:
    lines = [f"autoencoder benchmarks from {root.resolve()}/metrics", ""]
    ae = _read(root / "metrics" / "mnist_ae" / "details.json")
    if ae is None:
        lines.append("mnist_ae: no metrics (run `dvc repro evaluate_unthresholded@mnist_ae`)")
    else:
        latent, test = ae["latent"], ae["test"]
        target = MSE_TARGETS.get(latent)
        verdict = "" if target is None else f"  (target <= {target}: {_verdict(test['mse'] <= target)})"
        lines += [
            f"mnist_ae  latent {latent}, {ae['n_train_images']} training images; "
            f"{_history(root, 'mnist_ae')}",
            f"  test MSE {test['mse']:.5f}{verdict}",
            f"  test BCE {test['bce']:.5f}",
            f"  5-NN digit accuracy on latent codes {test['latent_knn_accuracy']:.4f} "
            f"(fitted on {test['latent_knn_fit_codes']} training codes)",
            "  MSE by digit: " + ", ".join(f"{d}: {v:.4f}" for d, v in test["mse_by_digit"].items()),
        ]
    novelty = _read(root / "metrics" / "mnist_novelty" / "details.json")
    if novelty is not None:
        t = novelty["test"]
        lines += [
            "",
            f"mnist_novelty  {_history(root, 'mnist_novelty')}",
            f"  test AUROC {t['auroc']:.4f} [{t['auroc_ci_low']:.4f}, {t['auroc_ci_high']:.4f}], "
            f"pAUC {t['pauc']:.4f}, sensitivity {t['sensitivity']:.4f}, "
            f"specificity {t['specificity']:.4f}, F1 {t['f1']:.4f} "
            f"({t['n_abnormal']} unseen / {t['n_normal']} seen)",
        ]
    sines = _read(root / "metrics" / "sines_ae" / "details.json")
    if sines is not None:
        t = sines["test"]
        lines += [
            "",
            f"sines_ae  {_history(root, 'sines_ae')}",
            f"  test AUROC {t['auroc']:.4f}  (target >= {SINES_AUROC_TARGET}: "
            f"{_verdict(t['auroc'] >= SINES_AUROC_TARGET)})",
            f"  pAUC {t['pauc']:.4f}, sensitivity {t['sensitivity']:.4f}, "
            f"specificity {t['specificity']:.4f}, F1 {t['f1']:.4f}",
        ]
        by_type = _read(root / "metrics" / "sines_ae" / "detection_by_type.json") or {}
        lines += [f"  detected {name.split(':', 1)[1]}: {v['detected']}/{v['n']} ({v['rate']:.3f})"
                  for name, v in by_type.items()]
    return lines


if __name__ == "__main__":
    print("\n".join(report(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))))
