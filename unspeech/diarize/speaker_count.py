"""How many speakers one recording has, without a threshold tuned to one model or corpus.

Both rules look at a recording's embedding rows in time order (centred on their mean,
L2-normalised) and use only ratios measured on the recording itself, so the scale of the
embedding space (a tight synthetic-trained model, a looser real-speech one) does not matter.

**One speaker first** (:func:`temporal_coherence`). Rows ``lag`` positions apart (1 s: one pooling
window, so they share no input) are nearly always the same speaker. When the recording holds
several speakers they are much more alike than two rows taken anywhere; with one speaker (after
centring, which removes the voice itself) they are not. The ratio of the median distance of such
pairs to the mean distance of all pairs is about 1 with no speaker structure; the count is 1 when it
is at least ``coherence_threshold`` = 0.8. Chosen on development recordings (no test set):
one-speaker recordings gave 0.86-1.6 (8 synthetic, both models) and 0.73-1.3 (8 LibriSpeech
utterances); recordings of 2-6 speakers gave at most 0.65 (20 synthetic conversations) and 0.76
(20 LibriSpeech conversations, an early real-speech model) but up to 0.90 with the
synthetic-trained bundled model on real speech, which then calls one such conversation one speaker.

**More than one** — three rules of :func:`estimate_num_speakers`:

* ``"relative"``: average-linkage AHC
  cut at ``factor`` = 1.5 times the recording's own within-turn distance (the median cosine
  distance of those rows ``lag`` apart); clusters under ``min_cluster_size`` rows are not counted.
  The old fixed cut (0.5) was right for the tight synthetic voices and far too low for real speech,
  whose within-turn distances are larger (median 0.29-0.31 on synthetic development conversations,
  0.44-0.50 on LibriSpeech ones): the relative cut moves with them. The factor was chosen on
  development sets (synthetic seeds 11 and 13; LibriSpeech conversations of held-out speakers);
  1.25 and 1.75 give similar results there, 2.0 under-counts synthetic conversations.
* ``"eigengap"``: the normalised maximum eigengap of Park et al.
  2019 ("Auto-tuning spectral clustering for speaker diarization using normalized maximum
  eigengap", NME-SC), in NumPy/SciPy: cosine affinity of (at most ``max_points``, evenly spaced)
  rows; for ``n_values`` values of ``p`` from 2 to ``max_neighbour_fraction * N``, keep each row's
  ``p`` most similar rows as 1, symmetrise ``(B + Bᵀ) / 2``, take the unnormalised Laplacian
  ``D − B`` and its eigengaps ``λ(k+1) − λk`` over ``λmax`` for ``k <= max_speakers``; the ``p``
  minimising ``(p / N) ** 0.75 / g_p`` (``g_p`` the largest normalised gap; Park's ``p / N`` picks
  sparse graphs that on our rows, pooled over 1 s and 100 ms apart, over-count, the square root of
  Xia et al. 2022 and spectralcluster dense ones that under-count recordings of many speakers; see
  :data:`_PROXY_EXPONENT`) gives the count, the ``k`` of its largest gap. It counts real
  speech best (20 LibriSpeech conversations of 48 held-out speakers, oracle speech, DER at collar
  0.25 s: with an early real-speech model 63 speakers found for 63, DER 15.2 % against 16.3 %
  "relative" and 19.1 % with the old fixed cut; with the fbank-statistics baseline 20.4 % against
  28.4 % and 31.1 %) but takes the top of a hierarchy: synthetic voices of one TTS engine group
  together, and it under-counts them (6 held-out synthetic conversations, bundled model, spectral
  backend: 24 speakers for 30, DER 17.3 % against 7.0 % "relative" and 8.5 % with the old cut).
  That model (synthetic speech only) is no longer bundled. With the bundled real-speech model
  (``unspeech_dnn_w32_libri200``, which also heard synthetic voices) "eigengap" is the better rule
  on both kinds of speech (oracle speech, collar 0.25 s, spectral backend, square-root proxy: 20 LibriSpeech
  conversations of held-out speakers 15.4 % against 19.1 % "relative"; 20 held-out synthetic
  conversations 9.1 % against 10.6 %; AHC backend 16.5 % / 10.0 % against 19.0 % / 11.0 %), so it
  was the diarizer's default until the consensus below.
* ``"consensus"`` (the diarizer's default): eight eigengap counts of the same rows, the majority
  wins. Two graphs (the binary p-nearest-neighbour graph above, and the same graph keeping the
  cosine values, clipped at 0) times two Laplacians (``D − B`` with gaps over ``λmax``, and the
  symmetric normalised ``I − D^-1/2 B D^-1/2``, whose eigenvalues are scale-free already) times two
  ways of reading the gaps over ``p`` (the NME choice of ``p`` above, and the count of the largest
  gap for the most values of ``p``). On a tie the plain NME count wins if it is among the tied,
  else the smallest tied count. No new constant: each variant is a published way of reading the
  same spectrum, and each alone is worse somewhere; their majority was better or equal on every
  development set (row error with oracle speech, bundled model and head, against the eigengap:
  real LibriSpeech conversations 12.24 -> 10.24 % and 15.47 -> 13.09 % on two draws of held-out
  speakers, synthetic 10.28 -> 10.28 % and 7.90 -> 6.46 %; counts right on 14, 13, 14, 16 of 20
  recordings against 12, 11, 14, 14). It solves four times the eigengap's eigenproblems, so it
  looks at fewer rows (:data:`CONSENSUS_MAX_POINTS`). What it cannot fix: recordings where a speaker splits into
  clean sub-clusters (2-speaker conversations counted 3 or 7) or two voices merge (4 counted 3).

The returned :class:`SpeakerCount` keeps what decided, so a caller can log it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from unspeech.diarize.profiles import l2_normalize
from unspeech.diarize.row_source import RowView, block_mean, row_blocks
from unspeech.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_MAX_SPEAKERS",
    "SPEAKER_COUNT_MAX_POINTS",
    "CONSENSUS_MAX_POINTS",
    "SpeakerCount",
    "SPEAKER_COUNT_RULES",
    "estimate_num_speakers",
    "temporal_coherence",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_SPEAKERS = 10
"""Most speakers the eigengap looks for when no ``max_speakers`` is given."""

_PROXY_EXPONENT = 0.75
"""The eigengap picks the neighbour count ``p`` minimising ``(p / N) ** e / g_p``. Park et al. use
``e = 1``, which on our rows prefers sparse graphs and over-counts (real LibriSpeech conversations 64
speakers found for 63 but DER 18.0 %; synthetic 2-6-speaker conversations 84 for 81, 13.9 %);
``e = 0.5`` (spectralcluster's default proxy) prefers dense graphs and under-counts many-speaker
recordings (65 for 81, 12.7 %). ``e = 0.75`` lies between the two published proxies: 15.6 % / 58 for
63 on the real set, 10.5 % / 76 for 81 on the 2-6-speaker synthetic set, 9.1 % on a 2-4-speaker one
(bundled model, oracle speech, collar 0.25 s; development sets, not a held-out test)."""

SPEAKER_COUNT_MAX_POINTS = 300
"""Most rows the eigengap looks at (an evenly spaced subsample; a dense eigenproblem per ``p``)."""

CONSENSUS_MAX_POINTS = 200
"""Most rows the consensus looks at. It solves four times the eigengap's eigenproblems; on 200 rows
each costs about a third of one on 300 (n³), so the rule stays within 1.5x the eigengap's time (the
diarizer's real-time target). On the development sets its counts were the same or better with 200
rows than with 300 (row error 10.24 / 13.09 % against 11.81 / 14.11 % on the two real draws, the
synthetic sets unchanged)."""


@dataclass(eq=False)
class SpeakerCount:
    """What :func:`estimate_num_speakers` decided, and why.

    Attributes
    ----------
    count : int, the number of speakers
    reason : str, ``"eigengap"``, ``"consensus"``, ``"relative threshold"``, ``"single speaker"`` (the coherence
        test of the module notes), ``"too few rows"`` (under 4: the lower bound is returned) or
        ``"fixed by the bounds"``
    neighbours : int or None, the chosen ``p`` (rows kept per row of the affinity; eigengap)
    normalised_gap : float or None, ``g_p`` at the chosen ``p``
    gaps : ndarray of shape (max_speakers,), float64, eigengaps ``λ(k+1) − λk`` over ``λmax``
        at the chosen ``p``; ``gaps[k - 1]`` belongs to ``k`` speakers
    n_rows : int, rows looked at (by the eigengap: after subsampling)
    coherence : float or None, :func:`temporal_coherence` when the one-speaker test ran
    threshold : float or None, the AHC cut (relative threshold)
    votes : tuple of int, the eight counts of the consensus rule (empty for the others)
    """

    count: int
    reason: str
    neighbours: int | None = None
    normalised_gap: float | None = None
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_rows: int = 0
    coherence: float | None = None
    threshold: float | None = None
    votes: tuple[int, ...] = ()

    def describe(self) -> str:
        """One line for a log: ``"3 speakers (eigengap, p=42 of 300 rows, normalised gap 0.21, coherence 0.45)"``."""
        parts = [self.reason]
        if self.neighbours is not None:
            parts.append(f"p={self.neighbours} of {self.n_rows} rows, normalised gap {self.normalised_gap:.3f}")
        if self.votes:
            parts.append(f"votes {' '.join(map(str, self.votes))}")
        if self.threshold is not None:
            parts.append(f"AHC cut at cosine distance {self.threshold:.3f}")
        if self.coherence is not None:
            parts.append(f"coherence {self.coherence:.2f}")
        return f"{self.count} speaker{'s' if self.count != 1 else ''} ({', '.join(parts)})"


def _check_rows(rows) -> np.ndarray | RowView:
    """The rows as a float64 array, or the :class:`RowView` itself (checked block by block)."""
    x = rows if isinstance(rows, RowView) else np.asarray(rows, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"speaker count: expected rows of shape (n, dim). Received: shape={x.shape}")
    if not all(np.isfinite(block).all() for _, block in row_blocks(x)):
        raise DataError("speaker count: NaN or Inf values in the rows")
    return x


def _laplacian_eigenvalues(order: np.ndarray, p: int, similarity: np.ndarray | None = None,
                           normalised: bool = False) -> np.ndarray:
    """Eigenvalues (ascending) of the Laplacian of the symmetrised p-nearest-neighbour graph ``B``,
    scaled to [0, 1] by the largest (``D − B``) or as they are, in [0, 2] (``I − D^-1/2 B D^-1/2``).

    ``order`` : ndarray of shape (n, n), int; each row's columns by decreasing affinity.
    ``similarity`` : ndarray of shape (n, n), optional; the kept entries of ``B`` are these values
    (clipped at 0) instead of 1.
    """
    from scipy.linalg import eigh

    n = len(order)
    b = np.zeros((n, n))
    kept = order[:, :p]
    np.put_along_axis(b, kept, 1.0 if similarity is None else np.take_along_axis(np.maximum(similarity, 0.0), kept, axis=1),
                      axis=1)
    b = 0.5 * (b + b.T)
    np.fill_diagonal(b, 0.0)
    d = b.sum(axis=1)
    if normalised:
        scale = 1.0 / np.sqrt(np.maximum(d, 1e-12))
        return eigh(np.eye(n) - scale[:, None] * b * scale[None, :], eigvals_only=True)
    lam = eigh(np.diag(d) - b, eigvals_only=True)
    return lam / max(float(lam[-1]), 1e-12)


def _lag_distances(rows: np.ndarray, positions: np.ndarray | None, lag: int) -> tuple[np.ndarray, float]:
    """Cosine distances of the row pairs exactly ``lag`` positions apart, ``(n_pairs,)``, and the
    mean cosine distance of all pairs (rows centred and L2-normalised first)."""
    x = rows if isinstance(rows, RowView) else np.asarray(rows, dtype=np.float64)
    mean = block_mean(x)
    pos = np.arange(len(x)) if positions is None else np.asarray(positions, dtype=np.int64)
    later = np.searchsorted(pos, pos + lag)
    ok = later < len(pos)
    ok[ok] = pos[later[ok]] == pos[ok] + lag
    first, second = np.flatnonzero(ok), later[ok]
    near = np.empty(len(first))
    unit_sum = np.zeros(x.shape[1])
    step = 1 << 14  # rows per block: no (N, D) copies of a long recording's rows
    for a in range(0, len(x), step):
        unit_sum += l2_normalize(x[a:a + step] - mean, copy=False).sum(axis=0)
    for a in range(0, len(first), step):
        u = l2_normalize(x[first[a:a + step]] - mean, copy=False)
        v = l2_normalize(x[second[a:a + step]] - mean, copy=False)
        near[a:a + step] = 1.0 - np.einsum("ij,ij->i", u, v)
    # mean of 1 - cos over all pairs (i = j included)
    return near, 1.0 - float(np.sum((unit_sum / max(len(x), 1)) ** 2))


def temporal_coherence(rows: np.ndarray, positions: np.ndarray | None = None, lag: int = 10) -> float | None:
    """How much more alike rows ``lag`` positions apart are than any two rows (the one-speaker test).

    Rows are centred on their mean and L2-normalised; every row and the row exactly ``lag``
    positions later (when both are there) make a pair. Returns the median cosine distance of those
    pairs over the mean cosine distance of all pairs (about 1 when rows that close in time are no
    more alike than any two), or None with fewer than 5 pairs.

    Parameters
    ----------
    rows : ndarray of shape (N, D), float, in time order
    positions : ndarray of shape (N,), int, increasing; the rows' places in time (default
        ``0..N-1``; rows of non-speech left out leave gaps)
    lag : int, positions apart (rows whose inputs do not overlap)
    """
    near, overall = _lag_distances(rows, positions, lag)
    return None if len(near) < 5 else float(np.median(near)) / max(overall, 1e-12)


def _start(rows, min_speakers, max_speakers, positions, lag, coherence_threshold):
    """Checks shared by both rules, and the answers that need no rule: ``(x, low, high, done)``.

    ``done`` is ``(count, SpeakerCount)`` when the bounds fix the count, there are too few rows, or
    the one-speaker test says one; ``low`` becomes 2 when the test says "more than one".
    """
    x = _check_rows(rows)
    high = DEFAULT_MAX_SPEAKERS if max_speakers is None else int(max_speakers)
    low = int(min_speakers)
    if low < 1 or high < low:
        raise ConfigError(f"need 1 <= min_speakers <= max_speakers. Received: min_speakers={min_speakers}, max_speakers={max_speakers}")
    if int(lag) < 1:
        raise ConfigError(f"`lag` must be >= 1. Received: lag={lag}")
    if positions is not None and (len(positions) != len(x) or np.any(np.diff(positions) <= 0)):
        raise DataError(f"speaker count: `positions` must be {len(x)} increasing integers, one per row")
    if low == high:
        return x, low, high, (low, SpeakerCount(low, "fixed by the bounds", n_rows=len(x)))
    if len(x) < 4:
        return x, low, high, (low, SpeakerCount(low, "too few rows", n_rows=len(x)))
    if low == 1 and coherence_threshold > 0:
        coherence = temporal_coherence(x, positions, int(lag))
        if coherence is not None and coherence >= coherence_threshold:
            return x, low, high, (1, SpeakerCount(1, "single speaker", n_rows=len(x), coherence=coherence))
        if coherence is not None:
            low = 2  # rows that far apart are clearly more alike than any two: more than one speaker
    return x, low, high, None


SPEAKER_COUNT_RULES = ("relative", "eigengap", "consensus")
"""The rules of :func:`estimate_num_speakers` (module notes)."""


def _centred_sample(x: np.ndarray, max_points: int) -> np.ndarray:
    """Rows centred on their mean, at most ``max_points`` of them (evenly spaced), L2-normalised."""
    mean = block_mean(x)
    if len(x) > max_points:
        x = x[np.linspace(0, len(x) - 1, int(max_points)).round().astype(np.int64)]
    return l2_normalize(x[0:len(x)] - mean, copy=False)


def _relative_count(x: np.ndarray, low: int, high: int, positions, lag: int, factor: float, min_cluster_size: int,
                    max_points: int) -> tuple[int, SpeakerCount]:
    from unspeech.diarize.clustering import ahc_speakers

    near, overall = _lag_distances(x, positions, lag)
    enough = len(near) >= 5
    scale = float(np.median(near)) if enough else 0.5 * overall  # too few pairs: half the mean distance
    threshold = min(factor * scale, 2.0)
    sample = _centred_sample(x, max_points)
    count = min(max(len(np.unique(ahc_speakers(sample, threshold, min_cluster_size))), low), high)
    return count, SpeakerCount(count, "relative threshold", n_rows=len(sample), threshold=threshold,
                               coherence=scale / max(overall, 1e-12) if enough else None)


def _gap_table(graph: tuple[np.ndarray, np.ndarray], high: int, max_neighbour_fraction: float, n_values: int,
               weighted: bool = False, normalised: bool = False) -> list[tuple[int, np.ndarray]]:
    """``[(p, gaps), ...]``: for each neighbour count ``p`` tried, the eigengaps ``gaps[k - 1]`` (after
    the ``k``-th smallest eigenvalue, ``k = 1 .. high``) of one graph variant (:func:`_laplacian_eigenvalues`).
    ``graph``: ``(similarity, order)`` of the centred, normalised rows (:func:`_graph`).
    A ``p`` whose eigensolver fails is left out (logged); all failing raises ``LinAlgError``."""
    similarity, order = graph
    n = len(order)
    candidates = np.unique(np.linspace(2, max(2, int(max_neighbour_fraction * n)), int(n_values)).round().astype(np.int64))
    table, failures = [], 0
    for p in candidates:
        try:
            # one BLAS thread for a recording's small eigenproblems: more threads only add overhead there
            with threadpool_limits(limits=1 if n <= 1000 else None):
                lam = _laplacian_eigenvalues(order, int(p), similarity if weighted else None, normalised)
        except np.linalg.LinAlgError as exc:  # the next p may still work
            failures += 1
            logger.debug("eigensolver failed at p=%d: %s", p, exc)
            continue
        table.append((int(p), np.diff(lam[: high + 1])))
    if not table:
        raise np.linalg.LinAlgError(f"the eigensolver failed for all {failures} neighbour counts")
    return table


def _graph(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of the rows ``x`` and each row's columns by decreasing similarity."""
    similarity = x @ x.T
    return similarity, np.argsort(-similarity, axis=1, kind="stable")


