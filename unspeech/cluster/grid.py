"""Grid search over clustering settings: every point is a fresh fit, every point one CSV row.

(The original toolkit's loop built a new HDBSCAN per point but printed the first setting's
``min_samples`` and kept results keyed so that points overwrote each other; here each point gets
its own clusterer from :func:`~unspeech.cluster.algorithms.make_clusterer`, its own row, and
the best point is chosen by pairwise F1 when gold speakers are known.)
"""

from __future__ import annotations

import csv
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from unspeech.cluster.algorithms import make_clusterer
from unspeech.cluster.metrics import ClusterScores, score_against_gold
from unspeech.cluster.outliers import resolve_outliers
from unspeech.cluster.outputs import cluster_size_summary
from unspeech.errors import ConfigError

__all__ = ["GridPoint", "GridResult", "parse_values", "expand_grid", "run_grid", "write_grid_csv"]

logger = logging.getLogger(__name__)

Hook = Callable[..., None]


def parse_values(text: str | int | float | None, kind: type, flag: str) -> list:
    """Parse a comma list such as ``"3,5,8"`` into ``[3, 5, 8]``; ``none`` stands for ``None``."""
    if text is None:
        return [None]
    if isinstance(text, (int, float)):
        return [kind(text)]
    values = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            raise ConfigError(f"{flag}: empty value in {text!r} (use a comma list like '3,5,8')")
        if part.lower() == "none":
            values.append(None)
            continue
        try:
            values.append(kind(part))
        except ValueError:
            raise ConfigError(f"{flag}: {part!r} is not a valid {kind.__name__} (in {text!r})") from None
    return values


def expand_grid(grid: Mapping[str, Sequence]) -> list[dict]:
    """All combinations of a ``{param: [values]}`` grid, in the order the values were given."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


@dataclass
class GridPoint:
    """One fitted setting: its parameters, what came out, and its scores (when gold is known)."""

    params: dict
    summary: dict
    seconds: float
    scores: ClusterScores | None = None

    def row(self, algorithm: str) -> dict:
        row = {"algorithm": algorithm, **{k: ("none" if v is None else v) for k, v in self.params.items()}}
        row.update(self.summary)
        row["seconds"] = round(self.seconds, 3)
        if self.scores is not None:
            row.update({name: round(getattr(self.scores, name), 6) for name in ClusterScores.FIELDS})
            row["n_scored"] = self.scores.n_scored
            row["n_missing_in_clustering"] = self.scores.n_missing_in_clustering
            row["n_missing_in_gold"] = self.scores.n_missing_in_gold
        return row


@dataclass
class GridResult:
    """All grid points plus the chosen one (its labels after the outlier policy, and its model)."""

    algorithm: str
    points: list[GridPoint]
    best_index: int
    labels: np.ndarray
    raw_labels: np.ndarray
    model: object = field(repr=False)

    @property
    def best(self) -> GridPoint:
        return self.points[self.best_index]

    def rows(self) -> list[dict]:
        return [p.row(self.algorithm) for p in self.points]


def run_grid(
    vectors: np.ndarray,
    algorithm: str,
    grid: Mapping[str, Sequence],
    fixed: Mapping[str, object] | None = None,
    *,
    utt_ids: Sequence[str] | None = None,
    gold: Mapping[str, str] | None = None,
    outliers: str = "nearest",
    hook: Hook | None = None,
) -> GridResult:
    """Fit ``algorithm`` once per point of ``grid`` (merged with ``fixed`` parameters).

    Parameters
    ----------
    vectors : ndarray of shape (n, D)
    grid : {param: [values]}
        Varied parameters; one value each gives a single fit.
    gold : {utt: speaker}, optional
        With ``utt_ids``, every point is scored (after the outlier policy) and the best pairwise
        F1 is chosen; without gold the grid must have one point (nothing to choose by) unless
        the caller only wants the rows.
    hook : callable, optional
        ``hook("grid", point, completed=i, total=m)`` after every fit.

    Returns
    -------
    GridResult
    """
    fixed = dict(fixed or {})
    overlap = set(fixed) & set(grid)
    if overlap:
        raise ConfigError(f"parameters both fixed and searched: {', '.join(sorted(overlap))}")
    if gold is not None and utt_ids is None:
        raise ConfigError("scoring against gold speakers needs the utterance ids")
    points = expand_grid(grid)
    done: list[GridPoint] = []
    best_index, best_f1 = 0, -1.0
    best_labels = best_raw = best_model = None
    for i, point in enumerate(points):
        model = make_clusterer(algorithm, **fixed, **point)
        start = time.perf_counter()
        model.fit(vectors)
        seconds = time.perf_counter() - start
        raw = model.labels_
        labels = resolve_outliers(raw, outliers, vectors)
        summary = cluster_size_summary(raw)
        scores = score_against_gold(utt_ids, labels, gold) if gold is not None else None
        done.append(GridPoint(dict(point), summary, seconds, scores))
        logger.info(
            "%s %s: %d clusters, %d noise, %.1f s%s",
            algorithm,
            point,
            summary["n_clusters"],
            summary["n_noise"],
            seconds,
            f", ARI {scores.ari:.4f}, pairwise F1 {scores.pairwise_f1:.4f}" if scores else "",
        )
        f1 = scores.pairwise_f1 if scores is not None else 0.0
        if best_labels is None or f1 > best_f1:
            best_index, best_f1 = i, f1
            best_labels, best_raw, best_model = labels, raw, model
        if hook is not None:
            hook("grid", done[-1], completed=i + 1, total=len(points))
    return GridResult(algorithm, done, best_index, best_labels, best_raw, best_model)


def write_grid_csv(path: str | os.PathLike, rows: Sequence[Mapping]) -> None:
    """Write grid rows as CSV with one header line (the union of the rows' columns, in first-seen order)."""
    from unspeech._fileutil import atomic_open

    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with atomic_open(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
