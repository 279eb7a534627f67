"""ContextModel: towers, tying, normalisation, combination, loss, L2, batch normalisation."""

import dataclasses

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from unspeech.context.config import ContextConfig  # noqa: E402
from unspeech.context.model import (  # noqa: E402
    ContextModel,
    context_loss,
    dummy_inputs,
    kernel_variables,
    l2_penalty,
    pair_labels,
    pair_weights,
)
from unspeech.errors import ConfigError  # noqa: E402

BASE = ContextConfig(feat_size=5, window_length=8, window_neg_length=8, embedding_transformation="BaselineDnn",
                     num_dnn_layers=1, fc_size=16, embedding_size=6, left_contexts=1, right_contexts=2, negative_samples=3)


def _inputs(config, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=v.shape).astype(np.float32) for k, v in dummy_inputs(config, batch).items()}


@pytest.mark.parametrize(
    "changes",
    [{}, {"tied_embeddings_transforms": True}, {"tied_embeddings_transforms": True, "tied_final_embeddings_transforms": True},
     {"use_dot_combine": False}, {"sample_2x_neg": True}, {"unit_normalize": True}, {"batch_normalization": True},
     {"window_neg_length": 6, "tied_final_embeddings_transforms": True, "embedding_transformation": "LSTM", "rnn_hidden_cells": 4}],
)
def test_logits_have_one_column_per_pair(changes):
    config = dataclasses.replace(BASE, **changes)
    logits = ContextModel(config)(_inputs(config), training=True)
    assert tuple(logits.shape) == (4, config.pairs_per_group)
    assert logits.dtype == tf.float32


def test_dot_logits_equal_embedding_products():
    config = dataclasses.replace(BASE, sample_2x_neg=True, dropout_keep_prob=1.0)
    model = ContextModel(config)
    x = _inputs(config, batch=2)
    logits = model(x, training=False).numpy()
    t = model.embed_targets(x["targets"]).numpy()
    ctx = model.embed_contexts(x["contexts"].reshape(-1, 8, 5)).numpy().reshape(2, 3, -1)
    neg = model.embed_contexts(x["negatives"].reshape(-1, 8, 5)).numpy().reshape(2, 3, -1)
    neg_t = model.embed_targets(x["negative_targets"].reshape(-1, 8, 5)).numpy().reshape(2, 3, -1)
    np.testing.assert_allclose(logits[:, :3], np.einsum("be,bce->bc", t, ctx), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits[:, 3:6], np.einsum("be,bke->bk", t, neg), rtol=1e-4, atol=1e-5)
    partner = ctx[:, np.arange(3) % 3]
    np.testing.assert_allclose(logits[:, 6:], np.einsum("bke,bke->bk", neg_t, partner), rtol=1e-4, atol=1e-5)
    assert pair_labels(config).tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0]


def test_tying_shares_weights():
    untied = ContextModel(BASE)
    untied(_inputs(BASE))
    tied = ContextModel(dataclasses.replace(BASE, tied_embeddings_transforms=True))
    tied(_inputs(BASE))
    both = ContextModel(dataclasses.replace(BASE, tied_embeddings_transforms=True, tied_final_embeddings_transforms=True))
    both(_inputs(BASE))
    assert tied.trunk_target is tied.trunk_context and tied.head_target is not tied.head_context
    assert len(untied.trainable_variables) == 12 and len(tied.trainable_variables) == 10 and len(both.trainable_variables) == 6
    x = _inputs(BASE)["targets"]
    np.testing.assert_allclose(both.embed_targets(x), both.embed_contexts(x))


def test_tied_heads_need_equal_trunk_outputs():
    with pytest.raises(ConfigError, match="`tied_final_embeddings_transforms` needs both trunks to give the same size"):
        ContextModel(dataclasses.replace(BASE, embedding_transformation="Vgg16", feat_size=16, window_length=16,
                                         window_neg_length=32, tied_final_embeddings_transforms=True))


