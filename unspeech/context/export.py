"""Feature export (``--gen_feat``): a trained run -> Kaldi ``ivector_online`` features or speaker vectors.

``gen_feat`` reads ``RUN/config.json`` and a checkpoint, slides the target tower (and with
``genfeat_combine_contexts`` the context tower) over every utterance (see
:mod:`unspeech.context.embed` for the row layout) and writes ``PREFIX.ark`` + ``PREFIX.scp`` and
``ivector_period`` and ``final.ie.id`` beside them (see :mod:`unspeech.context.ivector_dir`), ready
for ``--online-ivector-dir DIR`` (``--online-ivectors=scp:PREFIX.scp
--online-ivector-period=$(cat DIR/ivector_period)``). Every input utterance appears in the output,
in input order.

Long utterances are streamed (issue 14): an input matrix of more than
:data:`unspeech.context.embed.STREAM_ROWS` frames stored plain (``FM``/``DM``) in an scp's or an
uncompressed ark file's archive is read a batch of windows at a time
(:func:`unspeech.kaldi_io.iter_mats_lazy`; compressed matrices, pipes and ``.gz`` archives are
read whole), its rows are computed and written block by block (:class:`unspeech.kaldi_io.RowBlocks`)
and its speaker vector is a running mean, so memory does not grow with the length of an
utterance. ``output_format=npz`` joins a streamed utterance's blocks (an npz entry is one array);
compressed and text arks do the same (see :func:`unspeech.kaldi_io.write_mats`).

Scale-out: ``job=J, num_jobs=N`` processes utterances ``J-1, J-1+N, J-1+2N, ...`` (round robin,
1-based ``J`` as in Kaldi's ``JOB``) into ``PREFIX.J.ark/scp`` + ``PREFIX.J.json``; :func:`merge_jobs`
then writes ``PREFIX.scp`` in input order, ``ivector_period`` and ``final.ie.id``. ``nj=N`` does both
with local processes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from unspeech.errors import ConfigError, DataError

__all__ = ["GenFeatOptions", "OUTPUT_FORMATS", "add_export_arguments", "options_from_args", "gen_feat",
           "merge_jobs", "evaluate_context_accuracy", "job_prefix"]

log = logging.getLogger("unspeech.gen_feat")

OUTPUT_FORMATS = ("kaldi_bin", "kaldi_text", "npz")


def _opt(default: Any, help: str, choices: tuple | None = None, aliases: tuple[str, ...] = ()):
    return field(default=default, metadata={"help": help, "choices": choices, "aliases": aliases})


@dataclass
class GenFeatOptions:
    """Options of feature export (the model's own options come from the run's config.json)."""

    output_feat_file: str = _opt("", "Output prefix: writes PREFIX.ark + PREFIX.scp (or PREFIX.npz) and DIR/ivector_period + DIR/final.ie.id.")
    checkpoint: str = _opt("", "Checkpoint to load: empty = latest, N = the one saved at step N, or a checkpoint prefix.")
    genfeat_stride: int = _opt(10, "Frames between output rows: Kaldi's --online-ivector-period (10 frames = 100 ms).")
    genfeat_alignment: str = _opt("start", "start: row i embeds the window starting at frame i*stride (original); center: the window centred there.", ("start", "center"))
    genfeat_interpolate_outputlength_padding: bool = _opt(False, "Compute only rows whose window fits inside the utterance; other rows copy the nearest computed row (row count unchanged).")
    kaldi_normalize_to_input_length: bool = _opt(False, "Write one row per input frame (T rows, ivector_period 1) instead of ceil(T/stride).")
    genfeat_combine_contexts: bool = _opt(False, "Rows of 2*embedding_size: target tower then context tower embedding of the same position.")
    generate_speaker_vectors: bool = _opt(False, "Write one vector per utterance (mean of its rows) instead of frame-level rows.")
    speaker_vector_l2_normalize: bool = _opt(True, "L2-normalise speaker vectors.")
    output_format: str = _opt("kaldi_bin", "kaldi_bin (ark+scp), kaldi_text (text ark+scp) or npz (utterance id -> array).", OUTPUT_FORMATS)
    output_compress: bool = _opt(False, "Kaldi-compress the output matrices (as copy-feats --compress=true).")
    genfeat_batch_size: int = _opt(128, "Windows per model call: memory grows with it, not with utterance length (128 keeps a one-hour utterance with Vgg16big under 1 GB).")
    test_perf: bool = _opt(False, "Report context-discrimination accuracy on sampled batches of the input (weights are never changed).")
    test_perf_batches: int = _opt(20, "Batches sampled by --test_perf.")
    job: int = _opt(0, "Process only job J (1-based) of --num_jobs round-robin splits into PREFIX.J.ark/scp.")
    num_jobs: int = _opt(0, "Number of splits for --job / --merge.")
    merge: bool = _opt(False, "Merge PREFIX.1..N.scp of --num_jobs jobs into PREFIX.scp (input order) and stop.")
    nj: int = _opt(1, "Run this many local processes (split + merge).")
    runtime: str = _opt("auto", "Model runtime: auto (RUN/model.onnx through ONNX Runtime when it matches the latest checkpoint, else TensorFlow), onnx, onnx-int8 (RUN/model.int8.onnx of `unspeech export --int8`: faster, not bit-equal) or keras.", ("auto", "onnx", "onnx-int8", "keras"))
    hop_size: int = _opt(1, "Kept so that old command lines parse; only 1 is accepted (the row period is --genfeat_stride).")
    quiet: bool = _opt(False, "No progress bar.")

    def validate(self) -> "GenFeatOptions":
        if not self.merge and not self.output_feat_file and not self.test_perf:
            raise ConfigError("`output_feat_file` is required for --gen_feat (e.g. --output_feat_file DIR/ivector_online)")
        for name in ("genfeat_stride", "genfeat_batch_size", "nj", "test_perf_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if self.hop_size != 1:
            raise ConfigError(f"`hop_size` is a legacy flag and must be 1; set the row period with --genfeat_stride. Received: hop_size={self.hop_size}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ConfigError(f"`output_format` must be one of {', '.join(OUTPUT_FORMATS)}. Received: output_format={self.output_format!r}")
        if (self.job or self.merge) and self.num_jobs < 1:
            raise ConfigError("--job and --merge need --num_jobs N")
        if self.job and not 1 <= self.job <= self.num_jobs:
            raise ConfigError(f"`job` must be in 1..{self.num_jobs}. Received: job={self.job}")
        if self.nj > 1 and self.job:
            raise ConfigError("use either --nj (local processes) or --job/--num_jobs (a job array), not both")
        if self.output_compress and self.output_format != "kaldi_bin":
            raise ConfigError("`output_compress` needs output_format=kaldi_bin")
        return self


# ---------------------------------------------------------------------- command line


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`GenFeatOptions` field; booleans accept --x, --nox, --x True/False."""
    from unspeech.context.config import parse_bool

    group = parser.add_argument_group("feature export (--gen_feat)")
    defaults = GenFeatOptions()
    for f in fields(GenFeatOptions):
        default = getattr(defaults, f.name)
        help_text = f"{f.metadata['help']} (default: {default!r})"
        names = [f"--{f.name}", *f.metadata["aliases"]]
        if isinstance(default, bool):
            group.add_argument(*names, dest=f.name, nargs="?", const=True, type=parse_bool,
                               default=argparse.SUPPRESS, metavar="BOOL", help=help_text)
            group.add_argument(f"--no{f.name}", dest=f.name, action="store_const", const=False,
                               default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        else:
            group.add_argument(*names, dest=f.name, type=type(default), choices=f.metadata["choices"],
                               default=argparse.SUPPRESS, metavar=f.name.upper(), help=help_text)


def options_from_args(args: argparse.Namespace) -> GenFeatOptions:
    names = {f.name for f in fields(GenFeatOptions)}
    return GenFeatOptions(**{k: v for k, v in vars(args).items() if k in names}).validate()


# ---------------------------------------------------------------------- helpers


def job_prefix(prefix: str, job: int) -> str:
    """``DIR/ivector_online`` + job 3 -> ``DIR/ivector_online.3`` (Kaldi's JOB naming)."""
    return f"{prefix}.{job}" if job else prefix


def _checkpoint_arg(text: str) -> str | int | None:
    if not text:
        return None
    return int(text) if text.isdigit() else text


# Model options that only matter for some trunks: a flag for another trunk is ignored, so that
# old command lines that always passed e.g. --num_highway_layers keep working.
_ONLY_FOR = {
    "num_highway_layers": ("HighwayDnn",),
    "num_dnn_layers": ("BaselineDnn",),
    "rnn_hidden_cells": ("LSTM", "BiLSTM"),
}


def _check_architecture(config, given: dict[str, Any], run_dir: str) -> None:
    """Given model flags must equal the run's config.json (a mismatch would give garbage features)."""
    from unspeech.context.config import ContextConfig

    kinds = {f.name: f.metadata["kind"] for f in fields(ContextConfig)}
    conflicts = []
    for k, v in sorted(given.items()):
        if kinds.get(k) != "model" or getattr(config, k) == v:
            continue
        if config.embedding_transformation not in _ONLY_FOR.get(k, (config.embedding_transformation,)):
            continue
        if k == "batch_normalization_decay" and not config.batch_normalization:
            continue
        conflicts.append(f"--{k} {v!r} (run has {getattr(config, k)!r})")
    if conflicts:
        raise ConfigError(
            f"the flags given do not match the trained run {run_dir}/config.json: " + "; ".join(conflicts)
            + ". Leave architecture flags out: they are read from the run"
        )


def _shard(items: Iterable[tuple[str, np.ndarray]], job: int, num_jobs: int) -> Iterator[tuple[str, np.ndarray]]:
    if not job:
        yield from items
        return
    for i, item in enumerate(items):
        if i % num_jobs == job - 1:
            yield item


def _scp_iter_for_job(rspecifier: str, job: int, num_jobs: int, lazy_rows: int):
    """This job's utterances; for an scp input, read only this job's lines (no need to touch the other arks).

    Matrices of at least ``lazy_rows`` rows stored plain on disk come as
    :class:`~unspeech.kaldi_io.LazyMatrix` (see :func:`unspeech.kaldi_io.iter_mats_lazy`)."""
    from unspeech import kaldi_io
    from unspeech.kaldi_io import parse_rspecifier

    kind, target = parse_rspecifier(rspecifier)
    if kind != "scp" or not job:
        return _shard(kaldi_io.iter_mats_lazy(rspecifier, lazy_rows), job, num_jobs)
    lines = [f"{u} {loc}\n" for i, (u, loc) in enumerate(kaldi_io.read_scp_entries(target)) if i % num_jobs == job - 1]
    import tempfile

    tmp = tempfile.NamedTemporaryFile("w", suffix=".scp", delete=False, encoding="utf-8")
    tmp.writelines(lines)
    tmp.close()

    def gen():
        try:
            yield from kaldi_io.iter_mats_lazy(f"scp:{tmp.name}", lazy_rows)
        finally:
            os.unlink(tmp.name)

    return gen()


class _Progress:
    """tqdm bar over utterances with frames/s and real-time factor (10 ms frames)."""

    def __init__(self, enabled: bool, desc: str):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(desc=desc, unit="utt", file=sys.stderr)
        self.frames = 0
        self.t0 = time.perf_counter()

    def update(self, frames: int) -> None:
        self.frames += frames
        if self.bar is not None:
            elapsed = time.perf_counter() - self.t0
            self.bar.update(1)
            self.bar.set_postfix(frames_per_s=f"{self.frames / max(elapsed, 1e-9):.0f}", rtf=f"{self.rtf:.4f}", refresh=False)

    @property
    def rtf(self) -> float:
        audio_s = self.frames / 100.0
        return (time.perf_counter() - self.t0) / audio_s if audio_s else 0.0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_output(prefix: str, items: Iterator[tuple[str, np.ndarray]], opts: GenFeatOptions) -> int:
    from unspeech import kaldi_io
    from unspeech._fileutil import atomic_path

    if opts.output_format == "npz":  # one array per entry: streamed rows are joined
        arrays = {utt: rows.join(f"{prefix}.npz: utterance {utt!r}") if isinstance(rows, kaldi_io.RowBlocks) else rows
                  for utt, rows in items}
        with atomic_path(prefix + ".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return len(arrays)
    return kaldi_io.write_mats(prefix + ".ark", items, prefix + ".scp", compress=opts.output_compress,
                               text=opts.output_format == "kaldi_text")


# ---------------------------------------------------------------------- main entry


def gen_feat(run_dir: str, filelist: str, opts: GenFeatOptions, given: dict[str, Any] | None = None,
             on_utterance: Callable[[str, int], None] | None = None, threads: int = 0) -> dict[str, Any]:
    """Export features of ``filelist`` with the trained run ``run_dir``.

    One export writes an output prefix at a time: a second one on the same prefix (or the same
    job of it) gets a :class:`ConfigError` naming the holder instead of overwriting its output.

    Parameters
    ----------
    run_dir : str
        Run dir with ``config.json`` and checkpoints.
    filelist : str
        Input features (ark, ark.gz, scp or rspecifier), ``(T, feat_size)`` per utterance.
    opts : GenFeatOptions
    given : dict, optional
        ContextConfig flags the user typed; model/sampling ones are checked against the run.
    on_utterance : callable, optional
        Called as ``on_utterance(utt_id, num_frames)`` after each utterance (progress hook).
    threads : int
        Threads of the model runtime (0 = its default); ``nj`` workers share the cores this way.

    Returns
    -------
    dict with ``utterances``, ``frames``, ``seconds``, ``rtf``, ``outputs`` (paths written) and,
    with ``test_perf``, ``accuracy`` and ``majority_baseline``.
    """
    opts = opts.validate()
    if opts.output_feat_file and not opts.merge:  # the run and the input exist before a lock file is made
        from unspeech.context import ivector_dir
        from unspeech.kaldi_io import check_rspecifier_exists

        ivector_dir.model_id(run_dir, opts.checkpoint)
        check_rspecifier_exists(filelist, "--filelist")
    with _output_lock(opts):
        return _gen_feat(run_dir, filelist, opts, given, on_utterance, threads)


@contextlib.contextmanager
def _output_lock(opts: GenFeatOptions) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside the prefix this call writes (the job's own prefix for a job).

    A folder made for it is removed again when the export fails before writing anything there."""
    from unspeech._fileutil import output_lock

    if not opts.output_feat_file:
        yield
        return
    prefix = job_prefix(opts.output_feat_file, 0 if opts.merge else opts.job)
    folder = os.path.dirname(os.path.abspath(prefix))
    created = not os.path.isdir(folder)
    try:
        with output_lock(prefix, "export"):
            yield
    except BaseException:
        if created and not os.listdir(folder):  # the lock file goes with the lock
            os.rmdir(folder)
        raise


def _withdraw_merged(prefix: str, job: int) -> None:
    """Remove ``PREFIX.scp`` of an earlier merge before job ``job`` replaces its ark: that scp points
    into the job arks, and would otherwise read this export's rows for some jobs and the old one's
    for others until the next merge. (An scp of a single-job export, into ``PREFIX.ark``, stays.)"""
    merged = prefix + ".scp"
    try:
        with open(merged, encoding="utf-8") as fh:
            into_job = f" {os.path.abspath(job_prefix(prefix, job))}.ark:" in fh.read()
    except FileNotFoundError:
        return
    if into_job:
        os.unlink(merged)
        log.info("removed %s of an earlier export: it pointed into the job arks being replaced; "
                 "run the merge when all jobs are done", merged)


def _gen_feat(run_dir: str, filelist: str, opts: GenFeatOptions, given: dict[str, Any] | None,
              on_utterance: Callable[[str, int], None] | None, threads: int) -> dict[str, Any]:
    if opts.merge:
        return {"outputs": merge_jobs(opts.output_feat_file, opts.num_jobs, opts.output_format)}
    if opts.nj > 1:
        return _run_local_jobs(run_dir, filelist, opts, given)
    from unspeech.context import ivector_dir

    # the folder's ivector_period / final.ie.id are checked before any work (see ivector_dir)
    period = None if opts.generate_speaker_vectors else (1 if opts.kaldi_normalize_to_input_length else opts.genfeat_stride)
    ident = ivector_dir.model_id(run_dir, opts.checkpoint) if opts.output_feat_file else ""
    if ident and opts.runtime == "onnx-int8":
        ident += "-int8"  # other numbers than the float model's: Kaldi must not mix the two
    if period is not None and opts.output_feat_file:
        ivector_dir.check_folder(opts.output_feat_file, period, ident)
    from unspeech.context.embed import STREAM_ROWS, FrameEmbedder, speaker_vector
    from unspeech.context.towers import load_towers

    from unspeech.kaldi_io import RowBlocks, check_rspecifier_exists

    check_rspecifier_exists(filelist, "--filelist")  # before the model (and its runtime) is loaded

    # --test_perf scores pairs with the whole Keras model; plain export runs on model.onnx when it is current
    runtime = "keras" if opts.test_perf else opts.runtime
    towers = load_towers(run_dir, _checkpoint_arg(opts.checkpoint), runtime=runtime,
                         batch_size=opts.genfeat_batch_size, threads=threads)
    config = towers.config
    log.info("model %s (%s runtime)", run_dir, towers.runtime)
    _check_architecture(config, dict(given or {}), run_dir)
    summary: dict[str, Any] = {"outputs": []}
    if opts.test_perf:
        summary.update(evaluate_context_accuracy(towers.model, filelist, opts.test_perf_batches))
        log.info("context accuracy %.4f on %d sampled pairs (majority baseline %.4f)",
                 summary["accuracy"], summary["pairs"], summary["majority_baseline"])
        if not opts.output_feat_file:
            return summary
    embedder = FrameEmbedder(towers, period=opts.genfeat_stride, alignment=opts.genfeat_alignment,
                             interpolate_padding=opts.genfeat_interpolate_outputlength_padding,
                             combine_contexts=opts.genfeat_combine_contexts,
                             normalize_to_input_length=opts.kaldi_normalize_to_input_length,
                             batch_size=opts.genfeat_batch_size)
    prefix = job_prefix(opts.output_feat_file, opts.job)
    progress = _Progress(not opts.quiet, f"gen_feat{f' job {opts.job}' if opts.job else ''}")
    lengths: dict[str, int] = {}

    def inputs():
        # the utterances the embedder streams are read lazily where they are stored plain
        for utt, feats in _scp_iter_for_job(filelist, opts.job, opts.num_jobs, STREAM_ROWS + 1):
            if feats.ndim != 2 or feats.shape[1] != config.feat_size:
                raise DataError(
                    f"{filelist}: utterance {utt!r} has {feats.shape[-1]}-dimensional features, but the run "
                    f"was trained on feat_size={config.feat_size} (--num_filters)"
                )
            lengths[utt] = len(feats)
            yield utt, feats

    def done(utt: str) -> None:
        frames = lengths.pop(utt)
        progress.update(frames)
        if on_utterance is not None:
            on_utterance(utt, frames)

    def then_done(utt: str, blocks: RowBlocks) -> Iterator[np.ndarray]:
        yield from blocks
        done(utt)  # a streamed utterance counts once its last block is written

    def outputs():
        count = 0
        for utt, rows in embedder.embed(inputs()):
            count += 1
            if opts.generate_speaker_vectors:  # a running mean over streamed rows
                rows = speaker_vector(rows, opts.speaker_vector_l2_normalize)
            if isinstance(rows, RowBlocks):
                rows = RowBlocks(rows.shape, then_done(utt, rows))
            else:
                done(utt)
            yield utt, rows
        if count == 0 and not opts.job:  # raised inside the writer: existing outputs stay as they were
            raise DataError(f"{filelist}: no utterances to export")
        if opts.job and opts.output_format != "npz":  # every row is ready: the job ark is replaced next
            _withdraw_merged(opts.output_feat_file, opts.job)
        elif not opts.job and opts.output_format != "npz":
            _folder_files_first(prefix, period, ident)

    try:
        count = _write_output(prefix, outputs(), opts)
    finally:
        progress.close()
    if count == 0 and not opts.job:
        raise DataError(f"{filelist}: no utterances to export")
    ext = ".npz" if opts.output_format == "npz" else ".ark"
    summary["outputs"].append(prefix + ext)
    assert period is None or period == embedder.output_period
    if opts.job:  # written last: --merge takes it as the sign that the job finished
        summary["outputs"].append(ivector_dir.write_job_info(prefix, period, ident, count, opts.num_jobs))
    elif period is not None:
        summary["outputs"] += ivector_dir.write_folder_files(prefix, period, ident)
    summary.update(utterances=count, frames=progress.frames, seconds=time.perf_counter() - progress.t0, rtf=progress.rtf)
    log.info("exported %d utterances (%.1f s of audio) to %s%s, real-time factor %.4f",
             count, progress.frames / 100.0, prefix, ext, progress.rtf)
    return summary


def merge_jobs(prefix: str, num_jobs: int, output_format: str = "kaldi_bin", period: int | None = None) -> list[str]:
    """Merge ``PREFIX.1..N`` job outputs into ``PREFIX.scp`` (or ``PREFIX.npz``) in input order.

    Job ``J`` holds input utterances ``J-1, J-1+N, ...``; the merged order interleaves them back.
    The folder's ``ivector_period`` and ``final.ie.id`` come from the jobs' ``PREFIX.J.json``
    (``period``, when given, must agree with them).
    """
    from unspeech import kaldi_io
    from unspeech._fileutil import atomic_open, atomic_path
    from unspeech.context import ivector_dir

    job_period, ident = ivector_dir.read_job_infos(prefix, num_jobs)
    if period is not None and job_period != period:
        raise DataError(f"{prefix}: the jobs wrote rows every {job_period} frames, not {period}")

    def _nonempty(merged: list) -> list:  # checked before writing: an empty merge keeps old outputs
        if not merged:
            raise DataError(f"{prefix}: the {num_jobs} jobs exported no utterances (empty input?)")
        return merged

    if output_format == "npz":
        parts = []
        for j in range(1, num_jobs + 1):
            path = job_prefix(prefix, j) + ".npz"
            if not os.path.exists(path):
                raise DataError(f"job output {path} is missing (did job {j} finish?)")
            with np.load(path) as z:
                parts.append([(k, z[k]) for k in z.files])
        merged = _nonempty(_interleave(parts, prefix))
        with atomic_path(prefix + ".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **dict(merged))
        outputs = [prefix + ".npz"]
    else:
        parts = []
        for j in range(1, num_jobs + 1):
            path = job_prefix(prefix, j) + ".scp"
            if not os.path.exists(path):
                raise DataError(f"job output {path} is missing (did job {j} finish?)")
            parts.append(list(kaldi_io.read_scp_entries(path)))
        merged = _nonempty(_interleave(parts, prefix))
        folder_files = _folder_files_first(prefix, job_period, ident)
        with atomic_open(prefix + ".scp") as fh:
            fh.writelines(f"{u} {loc}\n" for u, loc in merged)
        return [prefix + ".scp"] + folder_files
    if job_period is not None:
        outputs += ivector_dir.write_folder_files(prefix, job_period, ident)
    return outputs


def _folder_files_first(prefix: str, period: int | None, ident: str) -> list[str]:
    """Write the folder's ``ivector_period`` and ``final.ie.id`` before ``PREFIX.scp`` is published.

    When they change (a re-export with another period or model), the old ``PREFIX.scp`` is removed
    first: no kill leaves an scp beside a period or model id that is not its own."""
    from unspeech.context import ivector_dir

    if period is None:
        return []
    if ivector_dir.changes_folder(prefix, period, ident) and os.path.exists(prefix + ".scp"):
        os.unlink(prefix + ".scp")
        log.info("removed %s of an earlier export with another period or model; the new one replaces it",
                 prefix + ".scp")
    return ivector_dir.write_folder_files(prefix, period, ident)


def _interleave(parts: list[list], prefix: str) -> list:
    total = sum(len(p) for p in parts)
    n = len(parts)
    for j, p in enumerate(parts):
        expected = len(range(j, total, n))
        if len(p) != expected:
            raise DataError(f"{job_prefix(prefix, j + 1)}: has {len(p)} utterances, expected {expected} for round-robin splits of {total}")
    return [parts[i % n][i // n] for i in range(total)]


def _job_worker(run_dir: str, filelist: str, opts: GenFeatOptions, given: dict, threads: int) -> int:
    return gen_feat(run_dir, filelist, opts, given, threads=threads)["utterances"]


def _die_with_parent(parent: int) -> None:
    """Pool initializer: a worker is killed when the process that started it dies (Linux), so a
    killed ``--nj`` export leaves no workers behind that rename job files into place later."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _run_local_jobs(run_dir: str, filelist: str, opts: GenFeatOptions, given) -> dict[str, Any]:
    import multiprocessing as mp

    n = opts.nj
    threads = max(1, (os.cpu_count() or 1) // n)
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    job_opts = [dataclasses.replace(opts, nj=1, job=j, num_jobs=n, quiet=opts.quiet or j > 1) for j in range(1, n + 1)]
    with ctx.Pool(n, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        counts = pool.starmap(_job_worker, [(run_dir, filelist, o, dict(given or {}), threads) for o in job_opts])
    total = sum(counts)
    if total == 0:  # before the merge, so existing outputs stay as they were
        raise DataError(f"{filelist}: no utterances to export")
    outputs = merge_jobs(opts.output_feat_file, n, opts.output_format)
    return {"utterances": total, "outputs": outputs, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------- --test_perf


def evaluate_context_accuracy(model, filelist: str, batches: int = 20) -> dict[str, float]:
    """Context-discrimination accuracy of ``model`` on ``batches`` sampled batches of ``filelist``.

    Only forward passes in inference mode: no optimizer exists here and no variable is assigned,
    so the weights stay bit-identical.
    """
    from unspeech.context.model import pair_labels
    from unspeech.context.sampling import ContextSampler
    from unspeech.feature_store import FeatureStore

    config = model.config
    store = FeatureStore.from_rspecifier(filelist)
    sampler = ContextSampler(store, config, stream=2, name=str(filelist))
    labels = pair_labels(config)
    correct = 0
    total = 0
    for i in range(batches):
        batch = sampler.sample(i)
        logits = np.asarray(model(batch, training=False))
        correct += int(((logits > 0) == (labels[None, :] > 0.5)).sum())
        total += logits.size
    majority = float(max(labels.mean(), 1 - labels.mean()))
    return {"accuracy": correct / total, "majority_baseline": majority, "pairs": total}
