"""Data preparation helpers of UIS-RNN: label checks, uniqueness, block permutations,
transition-bias estimation, and the experiment summary of :func:`output_result`.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import secrets
import string
import sys
from typing import Hashable, Iterable, Sequence

import numpy as np

from unspeech.errors import ConfigError, DataError, UnspeechError

__all__ = [
    "InputTypeError",
    "Logger",
    "generate_random_string",
    "check_sequence",
    "encode_labels",
    "enforce_cluster_id_uniqueness",
    "concatenate_training_data",
    "sample_permuted_segments",
    "resize_sequence",
    "speaker_index_sets",
    "estimate_transition_bias",
    "output_result",
]


_RANDOM_ALPHABET = string.ascii_uppercase + string.digits


class InputTypeError(UnspeechError, TypeError):
    """An argument of the wrong type (e.g. labels that are not a list or an array)."""


class Logger:
    """Prints messages whose level is at most ``verbosity``.

    Levels: 0 fatal, 1 error, 2 warning, 3 info, 4 debug, with one method each
    (:meth:`fatal` ... :meth:`debug`) besides :meth:`print`. A fatal message is not printed
    but raised as ``RuntimeError`` whatever the verbosity: it stops the program.
    """

    LEVELS = {0: "FATAL", 1: "ERROR", 2: "WARNING", 3: "INFO", 4: "DEBUG"}

    def __init__(self, verbosity: int = 3, stream=None):
        self.verbosity = int(verbosity)
        self.stream = stream

    def print(self, level: int, message: str) -> None:
        """Write ``message`` when ``level <= verbosity``; level 0 raises ``RuntimeError``."""
        tag = self.LEVELS.get(level, "DEBUG")
        if level <= 0:
            raise RuntimeError(f"[uisrnn {tag}] {message}")
        if level <= self.verbosity:
            print(f"[uisrnn {tag}] {message}", file=self.stream or sys.stdout, flush=True)

    def fatal(self, message: str) -> None:
        self.print(0, message)

    def error(self, message: str) -> None:
        self.print(1, message)

    def warning(self, message: str) -> None:
        self.print(2, message)

    def info(self, message: str) -> None:
        self.print(3, message)

    def debug(self, message: str) -> None:
        self.print(4, message)


def generate_random_string(length: int = 6) -> str:
    """``length`` random upper-case letters and digits (from :mod:`secrets`), e.g. ``"Q7K2ZA"``."""
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise ConfigError(f"`length` must be a non-negative integer. Received: length={length!r}")
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(length))


def check_sequence(sequence, observation_dim: int | None, what: str = "sequence") -> np.ndarray:
    """Return ``sequence`` as a 2-D float array, or raise a clear error.

    Float16/32/64 are accepted (the library accepted float64 only); integer or object
    arrays raise :class:`InputTypeError`, a wrong shape raises :class:`DataError`
    (a ``ValueError``).
    """
    if not isinstance(sequence, np.ndarray):
        raise InputTypeError(f"{what} must be a numpy array. Received {type(sequence).__name__}")
    if sequence.dtype.kind != "f":
        raise InputTypeError(f"{what} must be a float array. Received dtype={sequence.dtype}")
    if sequence.ndim != 2:
        raise DataError(f"{what} must be 2-dim (entries, observation_dim). Received shape={sequence.shape}")
    if observation_dim is not None and sequence.shape[1] != observation_dim:
        raise DataError(f"{what} has {sequence.shape[1]} columns but observation_dim is {observation_dim}")
    if not np.all(np.isfinite(sequence)):
        raise DataError(f"{what} contains NaN or Inf values")
    return sequence


def _as_label_list(labels, what: str) -> list:
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1:
            raise DataError(f"{what} must be 1-dim. Received shape={labels.shape}")
        return labels.tolist()
    if isinstance(labels, (list, tuple)):
        return list(labels)
    raise InputTypeError(f"{what} must be a list or a 1-dim numpy array. Received {type(labels).__name__}")


def encode_labels(label_sequences: Sequence[Sequence[Hashable]], unique_per_sequence: bool) -> list[np.ndarray]:
    """Map labels of any hashable type to integer codes.

    With ``unique_per_sequence`` a label only names a speaker inside its own sequence
    (equal labels in two sequences get different codes).

    Returns
    -------
    list of ndarray of shape (T_i,), int64
    """
    table: dict = {}
    codes = []
    for index, labels in enumerate(label_sequences):
        try:
            if unique_per_sequence:
                seq_codes = [table.setdefault((index, label), len(table)) for label in labels]
            else:
                seq_codes = [table.setdefault(label, len(table)) for label in labels]
        except TypeError as exc:
            raise InputTypeError(f"cluster ids must be hashable (str, int, ...): {exc}") from None
        codes.append(np.asarray(seq_codes, dtype=np.int64))
    return codes


def enforce_cluster_id_uniqueness(cluster_ids: list) -> list[list[str]]:
    """Prefix every sequence's labels with a random per-sequence token.

    Equal labels in different sequences become different strings (``"<token>_<label>"``),
    so that concatenating the sequences does not merge their speakers.

    Parameters
    ----------
    cluster_ids : list of (list or 1-dim ndarray)
    """
    if not isinstance(cluster_ids, list):
        raise InputTypeError("cluster_ids must be a list of label sequences")
    result = []
    for labels in cluster_ids:
        token = generate_random_string(12)
        result.append([f"{token}_{label}" for label in _as_label_list(labels, "each cluster_ids element")])
    return result


def concatenate_training_data(train_sequences: list, train_cluster_ids: list,
                              enforce_uniqueness: bool = True, shuffle: bool = True,
                              rng: np.random.Generator | None = None):
    """Concatenate sequences (and labels) into one array; optionally shuffle their order.

    Returns
    -------
    sequence : ndarray of shape (sum T_i, D)
    cluster_id : list of labels, length sum T_i
    """
    if not isinstance(train_sequences, list) or not isinstance(train_cluster_ids, list):
        raise InputTypeError("train_sequences and train_cluster_ids must both be lists")
    if len(train_sequences) != len(train_cluster_ids):
        raise DataError(f"got {len(train_sequences)} sequences but {len(train_cluster_ids)} label lists")
    if not train_sequences:
        raise DataError("no training sequences given")
    dim = None
    labels = []
    for index, (seq, ids) in enumerate(zip(train_sequences, train_cluster_ids)):
        check_sequence(seq, dim, f"train_sequences[{index}]")
        dim = seq.shape[1]
        ids = _as_label_list(ids, f"train_cluster_ids[{index}]")
        if len(ids) != len(seq):
            raise DataError(f"train_sequences[{index}] has {len(seq)} entries but "
                            f"train_cluster_ids[{index}] has {len(ids)} labels")
        labels.append(ids)
    if enforce_uniqueness:
        labels = enforce_cluster_id_uniqueness(labels)
    order = np.arange(len(train_sequences))
    if shuffle:
        order = (rng or np.random.default_rng()).permutation(order)
    sequence = np.concatenate([train_sequences[i] for i in order], axis=0)
    return sequence, [label for i in order for label in labels[i]]


def sample_permuted_segments(index_sequence, number_samples: int,
                             rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Reorder the contiguous runs of an index sequence at random, ``number_samples`` times.

    ``[1, 2, 6, 10, 11, 12]`` has the runs ``[1, 2]``, ``[6]``, ``[10, 11, 12]``; each sample
    keeps every run intact and shuffles their order, e.g. ``[6, 10, 11, 12, 1, 2]``.
    """
    rng = rng or np.random.default_rng()
    index_sequence = np.asarray(index_sequence)
    if len(index_sequence) == 0:
        return [index_sequence.copy() for _ in range(number_samples)]
    breaks = np.nonzero(np.diff(index_sequence) != 1)[0] + 1
    runs = np.split(index_sequence, breaks)
    return [np.concatenate([runs[k] for k in rng.permutation(len(runs))]) for _ in range(number_samples)]


