"""The two-tower context model and its loss.

A *group* is one target window, its ``C = left_contexts + right_contexts`` neighbouring
context windows (positive pairs) and ``K`` windows from other utterances (negative pairs).
The target tower embeds target-length windows, the context tower context-length windows;
the logit of a pair is the dot product of the two embeddings (or a learned combination), and
the loss is sigmoid cross-entropy plus an L2 penalty on all kernels.

Each window is embedded once per step even though it takes part in several pairs: a batch
of ``B`` groups costs ``B * (1 + C + K)`` window embeddings for ``B * (C + K)`` pairs.

Pair order inside a group (the columns of the logits, see :func:`pair_labels`):
``C`` positives (left contexts far to near, then right contexts near to far), ``K`` negatives
(target vs. foreign window) and, with ``sample_2x_neg``, ``K`` more negatives (foreign
target-length window vs. context ``k mod C``).
"""

from __future__ import annotations

from typing import Mapping

import keras
import numpy as np
import tensorflow as tf

from unspeech.context.config import ContextConfig
from unspeech.context.transforms import EmbeddingHead, check_window, make_transformation
from unspeech.errors import ConfigError

__all__ = [
    "ContextModel",
    "PairCombiner",
    "pair_labels",
    "pair_weights",
    "dummy_inputs",
    "context_loss",
    "kernel_variables",
    "l2_penalty",
]

