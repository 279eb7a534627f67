"""Decode many sequences in worker processes (NumPy only; workers never import TensorFlow)."""

from __future__ import annotations

import multiprocessing
import os

from unspeech.errors import ConfigError
from unspeech.uisrnn.decoding import (
    DecoderWeights,
    check_inference_options,
    decode_batch,
    per_sequence_option,
    restart_count,
)
from unspeech.uisrnn.utils import InputTypeError, check_sequence

__all__ = ["parallel_predict"]

_WORKER_STATE: dict = {}


def _init_worker(weights: DecoderWeights, options: dict) -> None:
    # One BLAS thread per process: the processes already share out the cores.
    try:
        from threadpoolctl import threadpool_limits

        _WORKER_STATE["limits"] = threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass
    _WORKER_STATE["weights"] = weights
    _WORKER_STATE["options"] = options


def _decode_chunk(chunk):
    indices, sequences, num_speakers, max_speakers = chunk
    labels = decode_batch(_WORKER_STATE["weights"], sequences, num_speakers=num_speakers,
                          max_speakers=max_speakers, **_WORKER_STATE["options"])
    return indices, labels


def parallel_predict(model, test_sequences: list, args, num_processes: int = 4, *,
                     num_speakers=None, max_speakers=None, start_method: str | None = None) -> list[list[int]]:
    """Decode a list of sequences with a pool of worker processes.

    Same results as ``model.predict(test_sequences, args)``. The sequences are dealt, longest
    first, into one share per process; each worker gets the weights once, decodes its share in
    lockstep (:func:`~unspeech.uisrnn.decoding.decode_batch`) with one BLAS thread.

    Parameters
    ----------
    model : UISRNN or DecoderWeights
    test_sequences : list of ndarray of shape (T_i, D)
    args : argparse.Namespace
        Inference options.
    num_processes : int
        Worker processes (capped at the number of sequences; 1 decodes in this process).
    num_speakers, max_speakers : int or list of int, optional
        As in :meth:`UISRNN.predict`.
    start_method : str, optional
        multiprocessing start method; default ``"fork"`` where available (workers only run
        NumPy code), else ``"spawn"``.

    Returns
    -------
    list of list of int, in the order of ``test_sequences``
    """
    if not isinstance(test_sequences, list):
        raise InputTypeError("test_sequences must be a list of arrays")
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ConfigError(f"`num_processes` must be a positive integer. Received: {num_processes!r}")
    weights = model if isinstance(model, DecoderWeights) else model.decoder_weights()
    sequences = [check_sequence(seq, weights.observation_dim, f"test_sequences[{i}]")
                 for i, seq in enumerate(test_sequences)]
    options = dict(beam_size=args.beam_size, look_ahead=args.look_ahead, test_iteration=args.test_iteration)
    check_inference_options(**options)
    options["running_mean"] = getattr(args, "running_mean", "uisrnn")
    restart_count(options["running_mean"])  # a bad value fails here, not in every worker
    if num_speakers is None:
        num_speakers = getattr(args, "num_speakers", None)
    if max_speakers is None:
        max_speakers = getattr(args, "max_speakers", None)
    counts = per_sequence_option(num_speakers, len(sequences), "num_speakers")
    limits = per_sequence_option(max_speakers, len(sequences), "max_speakers")
    processes = min(num_processes, len(sequences))
    if processes <= 1:
        return decode_batch(weights, sequences, num_speakers=counts, max_speakers=limits, **options)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    chunks = []
    for share in range(processes):
        indices = order[share::processes]
        chunks.append((indices, [sequences[i] for i in indices], [counts[i] for i in indices],
                       [limits[i] for i in indices]))
    if start_method is None:
        start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() and os.name == "posix" else "spawn"
    context = multiprocessing.get_context(start_method)
    results: list = [None] * len(sequences)
    with context.Pool(processes, initializer=_init_worker, initargs=(weights, options)) as pool:
        for indices, labels in pool.imap_unordered(_decode_chunk, chunks):
            for index, value in zip(indices, labels):
                results[index] = value
    return results
