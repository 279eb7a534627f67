"""UISRNN: training inputs, transition bias, save/load, prediction forms, a 2-D integration case."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from unspeech import uisrnn
from unspeech.errors import ConfigError, DataError
from unspeech.uisrnn import model as model_module
from unspeech.uisrnn.utils import InputTypeError

from uisrnn_testdata import conversation, small_args

@pytest.fixture(scope="module")
def trained(trained_2d):
    """The shared trained model plus a test conversation and its labels."""
    model, model_args, inference_args, path = trained_2d
    test_sequence, test_labels = conversation(np.random.default_rng(1), list("ABCDBADC"), turn=5)
    return model, model_args, inference_args, test_sequence, test_labels, path


@pytest.mark.slow
def test_four_speakers_in_2d_are_found_before_and_after_reload(trained):
    model, model_args, inference_args, sequence, labels, path = trained
    predicted = model.predict(sequence, inference_args)
    assert uisrnn.compute_sequence_match_accuracy(labels, predicted) == 1.0
    reloaded = uisrnn.UISRNN(model_args)
    reloaded.load(path)
    assert reloaded.predict(sequence, inference_args) == predicted
    assert uisrnn.UISRNN.from_file(path, verbosity=0).predict(sequence, inference_args) == predicted
    assert reloaded.transition_bias == pytest.approx(model.transition_bias)


@pytest.mark.slow
def test_prediction_forms_and_parallel_predict(trained):
    model, _, inference_args, sequence, _, _ = trained
    single = model.predict(sequence, inference_args)
    assert isinstance(single, list) and all(isinstance(v, int) for v in single)
    assert model.predict(sequence.astype(np.float32), inference_args) == single
    many = model.predict([sequence, sequence[:10]], inference_args)
    assert many[0] == single and len(many[1]) == 10
    assert uisrnn.parallel_predict(model, [sequence, sequence[:10], sequence[5:]], inference_args,
                                   num_processes=2) == model.predict([sequence, sequence[:10], sequence[5:]],
                                                                     inference_args)
    assert len(set(model.predict(sequence, inference_args, max_speakers=2))) <= 2
    limited_args = copy.copy(inference_args)
    limited_args.max_speakers = 2  # the --max_speakers flag: the same limit through the options
    assert model.predict(sequence, limited_args) == model.predict(sequence, inference_args, max_speakers=2)
    assert uisrnn.parallel_predict(model, [sequence, sequence[3:]], limited_args, num_processes=2)[0] == \
        model.predict(sequence, inference_args, max_speakers=2)
    assert len(set(model.predict([sequence], inference_args, num_speakers=[3])[0])) == 3
    streamed = list(model.predict_online(iter(sequence), inference_args))
    assert len(streamed) == len(sequence)
    with pytest.raises(InputTypeError, match="test_sequences must be a numpy array or a list"):
        model.predict((sequence,), inference_args)
    with pytest.raises(InputTypeError, match="test_sequences must be a list"):
        uisrnn.parallel_predict(model, sequence, inference_args)
    with pytest.raises(ConfigError, match="`num_speakers` has 2 values for 1 sequences"):
        model.predict([sequence], inference_args, num_speakers=[2, 3])


def test_saved_file_is_plain_arrays(trained):
    model, _, _, _, _, path = trained
    with np.load(path, allow_pickle=False) as archive:
        assert {"header", "gru0_kernel", "sigma2", "init_hidden"} <= set(archive.files)
        assert all(archive[name].dtype != object for name in archive.files)


def test_load_refuses_other_architectures_and_foreign_files(trained, tmp_path):
    _, _, _, _, _, path = trained
    other_args, _, _ = small_args(rnn_hidden_size=8)
    with pytest.raises(ConfigError, match="rnn_hidden_size=32 but this model has rnn_hidden_size=8"):
        uisrnn.UISRNN(other_args).load(path)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(DataError, match="not a UIS-RNN model saved by unspeech"):
        uisrnn.UISRNN.from_file(foreign)
    with pytest.raises(DataError, match="model file not found"):
        uisrnn.UISRNN.from_file(tmp_path / "missing.npz")


def test_transition_bias_is_counted_per_sequence_and_merged_over_fits(monkeypatch):
    monkeypatch.setattr(model_module.UISRNN, "_train", lambda self, sequence, codes, args: None)
    model_args, training_args, _ = small_args()
    model = uisrnn.UISRNN(model_args)
    first = [np.zeros((3, 2)), np.zeros((4, 2))]
    # 1 change in 5 adjacent pairs; the join between the sequences is not a pair
    model.fit(first, [["a", "a", "b"], ["b", "b", "b", "b"]], training_args)
    assert model.transition_bias == pytest.approx((1 + 1) / (2 + 5))
    assert model.transition_bias_denominator == pytest.approx(7)
    model.fit([np.zeros((3, 2))], [[1, 2, 1]], training_args)  # 2 changes in 2 pairs
    assert model.transition_bias == pytest.approx((2 / 7 * 7 + 3 / 4 * 4) / 11)
    # a concatenated array is one sequence: its join counts
    joined = uisrnn.UISRNN(model_args)
    joined.fit(np.zeros((7, 2)), np.array(["a", "a", "b", "b", "b", "b", "b"]), training_args)
    assert joined.transition_bias == pytest.approx(2 / 8)
    fixed_args, _, _ = small_args(transition_bias=0.3)
    fixed = uisrnn.UISRNN(fixed_args).fit(first, [["a", "a", "b"], ["b"] * 4], training_args)
    assert fixed.transition_bias == 0.3


def test_cluster_id_uniqueness_decides_whether_equal_labels_merge(monkeypatch):
    seen = []
    monkeypatch.setattr(model_module.UISRNN, "_train",
                        lambda self, sequence, codes, args: seen.append((sequence.shape, codes.tolist())))
    model_args, training_args, _ = small_args()
    sequences = [np.zeros((2, 2)), np.ones((3, 2), np.float32)]
    labels = [["x", "y"], np.array(["x", "x", "z"])]
    uisrnn.UISRNN(model_args).fit(sequences, labels, training_args)
    training_args.enforce_cluster_id_uniqueness = False
    uisrnn.UISRNN(model_args).fit(sequences, labels, training_args)
    assert seen[0] == ((5, 2), [0, 1, 2, 2, 3])  # "x" of the second sequence is a new speaker
    assert seen[1] == ((5, 2), [0, 1, 0, 0, 2])  # "x" is the same speaker in both


def test_repeated_fit_continues_training_with_one_optimizer():
    model_args, training_args, inference_args = small_args(train_iteration=3)
    rng = np.random.default_rng(2)
    entries, labels = conversation(rng, list("ABAB"), turn=3)
    model = uisrnn.UISRNN(model_args)
    model.fit([entries], [labels], training_args)
    optimizer = model._optimizer
    before = model.decoder_weights().dense2_kernel.copy()
    model.fit([entries], [labels], training_args)
    assert model._optimizer is optimizer and int(optimizer.iterations) == 6
    assert len(model.loss_history_) == 6
    assert not np.array_equal(model.decoder_weights().dense2_kernel, before)
    assert len(model.predict(entries, inference_args)) == len(entries)


def test_same_seed_same_model():
    model_args, training_args, _ = small_args(train_iteration=4)
    entries, labels = conversation(np.random.default_rng(3), list("ABCA"), turn=3)
    first = uisrnn.UISRNN(model_args, seed=5).fit([entries], [labels], training_args)
    second = uisrnn.UISRNN(model_args, seed=5).fit([entries], [labels], training_args)
    np.testing.assert_array_equal(first.decoder_weights().dense1_kernel, second.decoder_weights().dense1_kernel)
    assert first.loss_history_ == second.loss_history_


def test_deeper_network_with_dropout_and_fixed_sigma2_trains():
    model_args, training_args, inference_args = small_args(rnn_depth=2, rnn_dropout=0.3, sigma2=0.5,
                                                           learning_rate_half_life=2, batch_size=None)
    entries, labels = conversation(np.random.default_rng(4), list("ABC"), turn=4)
    model = uisrnn.UISRNN(model_args).fit(entries, np.array(labels), training_args)
    assert np.all(model.decoder_weights().sigma2 == np.float32(0.5))
    assert len(model.predict(entries, inference_args)) == len(entries)
    model.fit_concatenated(entries, labels, training_args)
    assert len(model.loss_history_) == 10


@pytest.mark.parametrize("sequences,labels,error,message", [
    (np.zeros((4, 3)), ["a"] * 4, DataError, "has 3 columns but observation_dim is 2"),
    (np.zeros((4, 2, 1)), ["a"] * 4, DataError, "must be 2-dim"),
    (np.zeros((4, 2), dtype=int), ["a"] * 4, InputTypeError, "must be a float array"),
    (np.zeros((4, 2)), ["a"] * 3, DataError, "has 4 entries but 3 labels"),
    ([np.zeros((4, 2))], "aaaa", InputTypeError, "train_cluster_ids must be a list"),
    ((np.zeros((4, 2)),), [["a"] * 4], InputTypeError, "train_sequences must be a list of arrays or one numpy"),
    ([np.zeros((4, 2))], [["a"] * 4, ["b"]], DataError, "got 1 sequences but 2 label sequences"),
    ([], [], DataError, "no training sequences given"),
    ([np.zeros((0, 2))], [[]], DataError, "no training entries"),
    ([np.zeros((2, 2))], [[["unhashable"], "a"]], InputTypeError, "cluster ids must be hashable"),
])
def test_bad_training_input_raises(sequences, labels, error, message):
    model_args, training_args, _ = small_args()
    with pytest.raises(error, match=message):
        uisrnn.UISRNN(model_args).fit(sequences, labels, training_args)


def test_wrong_dimensions_are_value_errors():
    model_args, training_args, inference_args = small_args()
    model = uisrnn.UISRNN(model_args)
    with pytest.raises(ValueError):
        model.fit(np.zeros((4, 5)), ["a"] * 4, training_args)
    with pytest.raises(ValueError):
        model.predict(np.zeros((4, 5)), inference_args)


@pytest.mark.parametrize("overrides,message", [
    ({"rnn_hidden_size": 0}, "`rnn_hidden_size` must be a positive integer"),
    ({"rnn_dropout": 1.0}, "`rnn_dropout` must be in"),
    ({"transition_bias": 1.5}, "`transition_bias` must be strictly between 0 and 1"),
    ({"crp_alpha": 0.0}, "`crp_alpha` must be > 0"),
    ({"sigma2": -1.0}, "`sigma2` must be > 0"),
])
def test_bad_model_options_raise(overrides, message):
    model_args, _, _ = small_args(**overrides)
    with pytest.raises(ConfigError, match=message):
        uisrnn.UISRNN(model_args)


@pytest.mark.parametrize("overrides,message", [
    ({"optimizer": "sgd"}, "only the 'adam' optimizer"),
    ({"batch_size": 0}, "`batch_size` must be >= 1 or None"),
    ({"learning_rate": 0.0}, "`learning_rate` must be > 0"),
    ({"regularization_weight": -1.0}, "`regularization_weight` must be >= 0"),
    ({"learning_rate_half_life": -2}, "`learning_rate_half_life` must be >= 0"),
    ({"train_iteration": -1}, "`train_iteration` must be >= 0"),
])
def test_bad_training_options_raise(overrides, message):
    model_args, training_args, _ = small_args(**overrides)
    with pytest.raises(ConfigError, match=message):
        uisrnn.UISRNN(model_args).fit([np.zeros((2, 2))], [["a", "b"]], training_args)


def test_untrained_model_without_transition_bias_cannot_predict():
    model_args, _, inference_args = small_args()
    with pytest.raises(ConfigError, match="fit the model or set it"):
        uisrnn.UISRNN(model_args).predict(np.zeros((3, 2)), inference_args)
