"""Embedding transformations ("trunks") by name, each a serializable Keras layer.

Every trunk maps a batch of windows ``(batch, frames, feat_size)`` float32 to a flat feature
vector ``(batch, dim)``; the tower head (:class:`EmbeddingHead`) turns it into the embedding.
Activations are leaky ReLU with slope 0.2, as in the original unspeech.

=============  =========================================================================
name           trunk
=============  =========================================================================
Vgg16big       3x3 convs 2x32, 2x64, 3x128, 3x256, 3x512; 2x2 max-pool after each block
Vgg16          3x3 convs 2x16, 2x32, 3x64, 3x128; 2x2 max-pool after each block
Vgg16bigB      Vgg16big followed by one fully connected layer of ``fc_size``
BaselineDnn    flatten, ``num_dnn_layers`` fully connected layers of ``fc_size``
HighwayDnn     flatten, fc(``fc_size``), ``num_highway_layers`` highway layers
ResNet         small residual net: 3 stages (32, 64, 128 filters) x 2 blocks, global mean
LSTM           one LSTM of ``rnn_hidden_cells`` over the frames, last output
BiLSTM         bidirectional LSTM, last outputs of both directions concatenated
=============  =========================================================================

The max-pooling is unpadded, so a VGG trunk needs windows (and feature dimensions) of at
least ``2 ** stages`` frames: :func:`check_window` says so with a :class:`ConfigError`.
"""

from __future__ import annotations

from typing import Any

import keras

from unspeech.context.config import TRANSFORMATION_NAMES, ContextConfig
from unspeech.errors import ConfigError

__all__ = [
    "TRANSFORMATIONS",
    "Vgg16big",
    "Vgg16",
    "Vgg16bigB",
    "BaselineDnn",
    "HighwayDnn",
    "ResNet",
    "LSTMTransform",
    "BiLSTMTransform",
    "HighwayLayer",
    "ResidualBlock",
    "EmbeddingHead",
    "make_transformation",
    "check_window",
    "min_window_length",
]

LEAK = 0.2
_PACKAGE = "unspeech"


def _act() -> keras.layers.Layer:
    return keras.layers.LeakyReLU(negative_slope=LEAK)


