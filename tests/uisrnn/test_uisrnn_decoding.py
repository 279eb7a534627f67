"""The vectorized beam search against a plain one-hypothesis-at-a-time decoder."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest

from unspeech.errors import ConfigError, DataError
from unspeech.uisrnn import decoding
from unspeech.uisrnn.decoding import BeamSearchDecoder, DecoderWeights, OnlineDecoder, decode_batch, decode_sequence


def random_weights(seed=0, dim=4, hidden=6, depth=1, transition_bias=0.2, dtype=np.float64):
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(hidden)

    def uniform(*shape):
        return rng.uniform(-scale, scale, shape).astype(dtype)

    return DecoderWeights(
        kernels=tuple(uniform(dim if layer == 0 else hidden, 3 * hidden) for layer in range(depth)),
        recurrent_kernels=tuple(uniform(hidden, 3 * hidden) for _ in range(depth)),
        biases=tuple(uniform(2, 3 * hidden) for _ in range(depth)),
        dense1_kernel=uniform(hidden, hidden), dense1_bias=uniform(hidden),
        dense2_kernel=uniform(hidden, dim), dense2_bias=uniform(dim),
        init_hidden=uniform(depth, hidden),
        sigma2=rng.uniform(0.05, 0.3, dim).astype(dtype),
        transition_bias=transition_bias, crp_alpha=0.7)


def clustered_sequence(seed, length, dim=4, speakers=3, noise=0.3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((speakers, dim))
    labels = rng.integers(0, speakers, length)
    return centres[labels] + noise * rng.standard_normal((length, dim))


class PlainBeam:
    """One hypothesis with per-speaker hidden state and every network output, as Python lists."""

    def __init__(self):
        self.hidden, self.outputs, self.blocks, self.trace = [], [], [], []
        self.score = 0.0


def predicted_mean(outputs, running_mean):
    """A speaker's prediction from all its outputs o_0 (zero entry), o_1, ..., o_n."""
    if running_mean == "training":
        return np.mean(outputs, axis=0)
    # the uisrnn library's decoder: o_0, then o_1, then the mean of o_2 ... o_n
    return outputs[-1] if len(outputs) < 3 else np.mean(outputs[2:], axis=0)


def test_predicted_mean_rules():
    outputs = [np.array([float(v)]) for v in (1, 2, 4, 8)]
    assert [predicted_mean(outputs[:n], "uisrnn")[0] for n in (1, 2, 3, 4)] == [1, 2, 4, 6]
    assert [predicted_mean(outputs[:n], "training")[0] for n in (1, 2, 3, 4)] == [1, 1.5, 7 / 3, 15 / 4]


def plain_decode(weights, sequence, beam_size, look_ahead, test_iteration,
                 min_speakers=0, max_speakers=math.inf, running_mean="uisrnn"):
    """Reference decoder: every (beam, assignment) candidate is scored and advanced on its own."""
    root_hidden, root_output = weights.root_state()
    data = np.tile(sequence, (test_iteration, 1))
    total = len(data)
    p0, alpha = weights.transition_bias, weights.crp_alpha

    def extend(beam, chunk, choice, start):
        beam = copy.deepcopy(beam)
        for offset, (entry, speaker) in enumerate(zip(chunk, choice)):
            known = len(beam.outputs)
            if speaker > known:
                return None
            norm = math.log(sum(beam.blocks) + alpha)
            if speaker == known:
                if known >= max_speakers:
                    return None
                hidden, mean = root_hidden, root_output
                cost = -math.log(p0) - math.log(alpha) + norm
            else:
                if total - (start + offset) - 1 < min_speakers - known:
                    return None
                hidden, mean = beam.hidden[speaker], predicted_mean(beam.outputs[speaker], running_mean)
                if speaker == beam.trace[-1]:
                    cost = -math.log(1.0 - p0)
                else:
                    cost = -math.log(p0) - math.log(beam.blocks[speaker]) + norm
            cost += float(np.sum((entry - mean) ** 2 / (2.0 * weights.sigma2)))
            new_hidden, output = weights.run_rnn(weights.project_inputs(entry[None]), hidden[None])
            if speaker == known:
                beam.hidden.append(new_hidden[0])
                beam.outputs.append([root_output, output[0]])
                beam.blocks.append(1)
            else:
                beam.hidden[speaker] = new_hidden[0]
                beam.outputs[speaker] = beam.outputs[speaker] + [output[0]]
                beam.blocks[speaker] += speaker != beam.trace[-1]
            beam.trace.append(speaker)
            beam.score += cost
        return beam

    beams = [PlainBeam()]
    for start in range(0, total, look_ahead):
        chunk = data[start:start + look_ahead]
        candidates = []
        for beam in beams:
            ranges = [range(len(beam.outputs) + 1 + j) for j in range(len(chunk))]
            for choice in itertools.product(*ranges):
                new = extend(beam, chunk, choice, start)
                if new is not None:
                    candidates.append(new)
        # sorted() is stable: ties keep the (beam, assignment) enumeration order
        beams = sorted(candidates, key=lambda b: b.score)[:beam_size]
    return beams