def _largest_gap(gaps: np.ndarray, low: int) -> int:
    """The ``k >= low`` of the largest gap."""
    return int(np.argmax(gaps[low - 1:])) + low


def _nme_pick(table: list[tuple[int, np.ndarray]], n: int, low: int) -> tuple[int, int, np.ndarray]:
    """Park et al.'s choice: the ``p`` minimising ``(p / n) ** e / g_p``; ``(k, p, gaps)`` at it."""
    best = None
    for p, gaps in table:
        k = _largest_gap(gaps, low)
        ratio = (p / n) ** _PROXY_EXPONENT / max(float(gaps[k - 1]), 1e-12)
        if best is None or ratio < best[0]:
            best = (ratio, k, p, gaps)
    return best[1], best[2], best[3]


def _vote_pick(table: list[tuple[int, np.ndarray]], low: int) -> int:
    """The ``k`` of the largest gap for the most values of ``p`` (the smaller ``k`` on ties)."""
    votes = Counter(_largest_gap(gaps, low) for _, gaps in table)
    return max(votes, key=lambda k: (votes[k], -k))


def _eigengap_count(x: np.ndarray, low: int, high: int, max_points: int, max_neighbour_fraction: float,
                    n_values: int, consensus: bool = False) -> tuple[int, SpeakerCount]:
    x = _centred_sample(x, max_points)
    n = len(x)
    high = max(min(high, n - 1), 1)
    low = min(low, high)
    graph = _graph(x)
    table = _gap_table(graph, high, max_neighbour_fraction, n_values)
    k, p, gaps = _nme_pick(table, n, low)
    if not consensus:
        return k, SpeakerCount(k, "eigengap", p, float(gaps[k - 1]), gaps, n)
    votes = [k, _vote_pick(table, low)]  # the plain graph first, then the other three variants
    for weighted, normalised in ((False, True), (True, False), (True, True)):
        variant = _gap_table(graph, high, max_neighbour_fraction, n_values, weighted, normalised)
        votes += [_nme_pick(variant, n, low)[0], _vote_pick(variant, low)]
    tally = Counter(votes)
    top = [c for c, m in tally.items() if m == max(tally.values())]
    count = k if k in top else min(top)
    return count, SpeakerCount(count, "consensus", p, float(gaps[k - 1]), gaps, n, votes=tuple(votes))


