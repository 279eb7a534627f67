"""Target / context / negative window sampling from a :class:`~unspeech.feature_store.FeatureStore`.

A batch holds ``batch_size`` groups. For each group an utterance and a start frame are drawn;
the span ``[L contexts][target][R contexts]`` (``group_length`` frames) is gathered at once
(with ``context_gap``, a random gap of up to that many frames separates the target from each
block of contexts),
then ``K`` negative windows are gathered from *other* utterances (other utterances of the
same speaker when ``spk2utt`` is given). All gathers are single numpy fancy-indexing
operations on the store's contiguous frame array, so a batch costs a few array copies.

Randomness is counter based: batch ``i`` of stream ``s`` is drawn with
``numpy.random.default_rng([seed, s, i])``. The sampler state that a checkpoint stores is
therefore just ``(seed, stream, next batch index)``, it is exact however far the tf.data
prefetch has run ahead, and batches can be produced in parallel.

Utterances shorter than ``group_length`` frames are skipped (and counted); with ``spk2utt``,
speakers with fewer than two usable utterances or fewer than ``minimum_speaker_length``
usable frames are skipped too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from unspeech.context.config import ContextConfig
from unspeech.errors import ConfigError, DataError

__all__ = ["ContextSampler", "SamplerStats", "split_utterances", "feature_statistics", "WINDOW_KEYS"]

log = logging.getLogger(__name__)

WINDOW_KEYS = ("targets", "contexts", "negatives", "negative_targets")


@dataclass
class SamplerStats:
    """What a sampler uses and what it skipped."""

    utterances: int
    usable_utterances: int
    skipped_short: int
    speakers: int = 0
    skipped_speakers: int = 0
    usable_frames: int = 0

    def describe(self, name: str, group_length: int) -> str:
        text = (f"{name}: {self.usable_utterances} of {self.utterances} utterances usable "
                f"({self.usable_frames} frames); {self.skipped_short} skipped as shorter than {group_length} frames")
        if self.speakers or self.skipped_speakers:
            text += f"; {self.speakers} speakers, {self.skipped_speakers} skipped (one utterance or too few frames)"
        return text


def _speaker_index(store, spk2utt: Mapping[str, Sequence[str]], source: str) -> np.ndarray:
    """Speaker number of every utterance of ``store`` (-1 where spk2utt does not name it)."""
    spk_of = np.full(len(store), -1, dtype=np.int64)
    missing = 0
    for s, (spk, utts) in enumerate(sorted(spk2utt.items())):
        for utt in utts:
            if utt in store:
                spk_of[store.index(utt)] = s
            else:
                missing += 1
    if missing:
        log.warning("%s: %d utterances of spk2utt are not in the features (ignored)", source, missing)
    uncovered = int((spk_of < 0).sum())
    if uncovered == len(store):
        raise DataError(f"{source}: no utterance of the features appears in spk2utt (different corpus?)")
    if uncovered:
        log.warning("%s: %d utterances have no speaker in spk2utt and are not used", source, uncovered)
    return spk_of


class ContextSampler:
    """Draws batches of groups (target, contexts, negatives) from a feature store.

    Parameters
    ----------
    store : FeatureStore
        Frames of all utterances, ``store.data`` of shape (total_frames, feat_size).
    config : ContextConfig
        Window lengths, context counts, negatives, batch size, seed.
    utt_indices : sequence of int, optional
        Use only these utterances of the store (a train or validation split).
    spk2utt : mapping speaker -> list of utterance ids, optional
        Enables same-speaker negatives.
    stream : int
        Separates independent random streams of one seed (e.g. 0 = training, 1 = validation).
    batch_size : int, optional
        Groups per batch (default ``config.batch_size``).
    name : str
        Used in log lines and error messages.
    """

    def __init__(self, store, config: ContextConfig, utt_indices: Sequence[int] | None = None,
                 spk2utt: Mapping[str, Sequence[str]] | None = None, stream: int = 0,
                 batch_size: int | None = None, name: str = "sampler"):
        if store.dim != config.feat_size:
            raise ConfigError(
                f"`feat_size` (--num_filters) is {config.feat_size} but {name} features have {store.dim} dimensions"
            )
        self.store = store
        self.config = config
        self.stream = int(stream)
        self.seed = int(config.seed)
        self.batch_size = int(batch_size or config.batch_size)
        self.name = name
        self.next_batch = 0
        span = config.group_length
        lengths = store.lengths
        candidates = np.arange(len(store)) if utt_indices is None else np.asarray(utt_indices, dtype=np.int64)
        long_enough = candidates[lengths[candidates] >= span]
        self._offsets = store.offsets[:-1]
        self._lengths = lengths
        self._spk_start = self._spk_count = None
        stats = SamplerStats(len(candidates), len(long_enough), len(candidates) - len(long_enough))
        if spk2utt is not None:
            spk_of = _speaker_index(store, spk2utt, name)
            long_enough = long_enough[spk_of[long_enough] >= 0]
            order = np.argsort(spk_of[long_enough], kind="stable")
            utts = long_enough[order]
            _, starts, counts = np.unique(spk_of[utts], return_index=True, return_counts=True)
            frames = np.add.reduceat(lengths[utts], starts) if len(utts) else np.zeros(0, np.int64)
            keep = (counts >= 2) & (frames >= config.minimum_speaker_length)
            stats.skipped_speakers = int((~keep).sum())
            stats.speakers = int(keep.sum())
            members = [utts[s:s + c] for s, c, k in zip(starts, counts, keep) if k]
            self._members = np.concatenate(members) if members else np.zeros(0, np.int64)
            self._spk_count = counts[keep].astype(np.int64)
            if not len(self._spk_count):
                raise DataError(
                    f"{name}: no speaker has two or more utterances of at least {span} frames "
                    f"(window_length + (left_contexts + right_contexts) * window_neg_length)"
                    + (f" and {config.minimum_speaker_length} frames in total" if config.minimum_speaker_length else "")
                )
            self._spk_start = np.concatenate([[0], np.cumsum(self._spk_count)[:-1]]).astype(np.int64)
            # speaker slot and position within the speaker of every member utterance
            self._slot_of = np.repeat(np.arange(len(self._spk_count)), self._spk_count)
            self._pos_in_spk = np.arange(len(self._members)) - np.repeat(self._spk_start, self._spk_count)
        else:
            self._members = long_enough
            if len(self._members) < 2:
                raise DataError(
                    f"{name}: {len(self._members)} of {len(candidates)} utterances are at least {span} frames long "
                    f"(window_length + (left_contexts + right_contexts) * window_neg_length); "
                    "need two or more (negatives come from another utterance)"
                )
        stats.usable_utterances = len(self._members)
        stats.usable_frames = int(lengths[self._members].sum())
        self.stats = stats

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict[str, int]:
        """``{"seed", "stream", "next_batch"}``: everything needed to continue exactly."""
        return {"seed": self.seed, "stream": self.stream, "next_batch": self.next_batch}

    def set_state(self, state: Mapping[str, int]) -> None:
        if int(state["seed"]) != self.seed or int(state["stream"]) != self.stream:
            raise ConfigError(
                f"{self.name}: saved sampler state is for seed={state['seed']} stream={state['stream']}, "
                f"this sampler has seed={self.seed} stream={self.stream}"
            )
        self.next_batch = int(state["next_batch"])

    # ------------------------------------------------------------------ drawing

    def _foreign(self, rng: np.random.Generator, own: np.ndarray, k: int) -> np.ndarray:
        """``k`` utterances per row that differ from ``own`` (positions in ``_members``), shape (B, k)."""
        if self._spk_count is None:
            j = rng.integers(0, len(self._members) - 1, size=(len(own), k))
            j += j >= own[:, None]
            return self._members[j]
        slot = self._slot_of[own]
        j = rng.integers(0, (self._spk_count[slot] - 1)[:, None], size=(len(own), k))
        j += j >= self._pos_in_spk[own][:, None]
        return self._members[self._spk_start[slot][:, None] + j]

    def _gather(self, utts: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        """Windows of ``length`` frames: utts/starts of shape S -> float32 (*S, length, F)."""
        idx = (self._offsets[utts] + starts)[..., None] + np.arange(length)
        out = self.store.data[idx.reshape(-1)]
        return np.asarray(out, dtype=np.float32).reshape(*utts.shape, length, self.store.dim)

    def _random_starts(self, rng: np.random.Generator, utts: np.ndarray, length: int) -> np.ndarray:
        return rng.integers(0, self._lengths[utts] - length + 1)

    def _with_gaps(self, rng: np.random.Generator, span: np.ndarray) -> np.ndarray:
        """Close up a span of ``group_length`` frames drawn with room for the gaps: ``(B, group_length, F)`` →
        ``(B, W + C * Wn, F)``, [left contexts][target][right contexts] with a random gap (0..context_gap
        frames, per side and group) cut out between the target and each block of contexts."""
        c = self.config
        b, gap = len(span), c.context_gap
        left = c.left_contexts * c.window_neg_length
        right = c.right_contexts * c.window_neg_length
        target = left + (gap if c.left_contexts else 0)  # the target's first frame in the span
        gap_left = rng.integers(0, gap + 1, size=b) if c.left_contexts else np.zeros(b, np.int64)
        gap_right = rng.integers(0, gap + 1, size=b) if c.right_contexts else np.zeros(b, np.int64)
        rows = np.arange(b)[:, None]
        parts = [
            span[rows, (target - gap_left - left)[:, None] + np.arange(left)],
            span[:, target:target + c.window_length],
            span[rows, (target + c.window_length + gap_right)[:, None] + np.arange(right)],
        ]
        return np.concatenate(parts, axis=1)

    def sample(self, batch_index: int) -> dict[str, np.ndarray]:
        """Batch ``batch_index`` of this sampler's stream (the same arrays every time).

        Returns a dict of float32 arrays: ``targets (B, W, F)``, ``contexts (B, C, Wn, F)``,
        ``negatives (B, K, Wn, F)`` and, with ``sample_2x_neg``, ``negative_targets (B, K, W, F)``.
        """
        c = self.config
        rng = np.random.default_rng([self.seed, self.stream, int(batch_index)])
        b, k = self.batch_size, c.negative_samples
        if self._spk_count is None:
            own = rng.integers(0, len(self._members), size=b)
        else:  # speaker first, then one of its utterances
            slot = rng.integers(0, len(self._spk_count), size=b)
            own = self._spk_start[slot] + rng.integers(0, self._spk_count[slot])
        utts = self._members[own]
        span = self._gather(utts, self._random_starts(rng, utts, c.group_length), c.group_length)
        left = c.left_contexts * c.window_neg_length
        right = c.right_contexts * c.window_neg_length
        if c.context_gap:
            span = self._with_gaps(rng, span)
        targets = span[:, left:left + c.window_length]
        contexts = np.concatenate(
            [span[:, :left].reshape(b, c.left_contexts, c.window_neg_length, -1),
             span[:, left + c.window_length:left + c.window_length + right].reshape(b, c.right_contexts, c.window_neg_length, -1)],
            axis=1)
        neg_utts = self._foreign(rng, own, k)
        batch = {
            "targets": np.ascontiguousarray(targets),
            "contexts": contexts,
            "negatives": self._gather(neg_utts, self._random_starts(rng, neg_utts, c.window_neg_length), c.window_neg_length),
        }
        if c.sample_2x_neg:
            neg_t = self._foreign(rng, own, k)
            batch["negative_targets"] = self._gather(neg_t, self._random_starts(rng, neg_t, c.window_length), c.window_length)
        return batch

    def __iter__(self):
        """Endless iterator over batches from ``next_batch`` on (advances the state)."""
        while True:
            batch = self.sample(self.next_batch)
            self.next_batch += 1
            yield batch

    def keys(self) -> tuple[str, ...]:
        return WINDOW_KEYS if self.config.sample_2x_neg else WINDOW_KEYS[:3]

    def element_spec(self) -> dict:
        """Shapes of one batch as ``tf.TensorSpec`` (imports TensorFlow)."""
        import tensorflow as tf

        c, b, f = self.config, self.batch_size, self.config.feat_size
        shapes = {
            "targets": (b, c.window_length, f),
            "contexts": (b, c.num_contexts, c.window_neg_length, f),
            "negatives": (b, c.negative_samples, c.window_neg_length, f),
            "negative_targets": (b, c.negative_samples, c.window_length, f),
        }
        return {key: tf.TensorSpec(shapes[key], tf.float32) for key in self.keys()}

    def dataset(self, start: int = 0, count: int | None = None, parallel: int = 2):
        """A ``tf.data.Dataset`` of batches ``start, start + 1, ...`` (endless unless ``count``),
        produced by ``parallel`` workers in order and prefetched."""
        import tensorflow as tf

        stop = start + count if count is not None else np.iinfo(np.int64).max
        return self.map_batches(tf.data.Dataset.range(start, stop), parallel)

    def map_batches(self, indices, parallel: int = 2):
        """Turn a ``tf.data.Dataset`` of batch indices (int64) into prefetched batch dicts."""
        import tensorflow as tf

        spec = self.element_spec()
        keys = self.keys()

        def draw(i):
            batch = self.sample(int(i))
            return tuple(batch[key] for key in keys)

        def to_dict(i):
            arrays = tf.numpy_function(draw, [i], [tf.float32] * len(keys), stateful=False)
            return {key: tf.ensure_shape(a, spec[key].shape) for key, a in zip(keys, arrays)}

        return indices.map(to_dict, num_parallel_calls=parallel, deterministic=True).prefetch(tf.data.AUTOTUNE)


def split_utterances(store, config: ContextConfig, spk2utt: Mapping[str, Sequence[str]] | None = None,
                     seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split the store's utterances into training and held-out validation indices.

    Without ``spk2utt`` a ``validation_fraction`` of the utterances long enough for a group is
    held out; with it, a fraction of the speakers (all their utterances), so that validation
    measures unseen speakers. Returns ``(train_indices, validation_indices)``, int64, sorted;
    validation is empty when ``validation_fraction`` is 0.
    """
    everything = np.arange(len(store), dtype=np.int64)
    if config.validation_fraction <= 0:
        return everything, np.zeros(0, np.int64)
    rng = np.random.default_rng([config.seed if seed is None else seed, 7])
    usable = everything[store.lengths >= config.group_length]
    if spk2utt is None:
        n_val = max(2, int(round(config.validation_fraction * len(usable))))
        if len(usable) - n_val < 2:
            raise ConfigError(
                f"only {len(usable)} utterances are long enough for a group ({config.group_length} frames): too few to hold "
                f"out validation_fraction={config.validation_fraction}; use --validation_fraction 0"
            )
        val = rng.choice(usable, size=n_val, replace=False)
    else:
        speakers = sorted(spk2utt)
        n_val = max(1, int(round(config.validation_fraction * len(speakers))))
        if len(speakers) - n_val < 1:
            raise ConfigError(
                f"spk2utt has {len(speakers)} speakers: too few to hold out validation_fraction={config.validation_fraction} "
                "of them; use --validation_fraction 0"
            )
        chosen = rng.choice(len(speakers), size=n_val, replace=False)
        val_utts = {u for i in chosen for u in spk2utt[speakers[i]] if u in store}
        val = np.array(sorted(store.index(u) for u in val_utts), dtype=np.int64)
    mask = np.zeros(len(store), bool)
    mask[val] = True
    return everything[~mask], np.sort(val)


def feature_statistics(store, utt_indices: Sequence[int] | None = None, max_frames: int = 2_000_000,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of the frames of ``utt_indices`` (all by default).

    At most about ``max_frames`` frames are read: beyond that, utterances are drawn at random
    (seeded), so statistics of a large memory-mapped corpus cost one bounded read.
    Returns two float64 arrays of shape (dim,).
    """
    utts = np.arange(len(store)) if utt_indices is None else np.asarray(utt_indices, dtype=np.int64)
    lengths = store.lengths[utts]
    if lengths.sum() > max_frames:
        order = np.random.default_rng([seed, 11]).permutation(len(utts))
        keep = order[: max(1, int(np.searchsorted(np.cumsum(lengths[order]), max_frames)) + 1)]
        utts = np.sort(utts[keep])
    total = np.zeros(store.dim)
    total_sq = np.zeros(store.dim)
    count = 0
    for u in utts:
        x = np.asarray(store[int(u)], dtype=np.float64)
        total += x.sum(axis=0)
        total_sq += np.square(x).sum(axis=0)
        count += len(x)
    if count == 0:
        raise DataError("no frames to compute feature statistics from")
    mean = total / count
    return mean, np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
