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

import contextlib
import importlib.util
import logging
import os
import re
import sys
import tempfile
from typing import Iterator

from unspeech.errors import UnspeechError

__all__ = ["MissingExtraError", "TRAIN_HINT", "has_module", "has_tensorflow", "require_tensorflow", "require_onnx_export", "quiet_tensorflow", "quiet_tensorflow_on_import",
           "is_tensorflow_noise", "tensorflow_stderr_filtered"]

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


# Lines TensorFlow's C++ runtime writes straight to file descriptor 2 that tell a user nothing
# (TF_CPP_MIN_LOG_LEVEL does not reach the ones printed before absl's logging is initialised).
_TF_NOISE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "  # any C++ INFO line (oneDNN, CPU features, ...)
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    # grappler's remapper gives up on the gradient graph of LeakyReLU towers (Vgg16big); the graph
    # simply stays unfused, nothing is wrong with training
    r"|E\d{4} [\d:.]+ +\d+ meta_optimizer\.cc:\d+\] remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout)"
)


def is_tensorflow_noise(line: str) -> bool:
    """True for a stderr line of TensorFlow's runtime that :func:`tensorflow_stderr_filtered` drops."""
    return bool(_TF_NOISE.match(line))


@contextlib.contextmanager
def tensorflow_stderr_filtered() -> Iterator[None]:
    """Hold back what is written to file descriptor 2 (C++ and Python alike) inside the block, then
    write it out again without TensorFlow's noise lines (:func:`is_tensorflow_noise`).

    Output in the block is delayed, never lost: it is replayed when the block ends, also on an exception.
    Does nothing when fd 2 cannot be duplicated (no real stderr).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True)
                    if not is_tensorflow_noise(line.decode("utf-8", "replace"))]
            if kept:
                os.write(2, b"".join(kept))


class _QuietTensorFlowImport:
    """A meta path finder that runs the first ``import tensorflow`` inside :func:`tensorflow_stderr_filtered`."""

    _busy = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self._busy:
            return None
        self._busy = True  # the lookup below asks the finders again, this one included
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self)
            with tensorflow_stderr_filtered():
                run(module)

        spec.loader.exec_module = exec_module
        return spec


def quiet_tensorflow_on_import() -> None:
    """Make a later first ``import tensorflow`` quiet (as :func:`quiet_tensorflow`) without importing it now.

    The command line entry points call this, so that every command that ends up loading TensorFlow
    (training, UIS-RNN training, the keras runtime) keeps its start-up noise off the console.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.WARNING)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up lines (oneDNN, CPU features, absl) off the console.

    Imports TensorFlow (when installed) with its noise filtered out and lowers the ``absl`` Python
    logger to warnings (its ``Sharding callback duration`` INFO lines). A ``TF_CPP_MIN_LOG_LEVEL`` the
    user set is kept. Call it before anything imports TensorFlow.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.WARNING)
    if "tensorflow" in sys.modules or not has_tensorflow():
        return
    with tensorflow_stderr_filtered():
        import tensorflow  # noqa: F401
