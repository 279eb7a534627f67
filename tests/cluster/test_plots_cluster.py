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
    with pytest.raises(ConfigError, match="`method` must be auto, tsne, pca or umap"):
        plots.embed_2d(X, "isomap")


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


def test_cluster_map_explains_grey_and_tells_many_groups_apart_by_shape():
    import matplotlib

    matplotlib.use("Agg")
    fig = plots._new_figure(4, 4)
    ax = fig.subplots()
    labels = np.r_[np.repeat(np.arange(24), 3), [-1, -1]]
    points = np.random.default_rng(1).standard_normal((labels.size, 2))
    plots.plot_cluster_map(ax, points, labels, "clusters")
    assert ax.get_title() == "clusters (24 groups)\ngrey: 2 noise points, in no cluster"
    assert len(ax.collections) == 4  # o, s, ^, D
    assert sum(len(c.get_offsets()) for c in ax.collections) == labels.size
    ax.clear()
    plots.plot_cluster_map(ax, points[:9], labels[:9])
    assert ax.get_title() == "3 groups" and len(ax.collections) == 1


def test_cluster_picture_title_names_the_setting_and_the_scores():
    from types import SimpleNamespace

    from unspeech.cluster.pipeline import _figure_title

    result = SimpleNamespace(algorithm="hdbscan", best=SimpleNamespace(params={"min_cluster_size": 5, "min_samples": 3}))
    scores = SimpleNamespace(n_clusters=8, n_gold_speakers=24, ari=0.28217, nmi=0.70261)
    assert _figure_title("exp/utt_vectors.ark", result, scores) == (
        "utt_vectors.ark: hdbscan (min_cluster_size=5, min_samples=3)\n8 clusters vs 24 gold speakers: ARI 0.282, NMI 0.703")
    assert _figure_title("x.ark", result, None) == "x.ark: hdbscan (min_cluster_size=5, min_samples=3)"
