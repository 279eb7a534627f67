"""k-nearest-neighbour graphs for the large clustering path, on faiss (a maintained ANN library).

Two indexes, chosen by name (``search=``):

``"ivf"`` (default)
    faiss ``IndexIVFFlat``: k-means splits the points into ``nlist`` cells (about
    ``4 * sqrt(n)``, trained on a seeded subsample of ``64 * nlist`` rows); every query is
    compared exactly with the points of its ``nprobe`` nearest cells. Up to
    :data:`EXACT_SEARCH_SIZE` points (and no ``nlist`` given) the search is exact (``IndexFlatL2``).
``"hnsw"``
    faiss ``IndexHNSWFlat`` (a navigable small-world graph, ``M=32``); no training, slower to
    build than IVF on two cores, measured side by side in ``benchmarks/cluster_bench.py``.
``"exact"``
    ``IndexFlatL2``: brute force (BLAS), quadratic; for tests and small inputs.

faiss is a default dependency of unspeech (``pip install faiss-cpu``, a 19 MB wheel with no
further dependencies); where it is missing the error says how to install it.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from unspeech.errors import ConfigError

__all__ = ["knn_graph", "nearest_rows", "SEARCH_METHODS", "EXACT_SEARCH_SIZE", "default_nlist", "default_nprobe"]

logger = logging.getLogger(__name__)

SEARCH_METHODS = ("ivf", "hnsw", "exact")
EXACT_SEARCH_SIZE = 20000
"""Up to this many points the ``"ivf"`` search is exact (brute force is fast enough)."""


def _faiss():
    try:
        import faiss
    except ImportError as err:  # pragma: no cover - faiss-cpu is a default dependency
        raise ConfigError(
            "the large clustering path (--pca-dims, --neighbor-search) needs faiss: pip install faiss-cpu"
        ) from err
    return faiss


def default_nlist(n: int) -> int:
    """Cells of the IVF index for ``n`` points: about ``4 * sqrt(n)`` (4000 for a million)."""
    return max(1, int(round(4 * math.sqrt(n))))


def default_nprobe(nlist: int) -> int:
    """Cells searched per query: 8, or all cells when there are fewer."""
    return min(nlist, 8)


def _threads(n_jobs: int | None) -> int:
    import os

    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, int(n_jobs))


def knn_graph(
    Z: np.ndarray,
    k: int,
    *,
    search: str = "ivf",
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    ef_search: int = 64,
    random_state: int | None = None,
    n_jobs: int | None = 1,
    chunk: int = 1 << 17,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every row of ``Z`` (the row itself first, at distance 0).

    Parameters
    ----------
    Z : array of shape (n, d)
        Points (converted to float32 for faiss).
    k : int
        Neighbours per point, the point itself included.
    search : {"ivf", "hnsw", "exact"}
        The faiss index (see the module docstring).
    nlist, nprobe : int or None
        IVF cells and cells searched per query (defaults: :func:`default_nlist`,
        :func:`default_nprobe`).
    hnsw_m, ef_search : int
        HNSW links per node and search breadth.
    random_state : int or None
        Seed of the IVF training subsample and of faiss's k-means.
    n_jobs : int or None
        OpenMP threads for faiss (-1: all cores).

    Returns
    -------
    dist : ndarray of shape (n, k), float64, each row ascending (``inf`` where the search found
        fewer than ``k`` points; the index is then the row itself)
    ind : ndarray of shape (n, k), int64
    """
    X = np.ascontiguousarray(Z, dtype=np.float32)
    n = X.shape[0]
    k = max(1, min(int(k), n))
    index = _build_index(X, search, nlist=nlist, nprobe=nprobe, hnsw_m=hnsw_m, ef_search=max(int(ef_search), k),
                         random_state=random_state, n_jobs=n_jobs)
    dist = np.empty((n, k), dtype=np.float64)
    ind = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        d2, found = index.search(X[start:stop], k)
        rows = np.arange(start, stop, dtype=np.int64)
        d_out, i_out = _self_first(np.asarray(d2, dtype=np.float64), np.asarray(found, dtype=np.int64), rows)
        dist[start:stop] = d_out
        ind[start:stop] = i_out
    return dist, ind


