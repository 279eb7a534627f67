"""The diarizer's front end for long recordings: audio → fbank → embedding rows in bounded memory.

A recording file longer than :data:`STREAM_SECONDS` is never held whole: it is read block by block
(:func:`unspeech.audio_stream.iter_audio_blocks`), turned into fbank frames as the blocks arrive
(:func:`unspeech.fbank.iter_fbank`, the same frames as :func:`unspeech.fbank.compute_fbank`), and
the frames are embedded in chunks of :data:`CHUNK_FRAMES` frames with enough frames of context on
each side (:func:`iter_embedded_chunks`) that every row is the row the embedder gives on the whole
recording. The energy VAD's per-frame log energies are computed from the same blocks. The rows
(one per ``period_frames`` frames) are spooled to a temporary folder as they come
(:class:`unspeech.diarize.row_source.RowSpool`) and the rows stage reads them back block by block;
what stays in memory is one log energy per frame (11.5 MB of float64 for 4 h) and a few numbers
per row, against GB for the samples and fbank of the same recording.

Embedders whose rows depend on the whole recording (the ``stats`` baseline normalises the fbank
per recording) declare ``context_frames = None`` and are run on the whole recording as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from unspeech.diarize.vad import FRAME_LENGTH, FRAME_SHIFT, frame_log_energy, num_frames_of

__all__ = ["STREAM_SECONDS", "CHUNK_FRAMES", "Streamed", "iter_embedded_chunks", "LogEnergyStream", "stream_rows"]

STREAM_SECONDS = 600.0
"""Recording files longer than this (seconds) go through the streaming front end."""

CHUNK_FRAMES = 30000
"""Frames (10 ms) embedded per chunk: 5 minutes."""

_RATE = 16000


@dataclass(frozen=True)
class Streamed:
    """Stands in the pipeline's hook for an artifact that was streamed and not kept (``len`` = its length)."""

    what: str
    shape: tuple[int, ...]

    def __len__(self) -> int:
        return self.shape[0]


