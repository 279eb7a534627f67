"""Scores of a clustering against gold speakers, and equal error rates of same/different trials.

All pair-counting scores come from the (sparse) contingency table ``n_ij`` = utterances of gold
speaker ``i`` in cluster ``j``, never from the ``n * (n - 1) / 2`` pairs themselves, so scoring a
million utterances takes seconds. With ``a_i`` the gold speaker sizes and ``b_j`` the cluster
sizes:

* pairwise precision = ``sum C(n_ij, 2) / sum C(b_j, 2)`` (pairs put together that belong
  together), recall = ``sum C(n_ij, 2) / sum C(a_i, 2)``, F1 their harmonic mean. With no pair
  predicted (all singletons) precision is 1.0 (nothing was wrongly merged); with no gold pair,
  recall is 1.0;
* purity = ``sum_j max_i n_ij / n``; coverage (inverse purity) = ``sum_i max_j n_ij / n``;
* ARI (Hubert & Arabie), homogeneity, completeness and V-measure as in scikit-learn;
* NMI uses the **arithmetic mean** of the two entropies as normaliser,
  ``I(G; C) / ((H(G) + H(C)) / 2)`` (scikit-learn's default), which equals the V-measure with
  beta = 1. (The original toolkit printed the V-measure under the name NMI.)

Label -1 is an ordinary label here: apply an outlier policy first (:mod:`.outliers`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

from unspeech.errors import DataError

__all__ = [
    "ClusterScores",
    "contingency_table",
    "pairwise_scores",
    "purity_coverage",
    "score_labels",
    "score_against_gold",
    "sample_trials",
    "equal_error_rate",
]


@dataclass
class ClusterScores:
    """Scores of one clustering; ``n_*`` fields count utterances, clusters and gold speakers."""

    n_scored: int
    n_gold_speakers: int
    n_clusters: int
    ari: float
    nmi: float
    homogeneity: float
    completeness: float
    v_measure: float
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    purity: float
    coverage: float
    n_missing_in_clustering: int = 0
    n_missing_in_gold: int = 0

    FIELDS = (
        "ari",
        "nmi",
        "homogeneity",
        "completeness",
        "v_measure",
        "pairwise_precision",
        "pairwise_recall",
        "pairwise_f1",
        "purity",
        "coverage",
    )

    def as_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        """Human-readable lines, as the command line prints them."""
        lines = [
            f"scored utterances: {self.n_scored} ({self.n_gold_speakers} gold speakers, {self.n_clusters} clusters)",
        ]
        if self.n_missing_in_clustering or self.n_missing_in_gold:
            lines.append(
                f"ids missing: {self.n_missing_in_clustering} gold utterances not clustered, "
                f"{self.n_missing_in_gold} clustered utterances without gold speaker (left out of the scores)"
            )
        lines += [
            f"ARI: {self.ari:.4f}",
            f"NMI (arithmetic normalisation): {self.nmi:.4f}",
            f"homogeneity / completeness / V-measure: {self.homogeneity:.4f} / {self.completeness:.4f} / {self.v_measure:.4f}",
            f"pairwise precision / recall / F1: {self.pairwise_precision:.4f} / {self.pairwise_recall:.4f} / {self.pairwise_f1:.4f}",
            f"purity / coverage: {self.purity:.4f} / {self.coverage:.4f}",
        ]
        return "\n".join(lines)


def _encode(labels) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1].ravel()


def contingency_table(gold, pred):
    """Sparse ``(n_gold_speakers, n_clusters)`` count matrix (scipy CSR, int64)."""
    from sklearn.metrics.cluster import contingency_matrix

    return contingency_matrix(_encode(gold), _encode(pred), sparse=True).astype(np.int64)


def _pairs(counts: np.ndarray) -> int:
    counts = np.asarray(counts, dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def pairwise_scores(gold, pred, table=None) -> tuple[float, float, float]:
    """Pairwise ``(precision, recall, f1)`` from the contingency table (see the module docstring)."""
    table = contingency_table(gold, pred) if table is None else table
    together = _pairs(table.data)
    predicted = _pairs(np.asarray(table.sum(axis=0)).ravel())
    actual = _pairs(np.asarray(table.sum(axis=1)).ravel())
    precision = together / predicted if predicted else 1.0
    recall = together / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(precision), float(recall), float(f1)


def purity_coverage(gold, pred, table=None) -> tuple[float, float]:
    """``(purity, coverage)``: share of utterances in their cluster's / speaker's majority cell."""
    table = contingency_table(gold, pred) if table is None else table
    n = table.sum()
    purity = table.max(axis=0).sum() / n
    coverage = table.max(axis=1).sum() / n
    return float(purity), float(coverage)


def score_labels(gold: Sequence, pred: Sequence) -> ClusterScores:
    """Score predicted labels against gold labels of the same utterances (same order)."""
    from sklearn import metrics

    gold = _encode(gold)
    pred = _encode(pred)
    if gold.shape != pred.shape:
        raise DataError(f"gold and predicted labels differ in length: {gold.size} vs {pred.size}")
    if gold.size == 0:
        raise DataError("no utterances to score")
    table = contingency_table(gold, pred)
    h, c, v = metrics.homogeneity_completeness_v_measure(gold, pred)
    precision, recall, f1 = pairwise_scores(gold, pred, table)
    purity, coverage = purity_coverage(gold, pred, table)
    return ClusterScores(
        n_scored=int(gold.size),
        n_gold_speakers=int(table.shape[0]),
        n_clusters=int(table.shape[1]),
        ari=float(metrics.adjusted_rand_score(gold, pred)),
        nmi=float(metrics.normalized_mutual_info_score(gold, pred, average_method="arithmetic")),
        homogeneity=float(h),
        completeness=float(c),
        v_measure=float(v),
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=f1,
        purity=purity,
        coverage=coverage,
    )


def score_against_gold(utt_ids: Sequence[str], labels: Sequence, gold: Mapping[str, str]) -> ClusterScores:
    """Score a clustering of ``utt_ids`` against a gold ``utt2spk`` mapping.

    Only utterances on both sides are scored; the ones missing on either side are counted in
    ``n_missing_in_clustering`` / ``n_missing_in_gold``. No overlap at all is a :class:`DataError`.
    """
    labels = np.asarray(labels)
    keep = np.fromiter((u in gold for u in utt_ids), dtype=bool, count=len(utt_ids))
    if not keep.any():
        example = next(iter(gold), "<empty>")
        raise DataError(
            f"no clustered utterance has a gold speaker (e.g. clustered {utt_ids[0]!r}, gold {example!r}); "
            "do the utterance ids of --input-ark and --utt2spk match?"
        )
    kept_ids = [u for u, k in zip(utt_ids, keep) if k]
    scores = score_labels([gold[u] for u in kept_ids], labels[keep])
    scores.n_missing_in_gold = int((~keep).sum())
    scores.n_missing_in_clustering = len(set(gold).difference(kept_ids))
    return scores


def sample_trials(
    labels: Sequence, n_trials: int = 200000, random_state: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Same/different speaker trials over utterances with gold ``labels``.

    All pairs when there are at most ``n_trials`` of them; otherwise ``n_trials / 2`` target
    pairs (two utterances of one speaker, speakers drawn in proportion to their pair count) and
    as many non-target pairs (uniform over utterance pairs with different speakers). The EER does
    not depend on the target/non-target ratio, so the balanced sample estimates it with far
    fewer trials.

    Returns
    -------
    first, second : ndarray of shape (m,), int64
        Utterance indices, ``first != second``.
    is_target : ndarray of shape (m,), bool
    """
    codes = _encode(labels)
    n = codes.size
    if n < 2:
        raise DataError(f"same/different trials need at least 2 utterances. Received: {n}")
    total = n * (n - 1) // 2
    if total <= n_trials:
        first, second = np.triu_indices(n, k=1)
        first, second = first.astype(np.int64), second.astype(np.int64)
        is_target = codes[first] == codes[second]
    else:
        rng = np.random.default_rng(random_state)
        order = np.argsort(codes, kind="stable")
        sizes = np.bincount(codes)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pair_counts = sizes * (sizes - 1) / 2.0
        half = n_trials // 2
        if pair_counts.sum() > 0:
            spk = rng.choice(sizes.size, size=half, p=pair_counts / pair_counts.sum())
            a = rng.integers(0, sizes[spk])
            b = rng.integers(0, sizes[spk] - 1)
            b = b + (b >= a)
            t_first, t_second = order[starts[spk] + a], order[starts[spk] + b]
        else:
            t_first = t_second = np.zeros(0, dtype=np.int64)
        n_first = rng.integers(0, n, size=4 * half)
        n_second = rng.integers(0, n, size=4 * half)
        different = codes[n_first] != codes[n_second]
        n_first, n_second = n_first[different][:half], n_second[different][:half]
        first = np.concatenate([t_first, n_first]).astype(np.int64)
        second = np.concatenate([t_second, n_second]).astype(np.int64)
        is_target = np.concatenate([np.ones(t_first.size, bool), np.zeros(n_first.size, bool)])
    if is_target.all() or not is_target.any():
        raise DataError("same/different trials need at least two speakers and one speaker with two utterances")
    return first, second, is_target


