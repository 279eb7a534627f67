"""The million-utterance path: PCA, a k-nearest-neighbour graph, then HDBSCAN's hierarchy.

Why: hdbscan's ``algorithm="best"`` switches to Prim's minimum spanning tree on data with more
than 60 dimensions, which is quadratic in the number of points (minutes for 50k 100-dim
vectors, days for a million). Its Boruvka KD-tree algorithm needs low dimension, and even then
its core-distance step (a breadth-first dual-tree query, run in worker processes that each get a
copy of the tree) took longer than 25 minutes for a million 16-dim points on two busy cores.

What this path does instead:

1. **PCA** to ``n_components`` dims (fitted on a seeded subsample). Speaker information in
   utterance embeddings lives in a low-rank subspace (the assumption behind PLDA); the dropped
   directions carry mostly within-speaker noise.
2. **k nearest neighbours** of every point by faiss (:mod:`unspeech.cluster.neighbors`): an
   IVF-flat index of about ``4 * sqrt(n)`` k-means cells, 8 searched per query (exact below
   20k points; KD-trees degrade towards quadratic time on a million 16-dim points, measured).
   The distance to the ``min_samples``-th neighbour is the core distance, as hdbscan defines it.
3. **Minimum spanning tree of the mutual reachability graph restricted to the kNN edges**
   (``max(core_a, core_b, d(a, b))``; scipy's sparse MST). This is where the path approximates:
   exact HDBSCAN may link two points that are not among each other's ``n_neighbors`` nearest
   neighbours. Inside dense groups the kNN edges hold the tree; groups that no kNN edge joins
   (well-separated speakers) are linked to the groups with the nearest centroids by their
   smallest mutual reachability distance (between the points of each that face the other), and a spanning tree over
   the groups keeps the cheapest of those links.
4. The tree's single-linkage matrix (:func:`unspeech.cluster.linkage.single_linkage_tree`, the
   same matrix as hdbscan's private ``label``, which is too slow past a million points), then
   **hdbscan's own** condensed tree and excess-of-mass / leaf cluster selection turn it into labels
   and membership strengths. That is one private hdbscan function
   (``hdbscan.hdbscan_._tree_to_labels``); ``pyproject.toml`` pins hdbscan below 0.9 and
   ``tests/cluster/test_cluster_large.py`` checks its signature and behaviour against the public
   ``hdbscan.HDBSCAN`` on the same tree.

``benchmarks/cluster_bench.py`` compares this path with exact HDBSCAN on the full dimensions.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from unspeech.cluster.algorithms import _check_points, _check_positive_int, _count, _validate_hdbscan_params
from unspeech.cluster.neighbors import SEARCH_METHODS, knn_graph
from unspeech.errors import ConfigError, DataError

__all__ = ["LargeHDBSCANClusterer", "reduce_dimensions", "mutual_reachability_mst", "LARGE_INPUT_SIZE", "REDUCE_METHODS"]

logger = logging.getLogger(__name__)

LARGE_INPUT_SIZE = 20000
"""From this many utterances on, the command line uses the large path by default."""


REDUCE_METHODS = ("pca", "umap", "none")


def _umap():
    try:
        import umap
    except ImportError as err:
        raise ConfigError(
            "--reduce umap needs umap-learn (about 200 MB with numba): pip install 'unspeech[umap]' "
            "(or pip install umap-learn), or use --reduce pca"
        ) from err
    return umap


def reduce_dimensions(
    X: np.ndarray,
    n_components: int,
    *,
    method: str = "pca",
    fit_size: int = 100000,
    random_state: int | None = None,
    chunk: int = 1 << 16,
):
    """Project ``(n, D)`` vectors to ``n_components`` dims by PCA or UMAP.

    The projection is fitted on at most ``fit_size`` randomly chosen rows (a seeded subsample
    estimates a 100-dim covariance very well; UMAP's graph of 100k points already has the
    speakers' structure) and applied to all rows in chunks.

    Parameters
    ----------
    method : {"pca", "umap"}
        ``umap`` needs umap-learn (``pip install 'unspeech[umap]'``): ``UMAP(n_neighbors=15,
        min_dist=0)``, the density-keeping setting the UMAP + HDBSCAN recipe uses.

    Returns
    -------
    Z : ndarray of shape (n, n_components), float64
    model : sklearn.decomposition.PCA or umap.UMAP
        The fitted projection (a PCA's ``explained_variance_ratio_`` tells how much was kept).
    """
    from sklearn.decomposition import PCA

    n, dim = X.shape
    if method not in ("pca", "umap"):
        raise ConfigError(f"--reduce must be pca or umap to project vectors. Received: {method!r}")
    if not 1 <= n_components <= dim:
        raise ConfigError(f"`n_components` must be in [1, {dim}] for {dim}-dim vectors. Received: n_components={n_components}")
    rng = np.random.default_rng(random_state)
    sample = X if n <= fit_size else X[np.sort(rng.choice(n, size=fit_size, replace=False))]
    if method == "pca":
        # the D x D covariance's eigenvectors (scikit-learn >= 1.5): 0.1 s where a full SVD of the
        # 100k x D subsample took 6 s at D=100; the same basis up to float64 rounding
        import sklearn

        solver = "covariance_eigh" if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) >= (1, 5) else "full"
        model = PCA(n_components=n_components, svd_solver=solver).fit(np.asarray(sample, dtype=np.float64))
    else:
        seed = None if random_state is None else int(random_state) % (2**31)
        model = _umap().UMAP(n_components=n_components, n_neighbors=15, min_dist=0.0, random_state=seed)
        model.fit(np.asarray(sample, dtype=np.float32))
    Z = np.empty((n, n_components), dtype=np.float64)
    for start in range(0, n, chunk):
        rows = np.asarray(X[start:start + chunk], dtype=np.float64 if method == "pca" else np.float32)
        if method == "umap" and sample is X:
            Z[start:start + chunk] = model.embedding_[start:start + chunk]
        else:
            Z[start:start + chunk] = model.transform(rows)
    return Z, model


def mutual_reachability_mst(
    Z: np.ndarray,
    min_samples: int,
    n_neighbors: int,
    *,
    search="ivf",
    nlist: int | None = None,
    nprobe: int | None = 8,
    random_state: int | None = None,
    n_jobs: int | None = 1,
):
    """Spanning tree of the mutual reachability graph on the kNN edges of ``(n, d)`` points.

    ``search`` names a faiss index (see :func:`unspeech.cluster.neighbors.knn_graph`) or is a
    callable ``search(Z, k) -> (dist, ind)`` of two ``(n, k)`` arrays, each row the point itself
    first, then its neighbours by ascending distance.

    Returns
    -------
    edges : ndarray of shape (n - 1, 3), float64
        ``(a, b, weight)`` rows sorted by weight, ready for hdbscan's single-linkage labelling.
    n_components : int
        Groups the kNN graph left unconnected (joined by :func:`_join_groups`).
    """
    from scipy.sparse import csgraph, csr_matrix

    n = len(Z)
    k = min(max(n_neighbors, min_samples), n - 1)
    if callable(search):
        dist, ind = search(Z, k + 1)
    else:
        dist, ind = knn_graph(Z, k + 1, search=search, nlist=nlist, nprobe=nprobe, random_state=random_state, n_jobs=n_jobs)
    core = dist[:, min(min_samples, k)]
    # the directed kNN edges as CSR rows (row i = point i's neighbours): no need to pair up the two
    # copies of an undirected edge, since scipy's spanning tree reads graph[i, j] and graph[j, i] as
    # one edge (the smaller nonzero weight; both are equal here); building the CSR straight from the
    # row-major graph skips the sort that deduplication took (6.7 s of 7.5 s at a million points)
    keep = (ind != np.arange(n)[:, None]) & np.isfinite(dist)
    counts = keep.sum(axis=1)
    cols = ind[keep]
    weight = np.maximum(np.maximum(np.repeat(core, counts), core[cols]), dist[keep])
    del dist, ind, keep
    # scipy's MST reads a zero as "no edge": exact duplicates get a tiny positive weight
    np.maximum(weight, np.finfo(np.float64).tiny, out=weight)
    index_type = np.int32 if max(len(cols), n) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n + 1, dtype=index_type)
    np.cumsum(counts, out=indptr[1:])
    graph = csr_matrix((weight, cols.astype(index_type), indptr), shape=(n, n))
    del cols, weight, counts, indptr
    tree = csgraph.minimum_spanning_tree(graph).tocoo()
    del graph
    n_groups, group = csgraph.connected_components(tree, directed=False)
    edges = [np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)]
    if n_groups > 1:
        edges.append(_join_groups(Z, core, group, n_groups, float(tree.data.max()) if tree.nnz else 1.0))
    edges = np.vstack(edges)
    return edges[np.argsort(edges[:, 2], kind="stable")], int(n_groups)


def _join_groups(Z: np.ndarray, core: np.ndarray, group: np.ndarray, n_groups: int, top: float,
                 n_candidates: int = 5, dense_limit: int = 1 << 18) -> np.ndarray:
    """Edges that join the groups the kNN graph left apart, approximating exact HDBSCAN's links.

    Each group is linked to the groups with the ``n_candidates`` nearest centroids by the
    smallest mutual reachability distance between their points (exact over all point pairs,
    batched, when both groups have at most ``width = sqrt(dense_limit)`` points; otherwise over
    the pairs of the ``width`` points of each group nearest the other's centroid, where the
    closest pair lies unless a group wraps around the other); a spanning tree over the groups
    keeps the cheapest links. Groups still apart after that are chained at ``2 * top``.
    """
    from scipy.sparse import coo_matrix, csgraph

    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n_groups))
    members = np.split(order, starts[1:])
    sizes = np.diff(np.append(starts, len(order)))
    centroids = np.add.reduceat(Z[order], starts, axis=0) / sizes[:, None]
    m = min(n_candidates, n_groups - 1)
    # the groups' nearest centroids by faiss (sklearn's "auto" picks brute force from 16 dims on,
    # quadratic in the groups: minutes at ten million points)
    _, near = knn_graph(centroids, m + 1, random_state=0)
    pairs = np.unique(np.sort(np.column_stack([np.repeat(np.arange(n_groups), m), near[:, 1:].ravel()]), axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    links = np.empty((len(pairs), 3))
    width = max(1, int(np.sqrt(dense_limit)))
    dense = (sizes[pairs[:, 0]] <= width) & (sizes[pairs[:, 1]] <= width)
    if dense.any():
        _dense_links(Z, core, order, starts, sizes, pairs, np.flatnonzero(dense), links)
    for row in np.flatnonzero(~dense):
        # large groups: the `width` points of each that lie nearest the other group's centroid, all
        # pairs of those (a KD-tree of every point of the larger group, queried by every point of
        # the smaller, took most of the fit at ten million points)
        a, b = pairs[row]
        sources, targets = (_facing(Z, members[g], centroids[h], width) for g, h in ((a, b), (b, a)))
        za, zb = Z[sources], Z[targets]
        d2 = (za * za).sum(axis=1)[:, None] + (zb * zb).sum(axis=1)[None, :] - 2.0 * za @ zb.T
        reach = np.maximum(np.maximum(core[sources][:, None], core[targets][None, :]), np.sqrt(np.maximum(d2, 0.0)))
        i, j = np.unravel_index(int(np.argmin(reach)), reach.shape)
        links[row] = (sources[i], targets[j], reach[i, j])
    weights = np.maximum(links[:, 2], np.finfo(np.float64).tiny)
    group_graph = coo_matrix((weights, (pairs[:, 0], pairs[:, 1])), shape=(n_groups, n_groups)).tocsr()
    group_tree = csgraph.minimum_spanning_tree(group_graph).tocoo()
    lookup = {(int(a), int(b)): i for i, (a, b) in enumerate(pairs)}
    chosen = [lookup[(min(a, b), max(a, b))] for a, b in zip(group_tree.row, group_tree.col)]
    joined = [links[chosen]]
    n_left, left = csgraph.connected_components(group_tree, directed=False)
    if n_left > 1:  # groups no candidate link reached: chain their first members at the top
        heads = np.array([members[np.flatnonzero(left == c)[0]][0] for c in range(n_left)])
        joined.append(np.column_stack([heads[:-1], heads[1:], np.full(n_left - 1, 2.0 * max(top, weights.max()))]))
    return np.vstack(joined)


def _facing(Z: np.ndarray, points: np.ndarray, towards: np.ndarray, width: int) -> np.ndarray:
    """The (at most ``width``) of ``points`` nearest the point ``towards``."""
    if len(points) <= width:
        return points
    d2 = ((Z[points] - towards) ** 2).sum(axis=1)
    return points[np.argpartition(d2, width - 1)[:width]]


def _dense_links(Z, core, order, starts, sizes, pairs, rows, links, batch_cells: int = 1 << 22) -> None:
    """Exact smallest mutual reachability link of every group pair in ``rows`` (both groups small),
    batched: the pairs' members are padded to a common width and compared by batched BLAS products.
    Writes ``(a, b, weight)`` into ``links[rows]``.

    Works on squares, in place and in float32: ``reach**2 = max(d**2, core_a**2, core_b**2)`` picks
    the same pair as ``max(d, core_a, core_b)`` without a square root or a temporary per cell
    (padding slots get an infinite core so that they never win); the chosen pair's weight is then
    computed again in float64."""
    rows = rows[np.argsort(np.maximum(sizes[pairs[rows, 0]], sizes[pairs[rows, 1]]), kind="stable")]
    Z32 = np.asarray(Z, dtype=np.float32)
    sq = np.einsum("ij,ij->i", Z32, Z32)
    core2 = np.append(core * core, np.inf).astype(np.float32)  # the last entry: what padding slots read
    pos = 0
    while pos < rows.size:
        w = int(max(sizes[pairs[rows[pos], 0]], sizes[pairs[rows[pos], 1]]))
        # grow the batch while its widest pair fits the cell budget (pairs are sorted by width)
        end = pos + 1
        while end < rows.size and (end - pos + 1) * max(w, int(sizes[pairs[rows[end]]].max())) ** 2 <= batch_cells:
            w = max(w, int(sizes[pairs[rows[end]]].max()))
            end += 1
        chunk = rows[pos:end]
        slot = np.arange(w)

        def padded(groups):
            valid = slot[None, :] < sizes[groups][:, None]
            idx = order[np.minimum(starts[groups][:, None] + slot[None, :], len(order) - 1)]
            return np.where(valid, idx, 0), np.where(valid, idx, len(core))

        ia, ca = padded(pairs[chunk, 0])
        ib, cb = padded(pairs[chunk, 1])
        reach2 = np.matmul(Z32[ia], Z32[ib].transpose(0, 2, 1))
        reach2 *= -2.0
        reach2 += sq[ia][:, :, None]
        reach2 += sq[ib][:, None, :]
        np.maximum(reach2, core2[ca][:, :, None], out=reach2)
        np.maximum(reach2, core2[cb][:, None, :], out=reach2)
        best = reach2.reshape(len(chunk), -1).argmin(axis=1)
        i, j = np.divmod(best, w)
        pick = np.arange(len(chunk))
        a, b = ia[pick, i], ib[pick, j]
        d = np.sqrt(((np.asarray(Z[a], dtype=np.float64) - Z[b]) ** 2).sum(axis=1))
        links[chunk] = np.column_stack([a, b, np.maximum(np.maximum(core[a], core[b]), d)])
        pos = end


class LargeHDBSCANClusterer(ClusterMixin, BaseEstimator):
    """HDBSCAN for hundreds of thousands to millions of utterances (see the module docstring).

    Euclidean metric only (PCA and the KD-tree keep euclidean geometry; on L2-normalised
    vectors it ranks like cosine).

    Parameters
    ----------
    min_cluster_size, min_samples, cluster_selection_epsilon, cluster_selection_method,
    allow_single_cluster
        As in :class:`~unspeech.cluster.HDBSCANClusterer`.
    reduce : {"pca", "umap", "none"}
        The projection before the neighbour search (``umap`` needs umap-learn; ``none`` searches
        the vectors as they are).
    n_components : int
        Dimensions the projection keeps (no projection when the vectors have at most this many).
    n_neighbors : int
        Neighbours per point in the graph (at least ``min_samples``).
    neighbor_search : {"ivf", "hnsw", "exact"} or callable
        The faiss index of the neighbour search (:func:`unspeech.cluster.neighbors.knn_graph`),
        or a callable ``search(Z, k) -> (dist, ind)`` (see :func:`mutual_reachability_mst`).
    nlist, nprobe : int or None
        IVF cells (default about ``4 * sqrt(n)``) and cells searched per query (default 8:
        recall@11 99.85 % on a million synthetic 16-dim speaker vectors, 99.97 % with 16).
    core_dist_n_jobs : int
        Threads for the neighbour search (-1: all cores).
    pca_fit_size : int
        Rows used to fit the PCA basis.
    random_state : int or None
        Seed of the PCA subsample and of the IVF training (subsample and faiss k-means).

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    probabilities_ : ndarray of shape (n,), float64
    n_clusters_ : int
    pca_ : sklearn.decomposition.PCA, umap.UMAP or None
        The fitted projection (the name is older than ``reduce``).
    explained_variance_ : float
        Fraction of the variance PCA kept (1.0 without projection, NaN for UMAP).
    n_graph_components_ : int
        Groups the kNN graph did not connect.
    single_linkage_tree_ : ndarray of shape (n - 1, 4)
    condensed_tree_ : structured ndarray (hdbscan's condensed tree)
    """

    def __init__(
        self,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        n_components: int = 16,
        reduce: str = "pca",
        n_neighbors: int = 10,
        neighbor_search="ivf",
        nlist: int | None = None,
        nprobe: int | None = 8,
        cluster_selection_epsilon: float = 0.0,
        cluster_selection_method: str = "eom",
        allow_single_cluster: bool = False,
        core_dist_n_jobs: int = 1,
        pca_fit_size: int = 100000,
        random_state: int | None = None,
    ):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.n_components = n_components
        self.reduce = reduce
        self.n_neighbors = n_neighbors
        self.neighbor_search = neighbor_search
        self.nlist = nlist
        self.nprobe = nprobe
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.cluster_selection_method = cluster_selection_method
        self.allow_single_cluster = allow_single_cluster
        self.core_dist_n_jobs = core_dist_n_jobs
        self.pca_fit_size = pca_fit_size
        self.random_state = random_state

    def fit(self, X, y=None):
        from hdbscan.hdbscan_ import _tree_to_labels

        from unspeech.cluster.linkage import single_linkage_tree

        _validate_hdbscan_params(self)
        _check_positive_int("n_components", self.n_components)
        _check_positive_int("n_neighbors", self.n_neighbors)
        if not callable(self.neighbor_search) and self.neighbor_search not in SEARCH_METHODS:
            raise ConfigError(
                f"--neighbor-search must be one of {', '.join(SEARCH_METHODS)}. Received: {self.neighbor_search!r}"
            )
        if self.nlist is not None:
            _check_positive_int("nlist", self.nlist)
        if self.nprobe is not None:
            _check_positive_int("nprobe", self.nprobe)
        _check_positive_int("pca_fit_size", self.pca_fit_size, 2)
        X = _check_points(X, "HDBSCAN (large)")
        if X.shape[0] < self.min_cluster_size:
            raise DataError(
                f"HDBSCAN: fewer utterances ({X.shape[0]}) than min_cluster_size={self.min_cluster_size}; "
                "lower --hdbscan_min_cluster_sizes or give more data"
            )
        if self.reduce not in REDUCE_METHODS:
            raise ConfigError(f"--reduce must be one of {', '.join(REDUCE_METHODS)}. Received: {self.reduce!r}")
        if self.reduce != "none" and X.shape[1] > self.n_components:
            Z, self.pca_ = reduce_dimensions(X, self.n_components, method=self.reduce, fit_size=self.pca_fit_size,
                                             random_state=self.random_state)
            if self.reduce == "pca":
                self.explained_variance_ = float(self.pca_.explained_variance_ratio_.sum())
                logger.info("PCA %d -> %d dims keeps %.1f%% of the variance", X.shape[1], self.n_components,
                            100 * self.explained_variance_)
            else:
                self.explained_variance_ = float("nan")
                logger.info("UMAP %d -> %d dims", X.shape[1], self.n_components)
        else:
            Z, self.pca_, self.explained_variance_ = np.asarray(X, dtype=np.float64), None, 1.0
        min_samples = self.min_cluster_size if self.min_samples is None else self.min_samples
        min_samples = max(1, min(min_samples, len(Z) - 1))
        edges, self.n_graph_components_ = mutual_reachability_mst(
            Z, min_samples, self.n_neighbors, search=self.neighbor_search, nlist=self.nlist, nprobe=self.nprobe,
            random_state=self.random_state, n_jobs=self.core_dist_n_jobs,
        )
        del Z
        self.single_linkage_tree_ = single_linkage_tree(edges)
        labels, probabilities, _, self.condensed_tree_, _ = _tree_to_labels(
            None,
            self.single_linkage_tree_,
            min_cluster_size=self.min_cluster_size,
            cluster_selection_method=self.cluster_selection_method,
            allow_single_cluster=self.allow_single_cluster,
            cluster_selection_epsilon=float(self.cluster_selection_epsilon),
        )
        self.labels_ = np.asarray(labels, dtype=np.int64)
        self.probabilities_ = np.asarray(probabilities, dtype=np.float64)
        self.n_clusters_ = _count(self.labels_)
        return self

    def membership_vectors(self) -> np.ndarray:
        """Not available on this path: soft memberships need exact HDBSCAN's prediction data."""
        raise ConfigError("soft membership vectors need exact HDBSCAN (--pca-dims 0), not the large-input path")
