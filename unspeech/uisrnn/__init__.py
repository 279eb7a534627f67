"""Supervised speaker diarization with UIS-RNN, API-compatible with the ``uisrnn`` library.

Scripts written for ``uisrnn`` run after changing only the import::

    from unspeech import uisrnn

    model_args, training_args, inference_args = uisrnn.parse_arguments()
    model = uisrnn.UISRNN(model_args)
    model.fit(train_sequences, train_cluster_ids, training_args)
    labels = model.predict(test_sequences, inference_args)

The library's module paths work too (``unspeech.uisrnn.uisrnn.UISRNN``, ``.utils``, ``.evals``,
``.contrib.range_search_crp_alpha``), and :meth:`UISRNN.load` reads models saved by the library
(:mod:`unspeech.uisrnn.model_io`; ``unspeech uisrnn convert`` converts both ways).

Decoding is a vectorized NumPy beam search with the library's rules; constructing, loading,
saving and predicting never import TensorFlow, which only :meth:`UISRNN.fit` needs (the
``unspeech[train]`` extra).
"""

from __future__ import annotations

import importlib

from unspeech.uisrnn.arguments import default_arguments, parse_arguments, str2bool
from unspeech.uisrnn.decoding import DecoderWeights, OnlineDecoder, decode_batch, decode_sequence
from unspeech.uisrnn.evals import compute_sequence_match_accuracy, get_list_inverse_index
from unspeech.uisrnn.parallel import parallel_predict
from unspeech.uisrnn.utils import (
    enforce_cluster_id_uniqueness,
    estimate_transition_bias,
    output_result,
)

__all__ = [
    "parse_arguments",
    "default_arguments",
    "str2bool",
    "UISRNN",
    "parallel_predict",
    "compute_sequence_match_accuracy",
    "get_list_inverse_index",
    "output_result",
    "enforce_cluster_id_uniqueness",
    "estimate_transition_bias",
    "DecoderWeights",
    "OnlineDecoder",
    "decode_sequence",
    "decode_batch",
]

_LAZY = {"UISRNN": "unspeech.uisrnn.model"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'unspeech.uisrnn' has no attribute {name!r}")
