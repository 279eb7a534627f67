"""The :class:`UISRNN` estimator: same calls as the ``uisrnn`` library.

The model's state is a set of NumPy arrays (:class:`~unspeech.uisrnn.weights.DecoderWeights`):
construction, :meth:`~UISRNN.load`, :meth:`~UISRNN.save` and every ``predict`` run on NumPy
alone (the vectorized beam search of :mod:`unspeech.uisrnn.decoding`), so a default install
without TensorFlow decodes. Training builds the Keras 3 / TensorFlow network of
:mod:`unspeech.uisrnn.network` from those arrays on the first :meth:`~UISRNN.fit` (and needs
the ``train`` extra). Saved models are ``.npz`` archives of plain arrays plus a JSON header:
no pickled objects, readable on any device and without TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Iterable, Iterator

import numpy as np

from unspeech.errors import ConfigError, DataError
from unspeech.extras import require_tensorflow
from unspeech.uisrnn.decoding import OnlineDecoder, decode_batch, decode_sequence
from unspeech.uisrnn.model_io import FORMAT_NAME, read_model, write_model
from unspeech.uisrnn.utils import (
    InputTypeError,
    Logger,
    check_sequence,
    encode_labels,
    estimate_transition_bias,
    speaker_index_sets,
)
from unspeech.uisrnn.weights import DecoderWeights

__all__ = ["UISRNN", "FORMAT_NAME"]

INITIAL_SIGMA2 = 0.1


def _check_model_args(args) -> None:
    positive_ints = ("observation_dim", "rnn_hidden_size", "rnn_depth")
    for name in positive_ints:
        value = getattr(args, name)
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    if not 0.0 <= args.rnn_dropout < 1.0:
        raise ConfigError(f"`rnn_dropout` must be in [0, 1). Received: rnn_dropout={args.rnn_dropout!r}")
    if args.transition_bias is not None and not 0.0 < args.transition_bias < 1.0:
        raise ConfigError("`transition_bias` must be strictly between 0 and 1 or None. "
                          f"Received: transition_bias={args.transition_bias!r}")
    if not args.crp_alpha > 0:
        raise ConfigError(f"`crp_alpha` must be > 0. Received: crp_alpha={args.crp_alpha!r}")
    if args.sigma2 is not None and not args.sigma2 > 0:
        raise ConfigError(f"`sigma2` must be > 0 or None. Received: sigma2={args.sigma2!r}")


def _check_training_args(args) -> None:
    if args.optimizer != "adam":
        raise ConfigError(f"only the 'adam' optimizer is supported. Received: optimizer={args.optimizer!r}")
    if args.train_iteration < 0:
        raise ConfigError(f"`train_iteration` must be >= 0. Received: {args.train_iteration!r}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1 or None. Received: batch_size={args.batch_size!r}")
    for name in ("learning_rate", "grad_max_norm", "sigma_alpha", "sigma_beta"):
        if not getattr(args, name) > 0:
            raise ConfigError(f"`{name}` must be > 0. Received: {name}={getattr(args, name)!r}")
    if args.regularization_weight < 0:
        raise ConfigError("`regularization_weight` must be >= 0. "
                          f"Received: regularization_weight={args.regularization_weight!r}")
    if getattr(args, "learning_rate_half_life", 0) < 0:
        raise ConfigError("`learning_rate_half_life` must be >= 0. "
                          f"Received: learning_rate_half_life={args.learning_rate_half_life!r}")


class UISRNN:
    """Unbounded interleaved-state RNN for supervised speaker diarization.

    Parameters
    ----------
    args : argparse.Namespace
        Model options (``model_args`` of :func:`~unspeech.uisrnn.parse_arguments`).
    seed : int or None
        Seed of the weight initialisation and of the training batches (dropout included);
        the same seed and data give the same model on CPU. None draws fresh randomness.

    Attributes
    ----------
    transition_bias : float or None
        Probability of a speaker change; estimated by :meth:`fit` unless given.
    transition_bias_denominator : float
        Number of adjacent pairs (+ smoothing) behind the estimate, to merge repeated fits.
    crp_alpha : float
    rnn_model : CoreRNN
        The Keras network (built on first access; needs TensorFlow).
    rnn_init_hidden : keras.Variable of shape (rnn_depth, rnn_hidden_size)
        Learned initial GRU state of every speaker (needs TensorFlow).
    sigma2 : keras.Variable of shape (observation_dim,)
        Observation variance per dimension, learned unless ``args.sigma2`` is given (needs
        TensorFlow; :meth:`decoder_weights` holds the same values as NumPy arrays).
    loss_history_ : list of float
        Training loss of every iteration of every :meth:`fit` call.

    Notes
    -----
    Without TensorFlow the model is its NumPy weights: construction, :meth:`load`,
    :meth:`save` and prediction work, and :meth:`fit` raises
    :class:`~unspeech.extras.MissingExtraError`. With it, the first :meth:`fit` builds the
    network from the current weights (fresh or loaded). Repeated :meth:`fit` calls continue
    training the same weights with the same Adam optimizer state (moments and step count carry
    over; each call sets the learning rate from its own ``training_args``). :meth:`load`
    replaces the weights and starts a fresh optimizer.
    """

    def __init__(self, args, seed: int | None = 0):
        _check_model_args(args)
        self.observation_dim = int(args.observation_dim)
        self.rnn_hidden_size = int(args.rnn_hidden_size)
        self.rnn_depth = int(args.rnn_depth)
        self.rnn_dropout = float(args.rnn_dropout)
        self.estimate_sigma2 = args.sigma2 is None
        self.estimate_transition_bias = args.transition_bias is None
        self.transition_bias = None if args.transition_bias is None else float(args.transition_bias)
        self.transition_bias_denominator = 0.0
        self.crp_alpha = float(args.crp_alpha)
        self.logger = Logger(args.verbosity)
        self.seed = seed
        self.device = "/CPU:0" if not getattr(args, "enable_cuda", True) else None
        self.loss_history_: list[float] = []
        self._rng = np.random.default_rng(seed)
        self._optimizer = None
        self._train_step = None
        self._network = None  # (CoreRNN, init_hidden, sigma2) once training needs them
        initial = INITIAL_SIGMA2 if self.estimate_sigma2 else float(args.sigma2)
        # seed + 1: the initial weights draw from another stream than the training batches (_rng)
        self._weights: DecoderWeights | None = DecoderWeights.initial(
            self.observation_dim, self.rnn_hidden_size, self.rnn_depth, sigma2=initial,
            seed=None if seed is None else int(seed) + 1)

    def _on_device(self):
        if not self.device:
            return contextlib.nullcontext()
        import tensorflow as tf

        return tf.device(self.device)

    def _ensure_network(self):
        """The Keras network and variables, built from the current NumPy weights on first use."""
        if self._network is None:
            require_tensorflow("UIS-RNN training")
            import keras

            from unspeech.uisrnn.network import CoreRNN

            weights = self.decoder_weights()
            with self._on_device():
                core = CoreRNN(self.observation_dim, self.rnn_hidden_size, self.rnn_depth,
                               self.rnn_dropout, seed=self.seed, name="uisrnn_core")
                core.build(None)
                core.set_numpy_weights(weights)
                init_hidden = keras.Variable(weights.init_hidden, name="rnn_init_hidden")
                sigma2 = keras.Variable(weights.sigma2, trainable=self.estimate_sigma2, name="sigma2")
            self._network = (core, init_hidden, sigma2)
        return self._network

    @property
    def rnn_model(self):
        return self._ensure_network()[0]

    @property
    def rnn_init_hidden(self):
        return self._ensure_network()[1]

    @property
    def sigma2(self):
        return self._ensure_network()[2]

    # -- training --------------------------------------------------------------------------
    def fit(self, train_sequences, train_cluster_ids, args) -> "UISRNN":
        """Train on labelled sequences; returns ``self``.

        Parameters
        ----------
        train_sequences : list of ndarray of shape (T_i, D), or one ndarray of shape (N, D)
            Float embeddings. A single array is treated as one sequence: its transition bias
            then counts the changes at the borders of whatever was concatenated into it, so
            prefer a list.
        train_cluster_ids : list of label sequences, or one label sequence
            Speaker labels of any hashable type, one per entry, matching ``train_sequences``.
        args : argparse.Namespace
            Training options (``training_args``).
        """
        require_tensorflow("UIS-RNN training")
        _check_training_args(args)
        if isinstance(train_sequences, np.ndarray):
            if self.estimate_transition_bias:
                # the library's own usage (its demo and toy data): said at debug level, the docstring explains
                self.logger.debug("fit() got one concatenated sequence; its transition bias counts "
                                    "changes at the joins too. Pass a list of sequences to estimate "
                                    "it per sequence.")
            sequences, label_lists, per_sequence = [train_sequences], [train_cluster_ids], False
        elif isinstance(train_sequences, list):
            if not isinstance(train_cluster_ids, list):
                raise InputTypeError("train_cluster_ids must be a list when train_sequences is a list")
            sequences, label_lists = train_sequences, train_cluster_ids
            per_sequence = bool(args.enforce_cluster_id_uniqueness)
        else:
            raise InputTypeError("train_sequences must be a list of arrays or one numpy array. "
                                 f"Received {type(train_sequences).__name__}")
        if len(sequences) != len(label_lists):
            raise DataError(f"got {len(sequences)} sequences but {len(label_lists)} label sequences")
        if not sequences:
            raise DataError("no training sequences given")
        checked = []
        for index, (seq, labels) in enumerate(zip(sequences, label_lists)):
            checked.append(self._check_training_pair(seq, labels, f"train_sequences[{index}]"))
        codes = encode_labels([labels for _, labels in checked], unique_per_sequence=per_sequence)
        if self.estimate_transition_bias:
            bias, denominator = estimate_transition_bias(codes)
            if self.transition_bias is None or self.transition_bias_denominator <= 0:
                self.transition_bias, self.transition_bias_denominator = bias, denominator
            else:
                total = self.transition_bias_denominator + denominator
                self.transition_bias = (self.transition_bias * self.transition_bias_denominator
                                        + bias * denominator) / total
                self.transition_bias_denominator = total
        self._train(np.concatenate([seq for seq, _ in checked], axis=0), np.concatenate(codes), args)
        return self

    def fit_concatenated(self, train_sequence, train_cluster_id, args) -> "UISRNN":
        """Train on one concatenated sequence whose labels are already unique per speaker.

        Unlike :meth:`fit`, this does not touch the transition bias.
        """
        require_tensorflow("UIS-RNN training")
        _check_training_args(args)
        seq, labels = self._check_training_pair(train_sequence, train_cluster_id, "train_sequence")
        codes = encode_labels([labels], unique_per_sequence=False)[0]
        self._train(seq, codes, args)
        return self

    def _check_training_pair(self, sequence, labels, what: str):
        sequence = check_sequence(sequence, self.observation_dim, what)
        if isinstance(labels, np.ndarray):
            if labels.ndim != 1:
                raise DataError(f"labels of {what} must be 1-dim. Received shape={labels.shape}")
            labels = labels.tolist()
        elif not isinstance(labels, (list, tuple)):
            raise InputTypeError(f"labels of {what} must be a list or 1-dim array. "
                                 f"Received {type(labels).__name__}")
        if len(labels) != len(sequence):
            raise DataError(f"{what} has {len(sequence)} entries but {len(labels)} labels")
        return sequence, labels

    def _ensure_optimizer(self, learning_rate: float):
        if self._optimizer is None:
            import keras

            from unspeech.uisrnn.network import make_train_step

            core, init_hidden, sigma2 = self._ensure_network()
            with self._on_device():
                self._optimizer = keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)
                self._train_step = make_train_step(core, init_hidden, sigma2, self._optimizer,
                                                   self.estimate_sigma2)
        return self._optimizer

    def _train(self, sequence: np.ndarray, codes: np.ndarray, args) -> None:
        import tensorflow as tf

        from unspeech.uisrnn.network import pack_batch

        if len(sequence) == 0:
            raise DataError("no training entries: every training sequence is empty")
        index_sets = speaker_index_sets(codes, args.num_permutations, self._rng)
        lengths = np.array([len(s) for s in index_sets])
        table = np.zeros((len(index_sets), int(lengths.max())), dtype=np.int64)
        for row, indices in enumerate(index_sets):
            table[row, : len(indices)] = indices
        data = np.ascontiguousarray(sequence, dtype=np.float32)
        optimizer = self._ensure_optimizer(args.learning_rate)
        half_life = int(getattr(args, "learning_rate_half_life", 0) or 0)
        constants = [tf.constant(float(v), tf.float32) for v in (
            args.sigma_alpha, args.sigma_beta, args.regularization_weight, args.grad_max_norm)]
        current_rate = None
        self._weights = None  # the network's variables hold the weights from now on
        self.logger.print(3, f"Training on {len(sequence)} entries, {len(index_sets)} speaker "
                             f"sub-sequences (longest {int(lengths.max())})")
        with self._on_device():
            for iteration in range(args.train_iteration):
                rate = args.learning_rate * (0.5 ** (iteration // half_life) if half_life > 0 else 1.0)
                if rate != current_rate:
                    optimizer.learning_rate.assign(rate)
                    current_rate = rate
                if args.batch_size is None:
                    picked = np.arange(len(index_sets))
                else:
                    picked = self._rng.integers(0, len(index_sets), size=args.batch_size)
                loss, nll, prior, reg = self._train_step(*pack_batch(data, table, lengths, picked), *constants)
                self.loss_history_.append(float(loss))
                if iteration % 10 == 0 or iteration == args.train_iteration - 1:
                    self.logger.print(2, f"Iter: {iteration:d}  Training Loss: {float(loss):.4f}  "
                                         f"Negative Log Likelihood: {float(nll):.4f}  "
                                         f"Sigma2 Prior: {float(prior):.4f}  "
                                         f"Regularization: {float(reg):.4f}")
        self.logger.print(1, f"Done training with {args.train_iteration} iterations")

    # -- inference -------------------------------------------------------------------------
    def decoder_weights(self) -> DecoderWeights:
        """The current weights as NumPy arrays (see :class:`~unspeech.uisrnn.weights.DecoderWeights`).

        Holds this model's ``transition_bias`` and ``crp_alpha``; after training the arrays are
        read from the network once and cached until the next :meth:`fit`.
        """
        if self._weights is None:
            core, init_hidden, sigma2 = self._network
            self._weights = core.get_numpy_weights(init_hidden, sigma2)
        weights = self._weights
        if weights.transition_bias != self.transition_bias or weights.crp_alpha != self.crp_alpha:
            weights = self._weights = dataclasses.replace(
                weights, transition_bias=self.transition_bias, crp_alpha=self.crp_alpha)
        return weights

    def _decode_options(self, args, num_speakers=None, max_speakers=None) -> dict:
        return dict(beam_size=args.beam_size, look_ahead=args.look_ahead,
                    test_iteration=args.test_iteration,
                    running_mean=getattr(args, "running_mean", "uisrnn"),
                    num_speakers=num_speakers if num_speakers is not None else getattr(args, "num_speakers", None),
                    max_speakers=max_speakers if max_speakers is not None else getattr(args, "max_speakers", None))

    def predict_single(self, test_sequence, args, num_speakers: int | None = None,
                       max_speakers: int | None = None) -> list[int]:
        """Speaker labels (0, 1, ... by first appearance) for one sequence of shape (T, D)."""
        test_sequence = check_sequence(test_sequence, self.observation_dim, "test_sequence")
        return decode_sequence(self.decoder_weights(), test_sequence,
                               **self._decode_options(args, num_speakers, max_speakers))

    def predict(self, test_sequences, args, num_speakers=None, max_speakers=None):
        """Decode one sequence (ndarray -> list of int) or many (list -> list of lists).

        A list is decoded in lockstep (:func:`~unspeech.uisrnn.decoding.decode_batch`): the
        labels are those of one-by-one decoding, computed with larger, faster GRU batches.

        Parameters
        ----------
        test_sequences : ndarray of shape (T, D) or list of such arrays
        args : argparse.Namespace
            Inference options (``inference_args``).
        num_speakers : int or list of int, optional
            Exact number of speakers (per sequence when a list).
        max_speakers : int or list of int, optional
            Upper bound on the number of speakers (per sequence when a list).
        """
        if isinstance(test_sequences, np.ndarray):
            return self.predict_single(test_sequences, args, num_speakers, max_speakers)
        if not isinstance(test_sequences, list):
            raise InputTypeError("test_sequences must be a numpy array or a list of arrays. "
                                 f"Received {type(test_sequences).__name__}")
        sequences = [check_sequence(seq, self.observation_dim, f"test_sequences[{i}]")
                     for i, seq in enumerate(test_sequences)]
        return decode_batch(self.decoder_weights(), sequences,
                            **self._decode_options(args, num_speakers, max_speakers))

    def online_decoder(self, args, max_speakers: int | None = None) -> OnlineDecoder:
        """A streaming decoder: ``push(entry) -> label`` one entry at a time."""
        if max_speakers is None:
            max_speakers = getattr(args, "max_speakers", None)
        return OnlineDecoder(self.decoder_weights(), args.beam_size, max_speakers=max_speakers,
                             running_mean=getattr(args, "running_mean", "uisrnn"))

    def predict_online(self, entries: Iterable[np.ndarray], args,
                       max_speakers: int | None = None) -> Iterator[int]:
        """Yield a provisional speaker label for each entry as soon as it arrives.

        ``entries`` may be any iterable of (D,) arrays (a generator fed by a live stream, or
        the rows of an array). See :class:`~unspeech.uisrnn.decoding.OnlineDecoder`.
        """
        return self.online_decoder(args, max_speakers).extend(entries)

    online_predict = predict_online  # the name asked for in the uisrnn library's issue #28

    # -- persistence -----------------------------------------------------------------------
    def _header(self) -> dict:
        return {
            "observation_dim": self.observation_dim,
            "rnn_hidden_size": self.rnn_hidden_size,
            "rnn_depth": self.rnn_depth,
            "rnn_dropout": self.rnn_dropout,
            "transition_bias": self.transition_bias,
            "transition_bias_denominator": self.transition_bias_denominator,
            "crp_alpha": self.crp_alpha,
            "estimate_sigma2": self.estimate_sigma2,
            "estimate_transition_bias": self.estimate_transition_bias,
        }

    def save(self, filepath, file_format: str = "unspeech") -> None:
        """Write the model to ``filepath`` atomically.

        Parameters
        ----------
        filepath : path
        file_format : {"unspeech", "uisrnn"}
            ``"unspeech"``: an ``.npz`` archive of arrays + a JSON header, no pickled objects.
            ``"uisrnn"``: the ``torch.save`` file of the ``uisrnn`` library, which
            ``uisrnn.UISRNN.load`` reads (written without torch; see :mod:`unspeech.uisrnn.model_io`).
        """
        write_model(filepath, self._header(), self.decoder_weights(), file_format)

    def load(self, filepath) -> "UISRNN":
        """Replace weights, sigma2, transition bias and crp_alpha by those saved in ``filepath``.

        Reads files of :meth:`save` and files saved by the ``uisrnn`` library (torch format; torch
        is not needed). The saved architecture must match this model's options.
        """
        header, weights, _ = read_model(filepath)
        for name in ("observation_dim", "rnn_hidden_size", "rnn_depth"):
            if int(header[name]) != getattr(self, name):
                raise ConfigError(f"{filepath} holds a model with {name}={header[name]} but this model "
                                  f"has {name}={getattr(self, name)}")
        self._set_weights(weights, filepath)
        bias = header.get("transition_bias")
        self.transition_bias = None if bias is None else float(bias)
        self.transition_bias_denominator = float(header.get("transition_bias_denominator") or 0.0)
        self.crp_alpha = float(header["crp_alpha"])
        self.logger.info(f"Loaded model from {filepath} with transition_bias={self.transition_bias}, "
                         f"crp_alpha={self.crp_alpha}, mean sigma2={float(np.mean(weights.sigma2)):.6g}")
        return self

    def _set_weights(self, weights: DecoderWeights, source) -> None:
        """Adopt ``weights`` as the model state; a built network and its optimizer are dropped."""
        problem = weights.shape_problem(self.observation_dim, self.rnn_hidden_size, self.rnn_depth)
        if problem:
            raise DataError(f"{os.fspath(source)}: misshapen weights: {problem}")
        self._weights = weights.astype(np.float32)
        self._network = None
        self._optimizer = None
        self._train_step = None

    @classmethod
    def from_file(cls, filepath, verbosity: int = 3, enable_cuda: bool = True) -> "UISRNN":
        """Build a model with the architecture stored in ``filepath`` (either format) and load it."""
        from unspeech.uisrnn.arguments import default_arguments

        header, _, _ = read_model(filepath)
        fixed_bias = not header.get("estimate_transition_bias", True) and header.get("transition_bias")
        model_args, _, _ = default_arguments(
            observation_dim=int(header["observation_dim"]), rnn_hidden_size=int(header["rnn_hidden_size"]),
            rnn_depth=int(header["rnn_depth"]), rnn_dropout=float(header["rnn_dropout"]),
            crp_alpha=float(header["crp_alpha"]), verbosity=verbosity, enable_cuda=enable_cuda,
            # a fixed sigma2 / transition bias stays fixed; the values themselves come from load()
            sigma2=None if header.get("estimate_sigma2", True) else INITIAL_SIGMA2,
            transition_bias=float(header["transition_bias"]) if fixed_bias else None)
        return cls(model_args).load(filepath)
