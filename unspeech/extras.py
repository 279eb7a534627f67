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

__all__ = ["MissingExtraError", "TRAIN_HINT", "has_module", "has_tensorflow", "require_tensorflow", "require_onnx_export", "quiet_tensorflow"]

TRAIN_HINT = "pip install 'unspeech[train]' (CPU) or 'unspeech[train-gpu]' (CUDA)"


class MissingExtraError(UnspeechError, ImportError):
    """A feature needs an optional dependency that is not installed."""


def has_module(name: str) -> bool:
    """True when ``name`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken install
        return False


def has_tensorflow() -> bool:
    """True when TensorFlow and Keras can be imported (without importing them)."""
    return has_module("tensorflow") and has_module("keras")


def require_tensorflow(what: str) -> None:
    """Raise :class:`MissingExtraError` (one line naming the extra) unless TensorFlow is importable."""
    if not has_tensorflow():
        raise MissingExtraError(f"{what} needs TensorFlow, which is not installed: {TRAIN_HINT}")


def require_onnx_export() -> None:
    """Exporting a run to ONNX needs TensorFlow (to load the checkpoint) and the ``onnx`` package."""
    require_tensorflow("ONNX export")
    if not has_module("onnx"):
        raise MissingExtraError(f"ONNX export needs the onnx package, which is not installed: {TRAIN_HINT}")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up lines (oneDNN, CPU features, absl) off the console.

    Effective only before TensorFlow is first imported; a value the user set is kept.
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
