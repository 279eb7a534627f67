"""compute_sequence_match_accuracy and output_result."""

from __future__ import annotations

import numpy as np
import pytest

from unspeech.uisrnn import compute_sequence_match_accuracy, default_arguments, output_result


@pytest.mark.parametrize("first,second,expected", [
    ([0, 0, 1, 2, 2], [3, 3, 4, 4, 1], 0.8),
    ([0, 1, 0, 1], [1, 0, 1, 0], 1.0),
    (["a", "b", "c"], [0, 0, 0], 1 / 3),
    (np.array(["x", "x", "y"]), (5, 5, 6), 1.0),
    ([1, 1, 1, 1], [1, 2, 3, 4], 0.25),
])
def test_accuracy_under_best_label_matching(first, second, expected):
    assert compute_sequence_match_accuracy(first, second) == pytest.approx(expected)


@pytest.mark.parametrize("first,second", [([0, 1], [0]), ([], []), ([0], [0, 0])])
def test_unequal_or_empty_sequences_raise_value_error(first, second):
    with pytest.raises(ValueError, match="same non-zero length"):
        compute_sequence_match_accuracy(first, second)


def test_output_result_summarizes_and_appends(tmp_path, monkeypatch):
    model_args, training_args, _ = default_arguments(rnn_hidden_size=16)
    text = output_result(model_args, training_args, [(1.0, 10), (0.5, 4)], filename=None)
    assert "averaged accuracy: 0.750000" in text and "    0.500000" in text
    monkeypatch.chdir(tmp_path)
    output_result(model_args, training_args, [(1.0, 10)])
    output_result(model_args, training_args, [(1.0, 10)])
    written = (tmp_path / "layer_16_1_0.2_result.txt").read_text()
    assert written.count("averaged accuracy: 1.000000") == 2
    with pytest.raises(ValueError, match="test_record is empty"):
        output_result(model_args, training_args, [], filename=None)
