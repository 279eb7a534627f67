"""The clustering tool as library calls: read vectors, cluster (or grid-search), score, draw, write.

:func:`cluster_speakers` is ``cluster.py --mode cluster_speaker``; :func:`same_different` is
``--mode samedifferent``. Both take a :class:`ClusterOptions` (whose defaults are the command
line's defaults) and report progress through ``hook(step, artifact, completed=, total=)``.

Order of work, so that bad input fails fast and nothing is half-written: options and output
paths are checked first, then the gold ``utt2spk`` is read, then the vectors; all results are
computed (including the figure) before the first output file is renamed into place.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from unspeech.cluster.algorithms import canonical_name
from unspeech.cluster.grid import GridResult, parse_values, run_grid, write_grid_csv
from unspeech.cluster.large import LARGE_INPUT_SIZE
from unspeech.cluster.metrics import ClusterScores, equal_error_rate, sample_trials
from unspeech.cluster.outliers import OUTLIER_POLICIES
from unspeech.cluster.outputs import (
    StagedOutputs,
    check_output_dir,
    cluster_size_summary,
    speaker_ids,
    write_clustered_datadir,
    write_membership,
    write_speaker_tables,
)
from unspeech.cluster.options import ClusterOptions
from unspeech.cluster.vectors import POOLINGS, UtteranceVectors, prepare_vectors, read_utterance_vectors
from unspeech.errors import ConfigError, DataError

__all__ = ["ClusterOptions", "ClusterReport", "SameDifferentReport", "cluster_speakers", "same_different", "read_gold"]

logger = logging.getLogger(__name__)

Hook = Callable[..., None]

DEFAULT_PCA_DIMS = 16
"""Dimensions the large path keeps when ``pca_dims="auto"`` switches it on."""

MEMBERSHIP_MAX_CELLS = 50_000_000
"""Largest ``n_utts * n_clusters`` soft-membership matrix written; beyond it only the strengths are."""


@dataclass
class ClusterReport:
    """What :func:`cluster_speakers` did."""

    vectors: UtteranceVectors
    grid: GridResult
    speakers: list[str]
    summary: dict
    scores: ClusterScores | None
    algorithm: str
    written: list[str] = field(default_factory=list)
    explained_variance: float | None = None

    def format(self) -> str:
        from unspeech.cluster.outputs import format_size_summary

        best = self.grid.best
        lines = [f"{self.algorithm} {best.params}: " + format_size_summary(self.summary)]
        if len(self.grid.points) > 1 and self.scores is not None:
            lines.append(f"best of {len(self.grid.points)} settings by pairwise F1: {best.params}")
        elif len(self.grid.points) > 1:
            lines.append(f"{len(self.grid.points)} settings fitted (no gold speakers: the first one is reported)")
        if self.explained_variance is not None:
            lines.append(f"PCA kept {100 * self.explained_variance:.1f}% of the variance")
        if self.scores is not None:
            lines.append(self.scores.format())
        lines += [f"wrote {path}" for path in self.written]
        return "\n".join(lines)


@dataclass
class SameDifferentReport:
    """What :func:`same_different` measured."""

    eer: float
    threshold: float
    n_utts: int
    n_speakers: int
    n_target: int
    n_nontarget: int
    metric: str
    written: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = [
            f"{self.n_target} target / {self.n_nontarget} non-target trials over {self.n_utts} utterances "
            f"of {self.n_speakers} speakers ({self.metric})",
            f"EER = {100 * self.eer:.2f}% (threshold {self.threshold:.4f})",
        ]
        return "\n".join(lines + [f"wrote {path}" for path in self.written])


# ---------------------------------------------------------------- option checks


def _with_set(path: str | None, set_name: str, flag: str) -> str | None:
    if path is None or "%set" not in path:
        return path
    if not set_name:
        raise ConfigError(f"{flag} {path!r} contains %set: give --set (e.g. --set dev)")
    return path.replace("%set", set_name)


def _gold_path(opts: ClusterOptions) -> str | None:
    if opts.utt2spk is None or opts.utt2spk.strip().lower() in ("", "none"):
        return None
    return _with_set(opts.utt2spk, opts.set, "--utt2spk")


def read_gold(path: str) -> dict[str, str]:
    """Read a gold ``utt2spk``; any failure is a :class:`DataError` naming the file."""
    from unspeech import datadir

    try:
        return datadir.read_utt2spk(path)
    except DataError as exc:
        raise DataError(f"cannot read gold speakers (--utt2spk {path}): {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read gold speakers (--utt2spk {path}): {exc}") from None


def _check_common(opts: ClusterOptions) -> None:
    if not opts.input_ark:
        raise ConfigError("no input: give -i/--input-ark (an ark, scp, pipe or .npz)")
    if opts.pooling not in POOLINGS:
        raise ConfigError(f"--pooling must be one of {', '.join(POOLINGS)}. Received: {opts.pooling!r}")
    if opts.plot:
        from unspeech.plots import check_image_path

        check_image_path(opts.plot)
    if opts.plot_method not in ("auto", "tsne", "pca", "umap"):
        raise ConfigError(f"--plot-method must be auto, tsne, pca or umap. Received: {opts.plot_method!r}")
    if opts.reduce not in ("pca", "umap", "none"):
        raise ConfigError(f"--reduce must be pca, umap or none. Received: {opts.reduce!r}")
    if opts.neighbor_search not in ("ivf", "hnsw", "exact"):
        raise ConfigError(f"--neighbor-search must be ivf, hnsw or exact. Received: {opts.neighbor_search!r}")
    if "umap" in (opts.reduce, opts.plot_method):
        from unspeech.cluster.large import _umap

        _umap()  # a missing umap-learn fails here, before any reading


def _search_space(opts: ClusterOptions, n_utts: int, dim: int) -> tuple[str, dict, dict]:
    """Map the tool's options onto ``(algorithm, grid, fixed params)`` for :func:`run_grid`."""
    algorithm = canonical_name(opts.algorithm)
    seed = opts.random_seed
    if algorithm in ("hdbscan", "hdbscan-large"):
        grid = {
            "min_cluster_size": parse_values(opts.min_cluster_sizes, int, "--hdbscan_min_cluster_sizes"),
            "min_samples": parse_values(opts.min_samples, int, "--hdbscan_min_samples_str"),
            "cluster_selection_epsilon": parse_values(opts.cluster_selection_epsilon, float, "--cluster-selection-epsilon"),
        }
        fixed = {"cluster_selection_method": opts.cluster_selection_method, "core_dist_n_jobs": opts.n_jobs}
        pca = _pca_dims(opts, n_utts, dim)
        if algorithm == "hdbscan-large" and not pca:
            pca = min(DEFAULT_PCA_DIMS, dim)
        if pca:
            if opts.membership:
                raise ConfigError(
                    f"--membership needs exact HDBSCAN, but {n_utts} utterances take the large-input path: "
                    "add --pca-dims 0 (slow for large inputs) or drop --membership"
                )
            return "hdbscan-large", grid, {**fixed, "n_components": pca, "random_state": seed, "reduce": opts.reduce,
                                           "neighbor_search": opts.neighbor_search}
        return "hdbscan", grid, {**fixed, "metric": opts.metric}
    if algorithm == "dbscan":
        grid = {
            "eps": parse_values(opts.dbscan_eps, float, "--dbscan-eps"),
            "min_samples": parse_values(opts.dbscan_min_samples, int, "--dbscan-min-samples"),
        }
        return algorithm, grid, {"metric": opts.metric, "n_jobs": opts.n_jobs}
    n_clusters = parse_values(opts.n_clusters, int, "-n/--n-clusters")
    if algorithm == "kmeans":
        return algorithm, {"n_clusters": n_clusters}, {"random_state": seed}
    if algorithm == "agglomerative":
        if opts.ahc_threshold is not None and opts.n_clusters is not None:
            raise ConfigError("agglomerative: give -n/--n-clusters or --ahc-threshold, not both")
        if opts.ahc_threshold is not None:
            grid = {"distance_threshold": parse_values(opts.ahc_threshold, float, "--ahc-threshold")}
        else:
            grid = {"n_clusters": n_clusters}
        return algorithm, grid, {"linkage": opts.linkage, "metric": opts.metric}
    # spectral
    fixed = {"min_clusters": opts.min_clusters, "max_clusters": opts.max_clusters, "random_state": seed}
    return algorithm, {"n_clusters": n_clusters}, fixed


