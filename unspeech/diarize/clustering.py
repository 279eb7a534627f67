"""Who is who without enrollment: cluster the embedding rows of one recording.

:func:`cluster_rows` runs one of the clusterers of :mod:`unspeech.cluster` on L2-normalised rows
(optionally centred on the recording's mean first, which removes what all rows share, e.g. the
channel):

* ``"hdbscan"`` — :class:`~unspeech.cluster.HDBSCANClusterer` (``min_cluster_size`` rows); it
  counts the speakers itself, and its noise rows are given to the nearest cluster (never counted
  as speakers);
* ``"ahc"`` — agglomerative clustering, average linkage on cosine distance, cut where it holds the
  estimated number of clusters of at least ``min_cluster_size`` rows; smaller clusters (turn
  boundaries, overlap, noise) join the nearest of those (:func:`ahc_with_count`);
* ``"spectral"`` — :class:`~unspeech.cluster.SpectralClusterer` (spectralcluster, auto-tuned
  row-wise thresholding) into the estimated number of clusters; clusters under
  ``min_cluster_size`` rows join the nearest larger one.

Speaker counts (``ahc`` and ``spectral``, and the ``enroll`` backend that clusters like ``ahc``):
``num_speakers`` fixes the count. Otherwise ``count_rule`` estimates it
(:mod:`unspeech.diarize.speaker_count`; the first three rules first test for a single speaker: rows
1 s apart no more alike than any two rows):

* ``"consensus"`` (the diarizer's default) — the majority of eight eigengap counts (two graphs,
  two Laplacians, two ways of choosing the neighbour count; see
  :mod:`~unspeech.diarize.speaker_count`): better or equal to ``"eigengap"`` alone on every
  development set, real and synthetic;
* ``"eigengap"`` — the normalised maximum eigengap of the recording's p-nearest-neighbour affinity
  graph (NME-SC, Park et al. 2019);
* ``"relative"`` — AHC cut at 1.5 times the recording's own within-turn distance (the
  median cosine distance of rows 1 s apart), so the cut follows the embedding space and the corpus;
* ``"threshold"`` — the old rule: AHC cut at cosine distance ``threshold`` (0.5, tuned on synthetic
  voices), clusters under ``min_cluster_size`` rows not counted (:func:`ahc_speakers`). It
  over-counted real speech badly (38 speakers found for 23 in 8 LibriSpeech conversations; 15 in
  a 3-person interview).

``min_speakers`` / ``max_speakers`` bound the estimate; when a clusterer's count still lies outside
them (HDBSCAN, or after small clusters were merged), the rows are re-clustered by AHC into the
nearest allowed count (logged).

Failures of a clustering library (spectralcluster's auto-tuning raising, an eigensolver not
converging, HDBSCAN failing) never fail the recording: a warning is logged and AHC with the
estimated count (or the threshold rule, when the estimate itself failed) is used instead.

Long recordings: at most ``max_points`` rows (evenly spaced; for spectral at most
:data:`SPECTRAL_MAX_POINTS`) are clustered; every other row goes to the nearest cluster centroid
(cosine), so memory and time stay bounded.
"""

from __future__ import annotations

import logging

import numpy as np

from unspeech.diarize.profiles import l2_normalize
from unspeech.diarize.row_source import RowView, block_mean
from unspeech.errors import ConfigError

__all__ = [
    "CLUSTER_METHODS",
    "COUNT_RULES",
    "SPECTRAL_MAX_POINTS",
    "ahc_speakers",
    "ahc_with_count",
    "merge_small_clusters",
    "cluster_rows",
    "assign_to_centroids",
    "check_speaker_bounds",
    "check_count_rule",
]

logger = logging.getLogger(__name__)

CLUSTER_METHODS = ("hdbscan", "ahc", "spectral")

COUNT_RULES = ("relative", "eigengap", "consensus", "threshold")
"""How ``ahc`` and ``spectral`` estimate the speaker count when none is given (module notes)."""

SPECTRAL_MAX_POINTS = 300
"""Most rows spectral clustering sees (its auto-tuning solves a dense eigenproblem per step)."""

