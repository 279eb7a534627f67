"""Embedding transformations: every name builds and runs, config round trip, save/load, errors."""

import dataclasses

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from unspeech.context import transforms as T  # noqa: E402
from unspeech.context.config import TRANSFORMATION_NAMES, ContextConfig  # noqa: E402
from unspeech.context.model import ContextModel, PairCombiner  # noqa: E402
from unspeech.errors import ConfigError  # noqa: E402

SMALL = ContextConfig(fc_size=16, num_dnn_layers=2, num_highway_layers=2, rnn_hidden_cells=8, feat_size=32,
                      window_length=32, window_neg_length=32)
OUT_DIM = {"Vgg16big": 512, "Vgg16": 2 * 2 * 128, "Vgg16bigB": 16, "BaselineDnn": 16, "HighwayDnn": 16,
           "ResNet": 128, "LSTM": 8, "BiLSTM": 16}


def _windows(n=2, w=32, f=32, seed=0):
    return np.random.default_rng(seed).normal(size=(n, w, f)).astype(np.float32)


def test_registry_matches_config_names():
    assert tuple(T.TRANSFORMATIONS) == TRANSFORMATION_NAMES


@pytest.mark.parametrize("name", TRANSFORMATION_NAMES)
@pytest.mark.parametrize("batch_normalization", [False, True])
def test_every_transformation_runs_on_a_window(name, batch_normalization):
    layer = T.make_transformation(dataclasses.replace(SMALL, embedding_transformation=name, batch_normalization=batch_normalization))
    x = _windows()
    y = layer(x, training=True)
    assert tuple(y.shape) == (2, OUT_DIM[name])
    assert tuple(layer.compute_output_shape((None, 32, 32))) == (None, OUT_DIM[name])
    assert np.isfinite(np.asarray(y)).all()


def _roundtrip_layers():
    layers = [(name, lambda n=name: T.make_transformation(dataclasses.replace(SMALL, embedding_transformation=n)), (32, 32))
              for name in TRANSFORMATION_NAMES]
    layers += [
        ("HighwayLayer", lambda: T.HighwayLayer(carry_bias=-2.0), (6,)),
        ("ResidualBlock", lambda: T.ResidualBlock(filters=4, strides=2, batch_normalization=True), (8, 8, 3)),
        ("EmbeddingHead", lambda: T.EmbeddingHead(fc_size=8, embedding_size=3, dropout_rate=0.2), (10,)),
    ]
    return layers


@pytest.mark.parametrize("name, make, shape", _roundtrip_layers(), ids=[x[0] for x in _roundtrip_layers()])
def test_config_round_trip_and_save_load(tmp_path, name, make, shape):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(1).normal(size=(2, *shape)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_pair_combiner_round_trip():
    layer = PairCombiner(fc_size=4)
    a, b = np.ones((2, 3, 5), np.float32), np.zeros((2, 3, 5), np.float32)
    assert tuple(layer(a, b).shape) == (2, 3)
    assert PairCombiner.from_config(layer.get_config()).fc_size == 4


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="must be one of Vgg16big, Vgg16, Vgg16bigB, BaselineDnn, HighwayDnn, ResNet, LSTM, BiLSTM. "
                                          "Received: embedding_transformation='DenseNet'"):
        T.make_transformation(dataclasses.replace(SMALL, embedding_transformation="DenseNet"))


@pytest.mark.parametrize("name, need", [("Vgg16big", 32), ("Vgg16bigB", 32), ("Vgg16", 16)])
def test_window_too_short_for_the_pooling_stack(name, need):
    assert T.min_window_length(name) == need
    with pytest.raises(ConfigError, match=f"`window_length` must be >= {need} for {name} \\({need.bit_length() - 1} pooling stages\\). "
                                          f"Received: window_length={need - 1}"):
        T.check_window(name, need - 1)
    config = dataclasses.replace(SMALL, embedding_transformation=name, window_neg_length=need - 2)
    with pytest.raises(ConfigError, match=f"`window_neg_length` must be >= {need}"):
        ContextModel(config)
    layer = T.make_transformation(dataclasses.replace(SMALL, embedding_transformation=name))
    with pytest.raises(ConfigError, match=f"needs windows of at least {need} frames"):
        layer(_windows(w=need - 1))


def test_feature_dimension_too_small_for_vgg():
    with pytest.raises(ConfigError, match="`feat_size` must be >= 32 for Vgg16big"):
        ContextModel(dataclasses.replace(SMALL, embedding_transformation="Vgg16big", feat_size=13))


def test_short_windows_fine_for_other_trunks():
    for name in ("BaselineDnn", "HighwayDnn", "ResNet", "LSTM"):
        T.check_window(name, 1)
        layer = T.make_transformation(dataclasses.replace(SMALL, embedding_transformation=name))
        assert layer(_windows(w=3, f=5)).shape[0] == 2


def test_wrong_input_rank_is_a_config_error():
    layer = T.make_transformation(dataclasses.replace(SMALL, embedding_transformation="BaselineDnn"))
    with pytest.raises(ConfigError, match="expects windows of shape \\(batch, frames, feat_size\\)"):
        layer(np.zeros((2, 32), np.float32))