def estimate_num_speakers(
    rows: np.ndarray,
    min_speakers: int = 1,
    max_speakers: int | None = None,
    *,
    rule: str = "relative",
    positions: np.ndarray | None = None,
    lag: int = 10,
    coherence_threshold: float = 0.8,
    factor: float = 1.5,
    min_cluster_size: int = 20,
    max_points: int | None = None,
    max_neighbour_fraction: float = 0.25,
    n_values: int = 12,
) -> tuple[int, SpeakerCount]:
    """Number of speakers in the embedding rows of one recording (see the module notes).

    Parameters
    ----------
    rows : ndarray of shape (N, D), float, in time order; one recording's rows (as the clusterer
        sees them; they are centred and L2-normalised here), or a
        :class:`unspeech.diarize.row_source.RowView` (rows on disk, read block by block)
    min_speakers : int, the fewest speakers the answer may give (>= 1)
    max_speakers : int, optional; the most (default :data:`DEFAULT_MAX_SPEAKERS`)
    rule : {"relative", "eigengap", "consensus"}
    positions : ndarray of shape (N,), int, optional; the rows' places in time (see
        :func:`temporal_coherence`), default ``0..N-1``
    lag : int, positions between rows whose inputs do not overlap (10 rows = 1 s at a 100 ms step,
        the pooling window of the diarizer)
    coherence_threshold : float, one speaker when :func:`temporal_coherence` is at least this
        (module notes; 0 turns the test off)
    factor : float, "relative": the AHC cut over the median cosine distance of rows ``lag`` apart
    min_cluster_size : int, "relative": smaller clusters are not counted as speakers
    max_points : int, most rows looked at (evenly spaced subsample); default 3000 for "relative"
        (AHC keeps all pairwise distances), :data:`SPEAKER_COUNT_MAX_POINTS` for "eigengap" (a
        dense eigenproblem per ``p``), :data:`CONSENSUS_MAX_POINTS` for "consensus"
    max_neighbour_fraction : float in (0, 1], "eigengap" / "consensus": largest ``p`` as a fraction of the rows
        (0.25 as NeMo's ``max_rp_threshold``)
    n_values : int, "eigengap" / "consensus": how many ``p`` values are tried

    Returns
    -------
    count : int
    info : SpeakerCount

    Raises
    ------
    ConfigError for bad parameters; DataError for rows that are not a finite ``(N, D)`` matrix or
    bad ``positions``; :class:`numpy.linalg.LinAlgError` when the eigensolver fails for every ``p``.
    """
    if rule not in SPEAKER_COUNT_RULES:
        raise ConfigError(f"`rule` must be one of {', '.join(SPEAKER_COUNT_RULES)}. Received: rule={rule!r}")
    if max_points is None:
        max_points = {"relative": 3000, "eigengap": SPEAKER_COUNT_MAX_POINTS, "consensus": CONSENSUS_MAX_POINTS}[rule]
    if not factor > 0 or not 0 < max_neighbour_fraction <= 1:
        raise ConfigError(f"need factor > 0 and 0 < max_neighbour_fraction <= 1. Received: factor={factor}, "
                          f"max_neighbour_fraction={max_neighbour_fraction}")
    if int(max_points) < 4 or int(n_values) < 1:
        raise ConfigError(f"need max_points >= 4 and n_values >= 1. Received: max_points={max_points}, n_values={n_values}")
    x, low, high, done = _start(rows, min_speakers, max_speakers, positions, lag, coherence_threshold)
    if done is not None:
        return done
    if rule == "relative":
        return _relative_count(x, low, high, positions, int(lag), float(factor), int(min_cluster_size), int(max_points))
    count, info = _eigengap_count(x, low, high, int(max_points), float(max_neighbour_fraction), int(n_values),
                                  consensus=rule == "consensus")
    info.coherence = temporal_coherence(x, positions, int(lag)) if coherence_threshold > 0 else None
    return count, info
