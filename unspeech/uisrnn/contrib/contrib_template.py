"""Skeleton of a contribution: one module here, one test module under ``tests/uisrnn/contrib``.

A contribution keeps to NumPy (no TensorFlow import at module level), documents shapes in its
docstrings, and raises :class:`unspeech.errors.UnspeechError` subclasses on bad input.
"""

__all__ = ["example_function"]


def example_function() -> bool:
    """Return True; replace with the contribution's own functions."""
    return True
