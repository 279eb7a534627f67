"""``unspeech cluster`` (= ``python3 cluster.py``): utterances -> pseudo-speakers, scores, pictures.

Examples::

    python3 cluster.py --input-ark feats.ark --half_index 100 --output_utt2spk clustered_utt2spk \\
        --utt2spk none --mode cluster_speaker
    unspeech cluster -i data/demo_utts/feats.ark --utt2spk data/demo_utts/utt2spk --plot clusters.png
    unspeech cluster -i exp/%set/ivector_online.ark --set dev --utt2spk data/%set/utt2spk \\
        --hdbscan_min_cluster_sizes 3,5,8 --hdbscan_min_samples_str 3,5 --results-csv grid.csv
    unspeech cluster -i vecs.ark --mode samedifferent --utt2spk utt2spk --metric cosine --plot det.png
"""

from __future__ import annotations

import argparse
import logging

from unspeech.cluster.options import ClusterOptions

logger = logging.getLogger("unspeech.cluster")

MODES = ("cluster_speaker", "samedifferent")
UISRNN_MODES = ("uisrnn_train", "uisrnn")


def _uisrnn_parsers():
    """UIS-RNN's model / training / inference option parsers, or None when that stage is absent."""
    import importlib.util

    if importlib.util.find_spec("unspeech.uisrnn.glue") is None:
        return None
    from unspeech.uisrnn.arguments import build_parsers

    return build_parsers()

