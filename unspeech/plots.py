"""Figures (matplotlib), drawn without pyplot so that no GUI backend or global state is touched.

matplotlib is imported inside the functions: importing this module costs nothing, so command
lines that draw only on request stay fast to start.

Clustering figures
    :func:`embed_2d` (t-SNE up to ~20k points, PCA beyond), :func:`plot_cluster_map`,
    :func:`plot_cluster_sizes`, :func:`save_cluster_figure`; same/different trials:
    :func:`plot_det`, :func:`save_det_figure`.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from unspeech.errors import ConfigError

__all__ = [
    "TSNE_MAX_POINTS",
    "check_image_path",
    "embed_2d",
    "plot_cluster_map",
    "plot_cluster_sizes",
    "save_cluster_figure",
    "plot_det",
    "save_det_figure",
]

TSNE_MAX_POINTS = 20000
"""Above this many points ``embed_2d(method="auto")`` uses PCA (t-SNE gets slow and crowded)."""

_GOLDEN = 0.618033988749895


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _format_of(path: str | os.PathLike, fmt: str | None) -> str:
    if fmt:
        return fmt
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    if not ext:
        raise ConfigError(f"cannot tell the image format of {os.fspath(path)!r}: give it an extension such as .png or .pdf")
    return ext


def check_image_path(path: str | os.PathLike) -> None:
    """Raise :class:`ConfigError` early if matplotlib cannot write ``path``'s format."""
    from matplotlib.backend_bases import FigureCanvasBase

    fmt = _format_of(path, None)
    if fmt not in FigureCanvasBase.get_supported_filetypes():
        supported = ", ".join(sorted(FigureCanvasBase.get_supported_filetypes()))
        raise ConfigError(f"cannot write a {fmt!r} image ({os.fspath(path)}); supported: {supported}")


def embed_2d(vectors: np.ndarray, method: str = "auto", random_state: int | None = 0) -> tuple[np.ndarray, str]:
    """Map ``(n, D)`` vectors to 2-D for display.

    Parameters
    ----------
    method : {"auto", "tsne", "pca", "umap"}
        ``auto``: t-SNE for at most :data:`TSNE_MAX_POINTS` points, PCA beyond. ``umap`` needs
        umap-learn (fitted on at most 100k seeded rows, applied to all).

    Returns
    -------
    points : ndarray of shape (n, 2), float64
    used : str
        The method actually used (``"t-SNE"``, ``"PCA"`` or ``"UMAP"``).
    """
    X = np.asarray(vectors, dtype=np.float64)
    if method not in ("auto", "tsne", "pca", "umap"):
        raise ConfigError(f"`method` must be auto, tsne, pca or umap. Received: method={method!r}")
    if X.shape[1] <= 2:
        return np.pad(X, ((0, 0), (0, 2 - X.shape[1]))), "identity"
    if method == "umap":
        from unspeech.cluster.large import reduce_dimensions

        return reduce_dimensions(X, 2, method="umap", random_state=random_state)[0], "UMAP"
    if method == "tsne" or (method == "auto" and len(X) <= TSNE_MAX_POINTS):
        from sklearn.manifold import TSNE

        if len(X) < 5:
            return embed_2d(X, "pca", random_state)
        perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3.0)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state)
        return tsne.fit_transform(X), "t-SNE"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=random_state).fit_transform(X), "PCA"


def _colors(codes: np.ndarray, noise: np.ndarray):
    from matplotlib import colormaps

    cmap = colormaps["hsv"]
    rgba = cmap((codes * _GOLDEN) % 1.0 * 0.9)
    # vary lightness in a second cycle so that many clusters stay distinguishable
    shade = 0.55 + 0.45 * ((codes * 0.381966) % 1.0)
    rgba[:, :3] *= shade[:, None]
    rgba[noise] = (0.75, 0.75, 0.75, 0.6)
    return rgba


