"""Who is who without enrollment: cluster the embedding rows of one recording.

:func:`cluster_rows` runs one of three algorithms on L2-normalised rows (optionally centred on
the recording's mean first, which removes what all rows share, e.g. the channel):

* ``"hdbscan"`` — the hdbscan library (``min_cluster_size`` rows; noise rows are given to the
  nearest cluster afterwards);
* ``"ahc"`` — scikit-learn's agglomerative clustering with average linkage on cosine distance,
  cut at ``threshold`` or at a requested number of speakers;
* ``"spectral"`` — the spectralcluster library with its auto-tuned row-wise thresholding
  (the p-percentile is searched for the best eigen-gap ratio).

Speaker counts: ``num_speakers`` fixes the count; ``min_speakers`` / ``max_speakers`` bound it.
Spectral takes them as its own limits; when HDBSCAN's or the AHC threshold's count disagrees,
the rows are re-clustered by AHC with the count clamped into the bounds (logged).

Long recordings: at most ``max_points`` rows (evenly spaced) are clustered; every other row goes
to the nearest cluster centroid (cosine), so memory and time stay bounded.
"""

from __future__ import annotations

import logging

import numpy as np

from unspeech.diarize.profiles import l2_normalize
from unspeech.errors import ConfigError

__all__ = ["CLUSTER_METHODS", "cluster_rows", "assign_to_centroids", "check_speaker_bounds"]

logger = logging.getLogger(__name__)

CLUSTER_METHODS = ("hdbscan", "ahc", "spectral")


def check_speaker_bounds(num_speakers: int | None, min_speakers: int | None, max_speakers: int | None) -> tuple[int, int | None]:
    """Validate the speaker-count options; returns the effective ``(low, high)`` bounds."""
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers), ("max_speakers", max_speakers)):
        if value is not None and int(value) < 1:
            raise ConfigError(f"`{name}` must be >= 1. Received: {name}={value}")
    if num_speakers is not None:
        if (min_speakers is not None and min_speakers > num_speakers) or (max_speakers is not None and max_speakers < num_speakers):
            raise ConfigError(
                f"`num_speakers` must lie within [min_speakers, max_speakers]. Received: num_speakers={num_speakers}, "
                f"min_speakers={min_speakers}, max_speakers={max_speakers}"
            )
        return int(num_speakers), int(num_speakers)
    low = 1 if min_speakers is None else int(min_speakers)
    if max_speakers is not None and max_speakers < low:
        raise ConfigError(f"`max_speakers` must be >= `min_speakers`. Received: min_speakers={low}, max_speakers={max_speakers}")
    return low, None if max_speakers is None else int(max_speakers)


def assign_to_centroids(rows: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the most cosine-similar centroid per row: ``(N, D), (K, D)`` → ``(N,) int64``."""
    return np.argmax(l2_normalize(rows) @ l2_normalize(centroids).T, axis=1).astype(np.int64)


def _ahc(x: np.ndarray, n_clusters: int | None, threshold: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if n_clusters is not None:
        model = AgglomerativeClustering(n_clusters=min(n_clusters, len(x)), metric="cosine", linkage="average")
    else:
        model = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine", linkage="average")
    return model.fit_predict(x)


def _spectral(x: np.ndarray, low: int, high: int | None) -> np.ndarray:
    from spectralcluster import AutoTune, LaplacianType, RefinementName, RefinementOptions, SpectralClusterer
    from spectralcluster.refinement import SymmetrizeType, ThresholdType

    options = RefinementOptions(
        thresholding_soft_multiplier=0.01,
        thresholding_type=ThresholdType.Percentile,
        thresholding_with_binarization=True,
        thresholding_preserve_diagonal=True,
        symmetrize_type=SymmetrizeType.Average,
        refinement_sequence=[RefinementName.RowWiseThreshold, RefinementName.Symmetrize],
    )
    clusterer = SpectralClusterer(
        min_clusters=max(low, 2),
        max_clusters=max(high if high is not None else 8, low, 2),
        refinement_options=options,
        autotune=AutoTune(p_percentile_min=0.40, p_percentile_max=0.95, init_search_step=0.05, search_level=1),
        laplacian_type=LaplacianType.GraphCut,
        row_wise_renorm=True,
        custom_dist="cosine",
    )
    return np.asarray(clusterer.predict(x))


def _hdbscan(x: np.ndarray, min_cluster_size: int) -> np.ndarray:
    import hdbscan

    size = max(2, min(int(min_cluster_size), len(x)))
    labels = hdbscan.HDBSCAN(min_cluster_size=size, metric="euclidean").fit_predict(x)
    if labels.max() < 0:  # everything noise: one speaker
        labels = np.zeros(len(x), dtype=np.int64)
    return labels


def cluster_rows(
    rows: np.ndarray,
    method: str = "ahc",
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    *,
    threshold: float = 0.5,
    min_cluster_size: int = 20,
    center: bool = True,
    max_points: int = 3000,
) -> np.ndarray:
    """Speaker labels of the embedding rows of one recording.

    Parameters
    ----------
    rows : ndarray of shape (N, D), float
    method : {"hdbscan", "ahc", "spectral"}
    num_speakers, min_speakers, max_speakers : int, optional
    threshold : float, AHC cosine-distance cut (used when no count is fixed)
    min_cluster_size : int, HDBSCAN's smallest cluster, in rows
    center : bool, subtract the mean row before normalising
    max_points : int, most rows clustered directly (the rest go to the nearest centroid)

    Returns
    -------
    ndarray of shape (N,), int64: labels ``0..k-1`` (no noise label).
    """
    if method not in CLUSTER_METHODS:
        raise ConfigError(f"`method` must be one of {', '.join(CLUSTER_METHODS)}. Received: method={method!r}")
    low, high = check_speaker_bounds(num_speakers, min_speakers, max_speakers)
    x = np.asarray(rows, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    if center and len(x) > 1:
        x = x - x.mean(axis=0)
    x = l2_normalize(x)
    if len(x) < 3 or (high == 1):
        return np.zeros(len(x), dtype=np.int64)
    fit_idx = np.arange(len(x)) if len(x) <= max_points else np.linspace(0, len(x) - 1, max_points).round().astype(np.int64)
    sample = x[fit_idx]
    if method == "spectral":
        labels = _spectral(sample, low, high)
    elif method == "ahc":
        labels = _ahc(sample, num_speakers, threshold)
    else:
        labels = _hdbscan(sample, min_cluster_size)
    found = len(set(labels[labels >= 0].tolist()))
    wanted = min(max(found, low), high if high is not None else found)
    if wanted != found and method != "spectral":
        logger.info("%s found %d speakers, outside [%s, %s]: re-clustering with AHC into %d", method, found, low, high, wanted)
        labels = _ahc(sample, wanted, threshold)
    kept = np.unique(labels[labels >= 0])
    centroids = np.stack([sample[labels == k].mean(axis=0) for k in kept])
    out = assign_to_centroids(x, centroids)
    fitted = np.searchsorted(kept, labels)
    ok = labels >= 0
    out[fit_idx[ok]] = fitted[ok]
    return out
