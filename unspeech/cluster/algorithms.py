"""Clustering algorithms behind one scikit-learn style interface.

Every clusterer stores its constructor arguments unchanged, learns in ``fit(X)`` (which returns
``self``) and exposes ``labels_`` (``(n,) int64``, ``-1`` = noise), ``n_clusters_`` and, where
the algorithm has a notion of it, ``probabilities_`` (``(n,) float64`` membership strength).
``fit_predict`` comes from :class:`sklearn.base.ClusterMixin`, ``get_params`` / ``set_params`` /
``clone`` from :class:`sklearn.base.BaseEstimator`.

The work is done by the libraries made for it: hdbscan (HDBSCAN), scikit-learn (DBSCAN,
k-means, agglomerative) and spectralcluster (auto-tuned spectral clustering). This module adds
input checks with clear messages, seeds, and guards against the quadratic-memory algorithms
being run on inputs they cannot handle.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from unspeech.errors import ConfigError, DataError

__all__ = [
    "ALGORITHMS",
    "HDBSCANClusterer",
    "DBSCANClusterer",
    "KMeansClusterer",
    "AgglomerativeClusterer",
    "SpectralClusterer",
    "make_clusterer",
    "canonical_name",
    "algorithm_names",
]

AGGLOMERATIVE_MAX_POINTS = 30000
"""Agglomerative clustering stores all pairwise distances: 30k points are ~3.6 GB."""

SPECTRAL_MAX_POINTS = 10000
"""Spectral clustering builds and eigen-decomposes a dense (n, n) affinity matrix."""


def _check_points(X, name: str, min_points: int = 1) -> np.ndarray:
    """Validate a ``(n, D)`` float array; NaN/Inf rows are named by index."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name}: expected vectors of shape (n, dim). Received: shape={X.shape}")
    if X.shape[1] == 0:
        raise DataError(f"{name}: vectors have 0 dimensions")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"{name}: NaN or Inf values in rows {rows[:5].tolist()}{' ...' if rows.size > 5 else ''}")
    if X.shape[0] < min_points:
        raise DataError(f"{name}: needs at least {min_points} vectors. Received: {X.shape[0]} vectors")
    return X


def _check_positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")


def _count(labels: np.ndarray) -> int:
    return int(np.unique(labels[labels >= 0]).size)


def _validate_hdbscan_params(est) -> None:
    """Checks shared by the exact and the large-input HDBSCAN clusterers."""
    _check_positive_int("min_cluster_size", est.min_cluster_size, 2)
    if est.min_samples is not None:
        _check_positive_int("min_samples", est.min_samples, 1)
    if est.cluster_selection_method not in ("eom", "leaf"):
        raise ConfigError(
            "`cluster_selection_method` must be 'eom' or 'leaf'. "
            f"Received: cluster_selection_method={est.cluster_selection_method!r}"
        )
    if est.cluster_selection_epsilon < 0:
        raise ConfigError(
            f"`cluster_selection_epsilon` must be >= 0. Received: cluster_selection_epsilon={est.cluster_selection_epsilon}"
        )


