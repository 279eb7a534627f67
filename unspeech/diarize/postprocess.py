"""Frame labels → clean speaker segments: smoothing, short-segment removal, merging.

A label sequence is ``ndarray of shape (n_frames,), int``: a speaker index ``>= 0`` on speech
frames and :data:`NON_SPEECH` (-1) elsewhere; frame ``t`` is the span ``[t, t + 1) * frame_shift``
seconds (10 ms frames by default). None of these steps turns non-speech into speech.

The defaults follow ModelScope's diarization pipeline: ``smooth_size`` 83 frames and
``dur_threshold`` 10 frames (100 ms).
"""

from __future__ import annotations

import heapq
from typing import Iterator, Sequence

import numpy as np

from unspeech.datadir import Turn
from unspeech.errors import ConfigError

__all__ = [
    "NON_SPEECH",
    "label_runs",
    "smooth_labels",
    "remove_short_segments",
    "labels_to_turns",
    "postprocess_labels",
]

NON_SPEECH = -1
"""Label of frames without speech."""

_FRAME_BLOCK = 1 << 16
"""Frames smoothed per block (11 min of 10 ms frames)."""


def label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal labels as ``[(first, end_exclusive, label), ...]``, non-speech runs included."""
    return list(_iter_runs(labels))


def _iter_runs(labels) -> Iterator[tuple[int, int, int]]:
    """:func:`label_runs` one run at a time (no list of every run of a long recording)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return
    starts = np.concatenate([[0], np.flatnonzero(labels[1:] != labels[:-1]) + 1])
    ends = np.append(starts[1:], labels.size)
    for a, b in zip(starts.tolist(), ends.tolist()):
        yield a, b, int(labels[a])


def smooth_labels(labels: np.ndarray, smooth_size: int = 83) -> np.ndarray:
    """Median-style smoothing of speaker labels over a centred window of ``smooth_size`` frames.

    Speaker labels are categories, so the "median" is the majority vote: each speech frame takes
    the speaker most frequent among the speech frames of its window (for two speakers that is
    the median). A frame keeps its own label when it ties for the majority. Non-speech frames
    neither vote nor change.

    Parameters
    ----------
    labels : ndarray of shape (n_frames,), int
    smooth_size : int, window length in frames (1 or less: no smoothing)

    Returns
    -------
    ndarray of shape (n_frames,), int
    """
    labels = _integer_labels(labels)
    speech = labels >= 0
    if smooth_size <= 1 or not speech.any():
        return labels.copy()
    n_labels = int(labels.max()) + 1
    half = int(smooth_size) // 2
    after = int(smooth_size) - half  # the window of frame t is [t - half, t + after)
    out = np.empty_like(labels)
    for a in range(0, labels.size, _FRAME_BLOCK):  # block by block: temporaries do not grow with the recording
        b = min(labels.size, a + _FRAME_BLOCK)
        lo_in, hi_in = max(a - half, 0), min(b + after, labels.size)
        part, voting = labels[lo_in:hi_in], speech[lo_in:hi_in]
        onehot = np.zeros((part.size + 1, n_labels), dtype=np.int32)
        onehot[np.flatnonzero(voting) + 1, part[voting]] = 1
        csum = np.cumsum(onehot, axis=0)  # shape: (frames of the block and its margins + 1, n_labels)
        t = np.arange(a, b)
        lo = np.maximum(t - half, 0) - lo_in
        hi = np.minimum(t + after, labels.size) - lo_in
        counts = csum[hi] - csum[lo]  # shape: (b - a, n_labels)
        best = counts.argmax(axis=1)
        own = np.where(speech[a:b], labels[a:b], 0)
        keep = counts[np.arange(b - a), own] == counts[np.arange(b - a), best]
        out[a:b] = np.where(keep, labels[a:b], best)
    out[~speech] = NON_SPEECH
    return out


def _integer_labels(labels) -> np.ndarray:
    """``labels`` as an integer array, keeping a signed integer type (int8 / int16 frame labels stay small)."""
    labels = np.asarray(labels)
    if labels.dtype.kind != "i":
        labels = labels.astype(np.int64)
    return labels


