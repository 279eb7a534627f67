"""Long recordings block by block: mono samples at the analysis rate without holding the file.

:func:`iter_audio_blocks` reads an audio file (or a segment of it) in blocks of
``block_seconds``, down-mixes or picks the channel as :func:`unspeech.audio.to_mono` does and
resamples with :class:`BlockResampler`, whose output is the output of
:func:`unspeech.audio.resample` on the whole signal (same polyphase filter, blocks cut at
multiples of the decimation factor with enough filter margin on both sides; equal up to float32
rounding). Memory is bounded by the block size whatever the recording's length, which is what
``unspeech fbank`` and ``unspeech diarize`` rely on for recordings of hours.

Pipes (``"cmd |"`` entries of a ``wav.scp``) cannot be seeked and are decoded whole by
:func:`unspeech.audio.read_audio`; :func:`iter_audio_blocks` then only cuts the converted signal
into blocks.
"""

from __future__ import annotations

import math
import os
from typing import Iterator

import numpy as np

from unspeech.audio import TARGET_RATE, file_range, is_pipe, load_audio, to_mono
from unspeech.errors import AudioError

__all__ = ["BlockResampler", "audio_length", "iter_audio_blocks"]


class BlockResampler:
    """Polyphase resampling of a signal that arrives in blocks (the filter of :func:`unspeech.audio.resample`).

    ``push(x)`` returns the output samples that are final so far; ``push(x, final=True)`` (``x``
    may be empty) returns the rest. The concatenated output equals ``resample(whole, orig, target)``.
    """

    def __init__(self, orig_rate: int, target_rate: int = TARGET_RATE):
        if orig_rate <= 0 or target_rate <= 0:
            raise AudioError(f"sample rates must be positive. Received: orig_rate={orig_rate}, target_rate={target_rate}")
        g = math.gcd(int(orig_rate), int(target_rate))
        self.orig_rate, self.target_rate = int(orig_rate), int(target_rate)
        self.up, self.down = int(target_rate) // g, int(orig_rate) // g
        # scipy's resample_poly filter reaches 10 * max(up, down) samples of the upsampled signal to
        # either side: a margin of whole decimation periods covering that (plus one) on each side
        # keeps every kept output identical to the whole-signal result
        reach = 10 * max(self.up, self.down) / self.up
        self.margin = self.down * (int(math.ceil(reach / self.down)) + 1)
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # input index of _buf[0]
        self._next = 0  # first input index whose output is not yet returned (a multiple of down)

    def push(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.up == self.down:
            return x
        self._buf = np.concatenate([self._buf, x]) if self._buf.size else x
        available = self._buf_start + self._buf.size
        end = available if final else ((available - self.margin) // self.down) * self.down
        if end <= self._next:
            return np.zeros(0, np.float32)
        lo = max(self._next - self.margin, 0)
        hi = available if final else end + self.margin
        from scipy.signal import resample_poly

        y = resample_poly(self._buf[lo - self._buf_start:hi - self._buf_start], self.up, self.down)
        first = (self._next - lo) * self.up // self.down
        out = y[first:] if final else y[first:first + (end - self._next) * self.up // self.down]
        self._next = end
        keep_from = max(self._next - self.margin, 0)
        self._buf = self._buf[keep_from - self._buf_start:].copy()
        self._buf_start = keep_from
        return out.astype(np.float32, copy=False)


def audio_length(source: str | os.PathLike, start: float | None = None, end: float | None = None,
                 sample_rate: int = TARGET_RATE) -> int | None:
    """Samples at ``sample_rate`` of a file (or its ``[start, end)`` segment, seconds) from its header;
    None for a pipe (its length is only known once decoded)."""
    name = os.fspath(source)
    if is_pipe(name):
        return None
    first, last, rate = file_range(name, start, end)
    g = math.gcd(rate, int(sample_rate))
    return -(-(last - first) * (int(sample_rate) // g) // (rate // g))


def iter_audio_blocks(
    source: str | os.PathLike,
    start: float | None = None,
    end: float | None = None,
    sample_rate: int = TARGET_RATE,
    channel: int | None = None,
    block_seconds: float = 60.0,
) -> Iterator[np.ndarray]:
    """Mono float32 blocks ``(n_i,)`` at ``sample_rate`` of a file or segment, read ``block_seconds`` at a time.

    The blocks concatenated are :func:`unspeech.audio.load_audio` of the same arguments (up to
    float32 rounding of the resampler). Errors (unreadable file, NaN samples, a channel the file
    lacks) are :class:`AudioError` naming the source.
    """
    name = os.fspath(source)
    target = int(sample_rate)
    if is_pipe(name):
        samples = load_audio(name, start, end, target, channel)
        step = max(1, int(block_seconds * target))
        for pos in range(0, len(samples), step):
            yield samples[pos:pos + step]
        return
    import soundfile as sf

    first, last, rate = file_range(name, start, end)
    if last <= first:
        raise AudioError(f"audio {name!r} contains no samples (zero-length)")
    resampler = BlockResampler(rate, target)
    step = max(1, int(block_seconds * rate))
    try:
        with sf.SoundFile(name) as fh:
            fh.seek(first)
            pos = first
            while pos < last:
                data = fh.read(min(step, last - pos), dtype="float32", always_2d=True)
                if len(data) == 0:
                    raise AudioError(f"cannot read audio {name!r}: the file ends at sample {pos} of {last}")
                pos += len(data)
                mono = to_mono(data, channel, name)
                if not np.isfinite(mono).all():
                    raise AudioError(f"audio {name!r} contains NaN or infinite sample values")
                out = resampler.push(mono, final=pos >= last)
                if out.size:
                    yield out
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise AudioError(f"cannot read audio {name!r}: {exc}") from exc