class HDBSCANClusterer(ClusterMixin, BaseEstimator):
    """Hierarchical density-based clustering (the hdbscan library).

    Parameters
    ----------
    min_cluster_size : int
        Smallest group of utterances that counts as a speaker.
    min_samples : int or None
        Neighbourhood size for core distances (``None``: ``min_cluster_size``). Larger values
        declare more points noise.
    metric : str
        Any metric hdbscan accepts; ``euclidean`` on L2-normalised vectors ranks like cosine.
        Metrics no KD/ball tree supports (``cosine``, ``correlation``) take all pairwise
        distances and are limited to 30,000 utterances.
    cluster_selection_epsilon : float
        Clusters closer than this are merged.
    cluster_selection_method : {"eom", "leaf"}
        Excess of mass (fewer, larger clusters) or leaves of the tree (more, smaller ones).
    allow_single_cluster : bool
        Let HDBSCAN answer "one speaker".
    algorithm : str
        hdbscan's tree algorithm; ``"best"`` is the library default (which on more than 60
        dimensions falls back to the quadratic Prim path: for large inputs use
        :class:`~unspeech.cluster.LargeHDBSCANClusterer`).
    core_dist_n_jobs : int
        Parallel jobs for core distances (Boruvka algorithms only; -1: all cores).

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    probabilities_ : ndarray of shape (n,), float64
        Strength of each point's membership in its cluster (0 for noise).
    n_clusters_ : int
    model_ : hdbscan.HDBSCAN
        The fitted library object (its condensed tree, etc.).
    """

    def __init__(
        self,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        metric: str = "euclidean",
        cluster_selection_epsilon: float = 0.0,
        cluster_selection_method: str = "eom",
        allow_single_cluster: bool = False,
        algorithm: str = "best",
        core_dist_n_jobs: int = 1,
    ):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.metric = metric
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.cluster_selection_method = cluster_selection_method
        self.allow_single_cluster = allow_single_cluster
        self.algorithm = algorithm
        self.core_dist_n_jobs = core_dist_n_jobs

    def _library_model(self, n_points: int):
        import hdbscan
        from sklearn.neighbors import BallTree, KDTree

        algorithm = self.algorithm
        if isinstance(self.metric, str) and self.metric not in set(KDTree.valid_metrics) | set(BallTree.valid_metrics):
            # e.g. cosine: no tree supports it, hdbscan's "generic" algorithm takes all pairwise distances
            if n_points > AGGLOMERATIVE_MAX_POINTS:
                raise ConfigError(
                    f"HDBSCAN with metric={self.metric!r} needs all pairwise distances of {n_points} utterances "
                    f"(limit {AGGLOMERATIVE_MAX_POINTS}); use metric='euclidean' on L2-normalised vectors "
                    "(it ranks neighbours exactly like cosine)"
                )
            if algorithm == "best":
                algorithm = "generic"
        return hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            metric=self.metric,
            cluster_selection_epsilon=float(self.cluster_selection_epsilon),
            cluster_selection_method=self.cluster_selection_method,
            allow_single_cluster=self.allow_single_cluster,
            algorithm=algorithm,
            core_dist_n_jobs=self.core_dist_n_jobs,
        )

    def fit(self, X, y=None):
        _validate_hdbscan_params(self)
        X = _check_points(X, "HDBSCAN")
        if X.shape[0] < self.min_cluster_size:
            raise DataError(
                f"HDBSCAN: fewer utterances ({X.shape[0]}) than min_cluster_size={self.min_cluster_size}; "
                "lower --hdbscan_min_cluster_sizes or give more data"
            )
        model = self._library_model(X.shape[0])
        try:
            model.fit(np.asarray(X, dtype=np.float64))  # hdbscan's generic path needs doubles
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"HDBSCAN rejected its settings (metric={self.metric!r}): {exc}") from None
        self.model_ = model
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        self.probabilities_ = np.asarray(model.probabilities_, dtype=np.float64)
        self.n_clusters_ = _count(self.labels_)
        return self

    def membership_vectors(self) -> np.ndarray:
        """Soft membership of every fitted point in every cluster: ``(n, n_clusters_)`` float64.

        Computed on request (hdbscan's prediction data); memory grows as ``n * n_clusters_``.
        """
        import hdbscan

        if not hasattr(self, "model_"):
            raise ConfigError("membership_vectors() needs a fitted clusterer; call fit() first")
        if self.n_clusters_ == 0:
            return np.zeros((len(self.labels_), 0))
        self.model_.generate_prediction_data()
        return np.atleast_2d(hdbscan.all_points_membership_vectors(self.model_)).reshape(len(self.labels_), -1)


class DBSCANClusterer(ClusterMixin, BaseEstimator):
    """Density-based clustering with a fixed radius (scikit-learn's DBSCAN).

    Parameters
    ----------
    eps : float
        Neighbourhood radius (for L2-normalised vectors and the euclidean metric: up to 2).
    min_samples : int
        Points within ``eps`` (the point included) that make a core point.
    metric : str
    n_jobs : int or None

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    n_clusters_ : int
    """

    def __init__(self, eps: float = 0.5, min_samples: int = 5, metric: str = "euclidean", n_jobs: int | None = None):
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.n_jobs = n_jobs

    def fit(self, X, y=None):
        from sklearn.cluster import DBSCAN

        if not self.eps > 0:
            raise ConfigError(f"`eps` must be > 0. Received: eps={self.eps}")
        _check_positive_int("min_samples", self.min_samples)
        X = _check_points(X, "DBSCAN")
        try:
            model = DBSCAN(eps=float(self.eps), min_samples=self.min_samples, metric=self.metric, n_jobs=self.n_jobs).fit(X)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"DBSCAN rejected its settings (metric={self.metric!r}): {exc}") from None
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        self.n_clusters_ = _count(self.labels_)
        return self


