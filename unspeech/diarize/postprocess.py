"""Frame labels → clean speaker segments: smoothing, short-segment removal, merging.

A label sequence is ``ndarray of shape (n_frames,), int``: a speaker index ``>= 0`` on speech
frames and :data:`NON_SPEECH` (-1) elsewhere; frame ``t`` is the span ``[t, t + 1) * frame_shift``
seconds (10 ms frames by default). None of these steps turns non-speech into speech.

The defaults follow ModelScope's diarization pipeline: ``smooth_size`` 83 frames and
``dur_threshold`` 10 frames (100 ms).
"""

from __future__ import annotations

from typing import Sequence

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


def label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal labels as ``[(first, end_exclusive, label), ...]``, non-speech runs included."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    starts = np.concatenate([[0], np.flatnonzero(labels[1:] != labels[:-1]) + 1])
    ends = np.concatenate([starts[1:], [labels.size]])
    return [(int(a), int(b), int(labels[a])) for a, b in zip(starts, ends)]


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
    labels = np.asarray(labels, dtype=np.int64)
    speech = labels >= 0
    if smooth_size <= 1 or not speech.any():
        return labels.copy()
    n_labels = int(labels.max()) + 1
    half = int(smooth_size) // 2
    onehot = np.zeros((labels.size + 1, n_labels), dtype=np.int32)
    onehot[np.flatnonzero(speech) + 1, labels[speech]] = 1
    csum = np.cumsum(onehot, axis=0)  # shape: (n_frames + 1, n_labels)
    t = np.arange(labels.size)
    lo = np.maximum(t - half, 0)
    hi = np.minimum(t + (int(smooth_size) - half), labels.size)
    counts = csum[hi] - csum[lo]  # shape: (n_frames, n_labels)
    best = counts.argmax(axis=1)
    own = np.where(speech, labels, 0)
    keep = counts[t, own] == counts[t, best]
    out = np.where(keep, labels, best)
    out[~speech] = NON_SPEECH
    return out


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
    out = np.asarray(labels, dtype=np.int64).copy()
    if dur_threshold <= 1:
        return out
    while True:
        runs = label_runs(out)
        short = [i for i, (a, b, lab) in enumerate(runs) if lab >= 0 and b - a < dur_threshold]
        if not short:
            return out
        if mode == "drop":
            for i in short:
                a, b, _ = runs[i]
                out[a:b] = NON_SPEECH
            continue
        i = min(short, key=lambda k: (runs[k][1] - runs[k][0], k))
        a, b, _ = runs[i]
        neighbours = [runs[k] for k in (i - 1, i + 1) if 0 <= k < len(runs) and runs[k][2] >= 0]
        if neighbours:
            out[a:b] = max(neighbours, key=lambda r: r[1] - r[0])[2]
        else:
            out[a:b] = NON_SPEECH


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
    for a, b, lab in label_runs(labels):
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
