"""Beam-search decoding of UIS-RNN, vectorized, in NumPy (no TensorFlow import).

Each hypothesis (beam) assigns the entries seen so far to speakers 0, 1, 2, ... in order of
first appearance. A speaker's state is a *node*: the GRU hidden state after the speaker's
entries, the running sum of the network outputs and their count; the prediction for the next
entry of that speaker is their running mean. Nodes are immutable and shared between beams, so
a beam is just a row of node ids plus block counts.

Which outputs the running mean holds is the ``running_mean`` option. With ``n`` entries of a
speaker consumed, the network has produced ``o_0`` (from the zero entry that starts every
speaker) and ``o_1 ... o_n``:

* ``"uisrnn"`` (default, the ``uisrnn`` library's decoder): ``o_0`` before the first entry,
  ``o_1`` after it, then the mean of ``o_2 ... o_n``;
* ``"training"``: the mean of ``o_0 ... o_n``, the prediction the training loss scores.

One search step scores every (beam x candidate speaker) pair at once from the stored means,
keeps the ``beam_size`` best, and then advances the GRU for all kept pairs in one batched call;
pairs that need the same update (same node, same entry) are merged into one row of that call.
With ``look_ahead > 1`` every partial assignment inside the step is advanced the same way.

Scores are negative log-likelihoods: the sigma2-weighted squared error of the entry against the
speaker's predicted mean, plus the transition term ``-log(1 - p0)`` (same speaker), or
``-log p0 - log(blocks_k) + log(sum(blocks) + alpha)`` (back to speaker k) or
``-log p0 - log alpha + log(sum(blocks) + alpha)`` (new speaker). Ties are broken by the
candidate order (beam rank, then speaker index), with a stable sort.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterable, Iterator, Sequence

import numpy as np

from unspeech.errors import ConfigError, DataError
from unspeech.uisrnn.weights import DecoderWeights

__all__ = [
    "DecoderWeights",
    "BeamSearchDecoder",
    "OnlineDecoder",
    "decode_sequence",
    "decode_batch",
    "check_inference_options",
    "RUNNING_MEANS",
]

ROOT = 0  # node id of the state "new speaker, nothing consumed yet"
COMPACT_ABOVE = 4096  # drop unreferenced speaker states once the pool holds more than this
# running_mean rule -> how many outputs after the zero entry restart the mean (see above)
RUNNING_MEANS = {"uisrnn": 2, "training": 0}

_BLAS_CONTROLLER = None


def _single_thread_blas():
    """Context limiting NumPy's BLAS to one thread.

    The decoder's matrix products have a handful of rows; extra BLAS threads only spin and
    make decoding many times slower on a busy machine.
    """
    global _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def check_inference_options(beam_size, look_ahead, test_iteration,
                            num_speakers=None, max_speakers=None) -> tuple[int, int]:
    """Validate inference options; returns ``(min_speakers, max_speakers)`` for the search."""
    for name, value in (("beam_size", beam_size), ("look_ahead", look_ahead),
                        ("test_iteration", test_iteration)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    for name, value in (("num_speakers", num_speakers), ("max_speakers", max_speakers)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise ConfigError(f"`{name}` must be a positive integer or None. Received: {name}={value!r}")
    if num_speakers is not None and max_speakers is not None and max_speakers < num_speakers:
        raise ConfigError(f"`max_speakers` must be >= `num_speakers`. Received: "
                          f"num_speakers={num_speakers}, max_speakers={max_speakers}")
    low = int(num_speakers) if num_speakers is not None else 0
    high = int(num_speakers if num_speakers is not None else
               (max_speakers if max_speakers is not None else np.iinfo(np.int64).max))
    return low, high


def restart_count(running_mean: str) -> int:
    """Number of leading outputs a ``running_mean`` rule replaces instead of averaging."""
    if running_mean not in RUNNING_MEANS:
        raise ConfigError(f"`running_mean` must be one of {sorted(RUNNING_MEANS)}. "
                          f"Received: running_mean={running_mean!r}")
    return RUNNING_MEANS[running_mean]


def _check_weights(weights: DecoderWeights) -> None:
    p0 = weights.transition_bias
    if p0 is None or not 0.0 < float(p0) < 1.0:
        raise ConfigError("`transition_bias` must be strictly between 0 and 1 for decoding "
                          f"(fit the model or set it). Received: transition_bias={p0!r}")
    if not float(weights.crp_alpha) > 0.0:
        raise ConfigError(f"`crp_alpha` must be > 0. Received: crp_alpha={weights.crp_alpha!r}")
    if not np.all(np.asarray(weights.sigma2) > 0):
        raise ConfigError("every `sigma2` value must be > 0")


class _NodePool:
    """Growable store of immutable speaker states shared by all beams.

    ``running_mean`` picks the outputs each state's mean holds (see the module docstring).
    """

    ARRAYS = ("hidden", "sums", "means", "counts", "consumed")

    def __init__(self, weights: DecoderWeights, running_mean: str = "uisrnn", capacity: int = 256):
        depth, size, dim = weights.depth, weights.hidden_size, weights.observation_dim
        self.weights = weights
        self.restart = restart_count(running_mean)
        self.hidden = np.empty((capacity, depth, size), dtype=weights.dtype)
        self.sums = np.empty((capacity, dim), dtype=weights.dtype)
        self.means = np.empty((capacity, dim), dtype=weights.dtype)
        self.counts = np.empty(capacity, dtype=np.int64)  # outputs in the running sum
        self.consumed = np.empty(capacity, dtype=np.int64)  # entries of the speaker so far
        root_hidden, root_output = weights.root_state()
        self.hidden[ROOT] = root_hidden
        self.sums[ROOT] = root_output
        self.means[ROOT] = root_output
        self.counts[ROOT] = 1
        self.consumed[ROOT] = 0
        self.size = 1

    def _reserve(self, extra: int) -> None:
        need = self.size + extra
        if need <= len(self.counts):
            return
        capacity = max(need, 2 * len(self.counts))
        for name in self.ARRAYS:
            old = getattr(self, name)
            new = np.empty((capacity,) + old.shape[1:], dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)

    def advance(self, parents: np.ndarray, input_rows: np.ndarray, keys: np.ndarray | None = None) -> np.ndarray:
        """New nodes: each parent node after one more entry, in one batched GRU call.

        Parameters
        ----------
        parents : ndarray of shape (N,), int
        input_rows : ndarray of shape (3H,) shared by all rows, or (N, 3H)
            Projected entries (:meth:`DecoderWeights.project_inputs`).
        keys : ndarray of shape (N,), int, optional
            Which entry each row consumes; rows with equal (parent, key) are computed once.
            Without keys all rows consume the same entry.

        Returns
        -------
        ndarray of shape (N,), the new node ids aligned with ``parents``
        """
        pairs = zip(parents.tolist(), keys.tolist()) if keys is not None else parents.tolist()
        slots: dict = {}
        inverse = np.array([slots.setdefault(pair, len(slots)) for pair in pairs], dtype=np.int64)
        first = np.empty(len(slots), dtype=np.int64)
        first[inverse] = np.arange(len(inverse))  # any row of each group represents it
        unique = parents[first]
        rows = input_rows[None] if input_rows.ndim == 1 else input_rows[first]
        hidden, output = self.weights.run_rnn(rows, self.hidden[unique])
        start = self.size
        self._reserve(len(unique))
        stop = start + len(unique)
        self.hidden[start:stop] = hidden
        consumed = self.consumed[unique] + 1
        restart = consumed <= self.restart
        sums = np.where(restart[:, None], output, self.sums[unique] + output)
        counts = np.where(restart, 1, self.counts[unique] + 1)
        self.sums[start:stop] = sums
        self.means[start:stop] = sums / counts[:, None]
        self.counts[start:stop] = counts
        self.consumed[start:stop] = consumed
        self.size = stop
        return start + inverse

    def compact(self, node_tables: list[np.ndarray]) -> list[np.ndarray]:
        """Drop nodes no table references (-1 = empty); returns the renumbered tables."""
        live = np.unique(np.concatenate([[ROOT]] + [table[table >= 0] for table in node_tables]))
        remap = np.full(self.size, -1, dtype=np.int64)
        remap[live] = np.arange(len(live))
        for name in self.ARRAYS:
            array = getattr(self, name)
            array[: len(live)] = array[live]
        self.size = len(live)
        return [np.where(table >= 0, remap[np.maximum(table, 0)], -1) for table in node_tables]


@dataclasses.dataclass
class _Hypotheses:
    """A set of (partial) hypotheses as parallel arrays, one row each."""

    nodes: np.ndarray        # (M, K) int64 node id per speaker, -1 where the speaker is unused
    blocks: np.ndarray       # (M, K) int64 number of turns per speaker
    num_speakers: np.ndarray  # (M,) int64
    last: np.ndarray         # (M,) int64 speaker of the previous entry, -1 at the start
    scores: np.ndarray       # (M,) float64 negative log-likelihood
    origin: np.ndarray       # (M,) int64 row of the beam this hypothesis extends
    choices: np.ndarray      # (M, j) int64 speakers chosen inside the current step

    @classmethod
    def start(cls) -> "_Hypotheses":
        return cls(nodes=np.zeros((1, 0), np.int64), blocks=np.zeros((1, 0), np.int64),
                   num_speakers=np.zeros(1, np.int64), last=np.full(1, -1, np.int64),
                   scores=np.zeros(1), origin=np.zeros(1, np.int64),
                   choices=np.zeros((1, 0), np.int64))


class BeamSearchDecoder:
    """Vectorized UIS-RNN beam search over one stream of entries.

    Feed entries with :meth:`step` (``look_ahead`` entries at a time), then read
    :meth:`best_labels`. :func:`decode_sequence` wraps this for a whole sequence.

    Parameters
    ----------
    weights : DecoderWeights
    beam_size : int
    min_speakers, max_speakers : int
        Every hypothesis opens at most ``max_speakers`` speakers, and at least ``min_speakers``
        by the end of the stream (needs ``total_entries``).
    total_entries : int, optional
        Length of the whole stream, when known (needed for ``min_speakers``).
    running_mean : {"uisrnn", "training"}
        Which network outputs predict a speaker's next entry (see the module docstring);
        ignored when a shared ``pool`` is given (the pool's rule applies).
    """

    def __init__(self, weights: DecoderWeights, beam_size: int = 10, *,
                 min_speakers: int = 0, max_speakers: int | None = None,
                 total_entries: int | None = None, pool: _NodePool | None = None,
                 running_mean: str = "uisrnn"):
        _check_weights(weights)
        self.weights = weights
        self.beam_size = int(beam_size)
        self.min_speakers = int(min_speakers)
        self.max_speakers = np.iinfo(np.int64).max if max_speakers is None else int(max_speakers)
        self.total_entries = total_entries
        self.position = 0
        self._owns_pool = pool is None
        self._pool = _NodePool(weights, running_mean) if pool is None else pool
        self._beams = _Hypotheses.start()
        self._history: list[tuple[np.ndarray, np.ndarray]] = []
        self._compact_above = COMPACT_ABOVE
        p0 = float(weights.transition_bias)
        alpha = float(weights.crp_alpha)
        self._cost_stay = -np.log1p(-p0)
        self._cost_switch = -np.log(p0)
        self._cost_new = -np.log(p0) - np.log(alpha)
        self._alpha = alpha
        self._half_precision = 0.5 / np.asarray(weights.sigma2, dtype=np.float64)

    # -- one entry -------------------------------------------------------------------------
    def _candidates(self, hyp: _Hypotheses, entry: np.ndarray, position: int):
        """Score all (hypothesis, speaker) extensions by one entry.

        Returns row-major flat arrays over the valid pairs: hypothesis row, speaker, score and
        the node the speaker's state comes from (ROOT for a new speaker).
        """
        rows, width = hyp.nodes.shape
        speakers = np.arange(width + 1)
        count = hyp.num_speakers[:, None]
        existing = speakers[None, :] < count
        opening = speakers[None, :] == count
        new_ok = hyp.num_speakers < self.max_speakers
        if self.total_entries is None:
            stay_ok = np.ones(rows, dtype=bool)
        else:
            remaining = self.total_entries - position - 1
            stay_ok = remaining >= self.min_speakers - hyp.num_speakers
        valid = (existing & stay_ok[:, None]) | (opening & new_ok[:, None])

        padded_nodes = np.concatenate([hyp.nodes, np.full((rows, 1), -1, np.int64)], axis=1)
        source = np.where(existing, padded_nodes, ROOT)
        flat_rows, flat_speakers = np.nonzero(valid)
        flat_source = source[flat_rows, flat_speakers]

        diff = (self._pool.means[flat_source] - entry).astype(np.float64, copy=False)
        fit_cost = (diff * diff) @ self._half_precision

        padded_blocks = np.concatenate([hyp.blocks, np.zeros((rows, 1), np.int64)], axis=1)
        log_norm = np.log(hyp.blocks.sum(axis=1) + self._alpha)
        blocks = padded_blocks[flat_rows, flat_speakers]
        stay = flat_speakers == hyp.last[flat_rows]
        new = ~existing[flat_rows, flat_speakers]
        switch_cost = self._cost_switch - np.log(np.maximum(blocks, 1)) + log_norm[flat_rows]
        transition = np.where(stay, self._cost_stay,
                              np.where(new, self._cost_new + log_norm[flat_rows], switch_cost))
        scores = hyp.scores[flat_rows] + fit_cost + transition
        return flat_rows, flat_speakers, scores, flat_source

    @staticmethod
    def _extend(hyp: _Hypotheses, rows, speakers, scores, new_ids) -> _Hypotheses:
        """Hypotheses ``hyp[rows]`` extended by ``speakers`` whose new states are ``new_ids``."""
        picked = len(rows)
        width = hyp.nodes.shape[1]
        take = np.arange(picked)
        nodes = np.concatenate([hyp.nodes[rows], np.full((picked, 1), -1, np.int64)], axis=1)
        blocks = np.concatenate([hyp.blocks[rows], np.zeros((picked, 1), np.int64)], axis=1)
        nodes[take, speakers] = new_ids
        blocks[take, speakers] += speakers != hyp.last[rows]
        num_speakers = np.maximum(hyp.num_speakers[rows], speakers + 1)
        used = max(width, int(num_speakers.max()))
        return _Hypotheses(
            nodes=nodes[:, :used], blocks=blocks[:, :used], num_speakers=num_speakers,
            last=speakers.astype(np.int64), scores=scores, origin=hyp.origin[rows],
            choices=np.concatenate([hyp.choices[rows], speakers[:, None]], axis=1))

    # -- public ----------------------------------------------------------------------------
    def step_requests(self, entries: np.ndarray, input_proj: np.ndarray):
        """One look-ahead step as a generator, for running many decoders in lockstep.

        Yields ``(parent_nodes, input_row)``: the GRU updates the step needs next; expects the
        new node ids (from ``pool.advance``) sent back. Stops when the step is done.
        """
        beams = self._beams
        hyp = dataclasses.replace(beams, origin=np.arange(len(beams.scores)),
                                  choices=np.zeros((len(beams.scores), 0), np.int64))
        last_index = len(entries) - 1
        for index, entry in enumerate(entries):
            rows, speakers, scores, sources = self._candidates(hyp, entry, self.position + index)
            if index == last_index:
                keep = np.argsort(scores, kind="stable")[: self.beam_size]
                rows, speakers, scores, sources = rows[keep], speakers[keep], scores[keep], sources[keep]
            new_ids = yield sources, input_proj[index]
            hyp = self._extend(hyp, rows, speakers, scores, new_ids)
        self._history.append((hyp.origin, hyp.choices))
        self._beams = hyp
        self.position += len(entries)

    def step(self, entries: np.ndarray, input_proj: np.ndarray | None = None) -> None:
        """Decide ``len(entries)`` entries jointly (one look-ahead step).

        Parameters
        ----------
        entries : ndarray of shape (L, D)
        input_proj : ndarray of shape (L, 3H), optional
            ``weights.project_inputs(entries)`` when already computed.
        """
        if input_proj is None:
            input_proj = self.weights.project_inputs(entries)
        requests = self.step_requests(entries, input_proj)
        try:
            parents, row = next(requests)
            while True:
                parents, row = requests.send(self._pool.advance(parents, row))
        except StopIteration:
            pass
        pool = self._pool
        if self._owns_pool and pool.size > max(self._compact_above, 4 * (self._beams.nodes.size + 1)):
            self._beams.nodes = pool.compact([self._beams.nodes])[0]

    def best_labels(self, last: int | None = None) -> list[int]:
        """Speaker labels of the best hypothesis (optionally only the last ``last`` entries)."""
        chunks = []
        row = 0
        wanted = self.position if last is None else min(int(last), self.position)
        have = 0
        for origin, choices in reversed(self._history):
            chunks.append(choices[row])
            have += choices.shape[1]
            row = int(origin[row])
            if have >= wanted:
                break
        if not chunks:
            return []
        labels = np.concatenate(chunks[::-1])
        return [int(v) for v in labels[len(labels) - wanted:]]

    @property
    def best_score(self) -> float:
        """Negative log-likelihood of the best hypothesis so far."""
        return float(self._beams.scores[0])


def _as_sequence(sequence, dim: int, dtype) -> np.ndarray:
    array = np.asarray(sequence)
    if array.dtype.kind != "f":
        raise DataError(f"test_sequence must be a float array. Received dtype={array.dtype}")
    if array.ndim != 2:
        raise DataError(f"test_sequence must be 2-dim (entries, observation_dim). "
                        f"Received shape={array.shape}")
    if array.shape[1] != dim:
        raise DataError(f"test_sequence has {array.shape[1]} columns but the model's "
                        f"observation_dim is {dim}")
    if not np.all(np.isfinite(array)):
        raise DataError("test_sequence contains NaN or Inf values")
    return np.ascontiguousarray(array, dtype=dtype)


def decode_sequence(weights: DecoderWeights, sequence: np.ndarray, *, beam_size: int = 10,
                    look_ahead: int = 1, test_iteration: int = 2, num_speakers: int | None = None,
                    max_speakers: int | None = None, running_mean: str = "uisrnn") -> list[int]:
    """Speaker labels for one sequence of embeddings.

    Parameters
    ----------
    weights : DecoderWeights
    sequence : ndarray of shape (T, D), float
    beam_size, look_ahead, test_iteration : int
        As in the inference options: the sequence is decoded ``test_iteration`` times in a row
        and the labels of the last pass are returned.
    num_speakers : int, optional
        Exact number of speakers (capped at the number of entries).
    max_speakers : int, optional
        Upper bound on the number of speakers.
    running_mean : {"uisrnn", "training"}
        Which network outputs predict a speaker's next entry (module docstring).

    Returns
    -------
    list of int, length T
        Speakers numbered 0, 1, ... in order of first appearance over all passes.
    """
    low, high = check_inference_options(beam_size, look_ahead, test_iteration,
                                        num_speakers, max_speakers)
    sequence = _as_sequence(sequence, weights.observation_dim, weights.dtype)
    length = len(sequence)
    if length == 0:
        return []
    total = length * test_iteration
    decoder = BeamSearchDecoder(weights, beam_size, min_speakers=min(low, total),
                                max_speakers=high, total_entries=total, running_mean=running_mean)
    with _single_thread_blas():
        projected = weights.project_inputs(sequence)
        tiled = np.tile(sequence, (test_iteration, 1))
        tiled_proj = np.tile(projected, (test_iteration, 1))
        for start in range(0, total, look_ahead):
            stop = min(start + look_ahead, total)
            decoder.step(tiled[start:stop], tiled_proj[start:stop])
    return decoder.best_labels(last=length)


def per_sequence_option(value, count: int, name: str) -> list:
    """One option value per sequence: ``value`` repeated, or a list of ``count`` values."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != count:
            raise ConfigError(f"`{name}` has {len(value)} values for {count} sequences")
        return list(value)
    return [value] * count


def decode_batch(weights: DecoderWeights, sequences: Sequence[np.ndarray], *, beam_size: int = 10,
                 look_ahead: int = 1, test_iteration: int = 2, num_speakers=None,
                 max_speakers=None, running_mean: str = "uisrnn") -> list[list[int]]:
    """:func:`decode_sequence` for many sequences at once, with the same results.

    The sequences are decoded in lockstep: every round advances all unfinished searches by one
    step and runs the GRU updates of all of them in one batched call, which uses the CPU far
    better than one search at a time. ``num_speakers`` / ``max_speakers`` may be one value or
    one per sequence.
    """
    count = len(sequences)
    limits = (per_sequence_option(num_speakers, count, "num_speakers"),
              per_sequence_option(max_speakers, count, "max_speakers"))
    bounds = [check_inference_options(beam_size, look_ahead, test_iteration, n, m) for n, m in zip(*limits)]
    arrays = [_as_sequence(seq, weights.observation_dim, weights.dtype) for seq in sequences]
    pool = _NodePool(weights, running_mean)
    decoders, data = {}, {}
    with _single_thread_blas():
        for index, (array, (low, high)) in enumerate(zip(arrays, bounds)):
            total = len(array) * test_iteration
            if total:
                decoders[index] = BeamSearchDecoder(weights, beam_size, min_speakers=min(low, total),
                                                    max_speakers=high, total_entries=total, pool=pool)
                data[index] = (np.tile(array, (test_iteration, 1)),
                               np.tile(weights.project_inputs(array), (test_iteration, 1)))
        start = 0
        while True:
            running = []
            for index, decoder in decoders.items():
                entries, projected = data[index]
                if start < len(entries):
                    running.append(decoder.step_requests(entries[start:start + look_ahead],
                                                         projected[start:start + look_ahead]))
            if not running:
                break
            requests = [next(gen) for gen in running]
            while running:
                parents = np.concatenate([parents for parents, _ in requests])
                rows = np.stack([row for _, row in requests])
                keys = np.repeat(np.arange(len(requests)), [len(parents) for parents, _ in requests])
                new_ids = pool.advance(parents, rows[keys], keys)
                offsets = np.cumsum([0] + [len(parents) for parents, _ in requests])
                still, pending = [], []
                for number, gen in enumerate(running):
                    try:
                        pending.append(gen.send(new_ids[offsets[number]:offsets[number + 1]]))
                        still.append(gen)
                    except StopIteration:
                        pass
                running, requests = still, pending
            start += look_ahead
            live = sum(decoder._beams.nodes.size for decoder in decoders.values())
            if pool.size > max(COMPACT_ABOVE, 4 * (live + 1)):
                tables = pool.compact([decoder._beams.nodes for decoder in decoders.values()])
                for decoder, table in zip(decoders.values(), tables):
                    decoder._beams.nodes = table
    return [decoders[i].best_labels(last=len(arrays[i])) if i in decoders else [] for i in range(count)]


class OnlineDecoder:
    """Streaming decoding: one entry at a time, a label for it at once.

    Each :meth:`push` runs one beam-search step and returns the speaker the current best
    hypothesis gives to that entry. Later entries can make another hypothesis the best one;
    :attr:`labels` always holds the best hypothesis' labels of all entries so far.
    Streaming decodes a single pass (no ``test_iteration`` repeats, no look-ahead).
    """

    def __init__(self, weights: DecoderWeights, beam_size: int = 10, *,
                 max_speakers: int | None = None, running_mean: str = "uisrnn"):
        _, high = check_inference_options(beam_size, 1, 1, None, max_speakers)
        self._weights = weights
        self._decoder = BeamSearchDecoder(weights, beam_size, max_speakers=high, running_mean=running_mean)

    def push(self, entry: np.ndarray) -> int:
        """Decode one entry of shape (D,); returns its provisional speaker label."""
        row = _as_sequence(np.asarray(entry)[None, :] if np.ndim(entry) == 1 else entry,
                           self._weights.observation_dim, self._weights.dtype)
        if len(row) != 1:
            raise DataError(f"push() takes one entry of shape (D,). Received shape={np.shape(entry)}")
        with _single_thread_blas():
            self._decoder.step(row)
        return self._decoder.best_labels(last=1)[0]

    def extend(self, entries: Iterable[np.ndarray]) -> Iterator[int]:
        """Push each entry in turn, yielding its provisional label."""
        for entry in entries:
            yield self.push(entry)

    @property
    def labels(self) -> list[int]:
        """Best labels of all entries pushed so far (may revise earlier provisional labels)."""
        return self._decoder.best_labels()

    def __len__(self) -> int:
        return self._decoder.position
