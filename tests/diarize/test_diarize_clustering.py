"""Clustering the embedding rows of one recording, with speaker-count constraints."""

import logging

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from unspeech.diarize.clustering import (
    ahc_speakers,
    ahc_with_count,
    assign_to_centroids,
    check_speaker_bounds,
    cluster_rows,
    merge_small_clusters,
)
from unspeech.diarize.profiles import l2_normalize
from unspeech.errors import ConfigError


def _speakers(n_speakers=3, per_speaker=60, dim=16, noise=0.15, seed=0):
    """Rows of well-separated speakers in turns, like a conversation: (N, dim) and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_speakers, dim))
    labels = np.repeat(np.arange(n_speakers), per_speaker)
    rows = centres[labels] + noise * np.linalg.norm(centres, axis=1).mean() * rng.standard_normal((len(labels), dim)) / np.sqrt(dim)
    return rows + 5.0, labels  # a shared offset (the "channel") that centring removes


@pytest.mark.parametrize("method", ["ahc", "hdbscan", "spectral"])
def test_each_method_finds_well_separated_speakers(method):
    rows, truth = _speakers()
    labels = cluster_rows(rows, method)
    assert adjusted_rand_score(truth, labels) > 0.95
    assert labels.min() == 0 and len(set(labels)) == 3


@pytest.mark.parametrize("method", ["ahc", "hdbscan", "spectral"])
def test_speaker_count_constraints(method):
    rows, truth = _speakers(n_speakers=4)
    assert len(set(cluster_rows(rows, method, num_speakers=2))) == 2
    assert len(set(cluster_rows(rows, method, max_speakers=3))) <= 3
    assert len(set(cluster_rows(rows, method, min_speakers=5))) >= 5
    assert set(cluster_rows(rows, method, num_speakers=1)) == {0}


def test_small_ahc_clusters_join_the_nearest_speaker():
    rows, truth = _speakers(n_speakers=2, per_speaker=50)
    x = rows - rows.mean(axis=0)
    stray = np.vstack([x[:3] * 0.2 + np.roll(x[:3], 1, axis=1), -x[60:62] + 0.5])  # 5 rows far from both
    labels = ahc_speakers(np.vstack([x, stray]) / np.linalg.norm(np.vstack([x, stray]), axis=1, keepdims=True),
                          threshold=0.3, min_cluster_size=10)
    assert len(set(labels)) == 2 and adjusted_rand_score(truth, labels[:100]) == 1.0
    for method in ("ahc", "spectral", "hdbscan"):  # stray rows are never counted as speakers
        with_stray = cluster_rows(np.vstack([rows, stray + rows.mean(axis=0)]), method, min_cluster_size=10)
        assert len(set(with_stray)) == 2, method
    x = l2_normalize(np.vstack([x, stray]))
    labels = ahc_with_count(x, 2, min_cluster_size=10)  # a cut at exactly 2 clusters would give a stray row a speaker
    assert len(set(labels)) == 2 and adjusted_rand_score(truth, labels[:100]) == 1.0


def test_merge_small_clusters_keeps_the_large_ones():
    x = l2_normalize(np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [0.9, 0.2], [0.2, 1.0]], dtype=float))
    np.testing.assert_array_equal(merge_small_clusters(x, np.array([4, 4, 2, 2, 7, -1]), 2), [1, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(merge_small_clusters(x, np.array([0, 1, 2, 3, 4, 5]), 2), [0] * 6)  # none that large
    np.testing.assert_array_equal(merge_small_clusters(x, np.full(6, -1), 2), [0] * 6)


@pytest.mark.parametrize("method", ["ahc", "spectral"])
def test_count_rules(method, caplog):
    rows, truth = _speakers(n_speakers=4)
    with caplog.at_level(logging.INFO, logger="unspeech"):
        for rule in ("relative", "eigengap", "consensus", "threshold"):
            assert adjusted_rand_score(truth, cluster_rows(rows, method, count_rule=rule)) > 0.95, rule
    assert "speaker count (relative): 4 speakers (relative threshold, AHC cut at cosine distance" in caplog.text
    assert "speaker count (eigengap): 4 speakers (eigengap, p=" in caplog.text
    assert "speaker count (consensus): 4 speakers (consensus, p=" in caplog.text and "votes 4 4 " in caplog.text
    assert "speaker count (AHC cut at cosine distance 0.5): 4" in caplog.text


def test_library_failures_fall_back_with_a_warning(monkeypatch, caplog):
    """spectralcluster's auto-tuning once raised UnboundLocalError; HDBSCAN or the eigensolver may fail too."""
    import scipy.linalg

    from unspeech.cluster import HDBSCANClusterer, SpectralClusterer

    def raises(exc):
        def fit(*args, **kwargs):
            raise exc
        return fit

    rows, truth = _speakers()
    monkeypatch.setattr(SpectralClusterer, "fit", raises(UnboundLocalError("local variable 'best_p_percentile_index'")))
    monkeypatch.setattr(HDBSCANClusterer, "fit", raises(ValueError("hdbscan broke")))
    with caplog.at_level(logging.WARNING):
        for method in ("spectral", "hdbscan"):
            assert adjusted_rand_score(truth, cluster_rows(rows, method)) > 0.95
        assert adjusted_rand_score(truth, cluster_rows(rows, "spectral", num_speakers=3)) > 0.95
    assert "spectral clustering failed (UnboundLocalError" in caplog.text and "using AHC with 3 speakers" in caplog.text
    assert "HDBSCAN failed (ValueError: hdbscan broke)" in caplog.text
    monkeypatch.setattr(scipy.linalg, "eigh", raises(np.linalg.LinAlgError("no convergence")))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert adjusted_rand_score(truth, cluster_rows(rows, "ahc", count_rule="eigengap")) > 0.95
    assert "eigengap speaker count failed (LinAlgError" in caplog.text and "AHC threshold rule instead" in caplog.text