_PACKAGE = "unspeech"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PairCombiner(keras.layers.Layer):
    """Learned pair score: fc(``fc_size``, leaky ReLU) -> linear(1) over ``[a, b, a*b, |a-b|]``.

    ``a`` and ``b`` are ``(..., E)``; the result is ``(...)`` logits.
    """

    def __init__(self, fc_size: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.fc_size = fc_size

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.hidden = keras.layers.Dense(self.fc_size, activation="leaky_relu", name="hidden")
        self.out = keras.layers.Dense(1, name="logit")
        self.hidden.build((None, 4 * dim))
        self.out.build((None, self.fc_size))
        self.built = True

    def call(self, a, b):
        x = keras.ops.concatenate([a, b, a * b, keras.ops.abs(a - b)], axis=-1)
        return keras.ops.squeeze(self.out(self.hidden(x)), -1)

    def get_config(self):
        config = super().get_config()
        config["fc_size"] = self.fc_size
        return config


def pair_labels(config: ContextConfig) -> np.ndarray:
    """Labels of the pairs of one group, float32 of shape (pairs_per_group,): 1 = is context."""
    labels = np.zeros(config.pairs_per_group, dtype=np.float32)
    labels[: config.num_contexts] = 1.0
    return labels


def pair_weights(config: ContextConfig) -> np.ndarray:
    """Loss weights of the pairs of one group, float32 (pairs_per_group,), mean 1.

    With ``use_weighted_loss_func`` each class gets half of the total weight; otherwise all 1.
    """
    labels = pair_labels(config)
    if not config.use_weighted_loss_func:
        return np.ones_like(labels)
    n_pos, n_neg = labels.sum(), len(labels) - labels.sum()
    weights = np.where(labels > 0, len(labels) / (2 * n_pos), len(labels) / (2 * n_neg))
    return weights.astype(np.float32)


def dummy_inputs(config: ContextConfig, batch: int = 1) -> dict[str, np.ndarray]:
    """Zero inputs of the right shapes (to build a model before restoring weights)."""
    f = config.feat_size
    inputs = {
        "targets": np.zeros((batch, config.window_length, f), np.float32),
        "contexts": np.zeros((batch, config.num_contexts, config.window_neg_length, f), np.float32),
        "negatives": np.zeros((batch, config.negative_samples, config.window_neg_length, f), np.float32),
    }
    if config.sample_2x_neg:
        inputs["negative_targets"] = np.zeros((batch, config.negative_samples, config.window_length, f), np.float32)
    return inputs


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ContextModel(keras.Model):
    """Two towers (trunk + head each), optional unit normalisation, dot or learned combination.

    Parameters
    ----------
    config : ContextConfig
        Architecture options (validated here; windows too short for the trunk are a
        :class:`ConfigError`).

    Call with a dict of windows (as produced by :class:`unspeech.context.sampling.ContextSampler`):
    ``targets (B, W, F)``, ``contexts (B, C, Wn, F)``, ``negatives (B, K, Wn, F)`` and, with
    ``sample_2x_neg``, ``negative_targets (B, K, W, F)``; returns logits ``(B, pairs_per_group)``
    float32.
    """

    def __init__(self, config: ContextConfig | Mapping, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(config, ContextConfig):
            config = ContextConfig.from_dict(dict(config))
        self.config = config.validate()
        name = config.embedding_transformation
        check_window(name, config.window_length, "window_length")
        check_window(name, config.window_neg_length, "window_neg_length")
        check_window(name, config.feat_size, "feat_size")
        self.trunk_target = make_transformation(config, name="trunk_target")
        self.trunk_context = self.trunk_target if config.tied_embeddings_transforms else make_transformation(config, name="trunk_context")
        head_args = dict(fc_size=config.fc_size, embedding_size=config.embedding_size,
                         dropout_rate=1.0 - config.dropout_keep_prob,
                         batch_normalization=config.batch_normalization, bn_momentum=config.batch_normalization_decay)
        self.head_target = EmbeddingHead(name="head_target", **head_args)
        self.head_context = self.head_target if config.tied_final_embeddings_transforms else EmbeddingHead(name="head_context", **head_args)
        self._check_head_tying()
        self.scale = None
        if config.unit_normalize_var:
            self.scale = self.add_weight(shape=(), initializer=keras.initializers.Constant(2.0), name="unit_norm_scale")
        self.combiner = None if config.use_dot_combine else PairCombiner(config.fc_size, name="combiner")
        self.input_mean = self.input_inv_std = None
        if config.normalize_input:
            self.input_mean = self.add_weight(shape=(config.feat_size,), initializer="zeros", trainable=False, name="input_mean")
            self.input_inv_std = self.add_weight(shape=(config.feat_size,), initializer="ones", trainable=False, name="input_inv_std")
        self._fused = config.tied_embeddings_transforms and config.tied_final_embeddings_transforms

    def _check_head_tying(self) -> None:
        c = self.config
        if not c.tied_final_embeddings_transforms:
            return
        a = self.trunk_target.compute_output_shape((None, c.window_length, c.feat_size))[-1]
        b = self.trunk_context.compute_output_shape((None, c.window_neg_length, c.feat_size))[-1]
        if a != b:
            raise ConfigError(
                f"`tied_final_embeddings_transforms` needs both trunks to give the same size, but {c.embedding_transformation} "
                f"gives {a} for window_length={c.window_length} and {b} for window_neg_length={c.window_neg_length}"
            )

    # ------------------------------------------------------------------ embedding

    def set_input_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store the per-dimension feature mean and standard deviation (both (feat_size,))."""
        if self.input_mean is None:
            raise ConfigError("this model was built with normalize_input=False")
        self.input_mean.assign(np.asarray(mean, np.float32))
        self.input_inv_std.assign(1.0 / np.maximum(np.asarray(std, np.float32), 1e-3))

    def _normalize(self, windows):
        if self.input_mean is None:
            return windows
        return (keras.ops.cast(windows, "float32") - self.input_mean) * self.input_inv_std

    def _finish(self, emb):
        emb = keras.ops.cast(emb, "float32")
        if self.config.unit_normalize or self.config.unit_normalize_var:
            emb = emb / keras.ops.sqrt(keras.ops.maximum(keras.ops.sum(emb * emb, axis=-1, keepdims=True), 1e-12))
        if self.scale is not None:
            emb = emb * self.scale
        return emb

    def embed_targets(self, windows, training: bool = False):
        """Target-tower embeddings: windows (B, window_length, F) -> (B, embedding_size) float32."""
        x = self._normalize(windows)
        return self._finish(self.head_target(self.trunk_target(x, training=training), training=training))

    def embed_contexts(self, windows, training: bool = False):
        """Context-tower embeddings: windows (B, window_neg_length, F) -> (B, embedding_size) float32."""
        x = self._normalize(windows)
        return self._finish(self.head_context(self.trunk_context(x, training=training), training=training))

    def _embed_all(self, targets, others, training):
        """Embed target-tower windows (N1, W, F) and context-tower windows (N2, Wn, F)."""
        if self._fused:  # one trunk and one head: a single call on all windows (bigger matmuls)
            n = keras.ops.shape(targets)[0]
            emb = self.embed_targets(keras.ops.concatenate([targets, others], axis=0), training=training)
            return emb[:n], emb[n:]
        return self.embed_targets(targets, training=training), self.embed_contexts(others, training=training)

    # ------------------------------------------------------------------ pairs

    def _score(self, a, b):
        """Logits of pairs; ``a`` and ``b`` broadcast to (..., E)."""
        if self.combiner is None:
            return keras.ops.sum(a * b, axis=-1)
        a = a + keras.ops.zeros_like(b)  # broadcast both to the same (..., E)
        b = b + keras.ops.zeros_like(a)
        return self.combiner(a, b)

    def call(self, inputs, training=None):
        c = self.config
        targets = inputs["targets"]
        contexts, negatives = inputs["contexts"], inputs["negatives"]
        batch = keras.ops.shape(targets)[0]
        wn, f = c.window_neg_length, c.feat_size
        others = keras.ops.reshape(keras.ops.concatenate([contexts, negatives], axis=1), (-1, wn, f))
        n_other = c.num_contexts + c.negative_samples
        if c.sample_2x_neg:
            neg_t = keras.ops.reshape(inputs["negative_targets"], (-1, c.window_length, f))
            tgt_all = keras.ops.concatenate([targets, neg_t], axis=0)
        else:
            tgt_all = targets
        emb_t, emb_o = self._embed_all(tgt_all, others, bool(training))
        emb_o = keras.ops.reshape(emb_o, (batch, n_other, -1))  # shape: (B, C + K, E)
        target = emb_t[:batch][:, None, :]  # shape: (B, 1, E)
        logits = [self._score(target, emb_o)]  # (B, C + K)
        if c.sample_2x_neg:
            neg_targets = keras.ops.reshape(emb_t[batch:], (batch, c.negative_samples, -1))
            partner = np.arange(c.negative_samples) % c.num_contexts
            ctx = keras.ops.take(emb_o[:, : c.num_contexts], partner, axis=1)  # shape: (B, K, E)
            logits.append(self._score(neg_targets, ctx))
        return keras.ops.cast(keras.ops.concatenate(logits, axis=1), "float32")

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def context_loss(logits, labels, weights):
    """Weighted mean sigmoid cross-entropy; logits (B, P), labels and weights (P,) or (B, P)."""
    xent = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.broadcast_to(labels, tf.shape(logits)), logits=logits)
    w = tf.broadcast_to(tf.cast(weights, logits.dtype), tf.shape(logits))
    return tf.reduce_sum(xent * w) / tf.reduce_sum(w)


def kernel_variables(model: keras.Model) -> list:
    """All weight matrices / conv kernels (no biases, norms or scales), each once."""
    return [v for v in model.trainable_variables if v.name in ("kernel", "recurrent_kernel")]


def l2_penalty(model: keras.Model, l2_reg: float):
    """``l2_reg * sum(w ** 2) / 2`` over :func:`kernel_variables`, a scalar float32 tensor."""
    if not l2_reg:
        return tf.constant(0.0, tf.float32)
    return l2_reg * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in kernel_variables(model)]) / 2.0