_D = ClusterOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unspeech.command_parser import set_brief

    uisrnn = _uisrnn_parsers()
    parser.add_argument("--mode", default="cluster_speaker", choices=MODES + (UISRNN_MODES if uisrnn else ()),
                        help="cluster_speaker: cluster utterances (default); samedifferent: EER of same/different "
                        "speaker trials" + ("; uisrnn_train / uisrnn: train / apply the supervised UIS-RNN stage on "
                                            "frame-level embedding arks (-i) with RTTM labels" if uisrnn else ""))
    io = parser.add_argument_group("input and output")
    io.add_argument("-i", "--input-ark", "--input_ark", dest="input_ark", default=_D.input_ark,
                    help="utterance or frame-level vectors: ark, ark.gz, scp, 'ark:cmd |' or .npz "
                    "(npz: arrays utt_ids + vectors, or one array per utterance); %%set is replaced by --set")
    io.add_argument("--set", default=_D.set, help="fills the %%set placeholder in paths (e.g. train|dev|test)")
    io.add_argument("--utt2spk", default=_D.utt2spk,
                    help="gold utt2spk to score against (ARI, NMI, pairwise F1, ...); 'none' (default) = no scoring")
    io.add_argument("--output_utt2spk", "--output-utt2spk", dest="output_utt2spk", default=_D.output_utt2spk,
                    help="write the clusters as utt2spk (placeholders %%set, %%minclustersize, %%minsample)")
    io.add_argument("--output_spk2utt", "--output-spk2utt", dest="output_spk2utt", default=_D.output_spk2utt,
                    help="write the clusters as spk2utt")
    io.add_argument("--output-datadir", "--output_datadir", dest="output_datadir", default=_D.output_datadir,
                    help="write a Kaldi data dir with utterance ids '<cluster speaker>-<utt>' (sorted, validated)")
    io.add_argument("--source-datadir", "--source_datadir", dest="source_datadir", default=_D.source_datadir,
                    help="data dir whose text/segments/feats.scp/wav.scp/... are carried into --output-datadir")
    io.add_argument("--results-csv", "--results_csv", dest="results_csv", default=_D.results_csv,
                    help="CSV with one row per grid point (parameters, cluster counts, time, scores)")
    io.add_argument("--membership", default=_D.membership,
                    help="HDBSCAN only: .npz with per-utterance membership strengths and soft membership vectors")
    io.add_argument("--plot", default=_D.plot,
                    help="figure file (.png, .pdf, ...): 2-D map by cluster (and by gold speaker) + cluster sizes; "
                    "DET curve in samedifferent mode")
    io.add_argument("--plot-method", "--plot_method", dest="plot_method", default=_D.plot_method,
                    choices=("auto", "tsne", "pca", "umap"),
                    help="2-D map: t-SNE up to 20k points, beyond that the --reduce projection (PCA or UMAP) (auto)")
    vec = parser.add_argument_group("vectors")
    vec.add_argument("--pooling", default=_D.pooling, choices=("mean", "mean+std"),
                     help="frame-level inputs: average over frames (default) or mean and standard deviation")
    vec.add_argument("--half_index", "--half-index", dest="half_index", type=int, default=_D.half_index,
                     help="keep dims N: of every vector (the second, context-tower half of a combined pos/neg "
                     "unspeech embedding, e.g. 100 for 200-dim features); -1 (default) keeps all")
    vec.add_argument("--dims", default=_D.dims, help="keep dims a:b instead (Python slice, e.g. '0:100' or '100:')")
    vec.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=_D.normalize,
                     help="L2-normalise every vector (default on; --no-normalize turns it off)")
    alg = parser.add_argument_group("clustering")
    alg.add_argument("-a", "--cluster-algorithm", "--cluster_algorithm", dest="algorithm", default=_D.algorithm,
                     help="hdbscan (default), dbscan, kmeans, agglomerative (ahc), spectral, or hdbscan-large")
    alg.add_argument("-n", "--n-clusters", "--n_clusters", dest="n_clusters", default=_D.n_clusters,
                     help="number of clusters (kmeans, agglomerative, spectral); comma list = grid")
    alg.add_argument("--hdbscan_min_cluster_sizes", "--min-cluster-sizes", dest="min_cluster_sizes",
                     default=_D.min_cluster_sizes, help="HDBSCAN min_cluster_size; comma list = grid (default %(default)s)")
    alg.add_argument("--hdbscan_min_samples_str", "--min-samples", dest="min_samples", default=_D.min_samples,
                     help="HDBSCAN min_samples ('none' = min_cluster_size); comma list = grid (default %(default)s)")
    alg.add_argument("--cluster-selection-epsilon", dest="cluster_selection_epsilon",
                     default=_D.cluster_selection_epsilon, help="HDBSCAN: merge clusters closer than this (comma list)")
    alg.add_argument("--cluster-selection-method", dest="cluster_selection_method", choices=("eom", "leaf"),
                     default=_D.cluster_selection_method, help="HDBSCAN: excess of mass (default) or leaf clusters")
    alg.add_argument("--dbscan-eps", "--dbscan_eps", dest="dbscan_eps", default=_D.dbscan_eps,
                     help="DBSCAN radius; comma list = grid (default %(default)s)")
    alg.add_argument("--dbscan-min-samples", dest="dbscan_min_samples", default=_D.dbscan_min_samples,
                     help="DBSCAN min_samples; comma list = grid (default %(default)s)")
    alg.add_argument("--ahc-threshold", dest="ahc_threshold", default=_D.ahc_threshold,
                     help="agglomerative: cut at this linkage distance instead of -n (comma list)")
    alg.add_argument("--linkage", default=_D.linkage, choices=("average", "complete", "single", "ward"),
                     help="agglomerative linkage (default %(default)s)")
    alg.add_argument("--min-clusters", dest="min_clusters", type=int, default=_D.min_clusters,
                     help="spectral: fewest clusters the eigen-gap may choose")
    alg.add_argument("--max-clusters", dest="max_clusters", type=int, default=_D.max_clusters,
                     help="spectral: most clusters the eigen-gap may choose")
    alg.add_argument("--metric", default=_D.metric,
                     help="distance: clustering metric, and samedifferent scoring (euclidean, cosine, manhattan)")
    alg.add_argument("--pca-dims", "--pca_dims", "--reduce-dims", "--reduce_dims", dest="pca_dims", default=_D.pca_dims,
                     help="the large-input path: reduce (--reduce) to this many dims, then HDBSCAN over a k-nearest-"
                     "neighbour graph; auto (default): 16 dims from 20,000 utterances on; 0: exact HDBSCAN on all dims")
    alg.add_argument("--reduce", default=_D.reduce, choices=("pca", "umap", "none"),
                     help="the large-input path's projection, also used for the picture of large sets: pca (default), "
                     "umap (pip install 'unspeech[umap]'), none (search all dims)")
    alg.add_argument("--neighbor-search", "--neighbor_search", dest="neighbor_search", default=_D.neighbor_search,
                     choices=("ivf", "hnsw", "exact"),
                     help="the large-input path's faiss index: ivf (default), hnsw, exact (brute force, quadratic)")
    alg.add_argument("--jobs", dest="n_jobs", type=int, default=_D.n_jobs,
                     help="parallel jobs for neighbour searches (HDBSCAN core distances, the large path, DBSCAN); "
                     "-1 = all cores; default 1")
    alg.add_argument("--outliers", default=_D.outliers, choices=("nearest", "singleton", "noise"),
                     help="noise points: join the nearest cluster (default; never counted as speakers), own speaker "
                     "each (singleton: the original toolkit's behaviour and the default before), or one 'spknoise' speaker")
    alg.add_argument("--random_seed", "--random-seed", dest="random_seed", type=int, default=_D.random_seed,
                     help="seed for k-means, spectral, PCA subsampling, plots and trial sampling (default 42)")
    sd = parser.add_argument_group("samedifferent mode")
    sd.add_argument("--trials", type=int, default=_D.trials,
                    help="sampled trials (half target, half non-target; all pairs when fewer) (default %(default)s)")
    sd.add_argument("--max_spks", "--max-spks", dest="max_spks", type=int, default=_D.max_spks,
                    help="use a seeded random subset of this many speakers; -1 (default) = all")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log lines")
    if uisrnn:
        _add_uisrnn_arguments(parser, uisrnn)
    set_brief(parser, ("mode", "input_ark", "utt2spk", "output_utt2spk", "output_datadir", "results_csv", "plot",
                       "half_index", "algorithm", "n_clusters", "min_cluster_sizes", "min_samples", "quiet"))