def _dense_unit(units: int, batch_normalization: bool, momentum: float, name: str) -> list[keras.layers.Layer]:
    """fc -> (batch norm) -> leaky ReLU, as a list of layers."""
    if batch_normalization:
        return [keras.layers.Dense(units, use_bias=False, name=f"{name}_dense"),
                keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn"), _act()]
    return [keras.layers.Dense(units, name=f"{name}_dense"), _act()]


def _conv_unit(filters: int, batch_normalization: bool, momentum: float, name: str, strides: int = 1):
    if batch_normalization:
        return [keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"),
                keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn"), _act()]
    return [keras.layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"{name}_conv"), _act()]


class _StackTransform(keras.layers.Layer):
    """A trunk made of a plain sequence of layers (built in order, shape by shape)."""

    def __init__(self, batch_normalization: bool = False, bn_momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.batch_normalization = batch_normalization
        self.bn_momentum = bn_momentum
        self.stack: list[keras.layers.Layer] = []

    def build(self, input_shape):
        self._check_input(input_shape)
        for i, layer in enumerate(self.stack):
            # attributes make the sublayers visible to tf.train.Checkpoint (a list is not)
            setattr(self, f"stack_{i:02d}", layer)
        shape = self._stack_shape(input_shape)
        for layer in self.stack:
            layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
        self.built = True

    def _check_input(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ConfigError(f"{type(self).__name__} expects windows of shape (batch, frames, feat_size). Received: {tuple(input_shape)}")

    def _stack_shape(self, input_shape) -> tuple:
        """Shape the first layer of the stack sees."""
        return tuple(input_shape)

    def _prepare(self, inputs):
        return inputs

    def call(self, inputs, training=None):
        x = self._prepare(inputs)
        for layer in self.stack:
            x = layer(x, training=training) if _takes_training(layer) else layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = self._stack_shape(input_shape)
        for layer in self.stack:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(batch_normalization=self.batch_normalization, bn_momentum=self.bn_momentum)
        return config


def _takes_training(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, (keras.layers.BatchNormalization, keras.layers.Dropout, _StackTransform,
                              HighwayLayer, ResidualBlock, keras.layers.RNN, keras.layers.Bidirectional))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VggTransform(_StackTransform):
    """VGG-style trunk: blocks of 3x3 convolutions, each followed by unpadded 2x2 max-pooling.

    Input ``(batch, frames, feat_size)`` is treated as a one-channel image (channels last);
    output is the flattened last feature map ``(batch, (frames // 2**s) * (feat_size // 2**s) * c)``.
    """

    blocks: tuple[tuple[int, ...], ...] = ()
    extra_fc = False

    def __init__(self, fc_size: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.fc_size = fc_size
        for b, filters in enumerate(self.blocks, start=1):
            for c, n in enumerate(filters, start=1):
                self.stack += _conv_unit(n, self.batch_normalization, self.bn_momentum, f"conv{b}_{c}")
            self.stack.append(keras.layers.MaxPooling2D(2, strides=2, padding="valid", name=f"pool{b}"))
        self.stack.append(keras.layers.Flatten(name="flatten"))
        if self.extra_fc:
            self.stack += _dense_unit(fc_size, self.batch_normalization, self.bn_momentum, "fc_extra")

    @classmethod
    def pooling_stages(cls) -> int:
        return len(cls.blocks)

    def _check_input(self, input_shape) -> None:
        super()._check_input(input_shape)
        need = 2 ** self.pooling_stages()
        for axis, what in ((1, "frames"), (2, "feat_size")):
            if input_shape[axis] is not None and input_shape[axis] < need:
                raise ConfigError(
                    f"{type(self).__name__} needs windows of at least {need} {what} ({self.pooling_stages()} pooling "
                    f"stages). Received: input shape {tuple(input_shape)}"
                )

    def _stack_shape(self, input_shape) -> tuple:
        return tuple(input_shape) + (1,)

    def _prepare(self, inputs):
        return keras.ops.expand_dims(inputs, -1)  # shape: (B, W, F, 1), channels last

    def get_config(self):
        config = super().get_config()
        config["fc_size"] = self.fc_size
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Vgg16big(VggTransform):
    """Vgg16big: 2x32, 2x64, 3x128, 3x256, 3x512 3x3 convs, 5 max-pool stages."""

    blocks = ((32, 32), (64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Vgg16(VggTransform):
    """Vgg16 (small): 2x16, 2x32, 3x64, 3x128 3x3 convs, 4 max-pool stages."""

    blocks = ((16, 16), (32, 32), (64, 64, 64), (128, 128, 128))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Vgg16bigB(Vgg16big):
    """Vgg16big followed by one more fully connected layer of ``fc_size`` units."""

    extra_fc = True


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BaselineDnn(_StackTransform):
    """Flatten the window, then ``num_dnn_layers`` fully connected leaky-ReLU layers of ``fc_size``."""

    def __init__(self, fc_size: int = 512, num_dnn_layers: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.fc_size = fc_size
        self.num_dnn_layers = num_dnn_layers
        self.stack.append(keras.layers.Flatten(name="flatten"))
        for i in range(num_dnn_layers):
            self.stack += _dense_unit(fc_size, self.batch_normalization, self.bn_momentum, f"dnn{i + 1}")

    def get_config(self):
        config = super().get_config()
        config.update(fc_size=self.fc_size, num_dnn_layers=self.num_dnn_layers)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HighwayLayer(keras.layers.Layer):
    """y = H(x) * T(x) + x * (1 - T(x)); H = leaky ReLU(W x + b), T = sigmoid(W_T x + b_T).

    ``carry_bias`` initialises b_T (negative: start close to the identity).
    """

    def __init__(self, carry_bias: float = -1.0, **kwargs):
        super().__init__(**kwargs)
        self.carry_bias = carry_bias

    def build(self, input_shape):
        units = int(input_shape[-1])
        self.transform = keras.layers.Dense(units, name="transform")
        self.gate = keras.layers.Dense(units, activation="sigmoid", name="gate",
                                       bias_initializer=keras.initializers.Constant(self.carry_bias))
        self.transform.build(input_shape)
        self.gate.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        h = keras.activations.leaky_relu(self.transform(inputs), negative_slope=LEAK)
        t = self.gate(inputs)
        return h * t + inputs * (1.0 - t)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["carry_bias"] = self.carry_bias
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HighwayDnn(_StackTransform):
    """Flatten, fc(``fc_size``, leaky ReLU), then ``num_highway_layers`` highway layers."""

    def __init__(self, fc_size: int = 512, num_highway_layers: int = 6, **kwargs):
        super().__init__(**kwargs)
        self.fc_size = fc_size
        self.num_highway_layers = num_highway_layers
        self.stack.append(keras.layers.Flatten(name="flatten"))
        self.stack += _dense_unit(fc_size, self.batch_normalization, self.bn_momentum, "fc_in")
        self.stack += [HighwayLayer(name=f"highway{i + 1}") for i in range(num_highway_layers)]

    def get_config(self):
        config = super().get_config()
        config.update(fc_size=self.fc_size, num_highway_layers=self.num_highway_layers)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResidualBlock(_StackTransform):
    """Two 3x3 convs with a shortcut; ``strides`` 2 halves both axes (1x1 conv on the shortcut)."""

    def __init__(self, filters: int = 32, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides
        self.stack += _conv_unit(filters, self.batch_normalization, self.bn_momentum, "a", strides=strides)
        self.stack.append(keras.layers.Conv2D(filters, 3, padding="same", name="b_conv", use_bias=not self.batch_normalization))
        if self.batch_normalization:
            self.stack.append(keras.layers.BatchNormalization(momentum=self.bn_momentum, name="b_bn"))
        self.shortcut = None

    def _check_input(self, input_shape) -> None:
        if len(input_shape) != 4:
            raise ConfigError(f"ResidualBlock expects (batch, height, width, channels). Received: {tuple(input_shape)}")

    def build(self, input_shape):
        super().build(input_shape)
        if self.strides != 1 or input_shape[-1] != self.filters:
            self.shortcut = keras.layers.Conv2D(self.filters, 1, strides=self.strides, padding="same", name="shortcut")
            self.shortcut.build(input_shape)

    def call(self, inputs, training=None):
        residual = super().call(inputs, training=training)
        skip = inputs if self.shortcut is None else self.shortcut(inputs)
        return keras.activations.leaky_relu(residual + skip, negative_slope=LEAK)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResNet(_StackTransform):
    """Small residual trunk: stem conv(32), stages of 32/64/128 filters (2 blocks each, the
    last two stages start with stride 2), global average pooling -> ``(batch, 128)``."""

    stages = (32, 64, 128)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        bn = dict(batch_normalization=self.batch_normalization, bn_momentum=self.bn_momentum)
        self.stack += _conv_unit(self.stages[0], self.batch_normalization, self.bn_momentum, "stem")
        for s, filters in enumerate(self.stages, start=1):
            self.stack.append(ResidualBlock(filters, strides=1 if s == 1 else 2, name=f"stage{s}_block1", **bn))
            self.stack.append(ResidualBlock(filters, strides=1, name=f"stage{s}_block2", **bn))
        self.stack.append(keras.layers.GlobalAveragePooling2D(name="mean"))

    def _stack_shape(self, input_shape) -> tuple:
        return tuple(input_shape) + (1,)

    def _prepare(self, inputs):
        return keras.ops.expand_dims(inputs, -1)  # shape: (B, W, F, 1), channels last


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LSTMTransform(_StackTransform):
    """An LSTM of ``rnn_hidden_cells`` units over the frames; output is its last state."""

    bidirectional = False

    def __init__(self, rnn_hidden_cells: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.rnn_hidden_cells = rnn_hidden_cells
        lstm = keras.layers.LSTM(rnn_hidden_cells, name="lstm")
        self.stack.append(keras.layers.Bidirectional(lstm, name="bilstm") if self.bidirectional else lstm)
        if self.batch_normalization:
            self.stack.append(keras.layers.BatchNormalization(momentum=self.bn_momentum, name="bn"))

    def get_config(self):
        config = super().get_config()
        config["rnn_hidden_cells"] = self.rnn_hidden_cells
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BiLSTMTransform(LSTMTransform):
    """Bidirectional LSTM; output ``(batch, 2 * rnn_hidden_cells)``."""

    bidirectional = True


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EmbeddingHead(_StackTransform):
    """Tower head: fc(``fc_size``, leaky ReLU) -> dropout -> linear(``embedding_size``)."""

    def __init__(self, fc_size: int = 512, embedding_size: int = 100, dropout_rate: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.fc_size = fc_size
        self.embedding_size = embedding_size
        self.dropout_rate = dropout_rate
        self.stack += _dense_unit(fc_size, self.batch_normalization, self.bn_momentum, "fc")
        if dropout_rate > 0:
            self.stack.append(keras.layers.Dropout(dropout_rate, name="dropout"))
        self.stack.append(keras.layers.Dense(embedding_size, name="embedding"))

    def _check_input(self, input_shape) -> None:
        if len(input_shape) != 2:
            raise ConfigError(f"EmbeddingHead expects (batch, features). Received: {tuple(input_shape)}")

    def get_config(self):
        config = super().get_config()
        config.update(fc_size=self.fc_size, embedding_size=self.embedding_size, dropout_rate=self.dropout_rate)
        return config


TRANSFORMATIONS: dict[str, type[_StackTransform]] = {
    "Vgg16big": Vgg16big,
    "Vgg16": Vgg16,
    "Vgg16bigB": Vgg16bigB,
    "BaselineDnn": BaselineDnn,
    "HighwayDnn": HighwayDnn,
    "ResNet": ResNet,
    "LSTM": LSTMTransform,
    "BiLSTM": BiLSTMTransform,
}
assert tuple(TRANSFORMATIONS) == TRANSFORMATION_NAMES


def _lookup(name: str) -> type[_StackTransform]:
    try:
        return TRANSFORMATIONS[name]
    except KeyError:
        raise ConfigError(
            f"`embedding_transformation` must be one of {', '.join(TRANSFORMATIONS)}. Received: embedding_transformation={name!r}"
        ) from None


def min_window_length(name: str) -> int:
    """Smallest window (frames, and feature dimension) the named trunk accepts."""
    cls = _lookup(name)
    return 2 ** cls.pooling_stages() if issubclass(cls, VggTransform) else 1


def check_window(name: str, length: int, flag: str = "window_length") -> None:
    """Raise :class:`ConfigError` if ``length`` is too short for the named trunk's pooling stack."""
    need = min_window_length(name)
    if length < need:
        stages = _lookup(name).pooling_stages()
        raise ConfigError(f"`{flag}` must be >= {need} for {name} ({stages} pooling stages). Received: {flag}={length}")


def make_transformation(config: ContextConfig, name: str | None = None) -> _StackTransform:
    """The trunk named by ``config.embedding_transformation``, sized by ``config``."""
    cls = _lookup(config.embedding_transformation)
    common = dict(batch_normalization=config.batch_normalization, bn_momentum=config.batch_normalization_decay, name=name)
    if issubclass(cls, VggTransform):
        return cls(fc_size=config.fc_size, **common)
    if cls is BaselineDnn:
        return cls(fc_size=config.fc_size, num_dnn_layers=config.num_dnn_layers, **common)
    if cls is HighwayDnn:
        return cls(fc_size=config.fc_size, num_highway_layers=config.num_highway_layers, **common)
    if issubclass(cls, LSTMTransform):
        return cls(rnn_hidden_cells=config.rnn_hidden_cells, **common)
    return cls(**common)
