"""Outlier policies: nearest cluster (the default), singleton, noise."""

import numpy as np
import pytest

from unspeech.cluster.outliers import resolve_outliers
from unspeech.errors import ConfigError

LABELS = np.array([0, -1, 1, -1, 0, 1])
VECTORS = np.array([[0, 0], [0.9, 1.1], [1, 1], [0.1, -0.1], [0, 0.2], [1, 0.8]], dtype=float)


def test_singletons_get_new_labels_in_order():
    out = resolve_outliers(LABELS, "singleton")
    np.testing.assert_array_equal(out, [0, 2, 1, 3, 0, 1])
    np.testing.assert_array_equal(LABELS, [0, -1, 1, -1, 0, 1])  # input untouched
    np.testing.assert_array_equal(resolve_outliers(np.array([-1, -1]), "singleton"), [0, 1])


def test_nearest_joins_closest_centroid():
    np.testing.assert_array_equal(resolve_outliers(LABELS, "nearest", VECTORS), [0, 1, 1, 0, 0, 1])
    all_noise = np.array([-1, -1])
    np.testing.assert_array_equal(resolve_outliers(all_noise, "nearest", VECTORS[:2]), [-1, -1])


def test_noise_is_kept():
    np.testing.assert_array_equal(resolve_outliers(LABELS, "noise"), LABELS)


def test_policy_errors():
    with pytest.raises(ConfigError, match="`outliers` must be one of singleton, nearest, noise"):
        resolve_outliers(LABELS, "drop")
    with pytest.raises(ConfigError, match="needs the vectors"):
        resolve_outliers(LABELS, "nearest")


def test_nearest_is_the_default():
    """Noise is never counted as speakers unless asked for (the default was "singleton" before)."""
    from unspeech.cluster.options import ClusterOptions

    np.testing.assert_array_equal(resolve_outliers(LABELS, vectors=VECTORS), resolve_outliers(LABELS, "nearest", VECTORS))
    assert ClusterOptions().outliers == "nearest"


def test_nearest_with_many_clusters_matches_exact_assignment():
    """Past 20k clusters the centroids go into an IVF index: the assignment must still be the
    exact nearest centroid for nearly every outlier."""
    from unspeech.cluster.neighbors import EXACT_SEARCH_SIZE, nearest_rows

    rng = np.random.default_rng(3)
    k = EXACT_SEARCH_SIZE + 5000
    centres = rng.standard_normal((k, 12))
    labels = np.repeat(np.arange(k), 2)
    vectors = centres[labels] + 0.05 * rng.standard_normal((labels.size, 12))
    noise_rows = rng.choice(labels.size, size=3000, replace=False)
    raw = labels.copy()
    raw[noise_rows] = -1
    out = resolve_outliers(raw, "nearest", vectors)
    assert (out >= 0).all()
    assert np.array_equal(out[raw >= 0], raw[raw >= 0])
    # centroids of what stayed clustered; exact nearest by brute force
    kept = raw >= 0
    sums = np.zeros((k, 12))
    np.add.at(sums, raw[kept], vectors[kept])
    counts = np.bincount(raw[kept], minlength=k)
    has = counts > 0
    cent = sums[has] / counts[has, None]
    exact = np.flatnonzero(has)[nearest_rows(cent, vectors[noise_rows], search="exact")]
    assert np.mean(out[noise_rows] == exact) >= 0.98
