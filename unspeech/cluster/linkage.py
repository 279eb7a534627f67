"""Single-linkage tree of a minimum spanning tree, as HDBSCAN's cluster selection takes it.

:func:`single_linkage_tree` turns the spanning tree's edges, cheapest first, into a SciPy-style
linkage matrix: row ``i`` merges clusters ``left`` and ``right`` at distance ``weight`` into
cluster ``n + i`` of ``size`` points (points are clusters ``0 .. n-1``). It is the union-find
walk of ``hdbscan._hdbscan_linkage.label`` and gives the same matrix, but on plain Python lists
with path halving: hdbscan's version indexes NumPy arrays element by element (a Python object
per lookup) and took 48 s on a random tree of a million points (this one: about 2 s) and did not
finish in half an hour on the ten-million-point tree of ``benchmarks/cluster_bench.py``.
"""

from __future__ import annotations

import numpy as np

from unspeech.errors import DataError

__all__ = ["single_linkage_tree"]


def single_linkage_tree(edges: np.ndarray) -> np.ndarray:
    """Linkage matrix of a spanning tree.

    Parameters
    ----------
    edges : ndarray of shape (n - 1, 3), float
        ``[a, b, weight]`` rows over points ``0 .. n-1``, sorted by increasing weight, forming a
        spanning tree (every edge joins two different clusters).

    Returns
    -------
    ndarray of shape (n - 1, 4), float64: ``[left, right, weight, size]`` per merge.
    """
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 2 or edges.shape[1] < 3:
        raise DataError(f"spanning tree edges must have shape (n - 1, 3), got {edges.shape}")
    m = len(edges)
    n = m + 1
    parent = list(range(n + m))  # a cluster is its own root until merged
    size = [1] * n + [0] * m
    left = edges[:, 0].astype(np.int64).tolist()
    right = edges[:, 1].astype(np.int64).tolist()
    if m and (min(min(left), min(right)) < 0 or max(max(left), max(right)) >= n):
        raise DataError(f"spanning tree edges name points outside 0..{n - 1}")
    roots_a = [0] * m
    roots_b = [0] * m
    sizes = [0] * m
    for i in range(m):
        a = left[i]
        while parent[a] != a:  # path halving
            parent[a] = parent[parent[a]]
            a = parent[a]
        b = right[i]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if a == b:
            raise DataError(f"edge {i} joins points already connected: not a spanning tree")
        new = n + i
        parent[a] = parent[b] = new
        size[new] = size[a] + size[b]
        roots_a[i], roots_b[i], sizes[i] = a, b, size[new]
    out = np.empty((m, 4), dtype=np.float64)
    out[:, 0] = roots_a
    out[:, 1] = roots_b
    out[:, 2] = edges[:, 2]
    out[:, 3] = sizes
    return out
