"""Classical detectors on the deep studies' own features, folds and calibration: do the
deep models earn their place?

Detectors fitted in closed form (``closed_form``: the training loop calls ``fit`` once on
the training inputs and labels instead of descending a loss):

- ``pca_ae`` and ``knn_ae`` score like an autoencoder, by the mean squared error of a
  reconstruction (the ``reconstruction`` objective);
- ``gmm_density`` and ``isolation_forest`` return an anomaly score of their own, higher
  for less normal inputs (the ``anomaly_score`` objective);
- ``band_stats_boosting`` is a gradient-boosted tree classifier on per-band statistics
  (the ``classification`` objective).

``band_stats_linear`` is a logistic regression on the same statistics, trained by the
shared loop like any classifier. scikit-learn fits the mixture and the trees; what they
learnt is copied into buffers and scored in torch, so a checkpoint is data like every
other (no pickled estimator) and scores match scikit-learn's (tests/test_baselines.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pipeline.models import register
from pipeline.models.spectrogram_layers import check_input, input_layers


class ClosedForm(nn.Module):
    """A model fitted by one ``fit(x, y)`` call, whose fitted state is buffers whose shapes
    depend on the data (a bank of inputs, a forest's nodes): loading takes the saved shapes."""

    closed_form = True

    def fit(self, x: torch.Tensor, y: torch.Tensor | None = None) -> ClosedForm:
        raise NotImplementedError

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, buffer in self._buffers.items():
            found = state_dict.get(prefix + name)
            if buffer is not None and found is not None:
                self._buffers[name] = torch.empty_like(found)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _sklearn_seed() -> int:
    """A seed for a scikit-learn estimator, drawn from torch's seeded generator (the fit's seed)."""
    return int(torch.randint(0, 2**31 - 1, ()).item())


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


@register("pca_ae")
class PCAReconstruction(ClosedForm):
    """A linear autoencoder in closed form: the input projected on the first ``components``
    principal axes of the training inputs (fewer where the training set has fewer)."""

    def __init__(self, input_dim: int, components: int = 32):
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("axes", torch.zeros(components, input_dim))

    @torch.no_grad()
    def fit(self, x, y=None):
        mean = x.mean(dim=0)
        # in float64: the axes of a few hundred 3,760-wide inputs, without float32's loss
        _, _, vh = torch.linalg.svd((x - mean).double(), full_matrices=False)
        axes = torch.zeros_like(self.axes)
        kept = min(len(axes), len(vh))
        axes[:kept] = vh[:kept].to(axes.dtype)
        self.mean, self.axes = mean, axes
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.axes.T @ self.axes + self.mean


@register("knn_ae")
class NearestNeighbours(ClosedForm):
    """The mean of the ``k`` nearest training inputs (Euclidean) as the reconstruction; at
    k = 1 a sample's error is its squared distance to the nearest training input, over the
    input width: the nearest-neighbour distance detector."""

    def __init__(self, input_dim: int, k: int = 1):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self.register_buffer("bank", torch.zeros(0, input_dim))

    @torch.no_grad()
    def fit(self, x, y=None):
        if len(x) < self.k:
            raise ValueError(f"k = {self.k} nearest neighbours need as many training inputs, got {len(x)}")
        self.bank = x.clone()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # squared distances by expansion, exact enough to rank and deterministic (no cdist switch)
        distances = (x.pow(2).sum(1, keepdim=True) - 2 * x @ self.bank.T
                     + self.bank.pow(2).sum(1)[None, :])
        nearest = distances.topk(self.k, dim=1, largest=False).indices
        return self.bank[nearest].mean(dim=1)


@register("gmm_density")
class GaussianMixtureDensity(ClosedForm):
    """A Gaussian mixture of ``components`` diagonal-covariance components (a full
    covariance of thousands of inputs does not fit a few hundred samples). A sample's score
    is its negative log-likelihood above the lowest the mixture allows, per input:
    ``(log max p - log p(x)) / input_dim`` >= 0, where ``max p`` bounds the density by each
    component's peak."""

    def __init__(self, input_dim: int, components: int = 4):
        super().__init__()
        self.components = components
        self.register_buffer("log_weights", torch.zeros(components, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(components, input_dim, dtype=torch.float64))
        self.register_buffer("precisions", torch.ones(components, input_dim, dtype=torch.float64))

    @torch.no_grad()
    def fit(self, x, y=None):
        from sklearn.mixture import GaussianMixture

        if len(x) < self.components:
            raise ValueError(f"{self.components} mixture components need as many training inputs, "
                             f"got {len(x)}")
        mixture = GaussianMixture(self.components, covariance_type="diag",
                                  random_state=_sklearn_seed()).fit(_numpy(x).astype(np.float64))
        device = self.means.device
        self.log_weights = torch.from_numpy(np.log(mixture.weights_)).to(device)
        self.means = torch.from_numpy(mixture.means_).to(device)
        self.precisions = torch.from_numpy(1.0 / mixture.covariances_).to(device)
        return self

    def _log_peaks(self) -> torch.Tensor:
        """log(weight_k x component k's density at its mean), per component."""
        width = self.means.shape[1]
        return (self.log_weights - 0.5 * width * math.log(2 * math.pi)
                + 0.5 * self.precisions.log().sum(dim=1))

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        squared = ((x.pow(2) @ self.precisions.T) - 2 * x @ (self.means * self.precisions).T
                   + (self.means.pow(2) * self.precisions).sum(dim=1))
        return torch.logsumexp(self._log_peaks() - 0.5 * squared, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        floor = torch.logsumexp(self._log_peaks(), dim=0)
        return ((floor - self.log_likelihood(x)) / self.means.shape[1]).float()


TREE_TABLES = {"feature": np.int64, "threshold": np.float64, "left": np.int64,
               "right": np.int64, "value": np.float64}


class Forest(ClosedForm):
    """Trees kept as padded node tables, one row per tree: a node's input column, threshold
    (go left at or below it), children (a leaf points at itself) and value."""

    def __init__(self):
        super().__init__()
        for name, dtype in TREE_TABLES.items():
            self.register_buffer(name, torch.from_numpy(np.zeros((0, 1), dtype=dtype)))

    def set_trees(self, trees: list[dict[str, np.ndarray]]) -> None:
        """``trees``: per tree, its nodes' feature, threshold, left and right (a node index,
        or -1 at a leaf) and value arrays."""
        width = max(len(t["value"]) for t in trees)
        for name, dtype in TREE_TABLES.items():
            table = np.zeros((len(trees), width), dtype=dtype)
            for i, tree in enumerate(trees):
                column = np.asarray(tree[name], dtype=dtype)
                if name in ("left", "right"):  # a leaf's children: itself, where a walk stays
                    column = np.where(column < 0, np.arange(len(column)), column)
                elif name == "feature":  # a leaf's is never read
                    column = np.maximum(column, 0)
                table[i, : len(column)] = column
            setattr(self, name, torch.from_numpy(table).to(self.value.device))

    def leaf_values(self, x: torch.Tensor) -> torch.Tensor:
        """(N, trees): the value of the leaf each sample reaches in each tree."""
        trees, width = self.value.shape
        offset = torch.arange(trees, device=x.device) * width
        node = offset.expand(len(x), trees)
        feature, threshold = self.feature.reshape(-1), self.threshold.reshape(-1)
        left, right = self.left.reshape(-1), self.right.reshape(-1)
        for _ in range(width):  # at most as many steps as nodes; stops once all sit at leaves
            goes_left = x.gather(1, feature[node]).double() <= threshold[node]
            step = torch.where(goes_left, left[node], right[node]) + offset
            if torch.equal(step, node):
                break
            node = step
        return self.value.reshape(-1)[node]


def check_width(x: torch.Tensor, width: int) -> None:
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"expected input (N, {width}), got {tuple(x.shape)}")


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """The mean depth of an unsuccessful search in a binary search tree of ``n`` points
    (Liu et al., 2008): what a leaf of ``n`` training samples adds to an isolation path."""
    n = np.asarray(n, dtype=np.float64)
    out = np.where(n == 2, 1.0, 0.0)
    more = n > 2
    out[more] = 2 * (np.log(n[more] - 1) + np.euler_gamma) - 2 * (n[more] - 1) / n[more]
    return out


@register("isolation_forest")
class IsolationForestScore(Forest):
    """Isolation forest (scikit-learn's, ``trees`` trees on ``max_samples`` inputs each); a
    sample's score is ``2 ** (-mean path length / c(max_samples))`` in (0, 1]: shorter
    paths, quicker isolation, more abnormal (scikit-learn's ``-score_samples``)."""

    def __init__(self, input_dim: int, trees: int = 100, max_samples: int = 256):
        super().__init__()
        self.input_dim, self.trees, self.max_samples = input_dim, trees, max_samples
        self.register_buffer("path_norm", torch.ones((), dtype=torch.float64))

    @torch.no_grad()
    def fit(self, x, y=None):
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(n_estimators=self.trees, max_samples=min(self.max_samples, len(x)),
                                 random_state=_sklearn_seed()).fit(_numpy(x))
        tables = []
        for tree in forest.estimators_:
            t = tree.tree_
            depth = np.zeros(t.node_count)
            for node in range(t.node_count):  # parents come before their children
                for child in (t.children_left[node], t.children_right[node]):
                    if child >= 0:
                        depth[child] = depth[node] + 1
            tables.append({"feature": t.feature, "threshold": t.threshold, "left": t.children_left,
                           "right": t.children_right,
                           "value": depth + _average_path_length(t.n_node_samples)})
        self.set_trees(tables)
        self.path_norm = torch.tensor(float(_average_path_length(np.array([forest.max_samples_]))[0]),
                                      dtype=torch.float64, device=self.value.device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_width(x, self.input_dim)
        paths = self.leaf_values(x).mean(dim=1)
        return torch.pow(2.0, -paths / self.path_norm).float()


class BandStatistics(nn.Module):
    """(N, 1, n_mels, frames) log-mels -> (N, features): each mel band's mean, standard
    deviation, range and mean absolute frame-to-frame change over the cycle. With
    ``band_norm`` each band's mean is removed first, as in the CNNs, so that a device's
    response does not count: the means are then 0 and left out (3 statistics a band)."""

    def __init__(self, n_mels: int, frames: int, band_norm: bool):
        super().__init__()
        if frames < 2:
            raise ValueError(f"a frame-to-frame change needs at least 2 frames, got {frames}")
        self.n_mels, self.frames, self.band_norm = n_mels, frames, band_norm
        self.augment = input_layers(None, band_norm)
        self.features = (3 if band_norm else 4) * n_mels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.n_mels, self.frames)
        bands = self.augment(x)[:, 0]  # (N, n_mels, frames)
        spread = [bands.std(-1), bands.amax(-1) - bands.amin(-1), bands.diff(dim=-1).abs().mean(-1)]
        return torch.cat(spread if self.band_norm else [bands.mean(-1), *spread], dim=1)


@register("band_stats_linear")
class BandStatsLinear(nn.Module):
    """Logistic regression on the ``BandStatistics`` of a cycle, standardised (batch
    statistics in training, their running averages in scoring): (N, 1, n_mels, frames) ->
    (N, n_classes) logits."""

    def __init__(self, n_mels: int, frames: int, n_classes: int = 2, band_norm: bool = True):
        super().__init__()
        self.statistics = BandStatistics(n_mels, frames, band_norm)
        self.standardise = nn.BatchNorm1d(self.statistics.features, affine=False)
        self.linear = nn.Linear(self.statistics.features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.standardise(self.statistics(x)))


@register("band_stats_boosting")
class BandStatsBoosting(Forest):
    """Histogram gradient boosting (scikit-learn's, a fixed number of ``iterations``) on
    the ``BandStatistics`` of a cycle: (N, 1, n_mels, frames) -> (N, n_classes) logits (two
    classes: 0 for normal and the boosted log-odds). Unweighted: calibration's threshold
    answers the class imbalance (scikit-learn's class weights would also slow its binning
    twentyfold, to weighted quantiles)."""

    def __init__(self, n_mels: int, frames: int, n_classes: int = 2, band_norm: bool = True,
                 iterations: int = 100, learning_rate: float = 0.1, max_leaf_nodes: int = 31,
                 l2: float = 0.0):
        super().__init__()
        self.statistics = BandStatistics(n_mels, frames, band_norm)
        self.n_classes, self.iterations, self.learning_rate = n_classes, iterations, learning_rate
        self.max_leaf_nodes, self.l2 = max_leaf_nodes, l2
        per_iteration = 1 if n_classes == 2 else n_classes
        self.register_buffer("baseline", torch.zeros(per_iteration, dtype=torch.float64))

    @torch.no_grad()
    def fit(self, x, y=None):
        from sklearn.ensemble import HistGradientBoostingClassifier

        if y is None:
            raise ValueError("band_stats_boosting is a classifier: fit it on labels")
        labels = _numpy(y)
        if len(np.unique(labels)) != self.n_classes:
            raise ValueError(f"expected training labels of {self.n_classes} classes, got "
                             f"{sorted(np.unique(labels).tolist())}")
        boosting = HistGradientBoostingClassifier(
            max_iter=self.iterations, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, l2_regularization=self.l2, early_stopping=False,
            random_state=_sklearn_seed(),
        ).fit(_numpy(self.statistics(x)), labels)
        # scikit-learn's fitted trees (a private attribute: the pinned release's layout,
        # checked against its predict_proba by tests/test_baselines.py)
        tables = [{"feature": n["feature_idx"].astype(np.int64), "threshold": n["num_threshold"],
                   "left": np.where(n["is_leaf"], -1, n["left"].astype(np.int64)),
                   "right": np.where(n["is_leaf"], -1, n["right"].astype(np.int64)),
                   "value": np.where(n["is_leaf"], n["value"], 0.0)}
                  for per_iteration in boosting._predictors for n in (p.nodes for p in per_iteration)]
        self.set_trees(tables)
        self.baseline = torch.from_numpy(np.ravel(boosting._baseline_prediction).astype(np.float64)
                                         ).to(self.value.device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = self.leaf_values(self.statistics(x))
        raw = values.reshape(len(x), -1, len(self.baseline)).sum(dim=1) + self.baseline
        if self.n_classes == 2:  # softmax([0, r]) = (1 - sigmoid(r), sigmoid(r))
            raw = torch.cat([torch.zeros_like(raw), raw], dim=1)
        return raw.float()
