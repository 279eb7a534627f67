"""UIS-RNN on Kaldi data: frame-level embedding arks + RTTM labels in, RTTM out.

Row ``i`` of a frame-level ark (e.g. ``gen_feat`` output) covers the ``ivector_period`` frames
starting at frame ``i * ivector_period``; frames are ``frame_shift`` seconds apart (10 ms).
The ark's utterance ids are the RTTM file ids.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

from unspeech import datadir, kaldi_io
from unspeech._fileutil import atomic_open
from unspeech.errors import ConfigError, DataError

__all__ = [
    "rows_to_speakers",
    "labels_to_turns",
    "train_from_arks",
    "predict_arks",
    "write_labels",
]

log = logging.getLogger(__name__)

FRAME_SHIFT = 0.01


def _row_seconds(ivector_period: int, frame_shift: float) -> float:
    if not isinstance(ivector_period, (int, np.integer)) or ivector_period < 1:
        raise ConfigError(f"`ivector_period` must be a positive integer. Received: ivector_period={ivector_period!r}")
    if not frame_shift > 0:
        raise ConfigError(f"`frame_shift` must be > 0. Received: frame_shift={frame_shift!r}")
    return ivector_period * frame_shift


def _iter_embeddings(ark_rspecifier: str, dim: int):
    """``(utt, (rows, dim) matrix)`` pairs of an ark; other shapes raise DataError."""
    for utt, mat in kaldi_io.iter_mats(ark_rspecifier):
        if mat.ndim != 2:
            raise DataError(f"{ark_rspecifier}: utterance {utt!r} is a vector; expected a (rows, dim) matrix")
        if mat.shape[1] != dim:
            raise DataError(f"{ark_rspecifier}: utterance {utt!r} has dimension {mat.shape[1]} but the "
                            f"UIS-RNN observation_dim is {dim}")
        yield utt, mat


def rows_to_speakers(turns: Sequence[datadir.Turn], num_rows: int, row_seconds: float) -> list[str | None]:
    """The speaker of each embedding row: the one speaking longest inside the row's span.

    Rows no turn touches get None (silence). Ties go to the turn listed first.
    """
    starts = np.arange(num_rows) * row_seconds
    ends = starts + row_seconds
    best = np.zeros(num_rows)
    speakers: list[str | None] = [None] * num_rows
    for turn in turns:
        first = max(int(np.floor(turn.onset / row_seconds)), 0)
        last = min(int(np.ceil(turn.end / row_seconds)), num_rows)
        if first >= last:
            continue
        overlap = np.minimum(ends[first:last], turn.end) - np.maximum(starts[first:last], turn.onset)
        for offset in np.nonzero(overlap > best[first:last] + 1e-9)[0]:
            row = first + int(offset)
            best[row] = overlap[offset]
            speakers[row] = turn.speaker
    return speakers


def labels_to_turns(file_id: str, labels: Sequence, row_seconds: float, channel: str = "1",
                    speaker_prefix: str = "spk") -> list[datadir.Turn]:
    """Merge runs of equal labels into RTTM turns (``speaker_prefix + label``)."""
    turns = []
    start = 0
    for row in range(1, len(labels) + 1):
        if row == len(labels) or labels[row] != labels[start]:
            turns.append(datadir.Turn(file_id, channel, start * row_seconds, (row - start) * row_seconds,
                                      f"{speaker_prefix}{labels[start]}"))
            start = row
    return turns


def train_from_arks(ark_rspecifier: str, rttm_path: str | os.PathLike, ivector_period: int,
                    model_args, training_args, *, frame_shift: float = FRAME_SHIFT, model=None,
                    seed: int | None = 0):
    """Train a UIS-RNN from frame-level embeddings and RTTM speaker turns.

    Each utterance of the ark becomes one training sequence made of its rows that some turn of
    the RTTM (file id = utterance id) covers, labelled with that speaker. Silent rows are left
    out; utterances without turns are skipped with a warning.

    Parameters
    ----------
    ark_rspecifier : str
        Embeddings, one (rows, D) matrix per utterance (ark / scp / ``ark:`` / pipe).
    rttm_path : path
        Reference speaker turns.
    ivector_period : int
        Frames per embedding row.
    model_args, training_args : argparse.Namespace
        As from :func:`unspeech.uisrnn.parse_arguments`; ``model_args.observation_dim`` must
        equal the embedding dimension.
    frame_shift : float
        Seconds per frame.
    model : UISRNN, optional
        Continue training this model instead of a new one.

    Returns
    -------
    UISRNN
    """
    from unspeech.uisrnn.model import UISRNN

    row_seconds = _row_seconds(ivector_period, frame_shift)
    by_file: dict[str, list[datadir.Turn]] = defaultdict(list)
    for turn in datadir.read_rttm(rttm_path):
        by_file[turn.file_id].append(turn)
    if not by_file:
        raise DataError(f"{rttm_path}: no SPEAKER turns")
    sequences, labels = [], []
    for utt, mat in _iter_embeddings(ark_rspecifier, model_args.observation_dim):
        if utt not in by_file:
            log.warning("%s: no RTTM turns for utterance %r; skipped", rttm_path, utt)
            continue
        speakers = rows_to_speakers(by_file[utt], len(mat), row_seconds)
        keep = [row for row, spk in enumerate(speakers) if spk is not None]
        if not keep:
            log.warning("%s: turns of %r do not cover any of its %d rows; skipped", rttm_path, utt, len(mat))
            continue
        sequences.append(np.asarray(mat[keep], dtype=np.float32))
        labels.append([speakers[row] for row in keep])
    if not sequences:
        raise DataError(f"no utterance of {ark_rspecifier} has speaker turns in {rttm_path}")
    log.info("training UIS-RNN on %d utterances, %d labelled rows", len(sequences), sum(map(len, sequences)))
    if model is None:
        model = UISRNN(model_args, seed=seed)
    return model.fit(sequences, labels, training_args)


def write_labels(path: str | os.PathLike, labels: dict[str, Sequence[int]]) -> None:
    """Write ``<utt> <label> <label> ...`` lines (a Kaldi text archive of integer vectors)."""
    with atomic_open(path) as handle:
        for utt, values in labels.items():
            handle.write(utt + " " + " ".join(str(int(v)) for v in values) + "\n")


def predict_arks(model, ark_rspecifier: str, inference_args, ivector_period: int,
                 out_rttm: str | os.PathLike | None = None, out_labels: str | os.PathLike | None = None, *,
                 frame_shift: float = FRAME_SHIFT, num_speakers: int | None = None,
                 max_speakers: int | None = None, num_processes: int = 1,
                 hook: Callable | None = None) -> dict[str, list[int]]:
    """Diarize every utterance of a frame-level embedding ark.

    Parameters
    ----------
    model : UISRNN
    ark_rspecifier : str
    inference_args : argparse.Namespace
    ivector_period : int
        Frames per embedding row.
    out_rttm : path, optional
        RTTM with one turn per run of equal labels (speakers ``spk0``, ``spk1``, ...).
    out_labels : path, optional
        ``<utt> <label per row>`` lines.
    num_speakers, max_speakers : int, optional
        Speaker-count constraints applied to every utterance.
    num_processes : int
        Decode utterances in this many processes.
    hook : callable, optional
        Called as ``hook("predict", utt, completed=i, total=n)`` after each utterance (the
        utterances are then decoded one by one instead of in one lockstep batch).

    Returns
    -------
    dict of utterance id -> list of int (one label per row)
    """
    from unspeech.uisrnn.parallel import parallel_predict

    row_seconds = _row_seconds(ivector_period, frame_shift)
    utts, mats = [], []
    for utt, mat in _iter_embeddings(ark_rspecifier, model.observation_dim):
        utts.append(utt)
        mats.append(np.asarray(mat, dtype=np.float32))
    if not utts:
        raise DataError(f"{ark_rspecifier}: no utterances")
    if num_processes > 1:
        predictions = parallel_predict(model, mats, inference_args, num_processes,
                                       num_speakers=num_speakers, max_speakers=max_speakers)
        if hook is not None:
            hook("predict", None, completed=len(utts), total=len(utts))
    elif hook is None:
        predictions = model.predict(mats, inference_args, num_speakers, max_speakers)  # lockstep batch
    else:
        predictions = []
        for index, mat in enumerate(mats):
            predictions.append(model.predict(mat, inference_args, num_speakers, max_speakers))
            if hook is not None:
                hook("predict", utts[index], completed=index + 1, total=len(utts))
    result = dict(zip(utts, predictions))
    if out_labels is not None:
        write_labels(out_labels, result)
    if out_rttm is not None:
        turns = [turn for utt, labels in result.items() for turn in labels_to_turns(utt, labels, row_seconds)]
        datadir.write_rttm(out_rttm, turns)
    return result
