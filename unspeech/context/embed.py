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

Memory is bounded by ``batch_size`` windows; windows of several utterances share a batch.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from unspeech.errors import ConfigError, DataError

__all__ = ["ALIGNMENTS", "num_output_rows", "window_starts", "FrameEmbedder", "speaker_vector"]

ALIGNMENTS = ("start", "center")


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


def _gather(feats: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Windows with edge padding: (N, window, F) float32."""
    idx = np.clip(starts[:, None] + np.arange(window)[None, :], 0, len(feats) - 1)
    return feats[idx]


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

    def _embed_batch(self, targets: np.ndarray, contexts: np.ndarray | None) -> np.ndarray:
        """One call per tower: (N, dim) float32."""
        out = self.towers.embed(targets, "target")
        if contexts is not None:
            out = np.concatenate([out, self.towers.embed(contexts, "context")], axis=-1)
        return out

    def embed(self, items: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
        """Embed utterances ``(utt_id, feats (T, F))``; yields ``(utt_id, rows (R, dim) float32)`` in input order.

        ``R`` is ``ceil(T / period)`` (``T`` with ``normalize_to_input_length``).
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
            # the context window shares the target window's start ("start") or centre ("center")
            shift = (w // 2 - wn // 2) if self.alignment == "center" else 0
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
            feats = np.asarray(feats, dtype=np.float32)
            if feats.ndim != 2 or feats.shape[1] != c.feat_size:
                raise DataError(
                    f"utterance {utt!r} has features of shape {feats.shape}; the model expects (T, {c.feat_size})"
                )
            if len(feats) == 0:
                raise DataError(f"utterance {utt!r} has no frames")
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

    def embed_utterance(self, feats: np.ndarray) -> np.ndarray:
        """Rows of one utterance: (T, F) -> (R, dim) float32."""
        return next(iter(self.embed([("utt", feats)])))[1]


def speaker_vector(rows: np.ndarray, l2_normalize: bool = True) -> np.ndarray:
    """One vector per utterance: the mean of its rows (R, dim) -> (dim,), optionally L2-normalised."""
    vec = np.asarray(rows, dtype=np.float64).mean(axis=0)
    if l2_normalize:
        norm = np.linalg.norm(vec)
        vec = vec / norm if norm > 0 else vec
    return vec.astype(np.float32)