def equal_error_rate(scores: np.ndarray, is_target: np.ndarray) -> tuple[float, float]:
    """EER of detection ``scores`` (higher = more likely the same speaker).

    Returns ``(eer, threshold)``: the rate where false acceptances equal false rejections,
    linearly interpolated between the two ROC points that bracket it, and the score there.
    """
    from sklearn.metrics import roc_curve

    is_target = np.asarray(is_target, dtype=bool)
    if is_target.all() or not is_target.any():
        raise DataError("the EER needs both target and non-target trials")
    fpr, tpr, thresholds = roc_curve(is_target, np.asarray(scores, dtype=np.float64))
    fnr = 1.0 - tpr
    diff = fnr - fpr  # decreasing from 1 towards -1 as the threshold falls
    k = int(np.flatnonzero(diff <= 0)[0])
    if k == 0 or diff[k] == 0:
        return float(fpr[k]), float(thresholds[k])
    w = diff[k - 1] / (diff[k - 1] - diff[k])
    eer = fpr[k - 1] + w * (fpr[k] - fpr[k - 1])
    if np.isfinite(thresholds[k - 1]):
        threshold = thresholds[k - 1] + w * (thresholds[k] - thresholds[k - 1])
    else:  # roc_curve's first threshold is +inf
        threshold = thresholds[k]
    return float(eer), float(threshold)