def _pca_dims(opts: ClusterOptions, n_utts: int, dim: int) -> int:
    """Dimensions for the large HDBSCAN path, or 0 for exact HDBSCAN on the vectors as they are."""
    text = str(opts.pca_dims).strip().lower()
    if text == "auto":
        if n_utts >= LARGE_INPUT_SIZE and dim > DEFAULT_PCA_DIMS and opts.metric == "euclidean":
            logger.info(
                "%d utterances: HDBSCAN on %d PCA dims over a k-nearest-neighbour graph (--pca-dims 0 forces exact HDBSCAN)",
                n_utts,
                DEFAULT_PCA_DIMS,
            )
            return DEFAULT_PCA_DIMS
        return 0
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--pca-dims must be auto, 0 or a number of dimensions. Received: {opts.pca_dims!r}") from None
    if value < 0:
        raise ConfigError(f"--pca-dims must be >= 0. Received: {value}")
    if value and opts.metric != "euclidean":
        raise ConfigError(f"--pca-dims needs --metric euclidean (PCA keeps euclidean geometry). Received: --metric {opts.metric}")
    return min(value, dim) if value else 0


def _grid_size(opts: ClusterOptions) -> int:
    """How many settings the options ask for (before the data is read)."""
    algorithm = canonical_name(opts.algorithm)
    hdbscan_lists = (opts.min_cluster_sizes, opts.min_samples, opts.cluster_selection_epsilon)
    lists = {
        "hdbscan": hdbscan_lists,
        "hdbscan-large": hdbscan_lists,
        "dbscan": (opts.dbscan_eps, opts.dbscan_min_samples),
    }.get(algorithm, (opts.ahc_threshold if opts.ahc_threshold is not None else opts.n_clusters,))
    size = 1
    for text in lists:
        size *= 1 if text is None else len(str(text).split(","))
    return size


