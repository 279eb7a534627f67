"""Exceptions a user can cause.

Every error that bad input can trigger derives from :class:`UnspeechError`, so that the
command-line layer prints one clear line and exits non-zero instead of a traceback.
Library users can catch the specific subclasses.
"""

from __future__ import annotations

__all__ = [
    "UnspeechError",
    "DataError",
    "ConfigError",
    "AudioError",
]


class UnspeechError(Exception):
    """Base class of all errors caused by user input (files, flags, data)."""


class DataError(UnspeechError, ValueError):
    """Malformed or inconsistent data: a bad ark, a wrong dimension, NaN values, mismatched ids."""


class ConfigError(UnspeechError, ValueError):
    """An invalid option value or an option that disagrees with a saved run's config."""


class AudioError(UnspeechError, ValueError):
    """Unreadable, empty or unsupported audio."""
