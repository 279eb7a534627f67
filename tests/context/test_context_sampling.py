"""ContextSampler: window geometry, negatives, speakers, determinism, skipping, tf.data, splits."""

import dataclasses

import numpy as np
import pytest

from context_synth import position_corpus, speaker_corpus
from unspeech.context.config import ContextConfig
from unspeech.context.sampling import ContextSampler, split_utterances
from unspeech.errors import ConfigError, DataError

CFG = ContextConfig(feat_size=3, window_length=6, window_neg_length=4, left_contexts=2, right_contexts=1,
                    negative_samples=3, batch_size=16, seed=5)


def _decode(windows):
    """(..., T, F) windows of position_corpus -> utterance (...,) and first frame (...,)."""
    v = windows[..., 0, 0].astype(np.int64)
    return v // 100000, v % 100000


def test_contexts_are_adjacent_and_negatives_foreign():
    store = position_corpus([40, 5, 60, 33, 80])
    sampler = ContextSampler(store, CFG)
    batch = sampler.sample(0)
    assert batch["targets"].shape == (16, 6, 3) and batch["contexts"].shape == (16, 3, 4, 3)
    assert batch["negatives"].shape == (16, 3, 4, 3) and "negative_targets" not in batch
    utt, start = _decode(batch["targets"])
    # every window is a run of consecutive frames of one utterance
    frames = batch["targets"][..., 0].astype(np.int64) % 100000
    assert np.all(np.diff(frames, axis=1) == 1)
    c_utt, c_start = _decode(batch["contexts"])
    assert np.all(c_utt == utt[:, None])
    np.testing.assert_array_equal(c_start, np.stack([start - 8, start - 4, start + 6], axis=1))
    n_utt, n_start = _decode(batch["negatives"])
    assert np.all(n_utt != utt[:, None])
    lengths = store.lengths
    assert np.all(n_start + 4 <= lengths[n_utt]) and np.all(c_start >= 0)
    assert 1 not in set(utt) | set(n_utt.ravel())  # the 5-frame utterance is shorter than a group
    assert sampler.stats.skipped_short == 1 and sampler.stats.usable_utterances == 4


def test_context_gap_moves_each_block_away_from_the_target():
    config = dataclasses.replace(CFG, context_gap=5, batch_size=64)
    assert config.group_length == 6 + 3 * 4 + 2 * 5
    store = position_corpus([28, 40, 60, 27])
    sampler = ContextSampler(store, config)
    assert sampler.stats.skipped_short == 1  # 27 frames < 28
    batch = sampler.sample(0)
    assert batch["targets"].shape == (64, 6, 3) and batch["contexts"].shape == (64, 3, 4, 3)
    utt, start = _decode(batch["targets"])
    c_utt, c_start = _decode(batch["contexts"])
    assert np.all(c_utt == utt[:, None])
    gap_left = start - 4 - c_start[:, 1]
    gap_right = c_start[:, 2] - (start + 6)
    np.testing.assert_array_equal(c_start[:, 0], c_start[:, 1] - 4)  # one block: contexts stay adjacent
    assert gap_left.min() == 0 and gap_left.max() == 5 and gap_right.min() == 0 and gap_right.max() == 5
    assert np.all(c_start[:, 0] >= 0) and np.all(c_start[:, 2] + 4 <= store.lengths[utt])
    with pytest.raises(ConfigError, match="context_gap"):
        dataclasses.replace(CFG, context_gap=-1).validate()


def test_2x_negatives_pair_foreign_targets():
    config = dataclasses.replace(CFG, sample_2x_neg=True)
    batch = ContextSampler(position_corpus([40, 50, 60]), config).sample(3)
    utt, _ = _decode(batch["targets"])
    nt_utt, _ = _decode(batch["negative_targets"])
    assert batch["negative_targets"].shape == (16, 3, 6, 3)
    assert np.all(nt_utt != utt[:, None])


def test_same_speaker_negatives():
    store = position_corpus([40] * 9 + [5])
    spk2utt = {"a": ["utt000", "utt001", "utt002"], "b": ["utt003", "utt004", "utt005", "utt009"],
               "c": ["utt006", "utt007"], "lonely": ["utt008"]}
    sampler = ContextSampler(store, CFG, spk2utt=spk2utt)
    speaker = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 1])
    for i in range(5):
        batch = sampler.sample(i)
        utt, _ = _decode(batch["targets"])
        n_utt, _ = _decode(batch["negatives"])
        assert np.all(speaker[n_utt] == speaker[utt][:, None]) and np.all(n_utt != utt[:, None])
        assert 8 not in utt and 9 not in utt  # single-utterance speaker and a too-short utterance
    assert (sampler.stats.speakers, sampler.stats.skipped_speakers) == (3, 1)
    strict = ContextSampler(store, dataclasses.replace(CFG, minimum_speaker_length=100), spk2utt=spk2utt)
    assert strict.stats.speakers == 2  # speaker c has 80 usable frames