def iter_embedded_chunks(
    frames: Iterable[np.ndarray],
    n_frames: int,
    embed: Callable[[np.ndarray], np.ndarray],
    period: int,
    context_frames: int,
    chunk_frames: int = CHUNK_FRAMES,
) -> Iterator[np.ndarray]:
    """Rows of ``embed(all frames)``, yielded chunk by chunk (float32, in order).

    Parameters
    ----------
    frames : iterable of ndarray ``(t_i, F)``; ``n_frames`` frames in all
    embed : ``(T, F) -> (ceil(T / period), D)`` with row ``i`` standing for frame ``i * period``
    context_frames : frames on either side of a row's frame that can change it (window reach plus
        any row context); each chunk is embedded with at least this many extra frames per side
    chunk_frames : frames whose rows are kept per call (rounded up to a multiple of ``period``)

    Yields
    ------
    ndarray of shape (rows of the chunk, D): together the ``ceil(n_frames / period)`` rows
    """
    period = int(period)
    margin = -(-int(context_frames) // period) * period  # a multiple of period: row positions line up
    chunk = max(period, -(-int(chunk_frames) // period) * period)
    buf = np.zeros((0, 0), np.float32)
    buf_start = 0  # frame index of buf[0]
    start = 0  # first frame of the next chunk (a multiple of period)
    it = iter(frames)
    exhausted = False
    while start < n_frames:
        end = min(start + chunk, n_frames)
        need = min(n_frames, end + margin)
        while buf_start + len(buf) < need and not exhausted:
            block = next(it, None)
            if block is None:
                exhausted = True
                break
            block = np.asarray(block, dtype=np.float32)
            buf = block if buf.size == 0 else np.concatenate([buf, block])
        if buf_start + len(buf) < need:
            raise ValueError(f"the frames ended at {buf_start + len(buf)} of {n_frames}")
        lo = max(0, start - margin)
        rows = embed(buf[lo - buf_start:need - buf_start])
        first = (start - lo) // period
        last = -(-(end - lo) // period)
        yield np.asarray(rows[first:last], dtype=np.float32)
        start = end
        keep = max(0, start - margin)
        buf = buf[keep - buf_start:].copy()
        buf_start = keep


class LogEnergyStream:
    """:func:`unspeech.diarize.vad.frame_log_energy` of a 16 kHz signal that arrives in blocks.

    ``n_frames``: the frames to expect, when known: the energies then go straight into one array
    of that size (no list of parts and no second array when they are joined)."""

    def __init__(self, n_frames: int | None = None):
        self._carry = np.zeros(0, np.float32)
        self.parts: list[np.ndarray] = []
        self._out = None if n_frames is None else np.empty(int(n_frames))
        self._done = 0

    def push(self, block: np.ndarray) -> None:
        x = np.concatenate([self._carry, np.asarray(block, dtype=np.float32)])
        n = num_frames_of(len(x))
        if n:
            energies = frame_log_energy(x[: (n - 1) * FRAME_SHIFT + FRAME_LENGTH])
            if self._out is not None and self._done + n <= len(self._out):
                self._out[self._done:self._done + n] = energies
            else:  # more frames than announced (or none announced): keep them as parts
                if self._out is not None:
                    self.parts, self._out = [self._out[:self._done]], None
                self.parts.append(energies)
            self._done += n
        self._carry = x[n * FRAME_SHIFT:]

    def result(self) -> np.ndarray:
        """Log energies of every frame so far, ``(n_frames,)`` float64."""
        if self._out is not None:
            return self._out[:self._done]
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


def stream_rows(path: str | os.PathLike, embedder, chunk_frames: int = CHUNK_FRAMES,
                log_energy: bool = True, spool: str | os.PathLike | None = None):
    """Embedding rows of a recording file read block by block.

    Parameters
    ----------
    path : an audio file (not a pipe); read at 16 kHz, channels averaged
    embedder : an :class:`unspeech.diarize.embedders.Embedder` with ``context_frames`` set
    log_energy : also return the per-frame log energies (for the energy VAD)
    spool : a folder, optional: the rows are written there chunk by chunk
        (:class:`unspeech.diarize.row_source.RowSpool`) and come back as a
        :class:`unspeech.kaldi_io.LazyMatrix` reading them from disk, instead of one array

    Returns
    -------
    rows : ndarray ``(ceil(T / period_frames), dim)`` float32, or the LazyMatrix of them
    log_energy : ndarray ``(T,)`` float64 or None
    n_frames : int, ``T``
    n_samples : int, samples at 16 kHz
    """
    from unspeech.audio_stream import audio_length, iter_audio_blocks
    from unspeech.fbank import iter_fbank
    from unspeech.fbank_options import FbankOptions

    name = os.fspath(path)
    n_samples = audio_length(name, sample_rate=_RATE)
    n_frames = num_frames_of(n_samples)
    energy = LogEnergyStream(n_frames) if log_energy else None

    def samples() -> Iterator[np.ndarray]:
        for block in iter_audio_blocks(name, sample_rate=_RATE, channel=None):
            if energy is not None:
                energy.push(block)
            yield block

    frames = iter_fbank(samples(), _RATE, FbankOptions(), name)
    chunks = iter_embedded_chunks(frames, n_frames, embedder.embed, embedder.period_frames, embedder.context_frames,
                                  chunk_frames)
    if spool is None:
        parts = list(chunks)
        rows = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    else:
        from unspeech.diarize.row_source import RowSpool

        out = RowSpool(spool, "rows", embedder.dim, np.float32)
        try:
            for chunk in chunks:
                out.append(chunk)
        finally:
            out.close()
        rows = out.rows()
    for _ in frames:  # run the reader to its end (the last block's energies)
        pass
    return rows, None if energy is None else energy.result(), n_frames, n_samples
