"""What the report says about each study in words: a title, the goal its headline metric
is read against, and the limitations a reader of the numbers must know.

Only the report stage reads this, so rewording a note re-runs the report alone, not
training (``pipeline/studies.py``, which every stage imports, holds no prose). Notes that
quote the data take it from the split audit (``reports/audit/<dataset>.json``), so they
cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Notes:
    title: str  # one line for reports
    goal: str = ""  # what the headline metric is measured against, for the report's summary
    limitations: tuple[str, ...] = ()  # what a reader of the numbers must know


ICBHI_LIMITATIONS = (
    "Partial copy: 115 of the 920 recordings (53 of 126 patients, 1,053 of 6,898 cycles); "
    "figures are not comparable with results on the full database.",
    "Device confound: recording devices differ between splits and carry different class "
    "mixes (on the official split most test cycles come from Litt3200, absent from "
    "training); see the per-device breakdown.",
    "Validation holds only a few patients, so early stopping and the threshold are noisy.",
)


def _mean_normal(audit: dict, split: str) -> int:
    """Normal units in ``split``, averaged over the cross-validation folds and rounded."""
    folds = [c for name, c in audit["by_partition"].items() if name != "final"]
    return round(sum(c["counts"][split]["normal"] for c in folds) / len(folds))


def _hls(title: str, goal: str) -> Callable[[dict], Notes]:
    return lambda audit: Notes(
        title=title,
        goal=goal,
        limitations=(
            "Manikin recordings (one CAE Juno simulator, one stethoscope): no real patients, "
            "so no subject variability; results do not transfer to clinical audio as they are.",
            f"Few normal recordings: each fold's autoencoder trains on about {_mean_normal(audit, 'train')} "
            f"and stops early on about {_mean_normal(audit, 'val')} (whole groups; the split audit "
            "gives each fold's counts). So few validation groups cannot place a 95th percentile: "
            "with train.cross_fit the threshold comes from cross-fitted errors of all of them. "
            "Read the achieved specificity beside its target, and sensitivity with it.",
            "Abnormal recordings far outnumber normal ones (the split audit gives the counts); "
            "read AUROC with its interval, and accuracy/F1 with that imbalance in mind.",
        ),
    )


BASELINE_GOAL = "yardstick of {deep}: `pipeline compare --between {name},{deep}` (paired)"


def _icbhi(model: str) -> Callable[[dict], Notes]:
    return lambda audit: Notes(
        title=f"ICBHI 2017 respiratory cycles: {model} on log-mel spectrograms",
        goal="ICBHI score (Se + Sp) / 2 above 0.5 (chance)",
        limitations=ICBHI_LIMITATIONS,
    )


def _hls_baseline(detector: str, name: str) -> Callable[[dict], Notes]:
    return _hls(f"HLS-CMDS baseline: {detector}, the autoencoder's features and folds",
                BASELINE_GOAL.format(deep="hls_ae", name=name))


def _icbhi_baseline(model: str, name: str) -> Callable[[dict], Notes]:
    return lambda audit: Notes(
        title=f"ICBHI 2017 baseline: {model} on per-band log-mel statistics (sd, range, "
              "frame-to-frame change of each band-normalised band), the CNNs' folds and calibration",
        goal=BASELINE_GOAL.format(deep="icbhi_crnn", name=name),
        limitations=ICBHI_LIMITATIONS)


def _fixed(notes: Notes) -> Callable[[dict], Notes]:
    return lambda audit: notes


# study name -> its notes, from its dataset's split audit
NOTES: dict[str, Callable[[dict], Notes]] = {
    "hls_ae": _hls("HLS-CMDS: MLP autoencoder on MFCC windows, trained on normal sounds only",
                   "workshop: abnormal error 4.8x normal; AUROC > 0.5"),
    "icbhi_cnn": _icbhi("SimpleCNN"),
    "icbhi_crnn": _icbhi("CNN+GRU"),
    # classical baselines on the same features, folds and calibration
    "hls_pca": _hls_baseline("PCA reconstruction error (32 principal axes of the training "
                             "windows)", "hls_pca"),
    "hls_knn": _hls_baseline("distance to the nearest normal training window", "hls_knn"),
    "hls_gmm": _hls_baseline("negative log-likelihood under a 4-component diagonal Gaussian "
                             "mixture of the training windows", "hls_gmm"),
    "hls_iforest": _hls_baseline("isolation forest score (100 trees) of the window", "hls_iforest"),
    "icbhi_logreg": _icbhi_baseline("logistic regression", "icbhi_logreg"),
    "icbhi_hgb": _icbhi_baseline("histogram gradient boosting (100 rounds)", "icbhi_hgb"),
    "mnist_ae": _fixed(Notes(
        title="MNIST: convolutional autoencoder (the notes' table), latent space and reconstructions",
        goal="lower MSE per pixel; 5-NN digit accuracy on codes well above 0.1 (chance)",
        limitations=(
            "No threshold and no anomalies: this study measures reconstruction (MSE, BCE per "
            "pixel, inputs in [0, 1]) and how well the latent codes separate digits (5-NN).",
            "Default settings train on a seeded, digit-stratified subset of the 48,000 training "
            "images for a few epochs (mnist.train.train_images, epochs) to keep `dvc repro` short "
            "on a CPU; the benchmark figures come from experiments with all images and more epochs.",
            "The 5-NN classifier is fitted on the codes of at most mnist.evaluate.knn_fit_codes "
            "training images (seeded, stratified); test.latent_knn_fit_codes gives the number.",
        ),
    )),
    "mnist_novelty": _fixed(Notes(
        title="MNIST novelty: autoencoder trained on all digits but one; the unseen digit is the anomaly",
        goal="AUROC > 0.5 for flagging the unseen digit",
        limitations=(
            "Which digit is unseen (mnist.novelty.unseen_digit) changes the result a lot: a digit "
            "the autoencoder reconstructs well anyway (1 has by far the lowest error in mnist_ae) "
            "is hard to flag by reconstruction error.",
            "The threshold is a percentile of validation errors of the seen digits, so about "
            "(100 - percentile)% of seen test digits are flagged by construction.",
            "Default settings train on a subset of the training images for a few epochs "
            "(mnist.novelty.train) to keep `dvc repro` short on a CPU.",
        ),
    )),
    "sines_ae": _fixed(Notes(
        title="Synthetic sines: Conv1D autoencoder (5,217 parameters) trained on normal series only",
        goal="AUROC near 1: every anomaly type is sized to be visible",
        limitations=(
            "Synthetic data: every anomaly type is sized by its generator to be visible in the "
            "reconstruction error; high scores say the pipeline works, not that real faults "
            "would be found as easily.",
            "The threshold is a percentile of normal validation errors, so about "
            "(100 - percentile)% of normal test series are flagged by construction.",
        ),
    )),
}


def notes(study: str, audit: dict | None) -> Notes:
    """The notes of ``study``; a study without an entry gets its name as title and nothing else."""
    make = NOTES.get(study)
    return Notes(title=study) if make is None else make(audit or {})
