"""The million-utterance path: PCA to a few tens of dims, then Boruvka KD-tree HDBSCAN.

Why: hdbscan's ``algorithm="best"`` switches to the Prim minimum spanning tree on data with more
than 60 dimensions, which is quadratic in the number of points (about 7 minutes for 50k
100-dim vectors on two cores, so days for a million). The dual-tree Boruvka algorithm is close
to ``n log n`` but its KD-tree only prunes well in low dimension. Speaker information in
utterance embeddings lives in a low-rank subspace (the assumption behind PLDA), so projecting
onto the leading principal components keeps the between-speaker structure and drops mostly
within-speaker noise; HDBSCAN then runs with ``boruvka_kdtree`` and parallel core distances.

``benchmarks/cluster_bench.py`` measures both paths in one run; the agreement of this path with
exact HDBSCAN on the full dimensions is part of that benchmark.
"""

from __future__ import annotations

import logging

import numpy as np

from unspeech.cluster.algorithms import HDBSCANClusterer, _check_points, _check_positive_int
from unspeech.errors import ConfigError, DataError

__all__ = ["LargeHDBSCANClusterer", "reduce_dimensions", "LARGE_INPUT_SIZE"]

logger = logging.getLogger(__name__)

LARGE_INPUT_SIZE = 20000
"""From this many utterances on, the command line uses the large path by default."""


def reduce_dimensions(
    X: np.ndarray,
    n_components: int,
    *,
    fit_size: int = 100000,
    random_state: int | None = None,
    chunk: int = 1 << 16,
):
    """Project ``(n, D)`` vectors onto their leading principal components.

    The PCA basis is fitted on at most ``fit_size`` randomly chosen rows (a seeded subsample
    estimates a 100-dim covariance very well) and applied to all rows in chunks.

    Returns
    -------
    Z : ndarray of shape (n, n_components), float64
    pca : sklearn.decomposition.PCA
        The fitted projection (``explained_variance_ratio_`` tells how much was kept).
    """
    from sklearn.decomposition import PCA

    n, dim = X.shape
    if not 1 <= n_components <= dim:
        raise ConfigError(f"`n_components` must be in [1, {dim}] for {dim}-dim vectors. Received: n_components={n_components}")
    rng = np.random.default_rng(random_state)
    sample = X if n <= fit_size else X[np.sort(rng.choice(n, size=fit_size, replace=False))]
    pca = PCA(n_components=n_components, svd_solver="full").fit(np.asarray(sample, dtype=np.float64))
    Z = np.empty((n, n_components), dtype=np.float64)
    for start in range(0, n, chunk):
        Z[start:start + chunk] = pca.transform(np.asarray(X[start:start + chunk], dtype=np.float64))
    return Z, pca


class LargeHDBSCANClusterer(HDBSCANClusterer):
    """HDBSCAN for hundreds of thousands to millions of utterances.

    Projects onto ``n_components`` principal components (skipped when the vectors already have
    that few dims) and runs hdbscan's ``boruvka_kdtree`` with ``core_dist_n_jobs`` workers.
    Euclidean metric only (PCA preserves euclidean geometry, not arbitrary metrics).

    Parameters
    ----------
    min_cluster_size, min_samples, cluster_selection_epsilon, cluster_selection_method,
    allow_single_cluster, core_dist_n_jobs
        As in :class:`~unspeech.cluster.HDBSCANClusterer`.
    n_components : int
        Dimensions kept by PCA.
    pca_fit_size : int
        Rows used to fit the PCA basis.
    random_state : int or None
        Seed of the PCA subsample.

    Attributes
    ----------
    labels_, probabilities_, n_clusters_, model_
        As in :class:`~unspeech.cluster.HDBSCANClusterer`.
    pca_ : sklearn.decomposition.PCA or None
    explained_variance_ : float
        Fraction of the variance the projection kept (1.0 without PCA).
    """

    def __init__(
        self,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        n_components: int = 24,
        cluster_selection_epsilon: float = 0.0,
        cluster_selection_method: str = "eom",
        allow_single_cluster: bool = False,
        core_dist_n_jobs: int = 1,
        pca_fit_size: int = 100000,
        random_state: int | None = None,
    ):
        super().__init__(
            min_cluster_size=min_cluster_size,
            min_samples=min_samples,
            metric="euclidean",
            cluster_selection_epsilon=cluster_selection_epsilon,
            cluster_selection_method=cluster_selection_method,
            allow_single_cluster=allow_single_cluster,
            algorithm="boruvka_kdtree",
            core_dist_n_jobs=core_dist_n_jobs,
        )
        self.n_components = n_components
        self.pca_fit_size = pca_fit_size
        self.random_state = random_state

    def fit(self, X, y=None):
        self._validate()
        _check_positive_int("n_components", self.n_components)
        _check_positive_int("pca_fit_size", self.pca_fit_size, 2)
        X = _check_points(X, "HDBSCAN (large)")
        if X.shape[0] < self.min_cluster_size:
            raise DataError(
                f"HDBSCAN: fewer utterances ({X.shape[0]}) than min_cluster_size={self.min_cluster_size}; "
                "lower --hdbscan_min_cluster_sizes or give more data"
            )
        if X.shape[1] > self.n_components:
            Z, self.pca_ = reduce_dimensions(
                X, self.n_components, fit_size=self.pca_fit_size, random_state=self.random_state
            )
            self.explained_variance_ = float(self.pca_.explained_variance_ratio_.sum())
            logger.info(
                "PCA %d -> %d dims keeps %.1f%% of the variance", X.shape[1], self.n_components, 100 * self.explained_variance_
            )
        else:
            Z, self.pca_, self.explained_variance_ = np.asarray(X, dtype=np.float64), None, 1.0
        model = self._library_model()
        model.fit(Z)
        self.model_ = model
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        self.probabilities_ = np.asarray(model.probabilities_, dtype=np.float64)
        self.n_clusters_ = int(np.unique(self.labels_[self.labels_ >= 0]).size)
        return self