def _fill_placeholders(path: str | None, opts: ClusterOptions, params: dict) -> str | None:
    if path is None:
        return None
    path = _with_set(path, opts.set, "output path")
    for key, name in (("%minclustersize", "min_cluster_size"), ("%minsample", "min_samples")):
        path = path.replace(key, str(params.get(name, "none")))
    return path


# ---------------------------------------------------------------- cluster_speaker


def load_vectors(opts: ClusterOptions, hook: Hook | None = None) -> UtteranceVectors:
    """Read and prepare the utterance vectors named by ``opts`` (``%set`` filled in)."""
    source = _with_set(opts.input_ark, opts.set, "--input-ark")
    data = read_utterance_vectors(source, pooling=opts.pooling, hook=hook)
    # the vectors just read belong to nobody else: normalised in place
    return prepare_vectors(data, half_index=opts.half_index, dims=opts.dims, normalize=opts.normalize, copy=False)


def cluster_speakers(opts: ClusterOptions, hook: Hook | None = None) -> ClusterReport:
    """Cluster utterances into pseudo-speakers and write what ``opts`` asks for."""
    _check_common(opts)
    canonical_name(opts.algorithm)  # unknown names fail before any reading
    if opts.outliers not in OUTLIER_POLICIES:
        raise ConfigError(f"--outliers must be one of {', '.join(OUTLIER_POLICIES)}. Received: {opts.outliers!r}")
    if opts.membership and not canonical_name(opts.algorithm).startswith("hdbscan"):
        raise ConfigError(f"--membership needs -a hdbscan (soft memberships are HDBSCAN's). Received: -a {opts.algorithm}")
    if opts.output_datadir:
        check_output_dir(opts.output_datadir)
    if opts.source_datadir and not opts.output_datadir:
        raise ConfigError("--source-datadir is used only with --output-datadir")
    _search_space(opts, 0, 1 << 30)  # flag values (comma lists, --pca-dims) fail here, before any reading
    gold_path = _gold_path(opts)
    wants_labels = any((opts.output_utt2spk, opts.output_spk2utt, opts.output_datadir, opts.membership, opts.plot))
    if wants_labels and gold_path is None and _grid_size(opts) > 1:
        raise ConfigError(
            f"a grid of {_grid_size(opts)} settings without gold speakers has no best setting to write or plot: "
            "give --utt2spk GOLD, or a single value per option"
        )
    gold = read_gold(gold_path) if gold_path else None

    data = load_vectors(opts, hook)
    algorithm, grid, fixed = _search_space(opts, len(data), data.dim)
    result = run_grid(
        data.vectors, algorithm, grid, fixed, utt_ids=data.utt_ids, gold=gold, outliers=opts.outliers, hook=hook
    )
    speakers = speaker_ids(result.labels)
    report = ClusterReport(
        vectors=data,
        grid=result,
        speakers=speakers,
        summary=cluster_size_summary(result.raw_labels),
        scores=result.best.scores,
        algorithm=algorithm,
        explained_variance=getattr(result.model, "explained_variance_", None),
    )

    figure_points = None
    if opts.plot:
        if hook is not None:
            hook("plot", None, completed=0, total=1)
        figure_points = _figure_points(data.vectors, opts)

    membership = None
    if opts.membership:
        membership = _membership(result, speakers)

    params = result.best.params
    with StagedOutputs() as out:
        utt2spk_path = _fill_placeholders(opts.output_utt2spk, opts, params)
        spk2utt_path = _fill_placeholders(opts.output_spk2utt, opts, params)
        if utt2spk_path or spk2utt_path:
            write_speaker_tables(
                out.file(utt2spk_path) if utt2spk_path else None,
                out.file(spk2utt_path) if spk2utt_path else None,
                data.utt_ids,
                speakers,
            )
            report.written += [p for p in (utt2spk_path, spk2utt_path) if p]
        if opts.output_datadir:
            folder = _fill_placeholders(opts.output_datadir, opts, params)
            write_clustered_datadir(out.directory(folder), data.utt_ids, speakers, opts.source_datadir)
            report.written.append(folder)
        if opts.results_csv:
            path = _with_set(opts.results_csv, opts.set, "--results-csv")
            write_grid_csv(out.file(path), result.rows())
            report.written.append(path)
        if membership is not None:
            path = _fill_placeholders(opts.membership, opts, params)
            write_membership(out.file(path), data.utt_ids, speakers, *membership)
            report.written.append(path)
        if figure_points is not None:
            from unspeech.plots import save_cluster_figure

            path = _fill_placeholders(opts.plot, opts, params)
            gold_labels = [gold.get(u, "<no gold>") for u in data.utt_ids] if gold is not None else None
            save_cluster_figure(
                out.file(path),
                figure_points[0],
                result.raw_labels,
                gold_labels,
                method=figure_points[1],
                fmt=os.path.splitext(path)[1].lstrip(".").lower(),
                random_state=opts.random_seed,
                title=_figure_title(data.source, result, report.scores),
            )
            report.written.append(path)
    if hook is not None:
        hook("write", report, completed=1, total=1)
    return report


