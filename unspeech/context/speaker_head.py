"""The speaker head: a small network on top of the context model's rows, trained with pseudo-labels.

The context model learns from pairs of nearby windows; its rows (one per ``period_frames``,
typically 100 ms) tell apart who speaks only over short spans. The speaker head is a second,
cheap stage trained on the frozen rows of the training corpus with one pseudo-label per
training item: every utterance (recording) is a class of its own, the same assumption the context
model already makes (one voice inside one utterance), so no speaker labels are needed. Copies
of an item that keep its voice (a narrow-band copy, a noisier copy) should share its class;
copies that change the voice (Kaldi's speed perturbation) are new classes. A classifier over
these classes forces rows of one utterance together wherever in the utterance they come from;
its bottleneck layer is the speaker embedding. This is the "utterance as class" recipe of
self-supervised speaker verification, and a non-linear version of an LDA backend.

Network (``D`` = the context model's embedding size, ``c`` = ``context``)::

    rows (n, D) -> stack rows i-c .. i+c (n, (2c+1) D) -> standardise
        -> dense(hidden_units) -> ReLU -> batch norm -> dense(dim)        = the head's output (n, dim)
        [training only: -> batch norm -> dropout -> dense(n_classes) -> softmax]

With ``members > 1`` that network is trained ``members`` times from different seeds on the same
rows (an ensemble); each member's output is L2-normalised and the outputs are joined,
``(n, members * dim)``, so that the cosine of two joined rows is the mean of the members' cosines.
Members disagree where a single network's quirks decide, and averaging their similarities
steadies what the clustering and the speaker count read.

Training needs TensorFlow (``pip install 'unspeech[train]'``); the fitted head is two matrix
products in NumPy (batch norm folded into the second one), stored as ``speaker_head.npz`` in the
run directory next to the model, and used by :class:`unspeech.diarize.embedders.ContextEmbedder`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Hashable, Sequence

import numpy as np

from unspeech.errors import ConfigError, DataError

__all__ = ["HEAD_NAME", "SpeakerHead", "fit_run_head", "fold_batch_norm", "load_run_head", "read_utt2class", "stack_rows"]

logger = logging.getLogger(__name__)

HEAD_NAME = "speaker_head.npz"
"""File name of a fitted head inside a run directory."""

_ARRAYS = ("mean", "scale", "w1", "b1", "w2", "b2")
_LOSSES = ("softmax", "am-softmax")


def stack_rows(rows: np.ndarray, context: int) -> np.ndarray:
    """Rows with their ``context`` neighbours on each side, ``(n, D) -> (n, (2 context + 1) D)``.

    Row ``i`` of the result is rows ``i - context .. i + context`` side by side; the first and
    last rows are repeated past the ends, so every recording keeps its number of rows."""
    rows = np.asarray(rows)
    if context == 0 or len(rows) == 0:
        return rows
    padded = np.concatenate([np.repeat(rows[:1], context, axis=0), rows, np.repeat(rows[-1:], context, axis=0)])
    return np.concatenate([padded[j: j + len(rows)] for j in range(2 * context + 1)], axis=1)


def fold_batch_norm(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float,
                    weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dense layer ``(weight (H, K), bias (K,))`` that follows an inference-mode batch norm over
    ``H`` units, with the batch norm folded in: ``dense(bn(h)) == h @ weight' + bias'``."""
    a = gamma / np.sqrt(var + eps)  # batch norm at inference: h * a + (beta - mean * a) per unit
    return a[:, None] * weight, (beta - mean * a) @ weight + bias


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")


