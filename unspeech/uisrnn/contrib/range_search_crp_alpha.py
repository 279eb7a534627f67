"""Estimate the CRP concentration ``crp_alpha`` of UIS-RNN from training labels (NumPy only).

UIS-RNN decides at each speaker change whether the next turn goes to a speaker seen before or
to a new one with a Chinese-restaurant-process prior. Given that the speaker changes at entry
``t``, the previous speaker ``p`` is ruled out, so over the other speakers, with ``N_k`` the
number of turns (blocks) of speaker ``k`` before ``t`` and ``M = sum_k N_k - N_p``:

    P(new speaker)       = alpha / (M + alpha)
    P(back to speaker k) = N_k   / (M + alpha)

:func:`estimate_crp_alpha` returns the value on a grid (``search_step``, ``2 * search_step``,
..., up to ``search_range``) that maximises the log-likelihood of every speaker change of every
training sequence, ``n_new * log(alpha) - sum_changes log(M + alpha)`` (+ terms without alpha).
Pass the result as ``model_args.crp_alpha``.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from unspeech.errors import ConfigError, DataError
from unspeech.uisrnn.utils import encode_labels

__all__ = ["estimate_crp_alpha"]


def _get_normalized_id(cluster_id_single: Sequence[Hashable]) -> np.ndarray:
    """Speakers numbered 0, 1, ... in order of first appearance: ndarray of shape (T,), int."""
    return encode_labels([list(np.asarray(cluster_id_single).tolist())], unique_per_sequence=False)[0]


def _get_k_t(cluster_id_single: Sequence[Hashable]) -> np.ndarray:
    """Number of distinct speakers among entries ``0..t``: ndarray of shape (T,), int."""
    ids = _get_normalized_id(cluster_id_single)
    return np.maximum.accumulate(ids) + 1 if len(ids) else ids


def _get_n_kt(cluster_id_single: Sequence[Hashable]) -> np.ndarray:
    """Turns (blocks) of each speaker among entries ``0..t``: ndarray of shape (T, K), float.

    Row ``t`` (t >= 1) counts the blocks that start at or before ``t``; row 0 is all zeros
    (no decision has been made before the first entry). A change at ``t`` is scored with row
    ``t - 1``; at ``t = 1`` the change always opens a new speaker with probability 1, so the
    zero row changes nothing.
    """
    ids = _get_normalized_id(cluster_id_single)
    num_speakers = int(ids.max()) + 1 if len(ids) else 0
    starts = np.r_[True, ids[1:] != ids[:-1]] if len(ids) else np.zeros(0, bool)
    onehot = np.zeros((len(ids), num_speakers))
    onehot[np.nonzero(starts)[0], ids[starts]] = 1.0
    counts = np.cumsum(onehot, axis=0)
    counts[:1] = 0.0
    return counts


def _split_sequences(train_cluster_id) -> list[np.ndarray]:
    """Per-sequence label arrays of a concatenated ``'<sequence>_<speaker>'`` label array, or of a
    list of label sequences."""
    if isinstance(train_cluster_id, (list, tuple)) and train_cluster_id and \
            isinstance(train_cluster_id[0], (list, tuple, np.ndarray)):
        return [np.asarray(labels) for labels in train_cluster_id]
    labels = np.asarray(train_cluster_id)
    if labels.ndim != 1:
        raise DataError(f"train_cluster_id must be 1-dim. Received shape={labels.shape}")
    prefixes = []
    for position, label in enumerate(labels.tolist()):
        if not isinstance(label, str) or "_" not in label:
            raise DataError("train_cluster_id entries must look like '<sequence>_<speaker>' (as made by "
                            f"enforce_cluster_id_uniqueness); entry {position} is {label!r}. Pass a list of "
                            "per-sequence label lists instead.")
        prefixes.append(label.split("_", 1)[0])
    prefixes = np.asarray(prefixes)
    bounds = np.nonzero(prefixes[1:] != prefixes[:-1])[0] + 1
    return np.split(labels, bounds)


def _change_statistics(sequence: np.ndarray) -> tuple[int, np.ndarray]:
    """For one sequence: the number of changes to a new speaker and ``M`` of every change."""
    ids = _get_normalized_id(sequence)
    if len(ids) < 2:
        return 0, np.zeros(0)
    changes = np.nonzero(ids[1:] != ids[:-1])[0] + 1
    counts = _get_n_kt(sequence)[changes - 1]
    previous = ids[changes - 1]
    others = counts.sum(axis=1) - counts[np.arange(len(changes)), previous]
    k_t = _get_k_t(sequence)
    new = int(np.count_nonzero(k_t[changes] > k_t[changes - 1]))
    return new, others


def estimate_crp_alpha(train_cluster_id, search_range: float = 1.0, search_step: float = 0.01) -> float:
    """The ``crp_alpha`` on a grid that best explains the speaker changes of the training labels.

    Parameters
    ----------
    train_cluster_id : 1-dim array or list of str, or list of label sequences
        Either the concatenated training labels with a per-sequence prefix,
        ``'<sequence>_<speaker>'`` (what :func:`~unspeech.uisrnn.utils.enforce_cluster_id_uniqueness`
        and :func:`~unspeech.uisrnn.utils.concatenate_training_data` make; a sequence is a run
        of equal prefixes), or one label sequence per training sequence.
    search_range : float
        Largest value tried.
    search_step : float
        Grid spacing; the values tried are ``search_step * (1, 2, ...)`` up to ``search_range``.

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        For a non-positive step or range, or a step above the range.
    DataError
        When the labels hold no speaker change (nothing to estimate from) or are malformed.
    """
    if not search_step > 0 or not search_range > 0 or search_step > search_range:
        raise ConfigError("`search_step` and `search_range` must be > 0 with search_step <= search_range. "
                          f"Received: search_range={search_range!r}, search_step={search_step!r}")
    new_total, others = 0, []
    for sequence in _split_sequences(train_cluster_id):
        new, m_values = _change_statistics(sequence)
        new_total += new
        others.append(m_values)
    others = np.concatenate(others) if others else np.zeros(0)
    if len(others) == 0:
        raise DataError("train_cluster_id holds no speaker change: crp_alpha cannot be estimated from it")
    steps = int(np.floor(search_range / search_step + 1e-9))
    grid = np.round(search_step * np.arange(1, steps + 1), 12)  # shape: (G,)
    m_values, multiplicity = np.unique(others, return_counts=True)
    log_likelihood = new_total * np.log(grid) - multiplicity @ np.log(m_values[:, None] + grid[None, :])
    return float(grid[int(np.argmax(log_likelihood))])