def vectorized_beams(weights, sequence, beam_size, look_ahead, test_iteration, min_speakers=0, max_speakers=None,
                     running_mean="uisrnn"):
    total = len(sequence) * test_iteration
    decoder = BeamSearchDecoder(weights, beam_size, min_speakers=min_speakers,
                                max_speakers=max_speakers, total_entries=total, running_mean=running_mean)
    data = np.tile(sequence, (test_iteration, 1))
    for start in range(0, total, look_ahead):
        decoder.step(data[start:start + look_ahead])
    return decoder


CASES = [
    # seed, length, beam_size, look_ahead, test_iteration, depth
    (0, 12, 3, 1, 1, 1),
    (1, 15, 5, 1, 2, 1),
    (2, 9, 4, 2, 1, 1),
    (3, 10, 6, 2, 2, 2),
    (4, 7, 2, 3, 1, 1),
    (5, 14, 10, 1, 2, 2),
]


@pytest.mark.parametrize("running_mean", ["uisrnn", "training"])
@pytest.mark.parametrize("seed,length,beam_size,look_ahead,test_iteration,depth", CASES)
def test_vectorized_search_makes_the_plain_decoders_decisions(seed, length, beam_size, look_ahead,
                                                             test_iteration, depth, running_mean):
    weights = random_weights(seed, depth=depth)
    sequence = clustered_sequence(seed, length)
    expected = plain_decode(weights, sequence, beam_size, look_ahead, test_iteration, running_mean=running_mean)
    decoder = vectorized_beams(weights, sequence, beam_size, look_ahead, test_iteration, running_mean=running_mean)
    # Same surviving hypotheses, in the same order, with the same scores.
    assert len(decoder._beams.scores) == len(expected)
    np.testing.assert_allclose(decoder._beams.scores, [b.score for b in expected], rtol=1e-9)
    assert decoder.best_labels() == expected[0].trace
    assert decode_sequence(weights, sequence, beam_size=beam_size, look_ahead=look_ahead, test_iteration=test_iteration,
                           running_mean=running_mean) == expected[0].trace[-length:]


@pytest.mark.parametrize("min_speakers,max_speakers", [(0, 1), (0, 2), (3, 3), (4, 5)])
def test_speaker_limits_match_the_plain_decoder(min_speakers, max_speakers):
    weights = random_weights(7, transition_bias=0.4)
    sequence = clustered_sequence(7, 10, speakers=3)
    expected = plain_decode(weights, sequence, 4, 1, 1, min_speakers, max_speakers)
    decoder = vectorized_beams(weights, sequence, 4, 1, 1, min_speakers, max_speakers)
    assert decoder.best_labels() == expected[0].trace
    np.testing.assert_allclose(decoder._beams.scores, [b.score for b in expected], rtol=1e-9)


def test_num_speakers_gives_exactly_that_many_speakers():
    weights = random_weights(3)
    sequence = clustered_sequence(3, 20, speakers=2, noise=0.05)
    for count in (1, 2, 3, 4):
        labels = decode_sequence(weights, sequence, beam_size=5, test_iteration=1, num_speakers=count)
        assert len(set(labels)) == count
    limited = decode_sequence(weights, sequence, beam_size=5, max_speakers=1)
    assert set(limited) == {0}
    # more speakers than entries: as many as there are entries
    assert sorted(decode_sequence(weights, sequence[:2], test_iteration=1, num_speakers=5)) == [0, 1]