def _add_uisrnn_arguments(parser: argparse.ArgumentParser, parsers) -> None:
    group = parser.add_argument_group("uisrnn_train / uisrnn modes (-i: frame-level embeddings, one matrix per recording)")
    group.add_argument("--rttm", help="uisrnn_train: reference speaker turns (RTTM file ids = utterance ids)")
    group.add_argument("--model", help="UIS-RNN model (.npz): written by uisrnn_train, read by uisrnn")
    group.add_argument("--ivector_period", "--ivector-period", dest="ivector_period", type=int, default=10,
                       help="frames (10 ms) per embedding row (default 10)")
    group.add_argument("--output_rttm", "--output-rttm", dest="output_rttm", help="uisrnn: hypothesis RTTM to write")
    group.add_argument("--output_labels", "--output-labels", dest="output_labels",
                       help="uisrnn: write '<utt> <label per row>' lines")
    # the UIS-RNN library's own model / training / inference flags, with its defaults
    for sub in parsers:
        parser._add_container_actions(sub)


class _Progress:
    """tqdm bars driven by the pipeline's hook(step, artifact, completed=, total=)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bars: dict = {}

    def __call__(self, step: str, artifact=None, *, completed: int = 0, total: int | None = None) -> None:
        if self.quiet or step not in ("read", "grid"):
            return
        from tqdm import tqdm

        bar = self.bars.get(step)
        if bar is None:
            unit = "utt" if step == "read" else "fit"
            bar = self.bars[step] = tqdm(total=total, unit=unit, desc=step, dynamic_ncols=True, leave=False)
        if total is not None:
            bar.total = total
        bar.update(completed - bar.n)
        if total is not None and completed >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run(args: argparse.Namespace) -> int:
    from unspeech.cluster import pipeline

    opts = ClusterOptions.from_namespace(args)
    progress = _Progress(args.quiet)
    try:
        if args.mode == "samedifferent":
            report = pipeline.same_different(opts, progress)
        elif args.mode in UISRNN_MODES:
            report = _run_uisrnn(args, opts)
        else:
            report = pipeline.cluster_speakers(opts, progress)
    finally:
        progress.close()
    if report is not None:
        print(report.format())
    return 0


def _options_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The options one UIS-RNN parser defines, taken from the full command line."""
    return argparse.Namespace(**{name: getattr(args, name) for name in vars(parser.parse_args([]))})


class _UISRNNReport:
    def __init__(self, lines: list[str]):
        self.lines = lines

    def format(self) -> str:
        return "\n".join(self.lines)


def _run_uisrnn(args: argparse.Namespace, opts: ClusterOptions) -> _UISRNNReport:
    """``--mode uisrnn_train`` / ``--mode uisrnn``: the UIS-RNN glue on arks (TensorFlow loads here only)."""
    from unspeech.cluster.pipeline import _with_set
    from unspeech.errors import ConfigError
    from unspeech.uisrnn import glue
    from unspeech.uisrnn.model import UISRNN

    model_parser, training_parser, inference_parser = _uisrnn_parsers()
    source = _with_set(opts.input_ark, opts.set, "--input-ark")
    if not source:
        raise ConfigError("no input: give -i/--input-ark (frame-level embeddings)")
    if not args.model:
        raise ConfigError(f"--mode {args.mode} needs --model FILE.npz")
    if args.mode == "uisrnn_train":
        if not args.rttm:
            raise ConfigError("--mode uisrnn_train needs --rttm (reference speaker turns)")
        model_args = _options_of(args, model_parser)
        if args.quiet:
            model_args.verbosity = min(model_args.verbosity, 1)
        model = glue.train_from_arks(source, _with_set(args.rttm, opts.set, "--rttm"), args.ivector_period, model_args,
                                     _options_of(args, training_parser), seed=opts.random_seed)
        model.save(args.model)
        return _UISRNNReport([f"trained UIS-RNN on {source}", f"wrote {args.model}"])
    if not args.output_rttm and not args.output_labels:
        raise ConfigError("--mode uisrnn writes --output_rttm and/or --output_labels: give at least one")
    model = UISRNN.from_file(args.model, verbosity=1 if args.quiet else 2)
    result = glue.predict_arks(
        model, source, _options_of(args, inference_parser), args.ivector_period,
        out_rttm=args.output_rttm, out_labels=args.output_labels,
        num_speakers=None if opts.n_clusters is None else int(opts.n_clusters), max_speakers=opts.max_clusters,
    )
    written = [p for p in (args.output_rttm, args.output_labels) if p]
    return _UISRNNReport([f"diarized {len(result)} recordings of {source}"] + [f"wrote {p}" for p in written])
