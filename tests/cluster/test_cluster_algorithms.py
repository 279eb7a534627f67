"""Every clusterer behind the one interface: separates synthetic speakers, follows sklearn habits, fails clearly."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from unspeech.cluster import (
    AgglomerativeClusterer,
    DBSCANClusterer,
    HDBSCANClusterer,
    KMeansClusterer,
    LargeHDBSCANClusterer,
    SpectralClusterer,
    algorithm_names,
    make_clusterer,
    make_speaker_vectors,
)
from unspeech.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def speakers():
    """12 well-separated speakers x 15 utterances, 40 dims, L2-normalised."""
    return make_speaker_vectors(12, 15, 40, speaker_rank=12, noise=0.3, random_state=3)


CLUSTERERS = [
    HDBSCANClusterer(min_cluster_size=5, min_samples=3),
    DBSCANClusterer(eps=0.5, min_samples=4),
    KMeansClusterer(n_clusters=12, random_state=0),
    AgglomerativeClusterer(n_clusters=12),
    AgglomerativeClusterer(distance_threshold=0.25),
    SpectralClusterer(min_clusters=2, max_clusters=20, random_state=0),
    LargeHDBSCANClusterer(min_cluster_size=5, min_samples=3, n_components=12, random_state=0),
]


@pytest.mark.parametrize("clusterer", CLUSTERERS, ids=lambda c: type(c).__name__)
def test_well_separated_speakers_are_found(speakers, clusterer):
    X, y = speakers
    model = clone(clusterer)
    assert model.fit(X) is model
    assert model.labels_.shape == y.shape and model.labels_.dtype == np.int64
    assert adjusted_rand_score(y, model.labels_) >= 0.95
    assert model.n_clusters_ == 12
    # fit does not rewrite constructor parameters (sklearn contract)
    assert model.get_params() == clusterer.get_params()


@pytest.mark.parametrize("name", ["hdbscan", "dbscan", "kmeans", "agglomerative", "spectral", "hdbscan-large"])
def test_every_algorithm_runs_by_name(speakers, name):
    X, _ = speakers
    params = {"kmeans": {"n_clusters": 5}, "agglomerative": {"n_clusters": 5}, "hdbscan-large": {"n_components": 8}}
    labels = make_clusterer(name, **params.get(name, {})).fit_predict(X)
    assert labels.shape == (len(X),)
    assert name in algorithm_names()


def test_seeded_algorithms_are_deterministic(speakers):
    X = speakers[0][::2]
    for name, params in [("kmeans", {"n_clusters": 7}), ("spectral", {"max_clusters": 15})]:
        a = make_clusterer(name, random_state=5, **params).fit_predict(X)
        b = make_clusterer(name, random_state=5, **params).fit_predict(X)
        np.testing.assert_array_equal(a, b)


def test_hdbscan_probabilities_and_membership(speakers):
    X, _ = speakers
    model = HDBSCANClusterer(min_cluster_size=5).fit(X)
    assert model.probabilities_.shape == (len(X),)
    soft = model.membership_vectors()
    assert soft.shape == (len(X), model.n_clusters_)
    assert np.all(soft.argmax(axis=1)[model.labels_ >= 0] == model.labels_[model.labels_ >= 0])


def test_large_path_reports_kept_variance(speakers):
    X, _ = speakers
    model = LargeHDBSCANClusterer(n_components=12, random_state=0).fit(X)
    assert 0.5 < model.explained_variance_ <= 1.0
    assert model.pca_.n_components_ == 12


def test_unknown_algorithm_and_parameter():
    with pytest.raises(ConfigError, match="unknown clustering algorithm 'optics'; choose from agglomerative"):
        make_clusterer("optics")
    with pytest.raises(ConfigError, match="kmeans does not take eps"):
        make_clusterer("kmeans", eps=0.1)
    assert isinstance(make_clusterer("AHC", n_clusters=2), AgglomerativeClusterer)


def test_fewer_utterances_than_min_cluster_size():
    X = np.random.default_rng(0).standard_normal((4, 8))
    with pytest.raises(DataError, match=r"fewer utterances \(4\) than min_cluster_size=5"):
        HDBSCANClusterer(min_cluster_size=5).fit(X)
    with pytest.raises(DataError, match=r"fewer utterances \(4\) than min_cluster_size=5"):
        LargeHDBSCANClusterer(min_cluster_size=5).fit(X)
    with pytest.raises(DataError, match=r"fewer utterances \(4\) than n_clusters=6"):
        KMeansClusterer(n_clusters=6).fit(X)


def test_nan_rows_and_bad_shapes_are_named():
    X = np.ones((10, 3))
    X[7, 1] = np.nan
    with pytest.raises(DataError, match=r"NaN or Inf values in rows \[7\]"):
        HDBSCANClusterer().fit(X)
    with pytest.raises(DataError, match=r"expected vectors of shape \(n, dim\)"):
        KMeansClusterer().fit(np.ones(5))


@pytest.mark.parametrize(
    "model, match",
    [
        (HDBSCANClusterer(min_cluster_size=1), "`min_cluster_size` must be an integer >= 2"),
        (HDBSCANClusterer(cluster_selection_method="top"), "`cluster_selection_method` must be 'eom' or 'leaf'"),
        (HDBSCANClusterer(metric="no-such-metric"), "HDBSCAN rejected its settings"),
        (DBSCANClusterer(eps=0), "`eps` must be > 0"),
        (KMeansClusterer(n_clusters=None), "k-means needs the number of clusters"),
        (AgglomerativeClusterer(), "exactly one of `n_clusters`"),
        (AgglomerativeClusterer(n_clusters=2, distance_threshold=0.3), "exactly one of `n_clusters`"),
        (AgglomerativeClusterer(n_clusters=2, linkage="ward", metric="cosine"), "ward linkage needs metric='euclidean'"),
        (SpectralClusterer(min_clusters=5, max_clusters=2), "`max_clusters` must be >= `min_clusters`"),
        (SpectralClusterer(p_percentile_min=0.9, p_percentile_max=0.5), "p_percentile_min <= p_percentile_max"),
        (LargeHDBSCANClusterer(n_components=0), "`n_components` must be an integer >= 1"),
    ],
)
def test_bad_settings_raise_config_errors(speakers, model, match):
    with pytest.raises(ConfigError, match=match):
        model.fit(speakers[0])


def test_quadratic_algorithms_refuse_huge_inputs(monkeypatch):
    from unspeech.cluster import algorithms

    monkeypatch.setattr(algorithms, "SPECTRAL_MAX_POINTS", 10)
    monkeypatch.setattr(algorithms, "AGGLOMERATIVE_MAX_POINTS", 10)
    X = np.random.default_rng(0).standard_normal((11, 3))
    with pytest.raises(ConfigError, match="limit 10"):
        SpectralClusterer().fit(X)
    with pytest.raises(ConfigError, match="limit 10"):
        AgglomerativeClusterer(n_clusters=2).fit(X)


def test_cosine_hdbscan_uses_all_pairwise_distances(speakers, monkeypatch):
    from unspeech.cluster import algorithms

    X, y = speakers
    labels = HDBSCANClusterer(metric="cosine", min_cluster_size=5).fit_predict(X)
    assert adjusted_rand_score(y, labels) >= 0.95
    monkeypatch.setattr(algorithms, "AGGLOMERATIVE_MAX_POINTS", 100)
    with pytest.raises(ConfigError, match="needs all pairwise distances of 180 utterances"):
        HDBSCANClusterer(metric="cosine").fit(X)
