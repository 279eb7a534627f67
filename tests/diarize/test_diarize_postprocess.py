"""Label smoothing, short-segment handling and turns in seconds."""

import numpy as np
import pytest

from unspeech.datadir import Turn
from unspeech.diarize.postprocess import (
    NON_SPEECH,
    label_runs,
    labels_to_turns,
    postprocess_labels,
    remove_short_segments,
    smooth_labels,
)
from unspeech.errors import ConfigError

N = NON_SPEECH


def test_smoothing_is_a_majority_vote_that_never_touches_non_speech():
    labels = np.array([0] * 10 + [1] * 2 + [0] * 10 + [N] * 5 + [1] * 8)
    out = smooth_labels(labels, smooth_size=9)
    np.testing.assert_array_equal(out[:22], 0)  # the 2-frame blip of speaker 1 is voted away
    np.testing.assert_array_equal(out[22:27], N)  # non-speech stays non-speech
    np.testing.assert_array_equal(out[27:], 1)
    np.testing.assert_array_equal(smooth_labels(labels, smooth_size=1), labels)


def test_smoothing_keeps_own_label_on_ties_and_handles_many_speakers():
    labels = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(smooth_labels(labels, smooth_size=4), labels)
    three = np.array([2] * 6 + [0] + [2] * 6 + [1] * 7)
    np.testing.assert_array_equal(smooth_labels(three, smooth_size=5), [2] * 13 + [1] * 7)
    np.testing.assert_array_equal(smooth_labels(np.full(5, N), 83), np.full(5, N))


def test_short_segments_merge_into_longer_neighbour_or_drop():
    labels = np.array([0] * 20 + [1] * 3 + [2] * 12 + [N] * 4 + [1] * 2 + [N] * 4 + [0] * 15)
    merged = remove_short_segments(labels, dur_threshold=10, mode="merge")
    # the 3-frame 1 joins the longer neighbour (0); the isolated 2-frame 1 has no speaker neighbour: dropped
    assert label_runs(merged) == [(0, 23, 0), (23, 35, 2), (35, 45, N), (45, 60, 0)]
    dropped = remove_short_segments(labels, dur_threshold=10, mode="drop")
    assert label_runs(dropped) == [(0, 20, 0), (20, 23, N), (23, 35, 2), (35, 45, N), (45, 60, 0)]
    with pytest.raises(ConfigError, match="`mode` must be 'merge' or 'drop'"):
        remove_short_segments(labels, 10, mode="keep")


def test_merging_joins_same_speaker_neighbours_and_shortest_first():
    labels = np.array([0] * 12 + [1] * 2 + [0] * 12 + [2] * 4 + [3] * 3 + [1] * 11)
    out = remove_short_segments(labels, dur_threshold=10)
    # shortest first: the 2-frame 1 joins 0 (one 26-frame segment), the 3-frame 3 joins 1 (11 > 4 frames),
    # then the 4-frame 2 joins the longer of 0 (26) and 1 (14)
    assert label_runs(out) == [(0, 30, 0), (30, 44, 1)]


def test_turns_in_seconds_named_by_first_appearance():
    labels = np.array([N] * 10 + [3] * 50 + [N] * 5 + [1] * 20 + [3] * 15)
    turns = labels_to_turns(labels, "rec")
    assert turns == [
        Turn("rec", "1", 0.1, 0.5, "spk1"),
        Turn("rec", "1", 0.65, 0.2, "spk2"),
        Turn("rec", "1", 0.85, 0.15, "spk1"),
    ]
    named = labels_to_turns(labels, "rec", speaker_names=["a", "b", "c", "d"], offset=10.0)
    assert [(t.onset, t.speaker) for t in named] == [(10.1, "d"), (10.65, "b"), (10.85, "d")]
    assert labels_to_turns(np.full(4, N), "rec") == []


def test_postprocess_defaults_drop_isolated_blips():
    labels = np.array([N] * 100 + [0] * 5 + [N] * 100 + [1] * 300)
    out = postprocess_labels(labels)
    assert label_runs(out) == [(0, 205, N), (205, 505, 1)]


def _remove_short_segments_by_rescanning(labels, dur_threshold, mode):
    """The rule of :func:`remove_short_segments` written the slow, obvious way (the oracle)."""
    out = np.asarray(labels, dtype=np.int64).copy()
    while True:
        runs = label_runs(out)
        short = [i for i, (a, b, lab) in enumerate(runs) if lab >= 0 and b - a < dur_threshold]
        if not short:
            return out
        if mode == "drop":
            for i in short:
                out[runs[i][0]:runs[i][1]] = N
            continue
        i = min(short, key=lambda k: (runs[k][1] - runs[k][0], k))
        a, b, _ = runs[i]
        sides = [runs[k] for k in (i - 1, i + 1) if 0 <= k < len(runs) and runs[k][2] >= 0]
        out[a:b] = max(sides, key=lambda r: r[1] - r[0])[2] if sides else N


@pytest.mark.parametrize("seed", range(6))
def test_short_segment_removal_matches_the_rescanning_rule(seed):
    rng = np.random.default_rng(seed)
    runs = rng.integers(1, 25, size=300)
    labels = np.repeat(rng.integers(-1, 4, size=300), runs).astype(np.int16)
    for mode in ("merge", "drop"):
        got = remove_short_segments(labels, dur_threshold=10, mode=mode)
        np.testing.assert_array_equal(got, _remove_short_segments_by_rescanning(labels, 10, mode))
        assert got.dtype == np.int16
