"""Test data helpers shared by the UIS-RNN tests: four speakers at fixed 2-D centres."""

from __future__ import annotations

import numpy as np

CENTRES = {"A": (3.0, 0.0), "B": (0.0, 3.0), "C": (-3.0, 0.0), "D": (0.0, -3.0)}


def conversation(rng, order, turn=6, noise=0.15):
    """Entries (len(order) * turn, 2) and their labels: ``turn`` entries per speaker turn."""
    labels = [speaker for speaker in order for _ in range(turn)]
    entries = np.array([CENTRES[s] for s in labels]) + noise * rng.standard_normal((len(labels), 2))
    return entries, labels


def small_args(**overrides):
    """Fast options for a 2-D model."""
    from unspeech import uisrnn

    values = dict(observation_dim=2, rnn_hidden_size=16, verbosity=0, enable_cuda=False,
                  train_iteration=5, batch_size=4, num_permutations=2)
    values.update(overrides)
    return uisrnn.default_arguments(**values)
