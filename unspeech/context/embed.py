"""Sliding-window embeddings of whole utterances (the maths of ``--gen_feat``).

Row layout (Kaldi's online-ivector convention)
----------------------------------------------
An utterance of ``T`` frames gives ``ceil(T / period)`` rows (at least one); row ``i`` belongs to
frame ``i * period`` and nnet3 uses it for frames ``i*period .. (i+1)*period - 1``
(``--online-ivector-period=period``). Frames are 10 ms, so row ``i`` is at ``i * period / 100`` s.

``alignment``
    ``"start"`` (the original unspeech): row ``i`` embeds the window of ``W`` frames that
    *starts* at frame ``i * period`` (it looks ahead). ``"center"``: the window is centred on
    frame ``i * period`` (half before, half after); better for diarization timing.
Windows reaching past either end of the utterance are filled by repeating the first / last
frame (edge padding). Utterances shorter than one window are padded the same way, never dropped.

``interpolate_padding`` (``--genfeat_interpolate_outputlength_padding``)
    Only rows whose window lies completely inside the utterance are computed; the other rows
    copy the nearest computed row (for ``"start"``, the last rows repeat the last full window).
    The row count stays ``ceil(T / period)``; no padded frames ever reach the model.

``normalize_to_input_length`` (``--kaldi_normalize_to_input_length``)
    Expand the rows to exactly ``T`` rows, one per frame (frame ``t`` takes row ``t // period``
    for ``"start"``, the nearest row for ``"center"``); the period is then 1.

Memory
------
Windows are embedded ``batch_size`` at a time; windows of several utterances share a batch.
An utterance of at most :data:`STREAM_ROWS` frames (so also at most that many output rows) is
embedded whole and yielded as an array of its rows. A longer one is *streamed*: once every
earlier utterance has been yielded (output order is input order), :meth:`FrameEmbedder.embed`
yields it as a :class:`~unspeech.kaldi_io.RowBlocks` whose blocks (:data:`STREAM_BLOCK_ROWS`
output rows each) are computed only as they are consumed (``kaldi_io.write_mats`` writes them
block by block). The input is then only touched through ``len(feats)``, ``feats.shape[1]`` and
contiguous row slices ``feats[a:b]`` of about one batch of windows, so a
:class:`~unspeech.kaldi_io.LazyMatrix` (``kaldi_io.iter_mats_lazy``) is never read whole either:
memory no longer grows with the length of an utterance. The streamed rows are the array's rows
bit for bit: the same windows, in the same batches as a lone utterance gets on the array path.
(Batches that mix utterances differ; the rows are then equal as long as the runtime embeds a
window independently of the other windows of its batch, as the export's sharding also assumes.)
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from unspeech.errors import ConfigError, DataError
from unspeech.kaldi_io import RowBlocks

__all__ = ["ALIGNMENTS", "STREAM_ROWS", "STREAM_BLOCK_ROWS", "num_output_rows", "window_starts", "FrameEmbedder",
           "speaker_vector"]

ALIGNMENTS = ("start", "center")

# Utterances of more frames than this are streamed (see the module docstring): 50k frames are
# 8.3 min of 10 ms frames; their input (8 MB at 40 dims) and output rows are held whole.
STREAM_ROWS = 50_000
# Output rows per block of a streamed utterance.
STREAM_BLOCK_ROWS = 4096
# Frames read from a streamed input at once (a batch of windows far apart is read in parts).
_READ_FRAMES = 1 << 16


def num_output_rows(num_frames: int, period: int) -> int:
    """Rows of an utterance of ``num_frames`` frames: ``max(1, ceil(num_frames / period))``."""
    return max(1, -(-int(num_frames) // int(period)))


def window_starts(num_frames: int, window: int, period: int, alignment: str = "start") -> np.ndarray:
    """First frame of the window of every output row, int64 of shape (rows,); may be < 0 or run past the end."""
    rows = num_output_rows(num_frames, period)
    starts = np.arange(rows, dtype=np.int64) * period
    if alignment == "center":
        starts -= window // 2
    elif alignment != "start":
        raise ConfigError(f"`alignment` must be one of {', '.join(ALIGNMENTS)}. Received: alignment={alignment!r}")
    return starts


def _source_rows(starts: np.ndarray, window: int, num_frames: int, interpolate_padding: bool) -> np.ndarray:
    """For every row, the row whose embedding it uses (itself unless interpolating)."""
    rows = np.arange(len(starts))
    if not interpolate_padding:
        return rows
    inside = np.flatnonzero((starts >= 0) & (starts + window <= num_frames))
    if len(inside) == 0:  # shorter than a window: compute the single most central row
        return np.full(len(starts), len(starts) // 2 if len(starts) else 0)
    pos = np.clip(np.searchsorted(inside, rows), 0, len(inside) - 1)
    prev = inside[np.clip(pos - 1, 0, len(inside) - 1)]
    nxt = inside[pos]
    return np.where(np.abs(rows - prev) <= np.abs(nxt - rows), prev, nxt)


def _gather(feats: np.ndarray, starts: np.ndarray, window: int, first: int = 0,
            num_frames: int | None = None) -> np.ndarray:
    """Windows with edge padding: (N, window, F) float32.

    ``feats`` holds frames ``first ..`` of an utterance of ``num_frames`` frames (default: all of
    them); ``starts`` are window starts in utterance frames, and the frames they need must be in ``feats``.
    """
    last = (len(feats) if num_frames is None else num_frames) - 1
    idx = np.clip(starts[:, None] + np.arange(window)[None, :], 0, last) - first
    return feats[idx]


class _RowPlan:
    """Which embedding every output row of one utterance copies, computed per block of rows.

    The same layout as the array path (:func:`window_starts`, :func:`_source_rows`,
    ``FrameEmbedder._finish``) in closed form, so that nothing of the size of the utterance is
    made: the rows whose windows are embedded are the range ``first .. last`` (all rows; with
    ``interpolate_padding`` the rows whose window lies inside, or the middle row when none does),
    and output row ``j`` copies the embedding of ``base_rows(j, j + 1)``.
    """

    def __init__(self, num_frames: int, window: int, period: int, alignment: str, interpolate_padding: bool,
                 normalize_to_input_length: bool):
        self.rows = num_output_rows(num_frames, period)
        self.output_rows = num_frames if normalize_to_input_length else self.rows
        self.shift = window // 2 if alignment == "center" else 0  # row i's window starts at i * period - shift
        self.period, self.alignment, self.normalize = period, alignment, normalize_to_input_length
        self.first, self.last = 0, self.rows - 1
        if interpolate_padding:  # inside: i * period - shift >= 0 and i * period - shift + window <= num_frames
            lo, hi = -(-self.shift // period), min((num_frames + self.shift - window) // period, self.rows - 1)
            self.first, self.last = (lo, hi) if lo <= hi else (self.rows // 2, self.rows // 2)

    def base_rows(self, start: int, stop: int) -> np.ndarray:
        """Embedded row of output rows ``start .. stop - 1``: int64 (stop - start,), non-decreasing in steps <= 1."""
        j = np.arange(start, stop, dtype=np.int64)
        if self.normalize:  # output row j is frame j
            j = j // self.period if self.alignment == "start" else np.rint(j / self.period).astype(np.int64)
            j = np.clip(j, 0, self.rows - 1)
        return np.clip(j, self.first, self.last)


class FrameEmbedder:
    """Apply the towers of a trained run to whole utterances.

    Parameters
    ----------
    model : Towers or ContextModel
        The run's towers from :func:`unspeech.context.towers.load_towers` (ONNX Runtime or
        TensorFlow), or a Keras ``ContextModel`` in inference mode (e.g. from ``load_run``).
    period : int
        Frames between output rows (``--genfeat_stride``; Kaldi's ``ivector_period``).
    alignment : {"start", "center"}
    interpolate_padding : bool
        See the module docstring.
    combine_contexts : bool
        Concatenate target-tower and context-tower embeddings of the same position: rows of
        ``2 * embedding_size`` (target half first; ``cluster.py --half_index E`` keeps the context half).
    normalize_to_input_length : bool
        One row per input frame (see the module docstring).
    batch_size : int
        Windows per model call; bounds memory.
    """

    def __init__(self, model, period: int = 10, alignment: str = "start", interpolate_padding: bool = False,
                 combine_contexts: bool = False, normalize_to_input_length: bool = False, batch_size: int = 128):
        if period < 1:
            raise ConfigError(f"`genfeat_stride` must be >= 1. Received: genfeat_stride={period}")
        if batch_size < 1:
            raise ConfigError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
        if alignment not in ALIGNMENTS:
            raise ConfigError(f"`alignment` must be one of {', '.join(ALIGNMENTS)}. Received: alignment={alignment!r}")
        if not hasattr(model, "runtime"):  # a Keras ContextModel
            from unspeech.context.towers import KerasTowers

            model = KerasTowers(model, batch_size=batch_size)
        self.towers = model
        self.config = model.config
        self.period = int(period)
        self.alignment = alignment
        self.interpolate_padding = bool(interpolate_padding)
        self.combine_contexts = bool(combine_contexts)
        self.normalize_to_input_length = bool(normalize_to_input_length)
        self.batch_size = int(batch_size)

    @property
    def output_dim(self) -> int:
        return self.config.embedding_size * (2 if self.combine_contexts else 1)

    @property
    def output_period(self) -> int:
        """Frames per output row (the ``ivector_period`` to write): 1 with ``normalize_to_input_length``."""
        return 1 if self.normalize_to_input_length else self.period

    @property
    def context_shift(self) -> int:
        """Frames from a target window's start to its context window's start: the two share their
        start (``"start"``) or their centre (``"center"``)."""
        c = self.config
        return (c.window_length // 2 - c.window_neg_length // 2) if self.alignment == "center" else 0

    @staticmethod
    def streams(num_frames: int) -> bool:
        """Whether an utterance of ``num_frames`` frames is streamed (more than :data:`STREAM_ROWS`)."""
        return num_frames > STREAM_ROWS

    def _embed_batch(self, targets: np.ndarray, contexts: np.ndarray | None) -> np.ndarray:
        """One call per tower: (N, dim) float32."""
        out = self.towers.embed(targets, "target")
        if contexts is not None:
            out = np.concatenate([out, self.towers.embed(contexts, "context")], axis=-1)
        return out

    def embed(self, items: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray | RowBlocks]]:
        """Embed utterances ``(utt_id, feats (T, F))``; yields ``(utt_id, rows (R, dim) float32)`` in input order.

        ``R`` is ``ceil(T / period)`` (``T`` with ``normalize_to_input_length``). An utterance of
        more than :data:`STREAM_ROWS` frames comes as a :class:`~unspeech.kaldi_io.RowBlocks` of
        shape (R, dim) whose blocks are computed as they are consumed; ``feats`` may then be any
        object with ``len``, ``shape`` and row slices (a :class:`~unspeech.kaldi_io.LazyMatrix`),
        and is only read a batch of windows at a time. Consume (or drop) the blocks before the
        next utterance, so that no more than one streamed utterance is open.
        """
        c = self.config
        w, wn = c.window_length, c.window_neg_length
        pending: list[dict] = []  # utterances whose rows are not all computed yet, in order
        tasks: list[tuple[int, int, int]] = []  # (pending slot, row, window start) awaiting a batch
        done_upto = 0  # pending[:done_upto] were already yielded

        def run_tasks(count: int) -> None:
            batch, rest = tasks[:count], tasks[count:]
            tasks[:] = rest
            slots = np.array([t[0] for t in batch])
            rows = np.array([t[1] for t in batch])
            starts = np.array([t[2] for t in batch], dtype=np.int64)
            targets = np.empty((len(batch), w, c.feat_size), np.float32)
            contexts = np.empty((len(batch), wn, c.feat_size), np.float32) if self.combine_contexts else None
            shift = self.context_shift
            for s in dict.fromkeys(slots.tolist()):
                mine = slots == s
                targets[mine] = _gather(pending[s]["feats"], starts[mine], w)
                if contexts is not None:
                    contexts[mine] = _gather(pending[s]["feats"], starts[mine] + shift, wn)
            emb = self._embed_batch(targets, contexts)
            for s in dict.fromkeys(slots.tolist()):
                mine = slots == s
                pending[s]["out"][rows[mine]] = emb[mine]
                pending[s]["missing"] -= int(mine.sum())

        for utt, feats in items:
            if not hasattr(feats, "shape") or not hasattr(feats, "ndim"):
                feats = np.asarray(feats, dtype=np.float32)
            if feats.ndim != 2 or feats.shape[1] != c.feat_size:
                raise DataError(
                    f"utterance {utt!r} has features of shape {feats.shape}; the model expects (T, {c.feat_size})"
                )
            if len(feats) == 0:
                raise DataError(f"utterance {utt!r} has no frames")
            if self.streams(len(feats)):  # every earlier utterance first, then this one block by block
                while tasks:
                    run_tasks(min(self.batch_size, len(tasks)))
                for entry in pending[done_upto:]:
                    yield self._finish(entry)
                pending.clear()
                done_upto = 0
                plan = self._plan(len(feats))
                yield utt, RowBlocks((plan.output_rows, self.output_dim), self._stream(feats, plan))
                continue
            feats = np.asarray(feats, dtype=np.float32)
            starts = window_starts(len(feats), w, self.period, self.alignment)
            source = _source_rows(starts, w, len(feats), self.interpolate_padding)
            computed = np.unique(source)
            slot = len(pending)
            pending.append({"utt": utt, "feats": feats, "source": source, "T": len(feats),
                            "out": np.zeros((len(starts), self.output_dim), np.float32), "missing": len(computed)})
            tasks.extend((slot, int(r), int(starts[r])) for r in computed)
            while len(tasks) >= self.batch_size:
                run_tasks(self.batch_size)
            while done_upto < len(pending) and pending[done_upto]["missing"] == 0:
                yield self._finish(pending[done_upto])
                pending[done_upto] = None  # free frames and rows
                done_upto += 1
        while tasks:
            run_tasks(min(self.batch_size, len(tasks)))
        for entry in pending[done_upto:]:
            yield self._finish(entry)

    def _finish(self, entry: dict) -> tuple[str, np.ndarray]:
        rows = entry["out"][entry["source"]]
        if self.normalize_to_input_length:
            t = np.arange(entry["T"])
            idx = t // self.period if self.alignment == "start" else np.rint(t / self.period).astype(np.int64)
            rows = rows[np.clip(idx, 0, len(rows) - 1)]
        return entry["utt"], rows

    def _plan(self, num_frames: int) -> _RowPlan:
        return _RowPlan(num_frames, self.config.window_length, self.period, self.alignment,
                        self.interpolate_padding, self.normalize_to_input_length)

    def _stream(self, feats, plan: _RowPlan) -> Iterator[np.ndarray]:
        """The rows of one utterance, :data:`STREAM_BLOCK_ROWS` at a time: (rows, dim) float32 blocks.

        The embedded rows ``plan.first .. plan.last`` go to the model in batches of ``batch_size``
        counted from ``plan.first`` (the batches of the array path for a lone utterance); a buffer
        keeps the embeddings from the current block's first row on.
        """
        buf = np.zeros((0, self.output_dim), np.float32)  # embeddings of rows buf_first .. next_row - 1
        buf_first = next_row = plan.first
        for start in range(0, plan.output_rows, STREAM_BLOCK_ROWS):
            base = plan.base_rows(start, min(start + STREAM_BLOCK_ROWS, plan.output_rows))
            drop = min(max(int(base[0]) - buf_first, 0), len(buf))
            buf, buf_first = buf[drop:], buf_first + drop
            parts = [buf]
            while next_row <= base[-1]:
                stop = min(next_row + self.batch_size, plan.last + 1)
                parts.append(self._embed_rows(feats, np.arange(next_row, stop, dtype=np.int64), plan))
                next_row = stop
            buf = np.concatenate(parts) if len(parts) > 1 else buf
            yield buf[base - buf_first]

    def _embed_rows(self, feats, rows: np.ndarray, plan: _RowPlan) -> np.ndarray:
        """Embeddings of consecutive rows (N,) of a streamed utterance: (N, dim) float32.

        The frames come as contiguous slices ``feats[a:b]`` of at most about :data:`_READ_FRAMES` frames.
        """
        c = self.config
        w, wn, num_frames = c.window_length, c.window_neg_length, len(feats)
        starts = rows * plan.period - plan.shift
        targets = np.empty((len(rows), w, c.feat_size), np.float32)
        contexts = np.empty((len(rows), wn, c.feat_size), np.float32) if self.combine_contexts else None
        lead = min(0, self.context_shift) if contexts is not None else 0  # frames needed before / after a start
        tail = max(w, self.context_shift + wn) if contexts is not None else w
        step = max(1, (_READ_FRAMES - tail + lead) // plan.period + 1)  # windows per read
        for i in range(0, len(rows), step):
            s = starts[i:i + step]
            first = int(np.clip(s[0] + lead, 0, num_frames - 1))
            frames = np.asarray(feats[first:int(np.clip(s[-1] + tail, first + 1, num_frames))], dtype=np.float32)
            targets[i:i + step] = _gather(frames, s, w, first, num_frames)
            if contexts is not None:
                contexts[i:i + step] = _gather(frames, s + self.context_shift, wn, first, num_frames)
        return self._embed_batch(targets, contexts)

    def embed_utterance(self, feats: np.ndarray) -> np.ndarray:
        """Rows of one utterance: (T, F) -> (R, dim) float32 (a streamed one's blocks joined)."""
        rows = next(iter(self.embed([("utt", feats)])))[1]
        return np.concatenate(list(rows)) if isinstance(rows, RowBlocks) else rows


def speaker_vector(rows: np.ndarray | RowBlocks, l2_normalize: bool = True) -> np.ndarray:
    """One vector per utterance: the mean of its rows (R, dim) -> (dim,), optionally L2-normalised.

    Streamed rows (:class:`~unspeech.kaldi_io.RowBlocks`) are summed block by block, never held
    whole; the sum adds the rows in order as the array path does, so the vector is the same.
    """
    if isinstance(rows, RowBlocks):
        total = None
        for block in rows:
            block = np.asarray(block, dtype=np.float64)
            total = block.sum(axis=0) if total is None else np.concatenate([total[None], block]).sum(axis=0)
        vec = total / rows.shape[0]
    else:
        vec = np.asarray(rows, dtype=np.float64).mean(axis=0)
    if l2_normalize:
        norm = np.linalg.norm(vec)
        vec = vec / norm if norm > 0 else vec
    return vec.astype(np.float32)
