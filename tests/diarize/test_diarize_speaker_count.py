"""Speaker counts (eigengap / NME-SC, relative threshold, the one-speaker test) on geometric data
with a known number of speakers."""

import numpy as np
import pytest

from unspeech.diarize.clustering import ahc_speakers
from unspeech.diarize.profiles import l2_normalize
from unspeech.diarize.speaker_count import (
    DEFAULT_MAX_SPEAKERS,
    SpeakerCount,
    estimate_num_speakers,
    temporal_coherence,
)
from unspeech.errors import ConfigError, DataError


def _blobs(k, per_speaker=60, dim=32, spread=0.1, seed=0, sizes=None):
    """Gaussian blobs on the unit sphere: (N, dim) rows and their labels (N,)."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.standard_normal((k, dim)))
    labels = np.repeat(np.arange(k), sizes or [per_speaker] * k)
    return l2_normalize(centres[labels] + spread * rng.standard_normal((len(labels), dim))), labels


@pytest.mark.parametrize("rule", ["eigengap", "consensus"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("spread", [0.1, 0.2])
def test_eigengap_counts_blobs_on_the_sphere(k, spread, rule):
    for seed in range(2):
        rows, _ = _blobs(k, spread=spread, seed=seed)
        count, info = estimate_num_speakers(rows, rule=rule)
        assert count == k, info.describe()


def test_consensus_is_the_majority_of_eight_eigengap_counts():
    rows, _ = _blobs(3, sizes=[150, 60, 30], seed=1)
    count, info = estimate_num_speakers(rows, rule="consensus")
    assert count == 3 and info.reason == "consensus" and len(info.votes) == 8
    assert info.votes.count(3) > 4 and info.votes[0] == estimate_num_speakers(rows, rule="eigengap")[0]
    assert info.describe().startswith("3 speakers (consensus, p=") and "votes 3 " in info.describe()
    assert estimate_num_speakers(rows, rule="eigengap")[1].votes == ()


def test_consensus_ties_go_to_the_nme_count_or_the_smallest(monkeypatch):
    from unspeech.diarize import speaker_count

    rows, _ = _blobs(3, seed=4)
    real = speaker_count._nme_pick
    for picked, count in (([4, 2, 5, 5, 2, 4, 3, 3], 4), ([6, 2, 5, 5, 2, 6, 3, 3], 6), ([7, 2, 5, 5, 2, 3, 3, 4], 2)):
        picks = iter(picked)  # the NME count of the plain graph comes first
        monkeypatch.setattr(speaker_count, "_nme_pick", lambda table, n, low: (next(picks),) + real(table, n, low)[1:])
        monkeypatch.setattr(speaker_count, "_vote_pick", lambda table, low: next(picks))
        got, info = estimate_num_speakers(rows, rule="consensus")
        assert info.votes == tuple(picked) and got == count


def test_the_rule_transfers_where_a_fixed_threshold_does_not():
    """Wide speakers (mean within-speaker cosine ~0.45): the 0.5 cut falls apart, the eigengap does not."""
    rows, _ = _blobs(4, spread=0.2, seed=3)
    assert len(np.unique(ahc_speakers(rows, 0.5, 20))) != 4
    assert estimate_num_speakers(rows, rule="eigengap")[0] == 4
    assert estimate_num_speakers(rows * 7.5, rule="eigengap")[0] == 4  # scale of the space does not matter


def test_unequal_speakers_and_info():
    rows, _ = _blobs(3, sizes=[150, 60, 30], seed=1)
    count, info = estimate_num_speakers(rows, rule="eigengap")
    assert count == 3 and info.reason == "eigengap"
    assert isinstance(info, SpeakerCount) and 2 <= info.neighbours <= 0.25 * len(rows)
    assert info.gaps.shape == (DEFAULT_MAX_SPEAKERS,) and info.normalised_gap == pytest.approx(info.gaps[2])
    assert info.describe().startswith("3 speakers (eigengap, p=")


def test_one_speaker_needs_a_clearly_better_split():
    rows, _ = _blobs(1, per_speaker=200, spread=0.3, seed=5)
    count, info = estimate_num_speakers(rows, rule="eigengap")
    assert count == 1 and info.describe().startswith("1 speaker (")
    assert estimate_num_speakers(rows, min_speakers=2, rule="eigengap")[0] >= 2  # no single-speaker test then


def test_bounds_and_subsampling():
    rows, _ = _blobs(4, seed=2)
    assert estimate_num_speakers(rows, max_speakers=2, rule="eigengap")[0] <= 2
    assert estimate_num_speakers(rows, min_speakers=5, rule="eigengap")[0] >= 5
    count, info = estimate_num_speakers(rows, min_speakers=3, max_speakers=3, rule="eigengap")
    assert count == 3 and info.reason == "fixed by the bounds"
    count, info = estimate_num_speakers(rows, max_points=100, rule="eigengap")
    assert count == 4 and info.n_rows == 100
    assert estimate_num_speakers(rows[:3], rule="eigengap")[1].reason == "too few rows"


@pytest.mark.parametrize(
    "rows, kwargs, error, message",
    [
        (np.ones(5), {}, DataError, r"expected rows of shape \(n, dim\)"),
        (np.array([[1.0, np.nan]] * 5), {}, DataError, "NaN or Inf"),
        (np.ones((9, 2)), {"min_speakers": 3, "max_speakers": 2}, ConfigError, "need 1 <= min_speakers <= max_speakers"),
        (np.ones((9, 2)), {"min_speakers": 0}, ConfigError, "need 1 <= min_speakers"),
        (np.ones((9, 2)), {"max_neighbour_fraction": 0.0}, ConfigError, "0 < max_neighbour_fraction <= 1"),
        (np.ones((9, 2)), {"rule": "bic"}, ConfigError, "`rule` must be one of relative, eigengap"),
    ],
)
def test_bad_input_raises(rows, kwargs, error, message):
    with pytest.raises(error, match=message):
        estimate_num_speakers(rows, **kwargs)


def test_a_failing_eigensolver_raises_linalg_error(monkeypatch):
    import scipy.linalg

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("did not converge")

    monkeypatch.setattr(scipy.linalg, "eigh", broken)
    with pytest.raises(np.linalg.LinAlgError, match="failed for all"):
        estimate_num_speakers(_blobs(2)[0], rule="eigengap")


def _conversation(k, turns=12, turn_rows=40, dim=32, spread=0.15, seed=0):
    """Rows of k speakers taking turns (each turn a run of rows), and their labels."""
    rng = np.random.default_rng(seed)
    who = np.concatenate([np.arange(k), rng.integers(0, k, turns - k)]) if k > 1 else np.zeros(turns, int)
    labels = np.repeat(who, turn_rows)
    centres = l2_normalize(rng.standard_normal((k, dim)))
    return l2_normalize(centres[labels] + spread * rng.standard_normal((len(labels), dim))), labels


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("spread", [0.1, 0.15])
def test_relative_threshold_counts_conversations(k, spread):
    rows, _ = _conversation(k, spread=spread, seed=k)
    count, info = estimate_num_speakers(rows)
    assert count == k, info.describe()
    assert info.reason == ("single speaker" if k == 1 else "relative threshold")


def test_relative_threshold_follows_the_spread():
    """The cut grows with the within-turn distance (a looser embedding space), a fixed one does not."""
    tight = estimate_num_speakers(_conversation(3, spread=0.1)[0])[1]
    wide = estimate_num_speakers(_conversation(3, spread=0.15)[0])[1]
    assert tight.count == wide.count == 3 and wide.threshold > 1.3 * tight.threshold
    assert tight.describe().startswith("3 speakers (relative threshold, AHC cut at cosine distance ")
    with pytest.raises(ConfigError, match="need factor > 0"):
        estimate_num_speakers(_conversation(2)[0], factor=0)


def test_temporal_coherence_tells_one_speaker_from_several():
    one, _ = _conversation(1, spread=0.2)
    two, _ = _conversation(2, spread=0.2)
    assert temporal_coherence(one) > 0.8 > temporal_coherence(two)
    gappy = np.arange(len(two)) * 2  # every other position missing: no pair is exactly 10 apart at odd lags
    assert temporal_coherence(two, gappy, lag=10) < 0.8 and temporal_coherence(two, gappy, lag=11) is None
    with pytest.raises(DataError, match="`positions` must be 480 increasing integers"):
        estimate_num_speakers(two, positions=gappy[::-1])