def _figure_title(source: str, result, scores) -> str:
    """What the cluster picture shows: input, algorithm and setting, and the scores when gold speakers are known."""
    setting = ", ".join(f"{k}={v}" for k, v in result.best.params.items())
    title = f"{os.path.basename(source)}: {result.algorithm} ({setting})"
    if scores is not None:
        title += (f"\n{scores.n_clusters} clusters vs {scores.n_gold_speakers} gold speakers: "
                  f"ARI {scores.ari:.3f}, NMI {scores.nmi:.3f}")
    return title


def _figure_points(vectors: np.ndarray, opts: ClusterOptions) -> tuple[np.ndarray, str]:
    from unspeech.plots import TSNE_MAX_POINTS, embed_2d

    if opts.plot_method == "tsne" and len(vectors) > TSNE_MAX_POINTS:
        logger.warning("t-SNE of %d points will take long (auto switches to PCA above %d)", len(vectors), TSNE_MAX_POINTS)
    method = opts.plot_method
    if method == "auto" and len(vectors) > TSNE_MAX_POINTS and opts.reduce == "umap":
        method = "umap"  # large sets are drawn with the projection they were clustered on
    return embed_2d(vectors, method, random_state=opts.random_seed)


def _membership(result: GridResult, speakers: list[str]):
    model = result.model
    labels = result.raw_labels
    k = int(model.n_clusters_)
    cluster_names: list[str] = []
    matrix = None
    if len(labels) * k <= MEMBERSHIP_MAX_CELLS:
        matrix = model.membership_vectors()
        # column j of hdbscan's matrix is cluster label j; name it by its speaker id
        first = {}
        for lab, spk in zip(labels.tolist(), speakers):
            if lab >= 0 and lab not in first:
                first[lab] = spk
        cluster_names = [first.get(j, f"cluster{j}") for j in range(k)]
    else:
        logger.warning(
            "soft membership matrix of %d x %d is too large; writing only the per-utterance strengths", len(labels), k
        )
    return model.probabilities_, matrix, cluster_names


