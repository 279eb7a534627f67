"""Training-data helpers: uniqueness, concatenation, block permutation, transition bias."""

from __future__ import annotations

import numpy as np
import pytest

from unspeech.errors import DataError
from unspeech.uisrnn import utils


def test_enforce_cluster_id_uniqueness_separates_sequences():
    result = utils.enforce_cluster_id_uniqueness([["a", "b", "a"], np.array(["a", "c"]), [1, 2]])
    assert [len(r) for r in result] == [3, 2, 2]
    assert result[0][0] == result[0][2] != result[1][0]
    assert result[0][0].endswith("_a") and result[2][1].endswith("_2")
    assert len({r[0].split("_")[0] for r in result}) == 3
    with pytest.raises(TypeError, match="cluster_ids must be a list"):
        utils.enforce_cluster_id_uniqueness(("a",))
    with pytest.raises(TypeError, match="must be a list or a 1-dim numpy array"):
        utils.enforce_cluster_id_uniqueness(["abc"])


def test_concatenate_training_data():
    sequences = [np.zeros((2, 3)), np.ones((1, 3))]
    concatenated, labels = utils.concatenate_training_data(sequences, [["a", "b"], ["a"]], True, False)
    assert concatenated.shape == (3, 3) and len(set(labels)) == 3
    concatenated, labels = utils.concatenate_training_data(sequences, [["a", "b"], ["a"]], False, True,
                                                           rng=np.random.default_rng(0))
    assert sorted(labels) == ["a", "a", "b"]
    with pytest.raises(DataError, match="has 2 entries but train_cluster_ids\\[0\\] has 1 labels"):
        utils.concatenate_training_data(sequences, [["a"], ["a"]])
    with pytest.raises(DataError, match="has 2 columns but observation_dim is 3"):
        utils.concatenate_training_data([np.zeros((1, 3)), np.zeros((1, 2))], [["a"], ["b"]])
    with pytest.raises(TypeError, match="must both be lists"):
        utils.concatenate_training_data(np.zeros((1, 3)), [["a"]])


def test_block_permutation_keeps_every_run_whole():
    index_sequence = [1, 2, 6, 10, 11, 12]
    samples = utils.sample_permuted_segments(index_sequence, 30, np.random.default_rng(0))
    assert len(samples) == 30
    for sample in samples:
        assert sorted(sample) == index_sequence
        for block in [(1, 2), (6,), (10, 11, 12)]:
            position = list(sample).index(block[0])
            assert tuple(sample[position:position + len(block)]) == block
    assert len({tuple(s) for s in samples}) > 1
    assert [list(s) for s in utils.sample_permuted_segments([4], 2)] == [[4], [4]]


def test_speaker_index_sets_and_resize_sequence():
    codes = np.array([0, 0, 1, 0, 2, 2])
    assert [s.tolist() for s in utils.speaker_index_sets(codes, 1)] == [[0, 1, 3], [2], [4, 5]]
    permuted = utils.speaker_index_sets(codes, 3, np.random.default_rng(0))
    assert len(permuted) == 9 and all(sorted(s) == [0, 1, 3] for s in permuted[:3])
    sequence = np.arange(12.0).reshape(6, 2)
    subs, lengths = utils.resize_sequence(sequence, ["x", "x", "y", "x", "z", "z"])
    assert lengths == [4, 2, 3]
    np.testing.assert_array_equal(subs[0], sequence[[0, 1, 3]])


@pytest.mark.parametrize("label_sequences,expected", [
    ([], 0.5),
    ([[]], 0.5),
    ([["a"] * 9], 1 / 10),
    ([["a", "b"] * 5], 10 / 11),
    ([["a", "a"], ["b", "b"]], 1 / 4),
    ([np.array([1, 1, 2, 2])], 2 / 5),
])
def test_transition_bias_is_finite_inside_zero_one(label_sequences, expected):
    bias, denominator = utils.estimate_transition_bias(label_sequences)
    assert 0.0 < bias < 1.0 and np.isfinite(np.log(bias)) and np.isfinite(np.log(1 - bias))
    assert bias == pytest.approx(expected)
    assert denominator == 2 + sum(max(len(s) - 1, 0) for s in label_sequences)


def test_check_sequence_and_labels():
    with pytest.raises(TypeError, match="must be a numpy array"):
        utils.check_sequence([[0.0]], 1)
    with pytest.raises(DataError, match="NaN or Inf"):
        utils.check_sequence(np.array([[np.inf]]), 1)
    codes = utils.encode_labels([["a", 2, "a"], [2, ("t", 1)]], unique_per_sequence=False)
    assert [c.tolist() for c in codes] == [[0, 1, 0], [1, 2]]
