"""Subcommands of the ``unspeech`` CLI, one module each (see :mod:`unspeech.cli`)."""