class KMeansClusterer(ClusterMixin, BaseEstimator):
    """k-means with k-means++ seeding (scikit-learn); every point gets a cluster.

    Parameters
    ----------
    n_clusters : int
    n_init : int
        Restarts; the best inertia wins.
    max_iter : int
    random_state : int or None

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    cluster_centers_ : ndarray of shape (n_clusters, D)
    n_clusters_ : int
    """

    def __init__(self, n_clusters: int | None = 8, n_init: int = 4, max_iter: int = 300, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y=None):
        from sklearn.cluster import KMeans

        if self.n_clusters is None:
            raise ConfigError("k-means needs the number of clusters (-n/--n-clusters)")
        _check_positive_int("n_clusters", self.n_clusters)
        _check_positive_int("n_init", self.n_init)
        X = _check_points(X, "k-means")
        if X.shape[0] < self.n_clusters:
            raise DataError(f"k-means: fewer utterances ({X.shape[0]}) than n_clusters={self.n_clusters}")
        model = KMeans(
            n_clusters=self.n_clusters, n_init=self.n_init, max_iter=self.max_iter, random_state=self.random_state
        ).fit(X)
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        self.cluster_centers_ = model.cluster_centers_
        self.n_clusters_ = _count(self.labels_)
        return self


class AgglomerativeClusterer(ClusterMixin, BaseEstimator):
    """Agglomerative hierarchical clustering (scikit-learn), cut at a count or a distance.

    Give exactly one of ``n_clusters`` and ``distance_threshold``.

    Parameters
    ----------
    n_clusters : int or None
    distance_threshold : float or None
        Merges stop at this linkage distance (cosine distance lies in [0, 2]).
    linkage : {"average", "complete", "single", "ward"}
        ``ward`` needs the euclidean metric.
    metric : str

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    n_clusters_ : int
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        distance_threshold: float | None = None,
        linkage: str = "average",
        metric: str = "cosine",
    ):
        self.n_clusters = n_clusters
        self.distance_threshold = distance_threshold
        self.linkage = linkage
        self.metric = metric

    def fit(self, X, y=None):
        from sklearn.cluster import AgglomerativeClustering

        if (self.n_clusters is None) == (self.distance_threshold is None):
            raise ConfigError(
                "agglomerative clustering needs exactly one of `n_clusters` (-n) and `distance_threshold` "
                f"(--ahc-threshold). Received: n_clusters={self.n_clusters}, distance_threshold={self.distance_threshold}"
            )
        if self.linkage not in ("average", "complete", "single", "ward"):
            raise ConfigError(f"`linkage` must be average, complete, single or ward. Received: linkage={self.linkage!r}")
        if self.linkage == "ward" and self.metric != "euclidean":
            raise ConfigError(f"ward linkage needs metric='euclidean'. Received: metric={self.metric!r}")
        if self.n_clusters is not None:
            _check_positive_int("n_clusters", self.n_clusters)
        X = _check_points(X, "agglomerative", min_points=2)
        if X.shape[0] > AGGLOMERATIVE_MAX_POINTS:
            raise ConfigError(
                f"agglomerative clustering of {X.shape[0]} utterances needs all pairwise distances "
                f"(limit {AGGLOMERATIVE_MAX_POINTS}); use hdbscan for large inputs"
            )
        if self.n_clusters is not None and X.shape[0] < self.n_clusters:
            raise DataError(f"agglomerative: fewer utterances ({X.shape[0]}) than n_clusters={self.n_clusters}")
        try:
            model = AgglomerativeClustering(
                n_clusters=self.n_clusters,
                distance_threshold=self.distance_threshold,
                linkage=self.linkage,
                metric=self.metric,
            ).fit(X)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"agglomerative clustering rejected its settings (metric={self.metric!r}): {exc}") from None
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        self.n_clusters_ = _count(self.labels_)
        return self


class SpectralClusterer(ClusterMixin, BaseEstimator):
    """Spectral clustering of the cosine affinity with auto-tuned refinement (spectralcluster).

    The affinity matrix is thresholded row-wise at a percentile that is searched for the best
    eigen-gap (Park et al. 2019); the number of clusters comes from the eigen-gap within
    ``[min_clusters, max_clusters]``, or is fixed by ``n_clusters``.

    Parameters
    ----------
    n_clusters : int or None
        Fixes the count (overrides the bounds).
    min_clusters, max_clusters : int or None
    autotune : bool
        Search the thresholding percentile in ``[p_percentile_min, p_percentile_max]``; without
        it ``p_percentile_max`` is used.
    p_percentile_min, p_percentile_max : float
    random_state : int or None
        Seed of the k-means on the spectral embeddings.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    n_clusters_ : int
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        min_clusters: int | None = None,
        max_clusters: int | None = None,
        autotune: bool = True,
        p_percentile_min: float = 0.40,
        p_percentile_max: float = 0.95,
        random_state: int | None = None,
    ):
        self.n_clusters = n_clusters
        self.min_clusters = min_clusters
        self.max_clusters = max_clusters
        self.autotune = autotune
        self.p_percentile_min = p_percentile_min
        self.p_percentile_max = p_percentile_max
        self.random_state = random_state

    def _bounds(self, n: int) -> tuple[int, int]:
        if self.n_clusters is not None:
            _check_positive_int("n_clusters", self.n_clusters)
            return self.n_clusters, self.n_clusters
        low = 1 if self.min_clusters is None else self.min_clusters
        high = n if self.max_clusters is None else self.max_clusters
        _check_positive_int("min_clusters", low)
        _check_positive_int("max_clusters", high)
        if high < low:
            raise ConfigError(f"`max_clusters` must be >= `min_clusters`. Received: min_clusters={low}, max_clusters={high}")
        return low, high

    def fit(self, X, y=None):
        from sklearn.cluster import KMeans
        from spectralcluster import AutoTune, LaplacianType, RefinementName, RefinementOptions
        from spectralcluster import SpectralClusterer as _Library
        from spectralcluster.refinement import SymmetrizeType, ThresholdType

        if not 0 < self.p_percentile_min <= self.p_percentile_max < 1:
            raise ConfigError(
                "need 0 < p_percentile_min <= p_percentile_max < 1. "
                f"Received: p_percentile_min={self.p_percentile_min}, p_percentile_max={self.p_percentile_max}"
            )
        X = _check_points(X, "spectral", min_points=2)
        if X.shape[0] > SPECTRAL_MAX_POINTS:
            raise ConfigError(
                f"spectral clustering of {X.shape[0]} utterances needs a dense (n, n) affinity matrix "
                f"(limit {SPECTRAL_MAX_POINTS}); use hdbscan for large inputs"
            )
        low, high = self._bounds(X.shape[0])
        if X.shape[0] < low:
            raise DataError(f"spectral: fewer utterances ({X.shape[0]}) than the {low} clusters asked for")
        seed = self.random_state

        def seeded_kmeans(spectral_embeddings, n_clusters, custom_dist, max_iter):
            # spectralcluster's own k-means always uses seed 0; ours follows random_state.
            return KMeans(n_clusters=n_clusters, n_init=4, max_iter=max_iter, random_state=seed).fit_predict(spectral_embeddings)

        refinement = RefinementOptions(
            thresholding_soft_multiplier=0.01,
            thresholding_type=ThresholdType.Percentile,
            thresholding_with_binarization=True,
            thresholding_preserve_diagonal=True,
            symmetrize_type=SymmetrizeType.Average,
            p_percentile=self.p_percentile_max,
            refinement_sequence=[RefinementName.RowWiseThreshold, RefinementName.Symmetrize],
        )
        tune = (
            AutoTune(p_percentile_min=self.p_percentile_min, p_percentile_max=self.p_percentile_max, init_search_step=0.05)
            if self.autotune and self.p_percentile_min < self.p_percentile_max
            else None
        )
        model = _Library(
            min_clusters=low,
            max_clusters=high,
            refinement_options=refinement,
            autotune=tune,
            laplacian_type=LaplacianType.GraphCut,
            row_wise_renorm=True,
            custom_dist="cosine",
            post_eigen_cluster_function=seeded_kmeans,
        )
        self.labels_ = np.asarray(model.predict(np.asarray(X, dtype=np.float64)), dtype=np.int64)
        self.n_clusters_ = _count(self.labels_)
        return self


