"""The trained UIS-RNN network as plain NumPy arrays, and its arithmetic (no TensorFlow).

:class:`DecoderWeights` is what decoding needs from a model: the GRU stack, the output head,
the learned initial state, sigma2, the transition bias and the CRP concentration. Its
:meth:`~DecoderWeights.run_rnn` computes exactly what :class:`unspeech.uisrnn.network.CoreRNN`
computes in TensorFlow.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["DecoderWeights"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclasses.dataclass(frozen=True)
class DecoderWeights:
    """Everything the decoder needs from a trained model, as NumPy arrays.

    GRU layers follow the Keras ``reset_after`` layout with gates ordered (update, reset,
    candidate): ``kernels[l]`` of shape (in, 3H), ``recurrent_kernels[l]`` (H, 3H),
    ``biases[l]`` (2, 3H) with the input bias in row 0 and the recurrent bias in row 1.
    The output head is ``relu(h @ dense1_kernel + dense1_bias) @ dense2_kernel + dense2_bias``.
    ``init_hidden`` has shape (depth, H), ``sigma2`` shape (D,).
    """

    kernels: tuple
    recurrent_kernels: tuple
    biases: tuple
    dense1_kernel: np.ndarray
    dense1_bias: np.ndarray
    dense2_kernel: np.ndarray
    dense2_bias: np.ndarray
    init_hidden: np.ndarray
    sigma2: np.ndarray
    transition_bias: float | None
    crp_alpha: float

    @classmethod
    def initial(cls, observation_dim: int, hidden_size: int, depth: int = 1, sigma2: float = 0.1,
                seed: int | None = None, dtype=np.float32) -> "DecoderWeights":
        """Untrained weights: every network array uniform in ``+-1/sqrt(hidden_size)``.

        ``init_hidden`` starts at zero and ``sigma2`` at the given value in every dimension;
        the transition bias is unset (None) and ``crp_alpha`` is 1. The same seed gives the
        same arrays; None draws fresh randomness.
        """
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(hidden_size)

        def uniform(*shape):
            return rng.uniform(-bound, bound, shape).astype(dtype)

        kernels, recurrent, biases = [], [], []
        for layer in range(depth):
            kernels.append(uniform(observation_dim if layer == 0 else hidden_size, 3 * hidden_size))
            recurrent.append(uniform(hidden_size, 3 * hidden_size))
            biases.append(uniform(2, 3 * hidden_size))
        return cls(kernels=tuple(kernels), recurrent_kernels=tuple(recurrent), biases=tuple(biases),
                   dense1_kernel=uniform(hidden_size, hidden_size), dense1_bias=uniform(hidden_size),
                   dense2_kernel=uniform(hidden_size, observation_dim), dense2_bias=uniform(observation_dim),
                   init_hidden=np.zeros((depth, hidden_size), dtype),
                   sigma2=np.full(observation_dim, sigma2, dtype), transition_bias=None, crp_alpha=1.0)

    def shape_problem(self, observation_dim: int, hidden_size: int, depth: int) -> str | None:
        """None when every array has the shape of that architecture, else what is wrong."""
        if not (len(self.kernels) == len(self.recurrent_kernels) == len(self.biases) == depth):
            return f"{len(self.kernels)} GRU layers, expected {depth}"
        gates = 3 * hidden_size
        expected = [(f"gru{layer}_kernel", self.kernels[layer],
                     (observation_dim if layer == 0 else hidden_size, gates)) for layer in range(depth)]
        expected += [(f"gru{layer}_recurrent_kernel", self.recurrent_kernels[layer], (hidden_size, gates))
                     for layer in range(depth)]
        expected += [(f"gru{layer}_bias", self.biases[layer], (2, gates)) for layer in range(depth)]
        expected += [("dense1_kernel", self.dense1_kernel, (hidden_size, hidden_size)),
                     ("dense1_bias", self.dense1_bias, (hidden_size,)),
                     ("dense2_kernel", self.dense2_kernel, (hidden_size, observation_dim)),
                     ("dense2_bias", self.dense2_bias, (observation_dim,)),
                     ("init_hidden", self.init_hidden, (depth, hidden_size)),
                     ("sigma2", self.sigma2, (observation_dim,))]
        for name, array, shape in expected:
            if np.shape(array) != shape:
                return f"{name} has shape {np.shape(array)}, expected {shape}"
        return None

    @property
    def observation_dim(self) -> int:
        return int(self.dense2_kernel.shape[1])

    @property
    def hidden_size(self) -> int:
        return int(self.recurrent_kernels[0].shape[0])

    @property
    def depth(self) -> int:
        return len(self.kernels)

    @property
    def dtype(self) -> np.dtype:
        return self.dense2_kernel.dtype

    def astype(self, dtype) -> "DecoderWeights":
        """A copy with every array cast to ``dtype`` (float64 makes decisions reproducible
        across differently batched matrix products)."""
        cast = lambda a: np.asarray(a, dtype=dtype)  # noqa: E731
        return dataclasses.replace(
            self,
            kernels=tuple(cast(a) for a in self.kernels),
            recurrent_kernels=tuple(cast(a) for a in self.recurrent_kernels),
            biases=tuple(cast(a) for a in self.biases),
            dense1_kernel=cast(self.dense1_kernel), dense1_bias=cast(self.dense1_bias),
            dense2_kernel=cast(self.dense2_kernel), dense2_bias=cast(self.dense2_bias),
            init_hidden=cast(self.init_hidden), sigma2=cast(self.sigma2))

    def project_inputs(self, x: np.ndarray) -> np.ndarray:
        """Input part of the first GRU layer: (N, D) -> (N, 3H)."""
        return x @ self.kernels[0] + self.biases[0][0]

    def run_rnn(self, input_proj: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance the GRU by one entry and apply the output head.

        Parameters
        ----------
        input_proj : ndarray of shape (N, 3H) or (1, 3H)
            :meth:`project_inputs` of the entries (broadcast over rows when it has one row).
        hidden : ndarray of shape (N, depth, H)

        Returns
        -------
        new_hidden : ndarray of shape (N, depth, H)
        output : ndarray of shape (N, D)
        """
        size = self.hidden_size
        new_hidden = np.empty_like(hidden)
        layer_input = input_proj
        for layer in range(self.depth):
            if layer > 0:
                layer_input = layer_input @ self.kernels[layer] + self.biases[layer][0]
            h_prev = hidden[:, layer]
            rec = h_prev @ self.recurrent_kernels[layer] + self.biases[layer][1]
            update = _sigmoid(layer_input[:, :size] + rec[:, :size])
            reset = _sigmoid(layer_input[:, size:2 * size] + rec[:, size:2 * size])
            candidate = np.tanh(layer_input[:, 2 * size:] + reset * rec[:, 2 * size:])
            h_new = update * h_prev + (1.0 - update) * candidate
            new_hidden[:, layer] = h_new
            layer_input = h_new
        mid = np.maximum(layer_input @ self.dense1_kernel + self.dense1_bias, 0.0)
        return new_hidden, mid @ self.dense2_kernel + self.dense2_bias

    def root_state(self) -> tuple[np.ndarray, np.ndarray]:
        """State of a new speaker: GRU fed one zero entry from the learned initial state.

        Returns hidden (depth, H) and the output (D,) that predicts the speaker's first entry.
        """
        zero = np.zeros((1, self.observation_dim), dtype=self.dtype)
        hidden, output = self.run_rnn(self.project_inputs(zero), self.init_hidden[None])
        return hidden[0], output[0]
