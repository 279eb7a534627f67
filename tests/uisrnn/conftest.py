"""Fixtures of the UIS-RNN tests: a model trained once on four speakers in 2-D."""

from __future__ import annotations

import numpy as np
import pytest

from uisrnn_testdata import conversation, small_args


@pytest.fixture(scope="session")
def trained_2d(tmp_path_factory):
    """(model, model_args, inference_args, saved path) for a model trained on 12 conversations."""
    from unspeech import uisrnn

    rng = np.random.default_rng(0)
    sequences, labels = [], []
    for _ in range(12):
        entries, ids = conversation(rng, list(rng.permutation(list("ABCD"))) * 2)
        sequences.append(entries)
        labels.append(ids)
    model_args, training_args, inference_args = small_args(
        rnn_hidden_size=32, train_iteration=300, learning_rate=0.01, batch_size=10, num_permutations=4)
    model = uisrnn.UISRNN(model_args).fit(sequences, labels, training_args)
    path = tmp_path_factory.mktemp("uisrnn") / "model.npz"
    model.save(path)
    return model, model_args, inference_args, path
