"""The options of the clustering tool in one place (no heavy imports: the command line reads its
defaults from here before any clustering library is loaded)."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["ClusterOptions"]


@dataclass
class ClusterOptions:
    """Every option of the clustering tool; the command line takes its defaults from here.

    Comma lists (``min_cluster_sizes="3,5,8"``) make a grid: every combination is fitted afresh.
    """

    input_ark: str = ""
    set: str = ""
    utt2spk: str | None = None
    output_utt2spk: str | None = None
    output_spk2utt: str | None = None
    output_datadir: str | None = None
    source_datadir: str | None = None
    results_csv: str | None = None
    membership: str | None = None
    plot: str | None = None
    plot_method: str = "auto"
    pooling: str = "mean"
    half_index: int = -1
    dims: str | None = None
    normalize: bool = True
    algorithm: str = "hdbscan"
    n_clusters: str | None = None
    min_cluster_sizes: str = "5"
    min_samples: str = "3"
    cluster_selection_epsilon: str = "0.0"
    cluster_selection_method: str = "eom"
    dbscan_eps: str = "0.5"
    dbscan_min_samples: str = "5"
    ahc_threshold: str | None = None
    linkage: str = "average"
    min_clusters: int | None = None
    max_clusters: int | None = None
    metric: str = "euclidean"
    pca_dims: str = "auto"
    reduce: str = "pca"
    neighbor_search: str = "ivf"
    n_jobs: int = 1
    outliers: str = "nearest"
    random_seed: int = 42
    trials: int = 200000
    max_spks: int = -1

    @classmethod
    def from_namespace(cls, args) -> "ClusterOptions":
        """Build from an ``argparse.Namespace`` holding (at least) these names."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})