def test_long_recordings_cluster_a_subsample_and_assign_the_rest():
    rows, truth = _speakers(per_speaker=400)
    labels = cluster_rows(rows, "ahc", max_points=150)
    assert adjusted_rand_score(truth, labels) > 0.95


def test_tiny_inputs_and_helpers():
    assert cluster_rows(np.zeros((0, 4)), "ahc").shape == (0,)
    np.testing.assert_array_equal(cluster_rows(np.eye(2), "spectral"), [0, 0])
    np.testing.assert_array_equal(assign_to_centroids(np.array([[1.0, 0.1], [0.0, -2.0]]), np.array([[0, -1.0], [3, 0]])), [1, 0])
    assert check_speaker_bounds(None, 2, None) == (2, None)
    assert check_speaker_bounds(3, 1, 4) == (3, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "kmeans"}, "`method` must be one of hdbscan, ahc, spectral"),
        ({"count_rule": "bic"}, "`count_rule` must be one of relative, eigengap, consensus, threshold. Received: count_rule='bic'"),
        ({"num_speakers": 0}, "`num_speakers` must be >= 1"),
        ({"num_speakers": 5, "max_speakers": 3}, r"`num_speakers` must lie within \[min_speakers, max_speakers\]"),
        ({"min_speakers": 4, "max_speakers": 3}, "`max_speakers` must be >= `min_speakers`"),
    ],
)
def test_bad_clustering_options_raise(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cluster_rows(np.ones((5, 3)), **kwargs)


@pytest.mark.parametrize("method", ["ahc", "spectral"])
def test_a_forced_count_the_rows_cannot_give_is_reported(method, caplog):
    """--num_speakers 1000 on a short recording: the labels hold at most one speaker per row, and the
    log says so instead of returning fewer speakers without a word (issue 14)."""
    x = np.random.default_rng(0).standard_normal((40, 8))
    with caplog.at_level("WARNING", logger="unspeech.diarize.clustering"):
        labels = cluster_rows(x, method, num_speakers=1000)
    assert len(np.unique(labels)) == 40
    assert "1000 speakers asked for (num_speakers/min_speakers), but the 40 embedding rows" in caplog.text