def test_same_seed_same_batches_and_streams_differ():
    store, _ = speaker_corpus(n_utts=6, dim=3, min_len=30, max_len=60)
    a, b = ContextSampler(store, CFG), ContextSampler(store, CFG)
    for key in ("targets", "contexts", "negatives"):
        np.testing.assert_array_equal(a.sample(7)[key], b.sample(7)[key])
    assert not np.array_equal(a.sample(7)["targets"], a.sample(8)["targets"])
    other = ContextSampler(store, CFG, stream=1)
    assert not np.array_equal(a.sample(7)["targets"], other.sample(7)["targets"])
    reseeded = ContextSampler(store, dataclasses.replace(CFG, seed=6))
    assert not np.array_equal(a.sample(7)["targets"], reseeded.sample(7)["targets"])


def test_iteration_state_round_trip():
    store, _ = speaker_corpus(n_utts=6, dim=3, min_len=30, max_len=60)
    sampler = ContextSampler(store, CFG)
    it = iter(sampler)
    next(it), next(it)
    state = sampler.get_state()
    assert state == {"seed": 5, "stream": 0, "next_batch": 2}
    again = ContextSampler(store, CFG)
    again.set_state(state)
    np.testing.assert_array_equal(next(iter(again))["negatives"], next(it)["negatives"])
    with pytest.raises(ConfigError, match="saved sampler state is for seed=5 stream=0"):
        ContextSampler(store, CFG, stream=3).set_state(state)


def test_dataset_yields_the_same_batches():
    pytest.importorskip("tensorflow")
    store, _ = speaker_corpus(n_utts=6, dim=3, min_len=30, max_len=60)
    sampler = ContextSampler(store, dataclasses.replace(CFG, sample_2x_neg=True))
    batches = list(sampler.dataset(start=4, count=3))
    assert len(batches) == 3
    for i, batch in enumerate(batches):
        expected = sampler.sample(4 + i)
        assert set(batch) == set(expected)
        for key, value in expected.items():
            np.testing.assert_array_equal(batch[key].numpy(), value)


def test_errors_name_the_problem():
    store = position_corpus([10, 12, 30])
    with pytest.raises(DataError, match="1 of 3 utterances are at least 14 frames long .*need two or more"):
        ContextSampler(store, dataclasses.replace(CFG, window_length=2), name="tiny.ark")
    with pytest.raises(ConfigError, match="`feat_size` \\(--num_filters\\) is 40 but tiny.ark features have 3 dimensions"):
        ContextSampler(store, dataclasses.replace(CFG, feat_size=40), name="tiny.ark")
    with pytest.raises(DataError, match="no utterance of the features appears in spk2utt"):
        ContextSampler(store, CFG, spk2utt={"x": ["other"]})
    with pytest.raises(DataError, match="no speaker has two or more utterances of at least 18 frames"):
        ContextSampler(store, CFG, spk2utt={"x": ["utt000", "utt001"], "y": ["utt002"]})


def test_float16_store_gives_float32_windows():
    store, _ = speaker_corpus(n_utts=4, dim=3, min_len=30, max_len=40)
    half = type(store).from_arrays(store.utt_ids, [store[i] for i in range(len(store))], dtype="float16")
    batch = ContextSampler(half, CFG).sample(0)
    assert all(v.dtype == np.float32 for v in batch.values())


def test_split_holds_out_utterances_or_speakers():
    store, spk2utt = speaker_corpus(n_utts=40, n_speakers=8, dim=3, min_len=30, max_len=60)
    config = dataclasses.replace(CFG, validation_fraction=0.25)
    train, val = split_utterances(store, config)
    assert len(val) == 10 and len(train) == 30 and not set(train) & set(val)
    np.testing.assert_array_equal(split_utterances(store, config)[1], val)  # seeded
    train, val = split_utterances(store, config, spk2utt)
    spk_of = {u: s for s, us in spk2utt.items() for u in us}
    val_speakers = {spk_of[store.utt_ids[i]] for i in val}
    assert len(val_speakers) == 2 and not val_speakers & {spk_of[store.utt_ids[i]] for i in train}
    train, val = split_utterances(store, dataclasses.replace(CFG, validation_fraction=0.0))
    assert len(train) == 40 and len(val) == 0
    with pytest.raises(ConfigError, match="too few to hold out validation_fraction=0.25.*--validation_fraction 0"):
        split_utterances(position_corpus([40, 40, 40]), config)


def test_feature_statistics():
    from unspeech.context.sampling import feature_statistics

    store, _ = speaker_corpus(n_utts=10, dim=3, min_len=30, max_len=60)
    mean, std = feature_statistics(store, [1, 4, 5])
    frames = np.concatenate([store[1], store[4], store[5]])
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, frames.std(axis=0), rtol=1e-5)
    sub_mean, _ = feature_statistics(store, max_frames=100, seed=1)  # a bounded random subset of utterances
    assert sub_mean.shape == (3,) and not np.allclose(sub_mean, feature_statistics(store)[0])
