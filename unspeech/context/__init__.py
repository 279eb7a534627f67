"""The unspeech context model: learn speaker/channel context embeddings without labels.

``config`` and ``sampling`` import no TensorFlow; ``transforms``, ``model``, ``train`` and the
loading helpers do, and are imported on first use::

    from unspeech.context import ContextConfig, train, load_run, embed_windows
    config, model = load_run("models/ctx/runs/1700000000feats_trans...")
    emb = embed_windows(model, windows)          # (N, W, F) -> (N, embedding_size)
"""

from __future__ import annotations

import importlib

from unspeech.context.config import ContextConfig, add_config_arguments, config_from_args, given_options

__all__ = [
    "ContextConfig",
    "add_config_arguments",
    "config_from_args",
    "given_options",
    "ContextSampler",
    "ContextModel",
    "train",
    "TrainResult",
    "load_run",
    "embed_windows",
    "TRANSFORMATIONS",
]

_LAZY = {
    "ContextSampler": "unspeech.context.sampling",
    "ContextModel": "unspeech.context.model",
    "train": "unspeech.context.train",
    "TrainResult": "unspeech.context.train",
    "load_run": "unspeech.context.rundir",
    "embed_windows": "unspeech.context.rundir",
    "TRANSFORMATIONS": "unspeech.context.transforms",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unspeech.context' has no attribute {name!r}")