def _build_index(X: np.ndarray, search: str, *, nlist, nprobe, hnsw_m: int, ef_search: int, random_state, n_jobs):
    """A faiss index of the float32 rows ``X`` (see the module docstring for the three kinds)."""
    faiss = _faiss()
    if search not in SEARCH_METHODS:
        raise ConfigError(f"--neighbor-search must be one of {', '.join(SEARCH_METHODS)}. Received: {search!r}")
    n, d = X.shape
    faiss.omp_set_num_threads(_threads(n_jobs))
    if search == "exact" or (search == "ivf" and nlist is None and n <= EXACT_SEARCH_SIZE):
        index = faiss.IndexFlatL2(d)
    elif search == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(hnsw_m))
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = int(ef_search)
    else:
        cells = default_nlist(n) if nlist is None else int(nlist)
        if not 1 <= cells <= n:
            raise ConfigError(f"--nlist must be in [1, {n}] for {n} points. Received: {cells}")
        probe = default_nprobe(cells) if nprobe is None else int(nprobe)
        if probe < 1:
            raise ConfigError(f"--nprobe must be >= 1. Received: {probe}")
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, cells)
        index.cp.seed = 1234 if random_state is None else int(random_state) % (2**31)
        index.cp.niter = 10
        index.cp.min_points_per_centroid = 1  # small inputs: no warning, the cells are only a partition
        rng = np.random.default_rng(random_state)
        size = min(n, 64 * cells)
        sample = X if size == n else X[np.sort(rng.choice(n, size=size, replace=False))]
        index.train(sample)
        index.nprobe = min(probe, cells)
    index.add(X)
    return index


def nearest_rows(
    base: np.ndarray,
    queries: np.ndarray,
    *,
    search: str = "ivf",
    nprobe: int = 16,
    random_state: int | None = None,
    n_jobs: int | None = 1,
    chunk: int = 1 << 16,
) -> np.ndarray:
    """Index of the nearest row of ``base`` (m, d) for every row of ``queries`` (q, d): ``(q,)`` int64.

    Exact (faiss brute force, memory bounded by ``chunk`` queries) up to
    :data:`EXACT_SEARCH_SIZE` base rows; above that an IVF index of ``base`` with ``nprobe``
    cells searched per query, so that a million queries against 100k rows take seconds
    instead of the hours of an all-pairs comparison. Used to send HDBSCAN noise to the
    nearest cluster centroid (:mod:`unspeech.cluster.outliers`).
    """
    B = np.ascontiguousarray(base, dtype=np.float32)
    index = _build_index(B, search, nlist=None, nprobe=nprobe, hnsw_m=32, ef_search=64,
                         random_state=random_state, n_jobs=n_jobs)
    out = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        rows = np.ascontiguousarray(queries[start:start + chunk], dtype=np.float32)
        _, found = index.search(rows, 1)
        out[start:start + len(rows)] = found[:, 0]
    if (out < 0).any():  # an IVF probe that met only empty cells: those queries go exact
        lost = np.flatnonzero(out < 0)
        exact = _build_index(B, "exact", nlist=None, nprobe=None, hnsw_m=32, ef_search=64,
                             random_state=random_state, n_jobs=n_jobs)
        out[lost] = exact.search(np.ascontiguousarray(queries[lost], dtype=np.float32), 1)[1][:, 0]
    return out


def _self_first(d2: np.ndarray, found: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put each query first at distance 0 (float32 rounding or ties may move it), take square roots,
    and mark missing neighbours (faiss's ``-1``) as ``inf`` pointing at the query itself."""
    m, k = found.shape
    is_self = found == rows[:, None]
    drop = is_self.copy()
    # each id occurs at most once in a faiss result row; rows that miss themselves give up their
    # farthest neighbour to make room
    drop[~is_self.any(axis=1), -1] = True
    keep = ~drop
    rest_i = found[keep].reshape(m, k - 1)
    rest_d = d2[keep].reshape(m, k - 1)
    missing = rest_i < 0
    rest_d = np.sqrt(np.maximum(rest_d, 0.0))
    rest_d[missing] = np.inf
    rest_i = np.where(missing, rows[:, None], rest_i)
    dist = np.concatenate([np.zeros((m, 1)), rest_d], axis=1)
    ind = np.concatenate([rows[:, None], rest_i], axis=1)
    return dist, ind