def test_state_pool_compaction_changes_nothing():
    weights = random_weights(11, dim=3, hidden=5)
    sequence = clustered_sequence(11, 150, dim=3)
    reference = vectorized_beams(weights, sequence, 6, 1, 1)
    compacting = BeamSearchDecoder(weights, 6, total_entries=len(sequence))
    compacting._compact_above = 40
    for row in sequence:
        compacting.step(row[None])
    assert compacting._pool.size < reference._pool.size
    assert compacting.best_labels() == reference.best_labels()
    np.testing.assert_allclose(compacting._beams.scores, reference._beams.scores, rtol=1e-12)


@pytest.mark.parametrize("look_ahead,test_iteration", [(1, 2), (2, 1), (3, 2)])
def test_lockstep_batch_decoding_equals_one_sequence_at_a_time(look_ahead, test_iteration, monkeypatch):
    monkeypatch.setattr(decoding, "COMPACT_ABOVE", 50)  # exercise the shared pool's compaction too
    weights = random_weights(9, depth=2)
    sequences = [clustered_sequence(seed, length) for seed, length in enumerate([9, 0, 14, 3, 11, 1])]
    counts = [None, None, 3, 2, None, 1]
    expected = [decode_sequence(weights, seq, beam_size=4, look_ahead=look_ahead, test_iteration=test_iteration,
                                num_speakers=n) for seq, n in zip(sequences, counts)]
    assert decode_batch(weights, sequences, beam_size=4, look_ahead=look_ahead, test_iteration=test_iteration,
                        num_speakers=counts) == expected
    assert decode_batch(weights, [], beam_size=4) == []
    with pytest.raises(ConfigError, match="`max_speakers` has 1 values for 6 sequences"):
        decode_batch(weights, sequences, max_speakers=[2])


def test_online_decoder_ends_with_the_offline_single_pass_labels():
    weights = random_weights(5)
    sequence = clustered_sequence(5, 25, speakers=2, noise=0.1)
    online = OnlineDecoder(weights, beam_size=4)
    provisional = list(online.extend(sequence))
    assert len(provisional) == len(online) == 25
    offline = decode_sequence(weights, sequence, beam_size=4, test_iteration=1)
    assert online.labels == offline
    assert provisional[-1] == offline[-1]


def test_float32_weights_decode_float64_input():
    weights = random_weights(2).astype(np.float32)
    sequence = clustered_sequence(2, 12)
    labels = decode_sequence(weights, sequence)
    assert len(labels) == 12 and labels[0] == 0
    assert decode_sequence(weights, sequence[:0]) == []


@pytest.mark.parametrize("kwargs,message", [
    ({"beam_size": 0}, "`beam_size` must be a positive integer"),
    ({"look_ahead": 1.5}, "`look_ahead` must be a positive integer"),
    ({"test_iteration": -1}, "`test_iteration` must be a positive integer"),
    ({"num_speakers": 0}, "`num_speakers` must be a positive integer or None"),
    ({"num_speakers": 3, "max_speakers": 2}, "`max_speakers` must be >= `num_speakers`"),
    ({"running_mean": "median"}, "`running_mean` must be one of"),
])
def test_bad_inference_options_raise(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        decode_sequence(random_weights(), clustered_sequence(0, 5), **kwargs)


def test_unusable_model_parameters_raise():
    sequence = clustered_sequence(0, 5)
    with pytest.raises(ConfigError, match="`transition_bias` must be strictly between 0 and 1"):
        decode_sequence(random_weights(transition_bias=None), sequence)
    with pytest.raises(ConfigError, match="`transition_bias` must be strictly between 0 and 1"):
        decode_sequence(random_weights(transition_bias=1.0), sequence)


def test_bad_sequences_raise():
    weights = random_weights()
    with pytest.raises(DataError, match="has 3 columns but the model's observation_dim is 4"):
        decode_sequence(weights, np.zeros((5, 3)))
    with pytest.raises(DataError, match="must be 2-dim"):
        decode_sequence(weights, np.zeros(4))
    with pytest.raises(DataError, match="must be a float array"):
        decode_sequence(weights, np.zeros((5, 4), dtype=int))
    with pytest.raises(DataError, match="NaN or Inf"):
        decode_sequence(weights, np.full((5, 4), np.nan))
    with pytest.raises(DataError, match=r"push\(\) takes one entry"):
        OnlineDecoder(weights).push(np.zeros((2, 4)))
