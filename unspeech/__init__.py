"""unspeech: speaker/channel context embeddings from unlabeled speech.

Submodules are imported lazily so that ``import unspeech`` stays cheap and never pulls in
TensorFlow: ``from unspeech import kaldi_io, uisrnn`` loads just what is asked for.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "kaldi_io",
    "datadir",
    "audio",
    "fbank",
    "fbank_options",
    "perturb",
    "synth",
    "corpus",
    "corpus_conversations",
    "errors",
    "context",
    "cluster",
    "uisrnn",
    "diarize",
    "plots",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"unspeech.{name}")
    raise AttributeError(f"module 'unspeech' has no attribute {name!r}")