def test_unit_normalize_and_shared_scale():
    config = dataclasses.replace(BASE, unit_normalize=True)
    x = _inputs(config)["targets"]
    np.testing.assert_allclose(np.linalg.norm(ContextModel(config).embed_targets(x), axis=1), 1.0, rtol=1e-5)
    config = dataclasses.replace(BASE, unit_normalize_var=True)
    model = ContextModel(config)
    model(_inputs(config))
    model.scale.assign(3.0)
    np.testing.assert_allclose(np.linalg.norm(model.embed_targets(x), axis=1), 3.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(model.embed_contexts(x), axis=1), 3.0, rtol=1e-5)
    scales = [v for v in model.trainable_variables if v.name == "unit_norm_scale"]
    assert len(scales) == 1 and scales[0].shape == ()


def test_learned_combination_gets_gradients():
    config = dataclasses.replace(BASE, use_dot_combine=False)
    model = ContextModel(config)
    x = _inputs(config)
    with tf.GradientTape() as tape:
        loss = context_loss(model(x, training=True), pair_labels(config), pair_weights(config))
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None and np.abs(g.numpy()).sum() > 0 for g in grads)
    assert any("combiner" in v.path for v in model.trainable_variables)


def test_loss_weights_balance_the_classes():
    config = dataclasses.replace(BASE, negative_samples=6, use_weighted_loss_func=True)  # 3 positives, 6 negatives
    labels, weights = pair_labels(config), pair_weights(config)
    assert weights[labels > 0].sum() == pytest.approx(weights[labels == 0].sum())
    assert weights.mean() == pytest.approx(1.0)
    logits = tf.constant([[3.0] * 3 + [-1.0] * 6])
    expected = 0.5 * np.log1p(np.exp(-3.0)) + 0.5 * np.log1p(np.exp(-1.0))
    assert float(context_loss(logits, labels, weights)) == pytest.approx(expected, rel=1e-5)
    unweighted = (3 * np.log1p(np.exp(-3.0)) + 6 * np.log1p(np.exp(-1.0))) / 9
    assert float(context_loss(logits, labels, pair_weights(dataclasses.replace(config, use_weighted_loss_func=False)))) == pytest.approx(unweighted, rel=1e-5)


def test_l2_penalty_covers_every_kernel_once():
    config = dataclasses.replace(BASE, tied_embeddings_transforms=True)
    model = ContextModel(config)
    model(_inputs(config))
    kernels = kernel_variables(model)
    assert len(kernels) == 1 + 2 * 2  # one shared trunk kernel, two heads x (fc + embedding)
    expected = 0.01 * sum(float(np.sum(np.square(k.numpy()))) for k in kernels) / 2
    assert float(l2_penalty(model, 0.01)) == pytest.approx(expected, rel=1e-5)
    assert float(l2_penalty(model, 0.0)) == 0.0
    assert all(v.name != "bias" for v in kernels)


def test_batch_normalization_normalises_and_updates_statistics():
    config = dataclasses.replace(BASE, batch_normalization=True, batch_normalization_decay=0.5)
    model = ContextModel(config)
    x = _inputs(config, batch=64)
    x = {k: v * 3.0 + 5.0 for k, v in x.items()}
    model(x, training=False)
    bn = model.trunk_target.stack[2]
    assert bn.name.endswith("_bn")
    dense = model.trunk_target.stack[1]
    pre = dense(model.trunk_target.stack[0](x["targets"])).numpy()
    before = bn.moving_mean.numpy().copy()
    out = bn(pre, training=True).numpy()
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-2)
    after = bn.moving_mean.numpy()
    np.testing.assert_allclose(after, 0.5 * before + 0.5 * pre.mean(axis=0), rtol=1e-4, atol=1e-4)
    model(x, training=False)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), after)  # inference leaves statistics alone


def test_input_normalization_uses_stored_statistics():
    model = ContextModel(BASE)
    x = _inputs(BASE)
    model(x)
    mean, std = np.arange(5.0), np.array([1.0, 2.0, 4.0, 0.5, 1e-6])
    model.set_input_statistics(mean, std)
    np.testing.assert_allclose(model._normalize(x["targets"]), (x["targets"] - mean) / np.maximum(std, 1e-3), rtol=1e-5)
    assert {v.name for v in model.non_trainable_variables} >= {"input_mean", "input_inv_std"}
    plain = ContextModel(dataclasses.replace(BASE, normalize_input=False))
    with pytest.raises(ConfigError, match="built with normalize_input=False"):
        plain.set_input_statistics(mean, std)
