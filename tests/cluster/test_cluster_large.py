"""The large-input path: PCA + kNN mutual-reachability tree + hdbscan's cluster selection."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from unspeech.cluster import HDBSCANClusterer, LargeHDBSCANClusterer, make_speaker_vectors
from unspeech.cluster.large import mutual_reachability_mst, reduce_dimensions
from unspeech.cluster.linkage import single_linkage_tree
from unspeech.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def harder():
    """Overlapping speakers: exact HDBSCAN finds most but not all of them."""
    return make_speaker_vectors(25, (10, 60), 60, speaker_rank=10, noise=0.8, random_state=4)


def test_spanning_tree_shape_and_order():
    Z = np.random.default_rng(0).standard_normal((200, 4))
    edges, groups = mutual_reachability_mst(Z, min_samples=3, n_neighbors=6)
    assert edges.shape == (199, 3)
    assert np.all(np.diff(edges[:, 2]) >= 0)
    # a spanning tree: every point appears
    assert set(edges[:, :2].astype(int).ravel()) == set(range(200))
    assert groups >= 1


def test_separate_groups_are_joined_by_their_closest_points():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((30, 3)), 100 + rng.standard_normal((30, 3))
    Z = np.vstack([a, b])
    edges, groups = mutual_reachability_mst(Z, min_samples=2, n_neighbors=4)
    assert groups == 2 and edges.shape == (59, 3)
    closest = np.min(np.linalg.norm(a[:, None] - b[None], axis=2))
    assert edges[-1, 2] == pytest.approx(closest)  # the joining edge is the true nearest pair here
    labels = LargeHDBSCANClusterer(min_cluster_size=5, min_samples=2, n_neighbors=4).fit_predict(Z)
    assert adjusted_rand_score(np.repeat([0, 1], 30), labels) == 1.0


@pytest.mark.parametrize("n_neighbors", [3, 10, 20])
def test_the_graph_approximation_agrees_with_exact_hdbscan(harder, n_neighbors):
    """Without PCA the only difference is the kNN-restricted tree; labels stay close to exact."""
    X, y = harder
    exact = HDBSCANClusterer(min_cluster_size=5, min_samples=3).fit(X)
    large = LargeHDBSCANClusterer(min_cluster_size=5, min_samples=3, n_components=X.shape[1], n_neighbors=n_neighbors).fit(X)
    assert large.n_graph_components_ > 1  # the joining step is exercised
    assert adjusted_rand_score(exact.labels_, large.labels_) >= 0.95
    assert adjusted_rand_score(y, large.labels_) >= adjusted_rand_score(y, exact.labels_) - 0.02


def test_with_pca_it_is_at_least_as_good_as_exact(harder):
    X, y = harder
    exact = HDBSCANClusterer(min_cluster_size=5, min_samples=3).fit(X)
    large = LargeHDBSCANClusterer(min_cluster_size=5, min_samples=3, n_components=16, random_state=0).fit(X)
    assert large.pca_ is not None and large.single_linkage_tree_.shape == (len(X) - 1, 4)
    assert large.probabilities_.shape == (len(X),)
    assert adjusted_rand_score(y, large.labels_) >= adjusted_rand_score(y, exact.labels_) - 0.02


def test_no_pca_when_few_dims_and_determinism(harder):
    X, _ = harder
    a = LargeHDBSCANClusterer(n_components=80, random_state=3).fit(X)
    assert a.pca_ is None and a.explained_variance_ == 1.0
    b = LargeHDBSCANClusterer(n_components=8, random_state=3).fit_predict(X)
    c = LargeHDBSCANClusterer(n_components=8, random_state=3).fit_predict(X)
    np.testing.assert_array_equal(b, c)


def test_pca_subsample_and_errors(harder):
    X, _ = harder
    Z, pca = reduce_dimensions(X, 5, fit_size=100, random_state=0)
    assert Z.shape == (len(X), 5) and pca.n_components_ == 5
    with pytest.raises(ConfigError, match=r"`n_components` must be in \[1, 60\]"):
        reduce_dimensions(X, 61)
    with pytest.raises(ConfigError, match="need exact HDBSCAN"):
        LargeHDBSCANClusterer().fit(X).membership_vectors()
    with pytest.raises(ConfigError, match="`n_neighbors` must be an integer >= 1"):
        LargeHDBSCANClusterer(n_neighbors=0).fit(X)


def test_command_line_switches_to_the_large_path(tmp_path, monkeypatch, capsys):
    from unspeech.cluster import large, pipeline
    from unspeech.cluster.options import ClusterOptions
    from unspeech.cluster.vectors import write_vectors_npz

    X, y = make_speaker_vectors(6, 12, 40, speaker_rank=6, noise=0.3, random_state=5)
    write_vectors_npz(tmp_path / "v.npz", [f"u{i}" for i in range(len(y))], X)
    monkeypatch.setattr(pipeline, "LARGE_INPUT_SIZE", 50)
    report = pipeline.cluster_speakers(ClusterOptions(input_ark=str(tmp_path / "v.npz")))
    assert report.algorithm == "hdbscan-large" and report.explained_variance is not None
    assert adjusted_rand_score(y, report.grid.raw_labels) >= 0.95
    exact = pipeline.cluster_speakers(ClusterOptions(input_ark=str(tmp_path / "v.npz"), pca_dims="0"))
    assert exact.algorithm == "hdbscan"
    with pytest.raises(ConfigError, match="--membership needs exact HDBSCAN"):
        pipeline.cluster_speakers(ClusterOptions(input_ark=str(tmp_path / "v.npz"), membership=str(tmp_path / "m.npz")))
    with pytest.raises(ConfigError, match="--pca-dims needs --metric euclidean"):
        pipeline.cluster_speakers(ClusterOptions(input_ark=str(tmp_path / "v.npz"), pca_dims="8", metric="cosine"))
    assert not (tmp_path / "m.npz").exists()
    assert large.LARGE_INPUT_SIZE == 20000


def test_faiss_ivf_search_finds_almost_all_neighbours():
    from sklearn.neighbors import KDTree

    from unspeech.cluster.neighbors import knn_graph

    X, _ = make_speaker_vectors(40, (20, 60), 30, speaker_rank=8, noise=0.6, random_state=6)
    Z, _ = reduce_dimensions(X, 8, random_state=0)
    exact_d, exact_i = KDTree(Z).query(Z, k=6)
    d, i = knn_graph(Z, 6, nlist=30, nprobe=4, random_state=0)  # an explicit nlist forces IVF on small data
    assert d.shape == i.shape == (len(Z), 6) and d.dtype == np.float64 and i.dtype == np.int64
    assert np.all(np.diff(d, axis=1) >= 0) and np.all(d[:, 0] == 0) and np.all(i[:, 0] == np.arange(len(Z)))
    recall = np.mean([len(set(a) & set(b)) / 6 for a, b in zip(exact_i, i)])
    assert recall >= 0.95
    assert np.all(d[:, 5] >= exact_d[:, 5] - 1e-4)  # a missed neighbour can only make distances larger
    d2, i2 = knn_graph(Z, 6, nlist=30, nprobe=4, random_state=0, n_jobs=2)
    np.testing.assert_array_equal(i, i2)  # seeded: the same cells, whatever the threads
    # small inputs: exact (float32 distances)
    d3, i3 = knn_graph(Z, 6)
    np.testing.assert_allclose(d3, exact_d, atol=1e-4)
    d4, _ = knn_graph(Z, 6, search="hnsw")
    assert np.mean(np.isclose(d4[:, 5], exact_d[:, 5], atol=1e-4)) >= 0.95
    with pytest.raises(ConfigError, match="--neighbor-search"):
        knn_graph(Z, 6, search="annoy")
    with pytest.raises(ConfigError, match="--nlist"):
        knn_graph(Z, 6, nlist=len(Z) + 1)


def test_a_callable_search_plugs_in_and_missing_neighbours_are_dropped():
    Z = np.random.default_rng(2).standard_normal((120, 3))

    def search(points, k):  # finds only the point itself: every edge comes from the group joining
        n = len(points)
        return (np.concatenate([np.zeros((n, 1)), np.full((n, k - 1), np.inf)], axis=1),
                np.repeat(np.arange(n)[:, None], k, axis=1))

    edges, groups = mutual_reachability_mst(Z, min_samples=3, n_neighbors=5, search=search)
    assert groups == 120 and edges.shape == (119, 3)
    with pytest.raises(ConfigError, match="--neighbor-search"):
        LargeHDBSCANClusterer(neighbor_search="kd").fit(Z)


def test_large_clusterer_on_the_ivf_path(harder):
    X, y = harder
    exact = HDBSCANClusterer(min_cluster_size=5, min_samples=3).fit(X)
    ivf = LargeHDBSCANClusterer(min_cluster_size=5, min_samples=3, n_components=16, nlist=40, nprobe=6,
                                core_dist_n_jobs=2, random_state=0).fit(X)
    assert adjusted_rand_score(y, ivf.labels_) >= adjusted_rand_score(y, exact.labels_) - 0.02


def test_hdbscan_private_functions_are_pinned_and_behave():
    """large.py uses one private hdbscan function; pyproject pins hdbscan below 0.9 and this test
    checks its signature and that, fed the exact mutual-reachability tree, it gives public
    HDBSCAN's labels; our single-linkage matrix equals hdbscan's private ``label``."""
    import inspect
    from importlib.metadata import version

    import hdbscan
    from hdbscan._hdbscan_linkage import label
    from hdbscan.hdbscan_ import _tree_to_labels

    major, minor, patch = (int(p) for p in version("hdbscan").split(".")[:3])
    assert (0, 8, 33) <= (major, minor, patch) < (0, 9, 0), "re-check large.py's use of hdbscan internals"
    params = list(inspect.signature(_tree_to_labels).parameters)
    assert params[:2] == ["X", "single_linkage_tree"]
    assert {"min_cluster_size", "cluster_selection_method", "allow_single_cluster", "cluster_selection_epsilon"} <= set(params)
    from sklearn.neighbors import NearestNeighbors

    X, y = make_speaker_vectors(12, (15, 30), 6, speaker_rank=6, noise=0.7, random_state=3, dtype=np.float64)
    n = len(X)

    def every_pair(Z, k):  # exact float64 distances to all points: the tree is exact HDBSCAN's
        return NearestNeighbors(n_neighbors=k).fit(Z).kneighbors(Z)

    for method in ("eom", "leaf"):
        public = hdbscan.HDBSCAN(min_cluster_size=5, min_samples=3, cluster_selection_method=method).fit(X)
        large = LargeHDBSCANClusterer(min_cluster_size=5, min_samples=3, n_components=6, n_neighbors=n - 1,
                                      neighbor_search=every_pair, cluster_selection_method=method).fit(X)
        assert large.single_linkage_tree_.shape == (n - 1, 4)
        np.testing.assert_allclose(np.sort(large.single_linkage_tree_[:, 2]),
                                   np.sort(public.single_linkage_tree_.to_numpy()[:, 2]), rtol=1e-9)
        # mutual reachability ties (many edges weigh a core distance) may be merged in another
        # order than hdbscan's Prim tree: equal heights, slightly different leaf splits
        assert adjusted_rand_score(public.labels_, large.labels_) >= (0.98 if method == "eom" else 0.95)
        assert abs(np.mean(public.labels_ < 0) - np.mean(large.labels_ < 0)) <= 0.02
    tree = single_linkage_tree(np.array([[0, 1, 1.0], [1, 2, 2.0]]))
    np.testing.assert_allclose(tree, [[0, 1, 1.0, 2], [3, 2, 2.0, 3]])
    rng = np.random.default_rng(5)  # a random spanning tree of 2,000 points, edges cheapest first
    m = 1999
    edges = np.column_stack([np.arange(1, m + 1), [rng.integers(0, i) for i in range(1, m + 1)], np.sort(rng.random(m))])
    edges = edges[rng.permutation(m)]
    edges[:, 2] = np.sort(edges[:, 2])
    np.testing.assert_array_equal(single_linkage_tree(edges), label(edges))
    with pytest.raises(DataError, match="not a spanning tree"):
        single_linkage_tree(np.array([[0, 1, 1.0], [1, 0, 2.0]]))


class _FakeUMAP:
    """Stands in for umap.UMAP (the real one takes minutes to JIT-compile): a seeded random projection."""

    instances: list = []

    def __init__(self, n_components, n_neighbors, min_dist, random_state):
        self.n_components, self.random_state = n_components, random_state
        _FakeUMAP.instances.append(self)

    def fit(self, X):
        rng = np.random.default_rng(self.random_state)
        self.proj_ = rng.standard_normal((X.shape[1], self.n_components))
        self.fit_rows_ = len(X)
        self.embedding_ = X @ self.proj_
        return self

    def transform(self, X):
        return X @ self.proj_


def test_reduce_flag_pca_umap_none(harder, monkeypatch):
    import sys
    import types

    X, y = harder
    none = LargeHDBSCANClusterer(reduce="none", n_components=8, random_state=0).fit(X)
    assert none.pca_ is None and none.explained_variance_ == 1.0
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=_FakeUMAP))
    _FakeUMAP.instances.clear()
    fake = LargeHDBSCANClusterer(reduce="umap", n_components=8, pca_fit_size=300, random_state=7).fit(X)
    (model,) = _FakeUMAP.instances
    assert model.random_state == 7 and model.n_components == 8 and model.fit_rows_ == 300
    assert np.isnan(fake.explained_variance_) and fake.labels_.shape == (len(X),)
    from unspeech.plots import embed_2d

    points, used = embed_2d(X, "umap", random_state=3)  # the picture of a large set uses the same projection
    assert used == "UMAP" and points.shape == (len(X), 2) and _FakeUMAP.instances[-1].random_state == 3
    with pytest.raises(ConfigError, match="--reduce must be one of pca, umap, none"):
        LargeHDBSCANClusterer(reduce="tsne").fit(X)
    monkeypatch.setitem(sys.modules, "umap", None)  # not installed
    with pytest.raises(ConfigError, match=r"--reduce umap needs umap-learn.*unspeech\[umap\]"):
        LargeHDBSCANClusterer(reduce="umap").fit(X)


def test_reduce_and_search_flags_reach_the_large_path(tmp_path, monkeypatch):
    import argparse
    import sys

    from unspeech.cluster import pipeline
    from unspeech.cluster.options import ClusterOptions
    from unspeech.cluster.vectors import write_vectors_npz
    from unspeech.commands.cluster import add_arguments

    X, y = make_speaker_vectors(6, 12, 40, speaker_rank=6, noise=0.3, random_state=5)
    write_vectors_npz(tmp_path / "v.npz", [f"u{i}" for i in range(len(y))], X)
    monkeypatch.setattr(pipeline, "LARGE_INPUT_SIZE", 50)
    report = pipeline.cluster_speakers(ClusterOptions(input_ark=str(tmp_path / "v.npz"), reduce="none",
                                                      neighbor_search="hnsw"))
    assert report.grid.model.reduce == "none" and report.grid.model.neighbor_search == "hnsw"
    assert adjusted_rand_score(y, report.grid.raw_labels) >= 0.95
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["-i", "v.ark", "--reduce_dims", "8", "--reduce", "none", "--neighbor_search", "exact"])
    assert (args.pca_dims, args.reduce, args.neighbor_search) == ("8", "none", "exact")
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ConfigError, match="--reduce umap needs umap-learn"):
        pipeline.cluster_speakers(ClusterOptions(input_ark=str(tmp_path / "v.npz"), reduce="umap"))
    with pytest.raises(ConfigError, match="--neighbor-search must be"):
        pipeline.cluster_speakers(ClusterOptions(input_ark=str(tmp_path / "v.npz"), neighbor_search="annoy"))


def test_batched_group_links_are_the_exact_smallest_mutual_reachability():
    from unspeech.cluster.large import _dense_links

    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(30), rng.integers(1, 40, 30))
    rng.shuffle(group)
    Z, core = rng.standard_normal((group.size, 4)), rng.random(group.size)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(30))
    sizes = np.diff(np.append(starts, len(order)))
    pairs = np.array([(a, b) for a in range(30) for b in range(a + 1, 30)])
    links = np.empty((len(pairs), 3))
    _dense_links(Z, core, order, starts, sizes, pairs, np.arange(len(pairs)), links, batch_cells=5000)  # many batches
    for (a, b), (i, j, w) in zip(pairs, links):
        pa, pb = np.flatnonzero(group == a), np.flatnonzero(group == b)
        reach = np.maximum(np.linalg.norm(Z[pa][:, None] - Z[pb][None], axis=2), np.maximum(core[pa][:, None], core[pb][None]))
        assert w == pytest.approx(reach.min()) and group[int(i)] == a and group[int(j)] == b
