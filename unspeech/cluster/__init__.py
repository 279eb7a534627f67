"""Utterance clustering: vectors, algorithms behind one interface, scores, the large-N path.

>>> from unspeech.cluster import HDBSCANClusterer, score_labels
>>> labels = HDBSCANClusterer(min_cluster_size=5).fit_predict(vectors)      # doctest: +SKIP
>>> score_labels(gold, labels).ari                                          # doctest: +SKIP

Submodules: :mod:`.vectors` (reading, pooling, dims, L2), :mod:`.algorithms` (HDBSCAN, DBSCAN,
k-means, agglomerative, spectral), :mod:`.large` (PCA + Boruvka HDBSCAN for millions),
:mod:`.outliers`, :mod:`.metrics`, :mod:`.grid`, :mod:`.outputs`, :mod:`.pipeline` (the
``cluster.py`` tool), :mod:`.synthetic` (test data). Names are imported on first use.
"""

import importlib

# public name -> submodule; imported on first use so that `import unspeech.cluster` stays cheap
_PUBLIC = {
    "ALGORITHMS": "unspeech.cluster.algorithms",
    "AgglomerativeClusterer": "unspeech.cluster.algorithms",
    "DBSCANClusterer": "unspeech.cluster.algorithms",
    "HDBSCANClusterer": "unspeech.cluster.algorithms",
    "KMeansClusterer": "unspeech.cluster.algorithms",
    "SpectralClusterer": "unspeech.cluster.algorithms",
    "algorithm_names": "unspeech.cluster.algorithms",
    "make_clusterer": "unspeech.cluster.algorithms",
    "GridResult": "unspeech.cluster.grid",
    "run_grid": "unspeech.cluster.grid",
    "write_grid_csv": "unspeech.cluster.grid",
    "LargeHDBSCANClusterer": "unspeech.cluster.large",
    "reduce_dimensions": "unspeech.cluster.large",
    "ClusterScores": "unspeech.cluster.metrics",
    "equal_error_rate": "unspeech.cluster.metrics",
    "pairwise_scores": "unspeech.cluster.metrics",
    "purity_coverage": "unspeech.cluster.metrics",
    "sample_trials": "unspeech.cluster.metrics",
    "score_against_gold": "unspeech.cluster.metrics",
    "score_labels": "unspeech.cluster.metrics",
    "OUTLIER_POLICIES": "unspeech.cluster.outliers",
    "resolve_outliers": "unspeech.cluster.outliers",
    "cluster_size_summary": "unspeech.cluster.outputs",
    "speaker_ids": "unspeech.cluster.outputs",
    "write_clustered_datadir": "unspeech.cluster.outputs",
    "ClusterOptions": "unspeech.cluster.options",
    "cluster_speakers": "unspeech.cluster.pipeline",
    "same_different": "unspeech.cluster.pipeline",
    "make_speaker_vectors": "unspeech.cluster.synthetic",
    "UtteranceVectors": "unspeech.cluster.vectors",
    "l2_normalize": "unspeech.cluster.vectors",
    "pool_frames": "unspeech.cluster.vectors",
    "prepare_vectors": "unspeech.cluster.vectors",
    "read_utterance_vectors": "unspeech.cluster.vectors",
    "select_dims": "unspeech.cluster.vectors",
    "write_vectors_npz": "unspeech.cluster.vectors",
}


__all__ = [
    "ALGORITHMS",
    "HDBSCANClusterer",
    "DBSCANClusterer",
    "KMeansClusterer",
    "AgglomerativeClusterer",
    "SpectralClusterer",
    "LargeHDBSCANClusterer",
    "make_clusterer",
    "algorithm_names",
    "reduce_dimensions",
    "OUTLIER_POLICIES",
    "resolve_outliers",
    "ClusterScores",
    "score_labels",
    "score_against_gold",
    "pairwise_scores",
    "purity_coverage",
    "sample_trials",
    "equal_error_rate",
    "GridResult",
    "run_grid",
    "write_grid_csv",
    "speaker_ids",
    "cluster_size_summary",
    "write_clustered_datadir",
    "ClusterOptions",
    "cluster_speakers",
    "same_different",
    "UtteranceVectors",
    "read_utterance_vectors",
    "write_vectors_npz",
    "pool_frames",
    "select_dims",
    "l2_normalize",
    "prepare_vectors",
    "make_speaker_vectors",
]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'unspeech.cluster' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