class SpeakerHead:
    """Speaker embedding head over context-model rows, fitted on pseudo-labelled training items.

    Parameters
    ----------
    context : int, neighbouring rows on each side that each output row sees (2 = 5 rows: 0.4 s of
        row centres at 100 ms per row, plus one window)
    hidden_units : int, width of the hidden layer
    dim : int, size of the output embedding
    epochs : int, passes over the training rows
    batch_size : int, rows per gradient step
    learn_rate : float, Adam's learning rate
    dropout : float, dropout before the classifier (training only)
    loss : "softmax" (cross-entropy over a linear classifier) or "am-softmax" (additive margin:
        cosine of the embedding and a class vector, minus ``margin`` for the true class, times
        ``scale``; it trains embeddings for cosine scoring, as clustering compares them)
    margin, scale : the additive margin and the logit scale of "am-softmax"
    members : int, networks trained from seeds ``random_state``, ``random_state + 1``, ... (see
        the module docstring); 1 = one network, whose output is not normalised
    random_state : int, seed of the weight initialisation, dropout and shuffling
    verbose : int, 0 silent, 1 one log line per epoch

    Fitted attributes: ``input_dim_``, ``n_classes_``, ``mean_``, ``scale_`` (standardisation of
    the stacked rows), ``weights_`` (one entry per member: ``w1 (M, I, H)``, ``b1 (M, H)``,
    ``w2 (M, H, dim)``, ``b2 (M, dim)``), ``train_accuracy_`` (last epoch's class accuracy on the
    training rows, mean over members), ``info_`` (a dict saved with the head: e.g. the model id and
    row period it belongs to).
    """

    def __init__(self, context: int = 2, hidden_units: int = 512, dim: int = 128, epochs: int = 20,
                 batch_size: int = 512, learn_rate: float = 1e-3, dropout: float = 0.2, loss: str = "am-softmax",
                 margin: float = 0.2, scale: float = 30.0, members: int = 1, random_state: int = 0, verbose: int = 0):
        self.context = context
        self.hidden_units = hidden_units
        self.dim = dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learn_rate = learn_rate
        self.dropout = dropout
        self.loss = loss
        self.margin = margin
        self.scale = scale
        self.members = members
        self.random_state = random_state
        self.verbose = verbose

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in ("context", "hidden_units", "dim", "epochs", "batch_size",
                                                      "learn_rate", "dropout", "loss", "margin", "scale", "members",
                                                      "random_state", "verbose")}

    def _check_params(self) -> None:
        if not isinstance(self.context, (int, np.integer)) or self.context < 0:
            raise ConfigError(f"`context` must be an integer >= 0. Received: context={self.context!r}")
        _check_positive(hidden_units=self.hidden_units, dim=self.dim, epochs=self.epochs, batch_size=self.batch_size,
                        members=self.members)
        if not 0 < float(self.learn_rate):
            raise ConfigError(f"`learn_rate` must be > 0. Received: learn_rate={self.learn_rate!r}")
        if not 0 <= float(self.dropout) < 1:
            raise ConfigError(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}")
        if self.loss not in _LOSSES:
            raise ConfigError(f"`loss` must be one of {', '.join(_LOSSES)}. Received: loss={self.loss!r}")
        if not (0 <= float(self.margin) < 1 and float(self.scale) > 0):
            raise ConfigError(f"`margin` must be in [0, 1) and `scale` > 0. Received: margin={self.margin!r}, "
                              f"scale={self.scale!r}")

    # ------------------------------------------------------------------ fitting

    def fit(self, rows: Sequence[np.ndarray], classes: Sequence[Hashable], names: Sequence[str] | None = None) -> "SpeakerHead":
        """Fit on training items.

        Parameters
        ----------
        rows : sequence of ``(n_i, D)`` arrays, the context model's rows of each training item
        classes : one pseudo-label per item (any hashable; at least two distinct)
        names : optional item names, used in error messages

        Returns
        -------
        self
        """
        self._check_params()
        from unspeech.extras import require_tensorflow

        require_tensorflow("fitting a speaker head")
        if len(rows) != len(classes):
            raise DataError(f"{len(rows)} items of rows but {len(classes)} class labels")
        if len(rows) == 0:
            raise DataError("no training items: a speaker head needs rows of at least two classes")
        names = list(names) if names is not None else [f"item {i}" for i in range(len(rows))]
        dims = set()
        for name, r in zip(names, rows):
            r = np.asarray(r)
            if r.ndim != 2 or not np.isfinite(r).all():
                raise DataError(f"{name}: rows must be a finite (n, D) matrix, got shape {r.shape}")
            dims.add(r.shape[1])
        if len(dims) != 1:
            raise DataError(f"training items have rows of different sizes {sorted(dims)}")
        index = {c: k for k, c in enumerate(dict.fromkeys(classes))}
        if len(index) < 2:
            raise DataError(f"a speaker head needs at least two classes; got {len(index)}")
        x = np.concatenate([stack_rows(np.asarray(r, np.float32), int(self.context)) for r in rows])
        y = np.concatenate([np.full(len(r), index[c], np.int64) for r, c in zip(rows, classes)])
        if len(x) == 0:
            raise DataError("the training items have no rows")
        mean = x.mean(axis=0)
        scale = np.maximum(x.std(axis=0), 1e-6)
        self.input_dim_ = int(dims.pop())
        self.n_classes_ = len(index)
        self.mean_, self.scale_ = mean.astype(np.float32), scale.astype(np.float32)
        x = (x - mean) / scale
        fitted = [self._train(x, y, int(self.random_state) + k) for k in range(int(self.members))]
        self.weights_ = {name: np.stack([w[name] for w, _ in fitted]) for name in fitted[0][0]}
        self.train_accuracy_ = float(np.mean([acc for _, acc in fitted]))
        self.info_ = {}
        return self

    def _train(self, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[dict, float]:
        """Keras fit of one member's classifier; returns its inference weights with batch norm folded in."""
        from unspeech.extras import quiet_tensorflow

        quiet_tensorflow()
        import keras

        keras.utils.set_random_seed(seed)
        inputs = keras.Input((x.shape[1],))
        hidden = keras.layers.Dense(int(self.hidden_units), activation="relu", name="hidden")(inputs)
        normed = keras.layers.BatchNormalization(name="hidden_norm")(hidden)
        embedding = keras.layers.Dense(int(self.dim), name="embedding")(normed)
        if self.loss == "softmax":
            logits = keras.layers.Dense(self.n_classes_, name="classes")(
                keras.layers.Dropout(float(self.dropout))(keras.layers.BatchNormalization()(embedding)))
            model = keras.Model(inputs, logits)
            train_x = x.astype(np.float32)
        else:
            labels = keras.Input((), dtype="int32")
            logits = _margin_classes_layer()(self.n_classes_, float(self.margin), float(self.scale), name="classes")(
                [keras.layers.Dropout(float(self.dropout))(embedding), labels])
            model = keras.Model([inputs, labels], logits)
            train_x = [x.astype(np.float32), y.astype(np.int32)]
        model.compile(optimizer=keras.optimizers.Adam(float(self.learn_rate)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

        class _Log(keras.callbacks.Callback):
            def on_epoch_end(inner, epoch, logs=None):  # noqa: N805 (keras calls it on the callback)
                if self.verbose:
                    logger.info("speaker head: epoch %d/%d, loss %.3f, accuracy %.3f", epoch + 1, int(self.epochs),
                                logs["loss"], logs["accuracy"])

        history = model.fit(train_x, y, batch_size=int(self.batch_size), epochs=int(self.epochs),
                            shuffle=True, verbose=0, callbacks=[_Log()])
        w1, b1 = model.get_layer("hidden").get_weights()
        w2, b2 = fold_batch_norm(*model.get_layer("hidden_norm").get_weights(), model.get_layer("hidden_norm").epsilon,
                                 *model.get_layer("embedding").get_weights())
        weights = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
        return {k: v.astype(np.float32) for k, v in weights.items()}, float(history.history["accuracy"][-1])

    # ------------------------------------------------------------------ inference

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise ConfigError("this SpeakerHead is not fitted yet: call fit() or SpeakerHead.load()")

    @property
    def output_dim(self) -> int:
        """Size of an output row: ``members * dim``."""
        self._check_fitted()
        members, _, dim = self.weights_["w2"].shape
        return int(members * dim)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """``(n, D)`` rows of one recording (consecutive, one every ``period_frames``) → ``(n, output_dim)`` float32."""
        self._check_fitted()
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.input_dim_:
            raise DataError(f"the speaker head expects rows of shape (n, {self.input_dim_}), got {rows.shape}")
        x = (stack_rows(rows, int(self.context)) - self.mean_) / self.scale_
        w = self.weights_
        outputs = [np.maximum(x @ w["w1"][k] + w["b1"][k], 0.0) @ w["w2"][k] + w["b2"][k] for k in range(len(w["w1"]))]
        if len(outputs) == 1:
            return outputs[0].astype(np.float32)
        for out in outputs:  # each member weighs the same in a cosine of joined rows
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return np.concatenate(outputs, axis=1).astype(np.float32)

    @classmethod
    def join(cls, heads: Sequence["SpeakerHead"]) -> "SpeakerHead":
        """One ensemble of fitted heads trained on the same rows (same context, standardisation and
        sizes), e.g. heads fitted separately with different seeds; ``members`` is their total."""
        heads = list(heads)
        if not heads:
            raise ConfigError("join() needs at least one fitted head")
        for head in heads:
            head._check_fitted()
        first = heads[0]
        for head in heads[1:]:
            if (head.context != first.context or head.input_dim_ != first.input_dim_
                    or not np.array_equal(head.mean_, first.mean_) or not np.array_equal(head.scale_, first.scale_)
                    or any(head.weights_[k].shape[1:] != first.weights_[k].shape[1:] for k in first.weights_)):
                raise DataError("speaker heads to join must be fitted on the same rows with the same sizes")
        joined = cls(**{**first.get_params(), "members": sum(len(h.weights_["w1"]) for h in heads)})
        joined.input_dim_, joined.n_classes_ = first.input_dim_, first.n_classes_
        joined.mean_, joined.scale_ = first.mean_, first.scale_
        joined.weights_ = {k: np.concatenate([h.weights_[k] for h in heads]) for k in first.weights_}
        joined.train_accuracy_ = float(np.mean([h.train_accuracy_ for h in heads]))
        joined.info_ = dict(first.info_)
        return joined

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> str:
        """Write the fitted head to ``path`` (``.npz``, atomically); returns the path."""
        self._check_fitted()
        from unspeech._fileutil import atomic_path

        meta = {"params": self.get_params(), "input_dim": self.input_dim_, "n_classes": self.n_classes_,
                "train_accuracy": self.train_accuracy_, "info": self.info_}
        arrays = {"mean": self.mean_, "scale": self.scale_, **self.weights_}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **arrays)
        return os.fspath(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SpeakerHead":
        """Read a head written by :meth:`save`; :class:`DataError` naming the file when it is not one."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                arrays = {name: np.asarray(data[name], dtype=np.float32) for name in _ARRAYS}
        except FileNotFoundError:
            raise DataError(f"{path}: no such speaker head file") from None
        except (OSError, KeyError, ValueError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: not a speaker head written by unspeech ({err})") from None
        head = cls(**meta["params"])
        head.input_dim_, head.n_classes_ = int(meta["input_dim"]), int(meta["n_classes"])
        head.train_accuracy_, head.info_ = float(meta["train_accuracy"]), dict(meta.get("info") or {})
        head.mean_, head.scale_ = arrays.pop("mean"), arrays.pop("scale")
        if arrays["w1"].ndim == 2:  # a file of one network, as written before ensembles
            arrays = {name: value[None] for name, value in arrays.items()}
        head.weights_ = arrays
        stacked = head.input_dim_ * (2 * int(head.context) + 1)
        w = head.weights_
        m = len(w["w1"])
        if (head.mean_.shape != (stacked,) or head.scale_.shape != (stacked,) or w["w1"].ndim != 3
                or w["w1"].shape[1] != stacked or w["b1"].shape != (m, w["w1"].shape[2])
                or w["w2"].shape[:2] != (m, w["w1"].shape[2]) or w["b2"].shape != (m, w["w2"].shape[2])
                or m != int(head.members)):
            raise DataError(f"{path}: the speaker head's arrays do not fit together (damaged file?)")
        return head


def _margin_classes_layer():
    """The additive-margin cosine classifier (training only; Keras is imported when it is needed)."""
    import keras

    class MarginClasses(keras.layers.Layer):
        """``[embeddings (n, dim), labels (n,)] -> logits (n, classes)``: ``scale * (cos - margin [true class])``."""

        def __init__(self, classes: int, margin: float, scale: float, **kwargs):
            super().__init__(**kwargs)
            self.classes, self.margin, self.scale = int(classes), float(margin), float(scale)

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(int(input_shape[0][-1]), self.classes), initializer="glorot_uniform",
                                          name="kernel")

        def call(self, inputs):
            embeddings, labels = inputs
            ops = keras.ops
            cosine = ops.matmul(ops.normalize(embeddings, axis=-1), ops.normalize(self.kernel, axis=0))
            return self.scale * (cosine - self.margin * ops.one_hot(ops.cast(labels, "int32"), self.classes))

        def get_config(self):
            return {**super().get_config(), "classes": self.classes, "margin": self.margin, "scale": self.scale}

    return MarginClasses


# ---------------------------------------------------------------------- heads of run directories


def read_utt2class(path: str | os.PathLike) -> dict[str, str]:
    """A two-column Kaldi table ``<utterance> <class>`` (e.g. an ``utt2uniq``-like map that gives
    copies of one recording one class); :class:`DataError` naming file and line when malformed."""
    from unspeech.datadir import read_table

    table = {}
    for utt, fields in read_table(path, max_split=0).items():  # names file and line of bad rows
        if len(fields) != 1:
            raise DataError(f"{path}: utterance {utt} has {len(fields)} classes, expected '<utterance> <class>'")
        table[utt] = fields[0]
    if not table:
        raise DataError(f"{path}: empty")
    return table


def fit_run_head(run_dir: str | os.PathLike, features: str, utt2class: str | os.PathLike | None = None,
                 period_frames: int = 10, runtime: str = "auto", output: str | os.PathLike | None = None,
                 min_rows: int = 2, **params) -> SpeakerHead:
    """Fit a :class:`SpeakerHead` on the rows a run's context model makes of ``features`` and save it.

    Parameters
    ----------
    run_dir : the context model's run directory (or an installed copy with ``model.onnx``)
    features : Kaldi rspecifier of the training fbank features (``scp:feats.scp``, a ``.scp`` or ``.ark``)
    utt2class : optional ``<utterance> <class>`` table; default: every utterance is its own class.
        Every utterance of ``features`` must be listed.
    period_frames : frames between rows (the diarizer's ``step``; the head only serves this period)
    runtime : runtime of the context model ("auto", "onnx", "keras")
    output : where to save (default ``run_dir/speaker_head.npz``)
    min_rows : items with fewer rows are skipped (they teach nothing about a class)
    params : :class:`SpeakerHead` parameters (``epochs``, ``dim``, ``random_state``, ...)
    """
    from unspeech.context.embed import FrameEmbedder
    from unspeech.context.ivector_dir import model_id
    from unspeech.context.towers import load_towers
    from unspeech.kaldi_io import iter_mats

    head = SpeakerHead(**params)
    head._check_params()
    _check_positive(period_frames=period_frames, min_rows=min_rows)
    from unspeech.extras import require_tensorflow

    require_tensorflow("fitting a speaker head")
    classes_of = read_utt2class(utt2class) if utt2class is not None else None
    ident = model_id(run_dir)
    towers = load_towers(run_dir, runtime=runtime)
    frames = FrameEmbedder(towers, period=int(period_frames), alignment="center")
    rows, classes, names, skipped = [], [], [], 0
    for n, (utt, feats) in enumerate(iter_mats(features), 1):
        if classes_of is not None and utt not in classes_of:
            raise DataError(f"{utt2class}: no class for utterance {utt} of {features}")
        r = frames.embed_utterance(feats)
        if len(r) < min_rows:
            skipped += 1
            continue
        rows.append(r)
        classes.append(classes_of[utt] if classes_of is not None else utt)
        names.append(utt)
        if n % 200 == 0:
            logger.info("speaker head: rows of %d utterances", n)
    logger.info("speaker head: %d utterances (%d rows, %d classes) of %s; %d shorter than %d rows skipped",
                len(rows), sum(map(len, rows)), len(set(classes)), features, skipped, min_rows)
    head.fit(rows, classes, names)
    head.info_ = {"model_id": ident, "period_frames": int(period_frames), "features": os.fspath(features),
                  "utterances": len(rows), "rows": int(sum(map(len, rows)))}
    target = Path(output) if output is not None else Path(run_dir) / HEAD_NAME
    head.save(target)
    logger.info("speaker head: training accuracy %.3f over %d classes; saved %s", head.train_accuracy_,
                head.n_classes_, target)
    return head


def load_run_head(run_dir: str | os.PathLike, period_frames: int, checkpoint: str | int | None = None) -> SpeakerHead | None:
    """The run's fitted head when it belongs to this model and row period, else None (with a warning
    when a head exists but does not fit: it was fitted on another checkpoint or period)."""
    path = Path(run_dir) / HEAD_NAME
    if not path.is_file():
        return None
    from unspeech.context.ivector_dir import model_id

    head = SpeakerHead.load(path)
    wanted = model_id(run_dir, "" if checkpoint is None else str(checkpoint))
    if head.info_.get("model_id") != wanted:
        logger.warning("%s was fitted on another checkpoint of this model: not used (refit it: unspeech train-head %s ...)",
                       path, run_dir)
        return None
    if head.info_.get("period_frames") != int(period_frames):
        logger.warning("%s serves rows every %s frames, not %d: not used", path, head.info_.get("period_frames"),
                       period_frames)
        return None
    return head