def plot_cluster_map(ax, points: np.ndarray, labels: Sequence, title: str = "", noise_label=-1) -> None:
    """Scatter ``(n, 2)`` points on ``ax`` coloured by ``labels`` (noise in grey)."""
    labels = np.asarray(labels)
    noise = labels == noise_label if np.issubdtype(labels.dtype, np.integer) else np.zeros(len(labels), bool)
    codes = np.unique(labels, return_inverse=True)[1].ravel()
    size = float(np.clip(4000.0 / max(len(points), 1), 0.5, 25.0))
    colors = _colors(codes, noise)
    n_groups = int(np.unique(labels[~noise]).size)
    # beyond a dozen groups colours alone are hard to tell apart: the marker shape varies too
    shapes = ("o", "s", "^", "D") if n_groups > 12 else ("o",)
    for k, marker in enumerate(shapes):
        drawn = ~noise & (codes % len(shapes) == k)
        if k == 0:
            drawn |= noise  # noise points are grey dots
        ax.scatter(points[drawn, 0], points[drawn, 1], c=colors[drawn], s=size, linewidths=0, marker=marker)
    n_noise = int(noise.sum())
    text = f"{title} ({n_groups} groups)" if title else f"{n_groups} groups"
    ax.set_title(text + (f"\ngrey: {n_noise} noise points, in no cluster" if n_noise else ""), fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_cluster_sizes(ax, labels: Sequence, noise_label=-1) -> None:
    """Histogram of cluster sizes on ``ax`` (log-spaced bins when sizes span a wide range)."""
    labels = np.asarray(labels)
    _, sizes = np.unique(labels[labels != noise_label], return_counts=True)
    n_noise = int((labels == noise_label).sum())
    if sizes.size == 0:
        ax.text(0.5, 0.5, "no clusters", ha="center", va="center", transform=ax.transAxes)
    else:
        top = int(sizes.max())
        if top > 50:
            bins = np.unique(np.round(np.logspace(0, np.log10(top + 1), 30)).astype(int))
            ax.set_xscale("log")
        else:
            bins = np.arange(1, top + 2) - 0.5
        ax.hist(sizes, bins=bins, color="#4477aa")
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("utterances per cluster")
    ax.set_ylabel("clusters")
    ax.set_title(f"cluster sizes ({sizes.size} clusters, {n_noise} noise)", fontsize=10)


def save_cluster_figure(
    path: str | os.PathLike,
    points: np.ndarray,
    labels: Sequence,
    gold: Sequence | None = None,
    *,
    method: str = "",
    fmt: str | None = None,
    max_points: int = 50000,
    random_state: int | None = 0,
    title: str = "",
) -> None:
    """Write one figure: the 2-D map by cluster, by gold speaker (if given), and the size histogram.

    At most ``max_points`` (seeded random subset) are drawn in the maps; the histogram uses all labels.
    """
    labels = np.asarray(labels)
    shown = np.arange(len(labels))
    if len(labels) > max_points:
        shown = np.sort(np.random.default_rng(random_state).choice(len(labels), size=max_points, replace=False))
    panels = 3 if gold is not None else 2
    fig = _new_figure(5.0 * panels, 4.8)
    axes = fig.subplots(1, panels)
    note = f"{method}, " if method else ""
    note += f"{shown.size} of {len(labels)} shown" if shown.size < len(labels) else f"{len(labels)} utterances"
    plot_cluster_map(axes[0], points[shown], labels[shown], f"clusters [{note}]")
    if gold is not None:
        plot_cluster_map(axes[1], points[shown], np.asarray(gold)[shown], "gold speakers")
    plot_cluster_sizes(axes[-1], labels)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, format=_format_of(path, fmt))


def plot_det(ax, scores: np.ndarray, is_target: np.ndarray, label: str = "") -> float:
    """Draw a DET curve (normal-deviate axes) on ``ax``; returns the EER it marks."""
    from scipy.stats import norm
    from sklearn.metrics import det_curve

    from unspeech.cluster.metrics import equal_error_rate

    fpr, fnr, _ = det_curve(np.asarray(is_target, bool), np.asarray(scores, np.float64))
    eps = 1e-6
    ax.plot(norm.ppf(np.clip(fpr, eps, 1 - eps)), norm.ppf(np.clip(fnr, eps, 1 - eps)), label=label or None)
    eer, _ = equal_error_rate(scores, is_target)
    q = norm.ppf(np.clip(eer, eps, 1 - eps))
    ax.plot([q], [q], "o", color="black")
    ax.annotate(f"EER {100 * eer:.2f}%", (q, q), textcoords="offset points", xytext=(8, -12))
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
    lim = norm.ppf([0.0005, 0.99])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, ":", color="grey", linewidth=0.8)
    ax.set_xlabel("false acceptance rate")
    ax.set_ylabel("false rejection rate")
    ax.grid(True, alpha=0.3)
    return eer


def save_det_figure(
    path: str | os.PathLike, scores: np.ndarray, is_target: np.ndarray, *, title: str = "", fmt: str | None = None
) -> float:
    """Write a DET plot of same/different trials; returns the EER."""
    fig = _new_figure(5.5, 5.0)
    ax = fig.subplots()
    eer = plot_det(ax, scores, is_target)
    n_target = int(np.sum(is_target))
    ax.set_title(title or f"DET: {n_target} target / {len(is_target) - n_target} non-target trials", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format=_format_of(path, fmt))
    return eer
