"""Clustering figures: 2-D maps, size histogram, DET curve."""

import numpy as np
import pytest

from unspeech import plots
from unspeech.errors import ConfigError

PNG = b"\x89PNG\r\n\x1a\n"


def test_embed_2d_methods(monkeypatch):
    X = np.random.default_rng(0).standard_normal((60, 10))
    pts, used = plots.embed_2d(X, "pca")
    assert pts.shape == (60, 2) and used == "PCA"
    assert plots.embed_2d(X[:, :2])[1] == "identity"
    monkeypatch.setattr(plots, "TSNE_MAX_POINTS", 50)  # auto: PCA above the t-SNE limit
    assert plots.embed_2d(X, "auto")[1] == "PCA"
    with pytest.raises(ConfigError, match="`method` must be auto, tsne or pca"):
        plots.embed_2d(X, "umap")


@pytest.mark.slow
def test_embed_2d_tsne():
    X = np.random.default_rng(0).standard_normal((20, 10))
    pts, used = plots.embed_2d(X, "auto")
    assert pts.shape == (20, 2) and used == "t-SNE"


def test_cluster_figure_with_gold_and_subsampling(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((500, 2))
    labels = np.where(rng.random(500) < 0.1, -1, rng.integers(0, 40, 500))
    gold = [f"spk{i % 30}" for i in range(500)]
    path = tmp_path / "map.png"
    plots.save_cluster_figure(path, pts, labels, gold, method="PCA", max_points=200)
    assert path.read_bytes()[:8] == PNG
    plots.save_cluster_figure(tmp_path / "no_clusters.svg", pts[:5], np.full(5, -1))
    assert b"<svg" in (tmp_path / "no_clusters.svg").read_bytes()[:400]


def test_det_figure_returns_eer(tmp_path):
    rng = np.random.default_rng(2)
    scores = np.r_[rng.normal(2, 1, 500), rng.normal(0, 1, 500)]
    target = np.r_[np.ones(500, bool), np.zeros(500, bool)]
    eer = plots.save_det_figure(tmp_path / "det.png", scores, target)
    assert 0.1 < eer < 0.25
    assert (tmp_path / "det.png").read_bytes()[:8] == PNG


def test_image_path_checks():
    plots.check_image_path("x.pdf")
    with pytest.raises(ConfigError, match="cannot write a 'xyz' image"):
        plots.check_image_path("out.xyz")
    with pytest.raises(ConfigError, match="give it an extension"):
        plots.check_image_path("out")
