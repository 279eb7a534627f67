"""Grid search: a fresh fit per point, one distinct CSV row each, best by pairwise F1."""

import csv

import numpy as np
import pytest

from unspeech.cluster import make_speaker_vectors
from unspeech.cluster.grid import expand_grid, parse_values, run_grid, write_grid_csv
from unspeech.errors import ConfigError


@pytest.fixture(scope="module")
def data():
    X, y = make_speaker_vectors(8, (6, 30), 24, speaker_rank=8, noise=0.5, random_state=7)
    ids = [f"utt{i:04d}" for i in range(len(y))]
    gold = {u: f"spk{lab}" for u, lab in zip(ids, y)}
    return X, ids, gold


def test_parse_values_and_expand():
    assert parse_values("3,5, 8", int, "--x") == [3, 5, 8]
    assert parse_values("none,2", int, "--x") == [None, 2]
    assert parse_values(None, int, "--x") == [None]
    assert parse_values(0.5, float, "--x") == [0.5]
    assert expand_grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    with pytest.raises(ConfigError, match="--hdbscan_min_cluster_sizes: 'five' is not a valid int"):
        parse_values("3,five", int, "--hdbscan_min_cluster_sizes")
    with pytest.raises(ConfigError, match="empty value"):
        parse_values("3,,5", int, "--x")


def test_grid_fits_every_point_afresh_and_writes_distinct_rows(data, tmp_path):
    X, ids, gold = data
    grid = {"min_cluster_size": [3, 10, 40], "min_samples": [1, 6]}
    result = run_grid(X, "hdbscan", grid, {"core_dist_n_jobs": 1}, utt_ids=ids, gold=gold)
    rows = result.rows()
    assert len(rows) == 6
    settings = [(r["min_cluster_size"], r["min_samples"]) for r in rows]
    assert settings == [(3, 1), (3, 6), (10, 1), (10, 6), (40, 1), (40, 6)]
    # the points really differ: not one setting refitted six times
    outcomes = {(r["n_clusters"], r["n_noise"], r["ari"]) for r in rows}
    assert len(outcomes) >= 4
    best = max(range(6), key=lambda i: rows[i]["pairwise_f1"])
    assert result.best_index == best
    assert result.labels.shape == (len(ids),)

    path = tmp_path / "grid.csv"
    write_grid_csv(path, rows)
    with open(path, newline="") as fh:
        lines = list(csv.reader(fh))
    header = lines[0]
    assert header[:3] == ["algorithm", "min_cluster_size", "min_samples"]
    assert {"n_clusters", "ari", "nmi", "pairwise_f1", "purity", "coverage", "seconds"} <= set(header)
    assert len(lines) == 7 and len({tuple(l) for l in lines[1:]}) == 6
    assert all(len(l) == len(header) for l in lines)


def test_grid_without_gold_keeps_first_point(data):
    X, _, _ = data
    result = run_grid(X, "kmeans", {"n_clusters": [2, 8]}, {"random_state": 0})
    assert result.best_index == 0
    assert [p.summary["n_clusters"] for p in result.points] == [2, 8]
    assert "ari" not in result.rows()[0]


def test_grid_errors(data):
    X, ids, gold = data
    with pytest.raises(ConfigError, match="both fixed and searched: n_clusters"):
        run_grid(X, "kmeans", {"n_clusters": [2]}, {"n_clusters": 3})
    with pytest.raises(ConfigError, match="needs the utterance ids"):
        run_grid(X, "kmeans", {"n_clusters": [2]}, gold=gold)
    with pytest.raises(ConfigError, match="unknown clustering algorithm"):
        run_grid(X, "nope", {"n_clusters": [2]})