AHC_COUNT_MAX_POINTS = 3000
"""Most rows the threshold rule looks at when it estimates a count (AHC keeps all pairwise distances)."""


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


def check_count_rule(count_rule: str) -> None:
    """Raise :class:`ConfigError` unless ``count_rule`` is one of :data:`COUNT_RULES`."""
    if count_rule not in COUNT_RULES:
        raise ConfigError(f"`count_rule` must be one of {', '.join(COUNT_RULES)}. Received: count_rule={count_rule!r}")


def assign_to_centroids(rows: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the most cosine-similar centroid per row: ``(N, D), (K, D)`` → ``(N,) int64``."""
    c = l2_normalize(centroids).T
    step = 1 << 14  # rows per block (no normalised copy of all rows)
    out = np.empty(len(rows), dtype=np.int64)
    for a in range(0, len(rows), step):
        out[a:a + step] = np.argmax(l2_normalize(rows[a:a + step]) @ c, axis=1)
    return out


def merge_small_clusters(x: np.ndarray, labels: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """Rows of clusters under ``min_cluster_size`` rows (and noise, label -1) join the nearest larger
    cluster (cosine to its centroid); rows of the larger clusters keep theirs.

    Short-lived clusters are mostly turn boundaries, overlap and noise rather than speakers, so
    they are never counted as speakers; when no cluster is that large, the largest one is kept.

    Parameters
    ----------
    x : ndarray of shape (N, D), L2-normalised rows
    labels : ndarray of shape (N,), int; -1 = noise
    min_cluster_size : int

    Returns
    -------
    ndarray of shape (N,), int64: labels ``0..k-1``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not (labels >= 0).any():
        return np.zeros(len(labels), dtype=np.int64)
    sizes = np.bincount(labels[labels >= 0])
    big = np.flatnonzero(sizes >= min_cluster_size)
    if len(big) == 0:
        big = np.array([int(sizes.argmax())])
    keep = np.isin(labels, big)
    out = np.empty(len(labels), dtype=np.int64)
    out[keep] = np.searchsorted(big, labels[keep])
    if not keep.all():
        out[~keep] = assign_to_centroids(x[~keep], np.stack([x[labels == k].mean(axis=0) for k in big]))
    return out


def _spectral(x: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    from unspeech.cluster import SpectralClusterer

    n_clusters = min(n_clusters, len(x))
    try:
        with threadpool_limits(1):  # small dense eigenproblems: threads only add contention
            return SpectralClusterer(n_clusters=n_clusters, random_state=seed).fit(x).labels_
    except Exception as exc:  # noqa: BLE001 - e.g. spectralcluster's auto-tuning: never fail the recording
        logger.warning("spectral clustering failed (%s: %s); using AHC with %d speakers instead",
                       type(exc).__name__, exc, n_clusters)
        return _ahc(x, n_clusters)


def _ahc(x: np.ndarray, n_clusters: int) -> np.ndarray:
    from unspeech.cluster import AgglomerativeClusterer

    return AgglomerativeClusterer(n_clusters=min(n_clusters, len(x))).fit(x).labels_


def ahc_speakers(x: np.ndarray, threshold: float, min_cluster_size: int) -> np.ndarray:
    """AHC cut at ``threshold``; clusters under ``min_cluster_size`` rows join the nearest larger one.

    The count rule ``"threshold"``. Returns labels ``0..k-1`` of ``(N,)``.
    """
    from unspeech.cluster import AgglomerativeClusterer

    return merge_small_clusters(x, AgglomerativeClusterer(distance_threshold=threshold).fit(x).labels_, min_cluster_size)


def ahc_with_count(x: np.ndarray, n_speakers: int, min_cluster_size: int) -> np.ndarray:
    """AHC (average linkage, cosine) cut where it first holds ``n_speakers`` clusters of at least
    ``min_cluster_size`` rows; smaller clusters join the nearest of those.

    Cutting at exactly ``n_speakers`` clusters would let a few stray rows take a speaker's place;
    the cut is lowered (more clusters) until that many are large enough, at most to four times
    ``n_speakers`` + 20 clusters. When that many never are, the large ones found are the speakers.

    Parameters
    ----------
    x : ndarray of shape (N, D), L2-normalised rows
    n_speakers : int
    min_cluster_size : int

    Returns
    -------
    ndarray of shape (N,), int64: labels ``0..k-1``, ``k <= n_speakers``.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    if n_speakers <= 1 or len(x) < 2:
        return np.zeros(len(x), dtype=np.int64)
    tree = linkage(x, method="average", metric="cosine")
    best = None
    for cut in range(n_speakers, min(len(x), 4 * n_speakers + 20) + 1):
        labels = fcluster(tree, cut, criterion="maxclust").astype(np.int64) - 1
        n_big = int((np.bincount(labels) >= min_cluster_size).sum())
        if best is None or n_big > best[0]:
            best = (n_big, labels)
        if n_big >= n_speakers:
            break
    return merge_small_clusters(x, best[1], min_cluster_size)


def _estimated_count(x: np.ndarray, low: int, high: int | None, count_rule: str, threshold: float,
                     min_cluster_size: int, positions: np.ndarray | None, lag: int) -> int:
    """The speaker count of ``count_rule``; a failing estimate falls back to the fixed threshold rule."""
    if count_rule in ("relative", "eigengap", "consensus"):
        from unspeech.diarize.speaker_count import estimate_num_speakers

        try:
            count, info = estimate_num_speakers(x, low, high, rule=count_rule, positions=positions, lag=lag,
                                                min_cluster_size=min_cluster_size)
            logger.info("speaker count (%s): %s", count_rule, info.describe())
            return count
        except Exception as exc:  # noqa: BLE001 - e.g. an eigensolver that does not converge must not fail the recording
            logger.warning("%s speaker count failed (%s: %s); using the AHC threshold rule instead",
                           count_rule, type(exc).__name__, exc)
    if len(x) > AHC_COUNT_MAX_POINTS:
        x = x[np.linspace(0, len(x) - 1, AHC_COUNT_MAX_POINTS).round().astype(np.int64)]
    count = len(np.unique(ahc_speakers(x, threshold, min_cluster_size)))
    logger.info("speaker count (AHC cut at cosine distance %g): %d", threshold, count)
    return count


def _fit(method: str, x: np.ndarray, count: int | None, fixed: bool, min_cluster_size: int, seed: int) -> np.ndarray:
    """Labels of the rows ``x`` (L2-normalised); ``count`` is None for HDBSCAN, ``fixed`` when the user gave it."""
    if method == "hdbscan":
        from unspeech.cluster import HDBSCANClusterer

        try:
            labels = HDBSCANClusterer(min_cluster_size=max(2, min(int(min_cluster_size), len(x)))).fit(x).labels_
        except Exception as exc:  # noqa: BLE001 - a library failure must not fail the recording
            logger.warning("HDBSCAN failed (%s: %s); using AHC with an estimated count instead", type(exc).__name__, exc)
            return ahc_with_count(x, _count_or_one(x), min_cluster_size)
        return merge_small_clusters(x, labels, 1)  # noise joins the nearest cluster; all noise: one speaker
    if count <= 1:
        return np.zeros(len(x), dtype=np.int64)
    if fixed:
        return _spectral(x, count, seed) if method == "spectral" else _ahc(x, count)
    if method == "ahc":
        return ahc_with_count(x, count, min_cluster_size)
    return merge_small_clusters(x, _spectral(x, count, seed), min_cluster_size)


def _count_or_one(x: np.ndarray) -> int:
    """The default ("relative") count of rows ``x`` for a fallback; 1 if even that fails."""
    from unspeech.diarize.speaker_count import estimate_num_speakers

    try:
        return estimate_num_speakers(x)[0]
    except Exception:  # noqa: BLE001 - the fallback of a fallback
        return 1


def cluster_rows(
    rows: np.ndarray,
    method: str = "ahc",
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    *,
    count_rule: str = "relative",
    threshold: float = 0.5,
    min_cluster_size: int = 20,
    center: bool = True,
    max_points: int = 3000,
    seed: int = 0,
    positions: np.ndarray | None = None,
    lag: int = 10,
) -> np.ndarray:
    """Speaker labels of the embedding rows of one recording.

    Parameters
    ----------
    rows : ndarray of shape (N, D), float, in time order, or a :class:`unspeech.diarize.row_source.RowView`
        (a long recording's rows on disk: read in blocks, never copied whole)
    method : {"hdbscan", "ahc", "spectral"}
    num_speakers, min_speakers, max_speakers : int, optional
    count_rule : {"relative", "eigengap", "consensus", "threshold"}, how ``ahc`` and ``spectral`` estimate the
        count when ``num_speakers`` is not given (see the module notes)
    threshold : float, AHC cosine-distance cut of the ``"threshold"`` rule
    min_cluster_size : int, the smallest speaker in rows: HDBSCAN's smallest cluster; smaller
        clusters of ``ahc`` / ``spectral`` (with an estimated count) join the nearest larger one
    center : bool, subtract the mean row before normalising
    max_points : int, most rows clustered directly (the rest go to the nearest centroid)
    seed : int, random state of spectral clustering's k-means
    positions : ndarray of shape (N,), int, optional; the rows' places in time (gaps where
        non-speech rows were left out), for the one-speaker test of the eigengap rule
    lag : int, positions between rows whose inputs do not overlap (the one-speaker test)

    Returns
    -------
    ndarray of shape (N,), int64: labels ``0..k-1`` (no noise label).
    """
    if method not in CLUSTER_METHODS:
        raise ConfigError(f"`method` must be one of {', '.join(CLUSTER_METHODS)}. Received: method={method!r}")
    check_count_rule(count_rule)
    low, high = check_speaker_bounds(num_speakers, min_speakers, max_speakers)
    if not isinstance(rows, (np.ndarray, RowView)):
        rows = np.asarray(rows, dtype=np.float64)
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    # centred and normalised as they are read: a long recording's rows are never copied whole
    x = RowView(rows, mean=block_mean(rows) if center and len(rows) > 1 else None, normalise=True)
    if len(x) < 3 or (high == 1):
        return np.zeros(len(x), dtype=np.int64)
    if method == "spectral":
        max_points = min(max_points, SPECTRAL_MAX_POINTS)
    fit_idx = np.arange(len(x)) if len(x) <= max_points else np.linspace(0, len(x) - 1, max_points).round().astype(np.int64)
    sample = x[fit_idx]
    if method == "hdbscan":
        labels = _fit(method, sample, None, False, min_cluster_size, seed)
    elif num_speakers is not None:
        labels = _fit(method, sample, int(num_speakers), True, min_cluster_size, seed)
    elif count_rule == "threshold" and method == "ahc":
        labels = ahc_speakers(sample, threshold, min_cluster_size)
        logger.info("speaker count (AHC cut at cosine distance %g): %d", threshold, len(np.unique(labels)))
    else:
        count = _estimated_count(x, low, high, count_rule, threshold, min_cluster_size, positions, lag)
        count = max(count, low) if high is None else min(max(count, low), high)
        labels = _fit(method, sample, count, False, min_cluster_size, seed)
    found = len(set(labels[labels >= 0].tolist()))
    wanted = max(found, low) if high is None else min(max(found, low), high)
    if wanted != found:
        logger.info("%s found %d speakers, outside [%s, %s]: re-clustering with AHC into %d", method, found, low, high, wanted)
        labels = _ahc(sample, wanted)
    kept = np.unique(labels[labels >= 0])
    centroids = np.stack([sample[labels == k].mean(axis=0) for k in kept])
    out = assign_to_centroids(x, centroids)
    fitted = np.searchsorted(kept, labels)
    ok = labels >= 0
    out[fit_idx[ok]] = fitted[ok]
    if low > 1 and len(np.unique(out)) < low:  # a count these rows cannot give: say so, never silently fewer
        logger.warning("%d speakers asked for (num_speakers/min_speakers), but the %d embedding rows of speech "
                       "separate into only %d", low, len(x), len(np.unique(out)))
    return out
