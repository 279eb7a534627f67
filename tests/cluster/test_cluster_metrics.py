"""Scores agree with scikit-learn and with brute-force pair counting; EER and trials behave."""

import itertools

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.metrics.cluster import pair_confusion_matrix

from unspeech.cluster.metrics import (
    equal_error_rate,
    pairwise_scores,
    purity_coverage,
    sample_trials,
    score_against_gold,
    score_labels,
)
from unspeech.errors import DataError


def _random_labels(seed, n=300):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 12, n)
    pred = np.where(rng.random(n) < 0.7, gold, rng.integers(0, 15, n))  # mostly right, some noise
    return gold, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_equal_sklearn(seed):
    gold, pred = _random_labels(seed)
    s = score_labels(gold, pred)
    assert s.ari == pytest.approx(skm.adjusted_rand_score(gold, pred), abs=1e-12)
    assert s.nmi == pytest.approx(skm.normalized_mutual_info_score(gold, pred, average_method="arithmetic"), abs=1e-12)
    assert s.nmi == pytest.approx(s.v_measure, abs=1e-12)  # arithmetic NMI is the V-measure
    h, c, v = skm.homogeneity_completeness_v_measure(gold, pred)
    assert (s.homogeneity, s.completeness, s.v_measure) == pytest.approx((h, c, v), abs=1e-12)
    # pair confusion: [[tn, fp], [fn, tp]] over ordered pairs
    (_, fp), (fn, tp) = pair_confusion_matrix(gold, pred)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert s.pairwise_precision == pytest.approx(precision, abs=1e-12)
    assert s.pairwise_recall == pytest.approx(recall, abs=1e-12)
    assert s.pairwise_f1 == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-12)


def test_pairwise_scores_match_brute_force_on_string_labels():
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["x", "x", "y", "y", "y", "y"]
    same_gold = same_pred = both = 0
    for i, j in itertools.combinations(range(len(gold)), 2):
        g, p = gold[i] == gold[j], pred[i] == pred[j]
        same_gold += g
        same_pred += p
        both += g and p
    assert pairwise_scores(gold, pred)[:2] == pytest.approx((both / same_pred, both / same_gold))


def test_purity_and_coverage_by_hand():
    gold = [0, 0, 0, 1, 1, 2]
    pred = [5, 5, 6, 6, 6, 6]
    # clusters: {5: gold 0,0} -> 2 ; {6: gold 0,1,1,2} -> 2  => purity 4/6
    # speakers: 0 -> max(2,1)=2 ; 1 -> 2 ; 2 -> 1            => coverage 5/6
    assert purity_coverage(gold, pred) == pytest.approx((4 / 6, 5 / 6))


def test_degenerate_clusterings():
    gold = [0, 0, 1, 1]
    singles = score_labels(gold, [0, 1, 2, 3])
    assert singles.pairwise_precision == 1.0 and singles.pairwise_recall == 0.0 and singles.pairwise_f1 == 0.0
    perfect = score_labels(gold, [7, 7, 3, 3])
    assert perfect.ari == 1.0 and perfect.pairwise_f1 == 1.0 and perfect.purity == 1.0


def test_missing_ids_are_counted_not_scored():
    gold = {"u1": "A", "u2": "A", "u3": "B", "u4": "B", "only-gold": "C"}
    s = score_against_gold(["u1", "u2", "u3", "u4", "only-clustered"], [0, 0, 1, 1, 2], gold)
    assert s.n_scored == 4 and s.ari == 1.0
    assert s.n_missing_in_clustering == 1 and s.n_missing_in_gold == 1
    assert "1 gold utterances not clustered, 1 clustered utterances without gold" in s.format()
    with pytest.raises(DataError, match="no clustered utterance has a gold speaker"):
        score_against_gold(["x", "y"], [0, 1], gold)
    with pytest.raises(DataError, match="differ in length"):
        score_labels([0, 1], [0])


def test_equal_error_rate_known_cases():
    is_target = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    eer, thr = equal_error_rate(np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]), is_target)
    assert eer == 0.0 and 0.5 <= thr <= 0.6
    eer, _ = equal_error_rate(np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.1]), is_target)
    assert eer == pytest.approx(0.25)  # one target below one non-target
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000)])
    labels = np.r_[np.ones(20000, bool), np.zeros(20000, bool)]
    assert equal_error_rate(scores, labels)[0] == pytest.approx(0.1587, abs=0.01)  # Phi(-1)
    with pytest.raises(DataError, match="both target and non-target"):
        equal_error_rate(np.ones(3), np.ones(3, bool))


def test_sample_trials_all_pairs_and_balanced_sample():
    labels = np.repeat(np.arange(5), 4)
    first, second, target = sample_trials(labels, n_trials=1000)
    assert first.size == 20 * 19 // 2 and np.all(first < second)
    np.testing.assert_array_equal(target, labels[first] == labels[second])
    big = np.repeat(np.arange(50), 20)
    f, s, t = sample_trials(big, n_trials=2000, random_state=1)
    assert t.sum() == 1000 and (~t).sum() == 1000
    assert np.all(f != s)
    np.testing.assert_array_equal(t, big[f] == big[s])
    f2, s2, _ = sample_trials(big, n_trials=2000, random_state=1)
    np.testing.assert_array_equal(f, f2)
    with pytest.raises(DataError, match="at least two speakers"):
        sample_trials(np.zeros(10, int))