ALGORITHMS: dict[str, type] = {
    "hdbscan": HDBSCANClusterer,
    "dbscan": DBSCANClusterer,
    "kmeans": KMeansClusterer,
    "agglomerative": AgglomerativeClusterer,
    "spectral": SpectralClusterer,
}
"""Algorithm name (as given to ``-a/--cluster-algorithm``) -> clusterer class."""

_ALIASES = {"ahc": "agglomerative", "k-means": "kmeans", "hdbscan_large": "hdbscan-large"}


def _registry() -> dict[str, type]:
    from unspeech.cluster.large import LargeHDBSCANClusterer

    return {**ALGORITHMS, "hdbscan-large": LargeHDBSCANClusterer}


def canonical_name(name: str) -> str:
    """The registry name of an algorithm (aliases resolved); unknown names raise :class:`ConfigError`."""
    registry = _registry()
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in registry:
        raise ConfigError(f"unknown clustering algorithm {name!r}; choose from {', '.join(sorted(registry))}")
    return key


def algorithm_names() -> list[str]:
    """Every name :func:`make_clusterer` accepts (aliases excluded)."""
    return sorted(_registry())


def make_clusterer(name: str, **params) -> BaseEstimator:
    """A fresh, unfitted clusterer by name: ``make_clusterer("hdbscan", min_cluster_size=8)``.

    Parameters the algorithm does not take raise :class:`ConfigError` (so does an unknown name).
    """
    key = canonical_name(name)
    cls = _registry()[key]
    accepted = set(cls().get_params())
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(f"{key} does not take {', '.join(unknown)}; it takes {', '.join(sorted(accepted))}")
    return cls(**params)
