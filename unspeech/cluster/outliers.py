"""What happens to the utterances a density-based clusterer calls noise (label -1).

Three policies:

* ``"nearest"`` (the default of ``cluster.py`` / ``unspeech cluster``): every outlier joins the
  cluster with the nearest centroid (euclidean on the vectors given; on L2-normalised vectors that
  is the most cosine-similar centroid), so noise is never counted as speakers. Exact up to 20k
  clusters; above that the centroids go into a faiss IVF index (16 of ~4*sqrt(k) cells searched per
  point), which may pick a near-nearest centroid;
* ``"singleton"`` (the original toolkit's choice, and the default before): every outlier becomes a
  speaker of its own. On a real corpus HDBSCAN calls many utterances noise, and every one of them
  then turned into an extra one-utterance speaker;
* ``"noise"``: outliers keep label -1 and are written as one pseudo-speaker (see
  :mod:`unspeech.cluster.outputs`).
"""

from __future__ import annotations

import numpy as np

from unspeech.errors import ConfigError

__all__ = ["OUTLIER_POLICIES", "resolve_outliers"]

OUTLIER_POLICIES = ("singleton", "nearest", "noise")
_SUM_BLOCK = 1 << 16  # rows per block of the centroid sums


def resolve_outliers(labels: np.ndarray, policy: str = "nearest", vectors: np.ndarray | None = None) -> np.ndarray:
    """Apply an outlier policy to cluster labels.

    Parameters
    ----------
    labels : ndarray of shape (n,), int
        ``-1`` marks noise; other labels are ``0..k-1`` (gaps allowed).
    policy : {"nearest", "singleton", "noise"}
    vectors : ndarray of shape (n, D), optional
        Needed for ``"nearest"`` (the default).

    Returns
    -------
    ndarray of shape (n,), int64
        A new array. ``singleton`` numbers the outliers ``k, k+1, ...`` in input order after
        the largest cluster label; ``nearest`` leaves everything noise when there is no cluster.
    """
    if policy not in OUTLIER_POLICIES:
        raise ConfigError(f"`outliers` must be one of {', '.join(OUTLIER_POLICIES)}. Received: outliers={policy!r}")
    out = np.array(labels, dtype=np.int64, copy=True)
    noise = out < 0
    if policy == "noise" or not noise.any():
        return out
    if policy == "singleton":
        first = int(out.max()) + 1 if (~noise).any() else 0
        out[noise] = first + np.arange(int(noise.sum()))
        return out
    if vectors is None:
        raise ConfigError("the 'nearest' outlier policy needs the vectors")
    clustered = np.flatnonzero(~noise)
    if clustered.size == 0:
        return out
    ids, inverse = np.unique(out[clustered], return_inverse=True)
    vecs = np.asarray(vectors)
    # per-cluster sums in float64 over the rows sorted by cluster, a block of whole clusters at a time
    # (bounded memory; at a million utterances about 1 s, against 6.4 s for a sparse (k, n) x (n, D)
    # product, 6 s for np.add.at and 6.6 s for a float64 reduceat of float32 rows)
    rows_by_cluster = clustered[np.argsort(inverse, kind="stable")]
    counts = np.bincount(inverse, minlength=ids.size)
    starts = np.concatenate([[0], np.cumsum(counts)])  # cluster c: rows starts[c]:starts[c + 1]
    sums = np.empty((ids.size, vecs.shape[1]), dtype=np.float64)
    first = 0
    while first < ids.size:  # clusters first..last-1, about _SUM_BLOCK rows (at least one cluster)
        last = max(int(np.searchsorted(starts, starts[first] + _SUM_BLOCK, side="right")) - 1, first + 1)
        block = np.asarray(vecs[rows_by_cluster[starts[first]:starts[last]]], dtype=np.float64)
        sums[first:last] = np.add.reduceat(block, starts[first:last] - starts[first], axis=0)
        first = last
    centroids = sums / counts[:, None]
    noisy = np.flatnonzero(noise)
    # faiss, exact up to 20k clusters and an IVF index of the centroids above (the all-pairs
    # comparison of ~1M noise points with ~100k centroids at ten million utterances ran for hours)
    from unspeech.cluster.neighbors import nearest_rows

    out[noisy] = ids[nearest_rows(centroids, vecs[noisy], random_state=0)]
    return out