def speaker_index_sets(cluster_codes: np.ndarray, num_permutations: int | None,
                       rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Row indices of each speaker's entries, block-permuted ``num_permutations`` times.

    Speakers are taken in order of their code; with ``num_permutations`` of 0, 1 or None
    each speaker contributes its entries once, in their original order.
    """
    cluster_codes = np.asarray(cluster_codes)
    order = np.argsort(cluster_codes, kind="stable")
    sorted_codes = cluster_codes[order]
    starts = np.nonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])[0]
    groups = np.split(order, starts[1:]) if len(order) else []
    if not num_permutations or num_permutations <= 1:
        return groups
    rng = rng or np.random.default_rng()
    result = []
    for group in groups:
        result.extend(sample_permuted_segments(group, num_permutations, rng))
    return result


def resize_sequence(sequence: np.ndarray, cluster_id, num_permutations: int | None = None,
                    rng: np.random.Generator | None = None):
    """Split a labelled sequence into per-speaker sub-sequences (block-permuted copies).

    Returns
    -------
    sub_sequences : list of ndarray of shape (n_k, D)
    seq_lengths : list of int, ``n_k + 1`` (the model sees a zero entry first)
    """
    labels = _as_label_list(cluster_id, "cluster_id")
    codes = encode_labels([labels], unique_per_sequence=False)[0]
    sets = speaker_index_sets(codes, num_permutations, rng)
    return [sequence[idx] for idx in sets], [len(idx) + 1 for idx in sets]


def estimate_transition_bias(cluster_ids: Iterable[Sequence[Hashable]], smooth: float = 1.0):
    """Probability of a speaker change between adjacent entries, counted per sequence.

    ``(smooth + changes) / (2 * smooth + adjacent pairs)``, where pairs never span two
    sequences, so concatenation boundaries add no false changes. The smoothing keeps the value
    strictly inside (0, 1) for empty, single-speaker or always-changing data.

    Returns
    -------
    bias : float
    denominator : float
        The pair count plus smoothing, used to combine estimates of several ``fit`` calls.
    """
    changes = float(smooth)
    denominator = 2.0 * float(smooth)
    for labels in cluster_ids:
        if isinstance(labels, np.ndarray) and labels.ndim == 1:
            changes += float(np.count_nonzero(labels[1:] != labels[:-1]))
        else:
            labels = _as_label_list(labels, "cluster ids")
            changes += float(sum(a != b for a, b in zip(labels, labels[1:])))
        denominator += max(len(labels) - 1, 0)
    return changes / denominator, denominator


def result_file_name(model_args) -> str:
    """The library's summary file name for these model options: ``layer_<hidden>_<depth>_<dropout>_result.txt``."""
    return f"layer_{model_args.rnn_hidden_size}_{model_args.rnn_depth}_{model_args.rnn_dropout:.1f}_result.txt"


def output_result(model_args, training_args, test_record, filename: str | None = "auto") -> str:
    """Summarize an experiment: the main options and the per-sequence accuracies.

    Parameters
    ----------
    test_record : list of (accuracy, sequence_length)
    filename : str or None
        Where the summary is appended. ``"auto"`` (the default) uses
        ``layer_<hidden>_<depth>_<dropout>_result.txt`` in the working directory, as the
        ``uisrnn`` library does; None writes nothing.

    Returns
    -------
    str
    """
    if not test_record:
        raise DataError("test_record is empty: nothing to summarize")
    accuracies = [float(acc) for acc, _ in test_record]
    lines = [
        "Config:",
        f"  sigma_alpha: {training_args.sigma_alpha}",
        f"  sigma_beta: {training_args.sigma_beta}",
        f"  crp_alpha: {model_args.crp_alpha}",
        f"  learning rate: {training_args.learning_rate}",
        f"  regularization: {training_args.regularization_weight}",
        f"  batch size: {training_args.batch_size}",
        "",
        "Performance:",
        f"  averaged accuracy: {np.mean(accuracies):.6f}",
        "  accuracy numbers for all testing sequences:",
    ]
    lines += [f"    {acc:.6f}" for acc in accuracies]
    text = "\n".join(lines) + "\n" + "=" * 80 + "\n"
    if filename == "auto":
        filename = result_file_name(model_args)
    if filename:
        with open(filename, "a", encoding="utf-8") as handle:
            handle.write(text)
    return text