def remove_short_segments(labels: np.ndarray, dur_threshold: int = 10, mode: str = "merge") -> np.ndarray:
    """Get rid of speaker segments shorter than ``dur_threshold`` frames.

    ``mode="merge"`` gives a short segment to the longer of its directly adjacent speaker
    segments (shortest segments first, until none is left short); a short segment with
    non-speech on both sides is dropped (becomes non-speech). ``mode="drop"`` drops every short
    segment. Afterwards same-speaker neighbours form one segment.

    Returns ndarray of shape (n_frames,), int.
    """
    if mode not in ("merge", "drop"):
        raise ConfigError(f"`mode` must be 'merge' or 'drop'. Received: mode={mode!r}")
    out = _integer_labels(labels).copy()
    if dur_threshold <= 1 or out.size == 0:
        return out
    starts = np.concatenate([[0], np.flatnonzero(out[1:] != out[:-1]) + 1])
    ends = np.append(starts[1:], out.size)
    labs = out[starts].astype(np.int64)
    short = np.flatnonzero((labs >= 0) & (ends - starts < dur_threshold))
    if mode == "drop":  # dropping never makes another speech run shorter: one pass
        for i in short:
            out[starts[i]:ends[i]] = NON_SPEECH
        return out
    # merge: runs as a doubly linked list; the shortest short run first (the earliest on ties)
    n = len(starts)
    prev, nxt = np.arange(-1, n - 1), np.arange(1, n + 1)
    nxt[-1] = -1
    alive = np.ones(n, dtype=bool)
    heap = [(int(ends[i] - starts[i]), int(starts[i]), int(i)) for i in short]
    heapq.heapify(heap)

    def absorb(i: int, j: int) -> None:  # run j (a neighbour of i with i's label) joins run i
        starts[i], ends[i] = min(starts[i], starts[j]), max(ends[i], ends[j])
        alive[j] = False
        left, right = (prev[j], i) if j < i else (i, nxt[j])
        if left >= 0:
            nxt[left] = right
        if right >= 0:
            prev[right] = left

    while heap:
        length, first, i = heapq.heappop(heap)
        if not alive[i] or labs[i] < 0 or int(ends[i] - starts[i]) != length or int(starts[i]) != first:
            continue  # a stale entry: the run has changed since
        sides = [k for k in (prev[i], nxt[i]) if k >= 0 and labs[k] >= 0]
        # the longer speaker neighbour (the earlier one on ties), or non-speech when there is none
        labs[i] = labs[max(sides, key=lambda k: ends[k] - starts[k])] if sides else NON_SPEECH
        for k in (prev[i], nxt[i]):
            if k >= 0 and labs[k] == labs[i]:
                absorb(i, int(k))
        if labs[i] >= 0 and ends[i] - starts[i] < dur_threshold:
            heapq.heappush(heap, (int(ends[i] - starts[i]), int(starts[i]), int(i)))
    for i in np.flatnonzero(alive):
        out[starts[i]:ends[i]] = labs[i]
    return out


def labels_to_turns(
    labels: np.ndarray,
    file_id: str,
    speaker_names: Sequence[str] | None = None,
    frame_shift: float = 0.01,
    offset: float = 0.0,
    channel: str = "1",
) -> list[Turn]:
    """Speaker runs of a label sequence as RTTM turns (seconds, ``offset`` added).

    ``speaker_names[k]`` names label ``k``; by default speakers are called ``spk1``, ``spk2``, ...
    in the order in which they first speak.
    """
    turns = []
    auto: dict[int, str] = {}
    for a, b, lab in _iter_runs(labels):
        if lab < 0:
            continue
        if speaker_names is not None:
            name = speaker_names[lab]
        else:
            name = auto.setdefault(lab, f"spk{len(auto) + 1}")
        onset = round(offset + a * frame_shift, 6)
        turns.append(Turn(file_id, channel, onset, round((b - a) * frame_shift, 6), name))
    return turns


def postprocess_labels(
    labels: np.ndarray, smooth_size: int = 83, dur_threshold: int = 10, short_segments: str = "merge"
) -> np.ndarray:
    """:func:`smooth_labels` then :func:`remove_short_segments`.

    Returns ndarray of shape (n_frames,), int.
    """
    return remove_short_segments(smooth_labels(labels, smooth_size), dur_threshold, short_segments)
