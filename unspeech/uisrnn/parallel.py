"""Decode many sequences in worker processes (NumPy only; workers never import TensorFlow)."""

from __future__ import annotations

import multiprocessing
import os
from typing import Sequence

import numpy as np

from unspeech.errors import ConfigError
from unspeech.uisrnn.decoding import DecoderWeights, check_inference_options, decode_sequence
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


def _decode_task(task):
    index, sequence, overrides = task
    options = dict(_WORKER_STATE["options"], **overrides)
    return index, decode_sequence(_WORKER_STATE["weights"], sequence, **options)


def parallel_predict(model, test_sequences: list, args, num_processes: int = 4, *,
                     num_speakers=None, max_speakers=None, start_method: str | None = None) -> list[list[int]]:
    """Decode a list of sequences with a pool of worker processes.

    Same results as ``model.predict(test_sequences, args)``. Each worker gets the weights once
    and decodes whole sequences, longest first, with one BLAS thread.

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
    tasks = []
    for index, seq in enumerate(sequences):
        overrides = {}
        for name, value in (("num_speakers", num_speakers), ("max_speakers", max_speakers)):
            if isinstance(value, (list, tuple, np.ndarray)):
                if len(value) != len(sequences):
                    raise ConfigError(f"`{name}` has {len(value)} values for {len(sequences)} sequences")
                value = value[index]
            overrides[name] = value
        tasks.append((index, seq, overrides))
    processes = min(num_processes, len(tasks))
    if processes <= 1:
        return [decode_sequence(weights, seq, **options, **extra) for _, seq, extra in tasks]
    tasks.sort(key=lambda task: -len(task[1]))
    if start_method is None:
        start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() and os.name == "posix" else "spawn"
    context = multiprocessing.get_context(start_method)
    results: list = [None] * len(tasks)
    with context.Pool(processes, initializer=_init_worker, initargs=(weights, options)) as pool:
        for index, labels in pool.imap_unordered(_decode_task, tasks):
            results[index] = labels
    return results