# ---------------------------------------------------------------- samedifferent


def same_different(opts: ClusterOptions, hook: Hook | None = None) -> SameDifferentReport:
    """EER of same/different-speaker trials scored by vector similarity (``--mode samedifferent``)."""
    from sklearn.metrics.pairwise import paired_distances

    _check_common(opts)
    gold_path = _gold_path(opts)
    if gold_path is None:
        raise ConfigError("--mode samedifferent needs gold speakers: --utt2spk FILE")
    if opts.metric not in ("cosine", "euclidean", "manhattan", "cityblock", "l1", "l2"):
        raise ConfigError(f"--metric for samedifferent must be cosine, euclidean or manhattan. Received: {opts.metric!r}")
    if opts.trials < 2:
        raise ConfigError(f"--trials must be >= 2. Received: {opts.trials}")
    gold = read_gold(gold_path)
    data = load_vectors(opts, hook)
    keep = np.array([u in gold for u in data.utt_ids])
    if not keep.any():
        raise DataError(f"no utterance of {data.source} has a gold speaker in {gold_path}")
    utts = [u for u, k in zip(data.utt_ids, keep) if k]
    vectors = data.vectors[keep]
    labels = np.array([gold[u] for u in utts])
    if opts.max_spks is not None and opts.max_spks > 0:
        chosen = _choose_speakers(labels, opts.max_spks, opts.random_seed)
        sel = np.isin(labels, chosen)
        vectors, labels = vectors[sel], labels[sel]
    first, second, is_target = sample_trials(labels, opts.trials, opts.random_seed)
    scores = np.empty(first.size)
    for start in range(0, first.size, 65536):
        a, b = first[start:start + 65536], second[start:start + 65536]
        scores[start:start + 65536] = -paired_distances(vectors[a], vectors[b], metric=opts.metric)
    eer, threshold = equal_error_rate(scores, is_target)
    report = SameDifferentReport(
        eer=eer,
        threshold=-threshold,
        n_utts=len(labels),
        n_speakers=int(np.unique(labels).size),
        n_target=int(is_target.sum()),
        n_nontarget=int((~is_target).sum()),
        metric=opts.metric,
    )
    with StagedOutputs() as out:
        if opts.plot:
            from unspeech.plots import save_det_figure

            path = _with_set(opts.plot, opts.set, "--plot")
            save_det_figure(out.file(path), scores, is_target, fmt=os.path.splitext(path)[1].lstrip(".").lower())
            report.written.append(path)
        if opts.results_csv:
            path = _with_set(opts.results_csv, opts.set, "--results-csv")
            row = {"input": data.source, "metric": opts.metric, "n_utts": report.n_utts, "n_speakers": report.n_speakers,
                   "n_target": report.n_target, "n_nontarget": report.n_nontarget,
                   "eer": round(eer, 6), "distance_threshold": round(report.threshold, 6)}
            write_grid_csv(out.file(path), [row])
            report.written.append(path)
    return report


def _choose_speakers(labels: np.ndarray, max_spks: int, seed: int) -> list[str]:
    """A reproducible subset of at most ``max_spks`` speakers (sorted ids, seeded choice)."""
    speakers = sorted(set(labels.tolist()))
    if len(speakers) <= max_spks:
        return speakers
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(speakers, size=max_spks, replace=False).tolist())
