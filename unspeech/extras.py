"""Optional dependencies: which extra installs what, and one clear error when it is missing.

The default install (``pip install unspeech``) runs inference only: fbank, clustering,
diarization and feature export through ONNX Runtime, UIS-RNN decoding in NumPy. Training
(the context model and UIS-RNN) needs TensorFlow, installed by an extra:

=======================  ============================================================
``unspeech[train]``      TensorFlow for CPUs (``tensorflow-cpu``) + ``onnx`` for export
``unspeech[train-gpu]``  TensorFlow with CUDA (``tensorflow[and-cuda]``) + ``onnx``
=======================  ============================================================
"""

from __future__ import annotations

import importlib.util

from unspeech.errors import UnspeechError

__all__ = ["MissingExtraError", "TRAIN_HINT", "has_tensorflow", "require_tensorflow"]

TRAIN_HINT = "pip install 'unspeech[train]' (CPU) or 'unspeech[train-gpu]' (CUDA)"


class MissingExtraError(UnspeechError, ImportError):
    """A feature needs an optional dependency that is not installed."""


def has_tensorflow() -> bool:
    """True when TensorFlow and Keras can be imported (without importing them)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken install
        return False


def require_tensorflow(what: str) -> None:
    """Raise :class:`MissingExtraError` (one line naming the extra) unless TensorFlow is importable."""
    if not has_tensorflow():
        raise MissingExtraError(f"{what} needs TensorFlow, which is not installed: {TRAIN_HINT}")
