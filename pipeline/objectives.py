"""What a study optimises, and how its scores become decisions and metrics: one object per kind.

An objective owns its loss and per-sample scores (training), the score table's columns
(``score``, and ``prob_<k>`` per class for classifiers), how a unit is decided, how a
score is put on the scale of its distance to a threshold (pooling cross-validation
folds), and the test metrics. Train, evaluate and predict ask the study for its
objective (``Study.make_objective``); nothing else branches on its kind. torch is imported
where a loss or a score is computed, so modules that only read score tables stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from pipeline.metrics import (
    binary_report, bootstrap_intervals, confusion_counts, detection_by_type, error_separation,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

TINY = 1e-12  # scores are clipped here before a log or a logit: an error of 0, a probability of 1
SCORE = "score"  # every score table: the abnormality score of each sample
# pooled folds: the threshold-free figures (AUROC, pAUC, AUPRC, ROC and PR curves) rank by
# this column, each fold's scores on a scale that no threshold moves (cross_validation.py)
RANKING = "ranking"
PROB = "prob_"  # classifiers: prob_<k>, the probability of class k (class 0 is normal)


def combine_members(scores: list[np.ndarray], scales: list[float]) -> np.ndarray:
    """A seed ensemble's scores: the mean of its members' scores, each over its scale (one
    formula for training's score tables and for scoring new inputs: the same bytes)."""
    return np.mean([np.asarray(s) / np.float32(scale) for s, scale in zip(scores, scales, strict=True)],
                   axis=0, dtype=np.float64).astype(np.float32)


def ranking(frame: pd.DataFrame) -> np.ndarray:
    """What the threshold-free figures rank by: ``ranking`` where folds were pooled, else ``score``."""
    return frame[RANKING if RANKING in frame else SCORE].to_numpy(dtype=float)


def intervals(units: pd.DataFrame, predicted: np.ndarray, cfg: dict, group: str | None) -> dict:
    """Bootstrap intervals of AUROC, sensitivity and specificity: whole ``group``s (patients,
    recording groups) are resampled together; each unit alone when ``group`` is None."""
    y = units["label"].to_numpy().astype(int)
    found = bootstrap_intervals(
        (y != 0).astype(int), ranking(units), predicted == y,
        n_boot=cfg["bootstrap"], seed=cfg["seed"],
        groups=units[group].to_numpy() if group is not None else None)
    return {f"{name}_ci_{end}": value for name, (low, high) in found.items()
            for end, value in (("low", low), ("high", high))}


class Objective:
    name: ClassVar[str]
    score_name: ClassVar[str]  # what ``score`` is, for figures
    margin_name: ClassVar[str]  # what a margin is, for figures of pooled folds

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def abnormality(self, scores: np.ndarray) -> np.ndarray:
        """The ``score`` column from the model's scores: higher is more abnormal."""
        return scores

    def score_table(self, scores: np.ndarray, meta: pd.DataFrame) -> pd.DataFrame:
        """Per-sample scores next to their metadata."""
        return meta.reset_index(drop=True).assign(**{SCORE: self.abnormality(scores)})

    def raw_scores(self, table: pd.DataFrame) -> np.ndarray:
        """What ``score_table`` made ``table``'s score columns from."""
        return table[SCORE].to_numpy()

    def member_scale(self, val: pd.DataFrame) -> float:
        """What a seed member's scores are divided by before they are averaged: the median
        score of its normal calibration samples (an error's size is the member's own)."""
        from pipeline.calibration import calibration_scores

        rows = calibration_scores(val)
        normal = rows.loc[rows["label"] == 0, SCORE]
        return max(float(np.median(normal if len(normal) else rows[SCORE])), TINY)

    def ensemble_table(self, tables: list[pd.DataFrame], scales: list[float]) -> pd.DataFrame:
        """The seed ensemble's score table from its members' tables of the same samples."""
        first = tables[0]
        for table in tables[1:]:
            if not table["unit"].equals(first["unit"]):
                raise ValueError("seed members scored different samples: their tables do not align")
        meta = first.drop(columns=[c for c in first if c == SCORE or c.startswith(PROB)])
        return self.score_table(combine_members([self.raw_scores(t) for t in tables], scales), meta)

    def decide(self, units: pd.DataFrame, calibration: dict) -> np.ndarray:
        """Predicted class ids: 1 (abnormal) where the score passes the threshold."""
        return (units[SCORE].to_numpy() > calibration["threshold"]).astype(int)

    def log_scale(self, scores: np.ndarray) -> np.ndarray:
        """Scores on an unbounded scale, in the same order (for pooling folds)."""
        raise NotImplementedError

    def margin(self, scores: np.ndarray, threshold: float) -> np.ndarray:
        """Scores on the scale of their distance to ``threshold``: > 0 exactly when above it,
        in the same order within one model (so pooled models share a scale)."""
        return self.log_scale(scores) - self.log_scale(np.array([threshold]))[0]

    def assess(self, units: pd.DataFrame, samples: pd.DataFrame, calibration: dict, cfg: dict,
               classes: tuple[str, ...], type_columns: tuple[str, ...] = (),
               group: str | None = None) -> tuple[dict, dict]:
        """Test metrics from per-unit (and per-sample) scores and the decision rule (pure).
        Returns the metrics and the detection rate per abnormal type."""
        raise NotImplementedError

    @classmethod
    def for_training(cls, labels: np.ndarray | None = None, n_classes: int | None = None) -> Objective:
        return cls()


class Reconstruction(Objective):
    """Autoencoders: reconstruct the input; a sample's score is its mean squared error."""

    name = "reconstruction"
    score_name = "reconstruction error"
    margin_name = "log(error / the fold's threshold)"

    def loss(self, model, x, y):
        import torch.nn.functional as F

        return F.mse_loss(model(x), x)

    def scores(self, model, x):
        return (model(x) - x).pow(2).flatten(1).mean(dim=1)

    def log_scale(self, scores):
        return np.log(np.maximum(np.asarray(scores, dtype=float), TINY))

    def assess(self, units, samples, calibration, cfg, classes, type_columns=(), group=None):
        threshold = calibration["threshold"]
        test = decision_report(units, threshold)
        test.update(intervals(units, self.decide(units, calibration), cfg, group))
        if "specificity_target" in calibration:
            test["specificity_target"] = calibration["specificity_target"]
        metrics = {"threshold": threshold, "test": test}
        if "threshold_window" in calibration:
            metrics["threshold_window"] = calibration["threshold_window"]
            metrics["test_windows"] = decision_report(samples, calibration["threshold_window"])
        present = [c for c in type_columns if c in units]
        return metrics, detection_by_type(units, present, threshold)


class AnomalyScore(Reconstruction):
    """Detectors whose output is a sample's anomaly score, >= 0 and higher when less normal
    (a mixture's excess negative log-likelihood, an isolation forest's score): thresholded,
    pooled and assessed like reconstruction errors; the loss (reported, not descended) is
    the mean score."""

    name = "anomaly_score"
    score_name = "anomaly score"
    margin_name = "log(score / the fold's threshold)"

    def loss(self, model, x, y):
        return model(x).mean()

    def scores(self, model, x):
        return model(x)


def decision_report(frame: pd.DataFrame, threshold: float) -> dict:
    """Decision figures at ``threshold``; the error separation uses ``raw_score`` where scores
    are margins (pooled folds), since a ratio of margins means nothing."""
    y, s = frame["label"].to_numpy(), frame[SCORE].to_numpy()
    raw = frame["raw_score"].to_numpy() if "raw_score" in frame else s
    return {**binary_report(y, s, threshold, ranked_by=ranking(frame)), **error_separation(y, raw)}


class Classification(Objective):
    """Classifiers: cross-entropy (optionally class-weighted); scores are probabilities and
    ``score`` is 1 - P(normal). Several classes decide by argmax (``decision: argmax``)."""

    name = "classification"
    score_name = "P(abnormal) = 1 - P(normal)"
    margin_name = "logit P(abnormal) - logit(the fold's threshold)"

    def __init__(self, class_weights: torch.Tensor | None = None, mixup: float = 0.0):
        self.class_weights, self.mixup = class_weights, mixup

    @classmethod
    def for_training(cls, labels=None, n_classes=None, mixup: float = 0.0):
        """Class weights "balanced" over ``labels``: each class counts as much in the loss
        (no labels: unweighted, for scoring). ``mixup``: the Beta(a, a) parameter of mixup
        in training (0: off)."""
        import torch

        if labels is None:
            return cls(mixup=mixup)
        counts = np.bincount(labels, minlength=n_classes or 0).astype(np.float32)
        return cls(torch.from_numpy(counts.sum() / (len(counts) * np.maximum(counts, 1))), mixup)

    def loss(self, model, x, y):
        """Cross-entropy; in training with ``mixup``, on a batch mixed with a shuffled copy of
        itself (Zhang et al. 2018): inputs blended by a weight drawn from Beta(mixup, mixup)
        (torch's seeded generator), the loss blended by the same weight over both labels.
        Validation loss (the model in eval mode) is never mixed."""
        import torch
        import torch.nn.functional as F

        weights = None if self.class_weights is None else self.class_weights.to(x.device)
        if not (self.mixup and model.training):
            return F.cross_entropy(model(x), y, weight=weights)
        share = torch.distributions.Beta(self.mixup, self.mixup).sample().item()
        partner = torch.randperm(len(x)).to(x.device)
        logits = model(share * x + (1 - share) * x[partner])
        return (share * F.cross_entropy(logits, y, weight=weights)
                + (1 - share) * F.cross_entropy(logits, y[partner], weight=weights))

    def scores(self, model, x):
        import torch

        return torch.softmax(model(x), dim=1)

    def abnormality(self, scores):
        return 1.0 - scores[:, 0]

    def raw_scores(self, table):
        return table[self._prob_columns(table)].to_numpy()

    def member_scale(self, val):
        return 1.0  # probabilities already share one scale

    @staticmethod
    def _prob_columns(table: pd.DataFrame) -> list[str]:
        return sorted((c for c in table if c.startswith(PROB)), key=lambda c: int(c[len(PROB):]))

    def score_table(self, scores, meta):
        probs = {f"{PROB}{k}": scores[:, k] for k in range(scores.shape[1])}
        return meta.reset_index(drop=True).assign(**probs, **{SCORE: self.abnormality(scores)})

    def decide(self, units, calibration):
        if calibration.get("decision") == "argmax":
            return units[self._prob_columns(units)].to_numpy().argmax(axis=1)
        return super().decide(units, calibration)

    def log_scale(self, scores):
        p = np.clip(np.asarray(scores, dtype=float), TINY, 1 - TINY)
        return np.log(p / (1 - p))

    def assess(self, units, samples, calibration, cfg, classes, type_columns=(), group=None):
        """Sensitivity, specificity and the ICBHI score follow the challenge (exact abnormal
        class needed); AUROC, pAUC and AUPRC rank abnormal against normal (``ranking``)."""
        from sklearn.metrics import accuracy_score, f1_score

        from pipeline.metrics import icbhi_score

        y, predicted = units["label"].to_numpy().astype(int), self.decide(units, calibration)
        abnormal = (y != 0).astype(int)
        ranked = binary_report(abnormal, ranking(units), 0.0)
        challenge = icbhi_score(y, predicted)
        test = {
            **{name: ranked[name] for name in ("auroc", "pauc", "auprc")},
            "sensitivity": challenge["sensitivity"],
            "specificity": challenge["specificity"],
            "icbhi_score": challenge["score"],
            "accuracy": float(accuracy_score(y, predicted)),
            "f1_macro": float(f1_score(y, predicted, labels=list(range(len(classes))), average="macro",
                                       zero_division=0)),
            "n": len(y),
            **{f"n_{name}": int((y == k).sum()) for k, name in enumerate(classes)},
            **intervals(units, predicted, cfg, group),
        }
        if len(classes) == 2:
            test["f1"] = float(f1_score(y, predicted, zero_division=0))
            test.update(confusion_counts(y, predicted))
        metrics = {
            "task": "binary" if len(classes) == 2 else "multiclass",
            "decision": calibration.get("decision", "threshold"),
            "threshold": calibration["threshold"],
            "test": test,
        }
        flagged = units.assign(label=abnormal, score=(predicted != 0).astype(float))
        present = [c for c in type_columns if c in units]
        return metrics, detection_by_type(flagged, present, 0.5)


OBJECTIVES: dict[str, type[Objective]] = {o.name: o for o in (Reconstruction, AnomalyScore, Classification)}
