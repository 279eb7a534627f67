"""The diarizer's front end for long recordings: audio → fbank → embedding rows in bounded memory.

A recording file longer than :data:`STREAM_SECONDS` is never held whole: it is read block by block
(:func:`unspeech.audio_stream.iter_audio_blocks`), turned into fbank frames as the blocks arrive
(:func:`unspeech.fbank.iter_fbank`, the same frames as :func:`unspeech.fbank.compute_fbank`), and
the frames are embedded in chunks of :data:`CHUNK_FRAMES` frames with enough frames of context on
each side (:func:`embed_in_chunks`) that every row is the row the embedder gives on the whole
recording. The energy VAD's per-frame log energies are computed from the same blocks. What stays
is one embedding row per ``period_frames`` frames and one log energy per frame: tens of MB for
hours of audio, against GB for the samples and fbank of the same recording.

Embedders whose rows depend on the whole recording (the ``stats`` baseline normalises the fbank
per recording) declare ``context_frames = None`` and are run on the whole recording as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from unspeech.diarize.vad import FRAME_LENGTH, FRAME_SHIFT, frame_log_energy, num_frames_of

__all__ = ["STREAM_SECONDS", "CHUNK_FRAMES", "Streamed", "embed_in_chunks", "LogEnergyStream", "stream_rows"]

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


def embed_in_chunks(
    frames: Iterable[np.ndarray],
    n_frames: int,
    embed: Callable[[np.ndarray], np.ndarray],
    period: int,
    context_frames: int,
    chunk_frames: int = CHUNK_FRAMES,
) -> np.ndarray:
    """Rows of ``embed(all frames)`` computed chunk by chunk.

    Parameters
    ----------
    frames : iterable of ndarray ``(t_i, F)``; ``n_frames`` frames in all
    embed : ``(T, F) -> (ceil(T / period), D)`` with row ``i`` standing for frame ``i * period``
    context_frames : frames on either side of a row's frame that can change it (window reach plus
        any row context); each chunk is embedded with at least this many extra frames per side
    chunk_frames : frames whose rows are kept per call (rounded up to a multiple of ``period``)

    Returns
    -------
    ndarray of shape (ceil(n_frames / period), D)
    """
    period = int(period)
    margin = -(-int(context_frames) // period) * period  # a multiple of period: row positions line up
    chunk = max(period, -(-int(chunk_frames) // period) * period)
    out: list[np.ndarray] = []
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
        out.append(np.asarray(rows[first:last], dtype=np.float32))
        start = end
        keep = max(0, start - margin)
        buf = buf[keep - buf_start:].copy()
        buf_start = keep
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class LogEnergyStream:
    """:func:`unspeech.diarize.vad.frame_log_energy` of a 16 kHz signal that arrives in blocks."""

    def __init__(self):
        self._carry = np.zeros(0, np.float32)
        self.parts: list[np.ndarray] = []

    def push(self, block: np.ndarray) -> None:
        x = np.concatenate([self._carry, np.asarray(block, dtype=np.float32)])
        n = num_frames_of(len(x))
        if n:
            self.parts.append(frame_log_energy(x[: (n - 1) * FRAME_SHIFT + FRAME_LENGTH]))
        self._carry = x[n * FRAME_SHIFT:]

    def result(self) -> np.ndarray:
        """Log energies of every frame so far, ``(n_frames,)`` float64."""
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


def stream_rows(path: str | os.PathLike, embedder, chunk_frames: int = CHUNK_FRAMES,
                log_energy: bool = True) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """Embedding rows of a recording file read block by block.

    Parameters
    ----------
    path : an audio file (not a pipe); read at 16 kHz, channels averaged
    embedder : an :class:`unspeech.diarize.embedders.Embedder` with ``context_frames`` set
    log_energy : also return the per-frame log energies (for the energy VAD)

    Returns
    -------
    rows : ndarray ``(ceil(T / period_frames), dim)`` float32
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
    energy = LogEnergyStream() if log_energy else None

    def samples() -> Iterator[np.ndarray]:
        for block in iter_audio_blocks(name, sample_rate=_RATE, channel=None):
            if energy is not None:
                energy.push(block)
            yield block

    frames = iter_fbank(samples(), _RATE, FbankOptions(), name)
    rows = embed_in_chunks(frames, n_frames, embedder.embed, embedder.period_frames, embedder.context_frames, chunk_frames)
    for _ in frames:  # run the reader to its end (the last block's energies)
        pass
    return rows, None if energy is None else energy.result(), n_frames, n_samples
