"""The UIS-RNN network in Keras 3 (TensorFlow backend) and its training step.

:class:`CoreRNN` is a stack of GRU layers followed by ``dense(H, relu) -> dense(D)``. The GRU
follows the Keras ``reset_after`` convention with gates ordered (update, reset, candidate),
the same arithmetic as :meth:`unspeech.uisrnn.decoding.DecoderWeights.run_rnn`, so the trained
weights decode in NumPy without TensorFlow.

Batches are packed (like PyTorch's ``PackedSequence``): the input projection and the dense
layers run once on the real entries only, and the recurrent step at time t only multiplies the
sequences still running. Only the recurrent product runs step by step (``tf.scan``).
Weights start uniform in ``+-1/sqrt(H)``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["CoreRNN", "make_train_step", "pack_batch"]


@keras.saving.register_keras_serializable(package="unspeech.uisrnn")
class CoreRNN(keras.layers.Layer):
    """GRU stack + two dense layers predicting a speaker's next-entry mean contribution.

    Parameters
    ----------
    observation_dim : int
        D, the embedding dimension (input and output).
    hidden_size : int
        H, units per GRU layer and in the hidden dense layer.
    depth : int
        Number of GRU layers.
    dropout : float
        Dropout between GRU layers while training (no effect with one layer).
    seed : int, optional
        Seed of the weight initialisation and of the dropout masks.
    """

    def __init__(self, observation_dim: int, hidden_size: int, depth: int = 1,
                 dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.observation_dim = int(observation_dim)
        self.hidden_size = int(hidden_size)
        self.depth = int(depth)
        self.dropout = float(dropout)
        self.seed = seed
        self._dropout_layer = (keras.layers.Dropout(self.dropout, seed=seed)
                               if self.depth > 1 and self.dropout > 0 else None)

    def _uniform(self, offset: int, fan_in: int):
        bound = 1.0 / np.sqrt(fan_in)
        seed = None if self.seed is None else int(self.seed) * 1000 + offset
        return keras.initializers.RandomUniform(-bound, bound, seed=seed)

    def build(self, input_shape=None):
        size, dim = self.hidden_size, self.observation_dim
        self.kernels, self.recurrent_kernels = [], []
        self.input_biases, self.recurrent_biases = [], []
        for layer in range(self.depth):
            fan = dim if layer == 0 else size
            self.kernels.append(self.add_weight(
                shape=(fan, 3 * size), initializer=self._uniform(4 * layer, size),
                name=f"gru{layer}_kernel"))
            self.recurrent_kernels.append(self.add_weight(
                shape=(size, 3 * size), initializer=self._uniform(4 * layer + 1, size),
                name=f"gru{layer}_recurrent_kernel"))
            self.input_biases.append(self.add_weight(
                shape=(3 * size,), initializer=self._uniform(4 * layer + 2, size),
                name=f"gru{layer}_input_bias"))
            self.recurrent_biases.append(self.add_weight(
                shape=(3 * size,), initializer=self._uniform(4 * layer + 3, size),
                name=f"gru{layer}_recurrent_bias"))
        self.dense1_kernel = self.add_weight(shape=(size, size), initializer=self._uniform(900, size),
                                             name="dense1_kernel")
        self.dense1_bias = self.add_weight(shape=(size,), initializer=self._uniform(901, size),
                                           name="dense1_bias")
        self.dense2_kernel = self.add_weight(shape=(size, dim), initializer=self._uniform(902, size),
                                             name="dense2_kernel")
        self.dense2_bias = self.add_weight(shape=(dim,), initializer=self._uniform(903, size),
                                           name="dense2_bias")
        super().build(input_shape)

    def set_numpy_weights(self, weights) -> None:
        """Copy the network arrays of a :class:`~unspeech.uisrnn.weights.DecoderWeights` in."""
        for layer in range(self.depth):
            self.kernels[layer].assign(weights.kernels[layer])
            self.recurrent_kernels[layer].assign(weights.recurrent_kernels[layer])
            self.input_biases[layer].assign(weights.biases[layer][0])
            self.recurrent_biases[layer].assign(weights.biases[layer][1])
        for name in ("dense1_kernel", "dense1_bias", "dense2_kernel", "dense2_bias"):
            getattr(self, name).assign(getattr(weights, name))

    def get_numpy_weights(self, init_hidden, sigma2):
        """The network arrays plus ``init_hidden`` and ``sigma2`` as a ``DecoderWeights``
        (transition bias unset, ``crp_alpha`` 1: the estimator fills in its own)."""
        from unspeech.uisrnn.weights import DecoderWeights

        arr = lambda v: np.array(keras.ops.convert_to_numpy(v), dtype=np.float32)  # noqa: E731
        return DecoderWeights(
            kernels=tuple(arr(v) for v in self.kernels),
            recurrent_kernels=tuple(arr(v) for v in self.recurrent_kernels),
            biases=tuple(np.stack([arr(a), arr(b)]) for a, b in zip(self.input_biases, self.recurrent_biases)),
            dense1_kernel=arr(self.dense1_kernel), dense1_bias=arr(self.dense1_bias),
            dense2_kernel=arr(self.dense2_kernel), dense2_bias=arr(self.dense2_bias),
            init_hidden=arr(init_hidden), sigma2=arr(sigma2), transition_bias=None, crp_alpha=1.0)

    def _run_layer(self, layer: int, rows, grid_index, batch_sizes, initial):
        """One GRU layer over a packed batch.

        ``rows`` (n, in) are the packed inputs, ``grid_index`` (n,) their flat position
        ``t * B + b`` in the (time, batch) grid, ``batch_sizes`` (T,) the number of sequences
        still running at each step (sequences sorted longest first, so they are a prefix)
        and ``initial`` (B, H). Returns the packed hidden states (n, H).
        """
        size = self.hidden_size
        batch = tf.shape(initial)[0]
        steps = tf.shape(batch_sizes)[0]
        projected = tf.matmul(rows, self.kernels[layer]) + self.input_biases[layer]
        # shape: (T, B, 3H); finished sequences get zeros, which are never used
        grid = tf.reshape(tf.scatter_nd(grid_index[:, None], projected, [steps * batch, 3 * size]),
                          [steps, batch, 3 * size])
        recurrent_kernel = tf.convert_to_tensor(self.recurrent_kernels[layer])
        recurrent_bias = tf.convert_to_tensor(self.recurrent_biases[layer])

        def cell(h_all, elems):
            x_proj, running = elems
            h_prev = h_all[:running]
            x_proj = x_proj[:running]
            rec = tf.matmul(h_prev, recurrent_kernel) + recurrent_bias
            x_gates, x_candidate = tf.split(x_proj, [2 * size, size], axis=1)
            rec_gates, rec_candidate = tf.split(rec, [2 * size, size], axis=1)
            update, reset = tf.split(tf.sigmoid(x_gates + rec_gates), 2, axis=1)
            candidate = tf.tanh(x_candidate + reset * rec_candidate)
            # same as update * h_prev + (1 - update) * candidate, with fewer graph ops
            h_new = candidate + update * (h_prev - candidate)
            return tf.concat([h_new, h_all[running:]], axis=0)

        states = tf.scan(cell, (grid, batch_sizes), initializer=initial)
        return tf.gather(tf.reshape(states, [-1, size]), grid_index)

    def call(self, rows, grid_index, batch_sizes, initial_hidden, training=False):
        """Network outputs for every prefix of every sequence of a packed batch.

        Parameters
        ----------
        rows : tensor of shape (n, D)
            Entries of all sequences, time-major: step 0 of every sequence, then step 1 of the
            sequences that have one, ... (sequences sorted longest first).
        grid_index : int32 tensor of shape (n,)
            Flat (time, batch) position ``t * B + b`` of each row.
        batch_sizes : int32 tensor of shape (T,)
            Sequences still running at each step.
        initial_hidden : tensor of shape (B, depth, H)

        Returns
        -------
        tensor of shape (n, D), aligned with ``rows``
        """
        hidden = rows
        for layer in range(self.depth):
            hidden = self._run_layer(layer, hidden, grid_index, batch_sizes, initial_hidden[:, layer])
            if self._dropout_layer is not None and layer < self.depth - 1:
                hidden = self._dropout_layer(hidden, training=training)
        mid = tf.nn.relu(tf.matmul(hidden, self.dense1_kernel) + self.dense1_bias)
        return tf.matmul(mid, self.dense2_kernel) + self.dense2_bias

    def get_config(self):
        config = super().get_config()
        config.update(observation_dim=self.observation_dim, hidden_size=self.hidden_size,
                      depth=self.depth, dropout=self.dropout, seed=self.seed)
        return config


def make_train_step(core: CoreRNN, init_hidden, sigma2, optimizer, train_sigma2: bool):
    """Build the compiled training step of :class:`~unspeech.uisrnn.UISRNN`.

    The returned function applies one Adam update for a packed batch (see :func:`pack_batch`):
    ``rows``, ``grid_index``, ``batch_sizes``, ``target_index`` (m,) the flat grid position
    whose running mean predicts each target, ``targets`` (m, D), then the scalars
    ``sigma_alpha``, ``sigma_beta``, ``regularization_weight`` and ``grad_max_norm``.

    The prediction for entry t+1 of a sequence is the mean of the network outputs at steps
    0..t (step 0 sees a zero entry). The loss is the sigma2-weighted squared error per entry,
    plus the inverse-gamma prior on sigma2, plus the weight times the summed L2 norms of the
    network weights. Only the network gradients are clipped to ``grad_max_norm``; sigma2 is
    kept >= 1e-6. Returns the loss values ``(total, nll, prior, regularization)``.
    """
    core_vars = list(core.trainable_variables)
    train_vars = core_vars + [init_hidden] + ([sigma2] if train_sigma2 else [])
    optimizer.build(train_vars)
    depth, size, dim = core.depth, core.hidden_size, core.observation_dim
    scalar = tf.TensorSpec([], tf.float32)
    index = tf.TensorSpec([None], tf.int32)
    matrix = tf.TensorSpec([None, dim], tf.float32)

    @tf.function(input_signature=[matrix, index, index, index, matrix, scalar, scalar, scalar, scalar],
                 reduce_retracing=True)
    def train_step(rows, grid_index, batch_sizes, target_index, targets,
                   sigma_alpha, sigma_beta, regularization_weight, grad_max_norm):
        batch = batch_sizes[0]
        steps = tf.shape(batch_sizes)[0]
        with tf.GradientTape() as tape:
            start = tf.broadcast_to(tf.convert_to_tensor(init_hidden)[None], [batch, depth, size])
            outputs = core(rows, grid_index, batch_sizes, start, training=True)
            # shape: (T, B, D) running means of the outputs along time
            grid = tf.reshape(tf.scatter_nd(grid_index[:, None], outputs, [steps * batch, dim]),
                              [steps, batch, dim])
            counts = tf.cast(tf.range(1, steps + 1), tf.float32)
            means = tf.reshape(tf.cumsum(grid, axis=0) / counts[:, None, None], [-1, dim])
            errors = tf.square(tf.gather(means, target_index) - targets)
            entries = tf.cast(tf.shape(targets)[0], tf.float32)
            variance = tf.convert_to_tensor(sigma2)
            nll = tf.reduce_sum(tf.reduce_sum(errors, axis=0) / (2.0 * variance)) / entries
            prior = tf.reduce_sum((2.0 * sigma_alpha + entries + 2.0) / (2.0 * entries) * tf.math.log(variance)
                                  + sigma_beta / (variance * entries))
            regularization = regularization_weight * tf.add_n([tf.norm(v) for v in core_vars])
            loss = nll + prior + regularization
        grads = tape.gradient(loss, train_vars)
        clipped, _ = tf.clip_by_global_norm(grads[:len(core_vars)], grad_max_norm)
        optimizer.apply_gradients(zip(clipped + grads[len(core_vars):], train_vars))
        if train_sigma2:
            sigma2.assign(tf.maximum(sigma2, 1e-6))
        return loss, nll, prior, regularization

    return train_step


def pack_batch(data: np.ndarray, table: np.ndarray, lengths: np.ndarray, picked: np.ndarray):
    """Arrange some speaker sub-sequences as one packed, time-major training batch.

    Parameters
    ----------
    data : ndarray of shape (N, D), float32
        All training entries.
    table : ndarray of shape (S, max_len), int
        Row indices into ``data`` of each sub-sequence (padding beyond its length is ignored).
    lengths : ndarray of shape (S,), int
        Sub-sequence lengths (>= 1).
    picked : ndarray of shape (B,), int
        Sub-sequences in this batch (repeats allowed).

    Returns
    -------
    rows (n, D) float32, grid_index (n,) int32, batch_sizes (T,) int32,
    target_index (m,) int32, targets (m, D) float32
        where T = longest length + 1 (a zero entry precedes every sub-sequence),
        n = sum(lengths + 1) and m = sum(lengths).
    """
    picked = picked[np.argsort(-lengths[picked], kind="stable")]
    seq_lengths = lengths[picked]
    batch = len(picked)
    steps = int(seq_lengths[0]) + 1
    time = np.arange(steps)[:, None]
    t_idx, b_idx = np.nonzero(time < seq_lengths[None, :] + 1)
    rows = np.zeros((len(t_idx), data.shape[1]), np.float32)
    real = t_idx > 0
    rows[real] = data[table[picked[b_idx[real]], t_idx[real] - 1]]
    p_t, p_b = np.nonzero(time[:-1] < seq_lengths[None, :])
    targets = data[table[picked[p_b], p_t]]
    batch_sizes = np.count_nonzero(time < seq_lengths[None, :] + 1, axis=1)
    return (rows, (t_idx * batch + b_idx).astype(np.int32), batch_sizes.astype(np.int32),
            (p_t * batch + p_b).astype(np.int32), targets)
