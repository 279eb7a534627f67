"""Diarization error rate (false alarm, missed speech, confusion) and JER via pyannote.metrics.

Collar convention
-----------------
``collar`` here is **md-eval's value**: the number of seconds on *each side* of every reference
boundary that is not scored (``md-eval.pl -c 0.25`` forgives 0.25 s before and 0.25 s after
each boundary). pyannote.metrics' ``collar`` argument is the *total* width of that forgiveness
zone, centred on the boundary (its ``extrude`` removes ``[t - collar / 2, t + collar / 2]``; its
author confirms in pyannote-metrics issue #33 that ``collar=0.5`` there equals ``-c 0.25`` in
md-eval). This module therefore passes ``2 * collar`` to pyannote.

Scored region: per file, the UEM spans when a UEM is given, otherwise the span from the
earliest to the latest time in either the reference or the hypothesis of that file.
``skip_overlap`` leaves regions where two or more reference speakers talk out of the scoring.
Totals are sums over files (DER = errors / scored reference speech), JER is pyannote's
accumulated speaker-weighted value.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

from unspeech.datadir import Turn, c_sorted, read_rttm, read_uem
from unspeech.errors import ConfigError, DataError

__all__ = ["FileScore", "ScoreReport", "score_turns", "score_rttm"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileScore:
    """Scores of one file (or the total). Durations in seconds, rates as fractions."""

    file_id: str
    scored: float  # reference speech inside the scored region
    false_alarm: float
    missed: float
    confusion: float
    der: float
    jer: float
    ref_speakers: int
    hyp_speakers: int


@dataclass(frozen=True)
class ScoreReport:
    """Per-file scores and the total over all files."""

    files: list[FileScore]
    total: FileScore
    collar: float
    skip_overlap: bool

    def to_dict(self) -> dict:
        return {
            "collar": self.collar,
            "skip_overlap": self.skip_overlap,
            "files": [asdict(f) for f in self.files],
            "total": asdict(self.total),
        }

    def to_text(self) -> str:
        """A fixed-width table: one line per file, then TOTAL; rates in percent."""
        head = f"{'file':<24s} {'scored_s':>9s} {'FA%':>6s} {'MISS%':>6s} {'CONF%':>6s} {'DER%':>6s} {'JER%':>6s} {'ref':>4s} {'hyp':>4s}"
        lines = [f"# collar {self.collar:g} s each side (md-eval), overlap {'skipped' if self.skip_overlap else 'scored'}",
                 "# scored_s: reference speech scored (silence, collars" + (", overlap" if self.skip_overlap else "")
                 + " left out); DER% = FA% + MISS% + CONF%; ref/hyp: speakers", head]
        for f in [*self.files, self.total]:
            den = f.scored or float("nan")
            lines.append(
                f"{f.file_id:<24s} {f.scored:9.2f} {100 * f.false_alarm / den:6.2f} {100 * f.missed / den:6.2f} "
                f"{100 * f.confusion / den:6.2f} {100 * f.der:6.2f} {100 * f.jer:6.2f} {f.ref_speakers:4d} {f.hyp_speakers:4d}"
            )
        return "\n".join(lines)


def _annotation(turns: Sequence[Turn], uri: str):
    from pyannote.core import Annotation, Segment

    ann = Annotation(uri=uri)
    for i, t in enumerate(turns):
        if t.duration > 0:
            ann[Segment(t.onset, t.onset + t.duration), i] = t.speaker
    return ann


def _by_file(turns: Sequence[Turn]) -> dict[str, list[Turn]]:
    groups: dict[str, list[Turn]] = {}
    for t in turns:
        groups.setdefault(t.file_id, []).append(t)
    return groups


def score_turns(
    reference: Sequence[Turn],
    hypothesis: Sequence[Turn],
    uem: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    collar: float = 0.25,
    skip_overlap: bool = False,
) -> ScoreReport:
    """Score hypothesis turns against reference turns, file by file.

    Parameters
    ----------
    reference, hypothesis : sequences of :class:`unspeech.datadir.Turn`
    uem : file id -> [(start, end), ...] seconds, optional; every reference file must have one
    collar : float, seconds on each side of reference boundaries left unscored (md-eval ``-c``)
    skip_overlap : bool, leave overlapped reference speech unscored

    Returns
    -------
    ScoreReport. Files are the reference's (C-locale order); a file without hypothesis turns
    counts all its speech as missed; hypothesis files without reference are logged and ignored.
    """
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    if collar < 0:
        raise ConfigError(f"`collar` must be >= 0. Received: collar={collar}")
    refs, hyps = _by_file(reference), _by_file(hypothesis)
    if not refs:
        raise DataError("the reference has no SPEAKER turns: nothing to score")
    extra = c_sorted(set(hyps) - set(refs))
    if extra:
        logger.warning("%d hypothesis file(s) have no reference and are not scored: %s", len(extra), ", ".join(extra[:5]))
    der_metric = DiarizationErrorRate(collar=2 * collar, skip_overlap=skip_overlap)
    jer_metric = JaccardErrorRate(collar=2 * collar, skip_overlap=skip_overlap)
    rows = []
    for file_id in c_sorted(refs):
        ref_turns, hyp_turns = refs[file_id], hyps.get(file_id, [])
        if uem is not None:
            if file_id not in uem:
                raise DataError(f"the UEM has no entry for reference file {file_id!r}")
            spans = uem[file_id]
        else:
            times = [(t.onset, t.onset + t.duration) for t in [*ref_turns, *hyp_turns]]
            spans = [(min(a for a, _ in times), max(b for _, b in times))]
        region = Timeline([Segment(a, b) for a, b in spans if b > a], uri=file_id)
        ref, hyp = _annotation(ref_turns, file_id), _annotation(hyp_turns, file_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = der_metric(ref, hyp, uem=region, detailed=True)
            j = jer_metric(ref, hyp, uem=region, detailed=True)
        rows.append(
            FileScore(
                file_id, d["total"], d["false alarm"], d["missed detection"], d["confusion"],
                d["diarization error rate"], j["jaccard error rate"],
                len(ref.labels()), len(hyp.labels()),
            )
        )
    scored = sum(r.scored for r in rows)
    fa, miss, conf = (sum(getattr(r, k) for r in rows) for k in ("false_alarm", "missed", "confusion"))
    total = FileScore(
        "TOTAL", scored, fa, miss, conf, abs(der_metric), abs(jer_metric),
        sum(r.ref_speakers for r in rows), sum(r.hyp_speakers for r in rows),
    )
    return ScoreReport(rows, total, float(collar), bool(skip_overlap))


def score_rttm(
    ref_rttm: str | os.PathLike,
    hyp_rttm: str | os.PathLike,
    uem: str | os.PathLike | None = None,
    collar: float = 0.25,
    skip_overlap: bool = False,
) -> ScoreReport:
    """:func:`score_turns` on RTTM files (and an optional UEM file)."""
    return score_turns(
        read_rttm(ref_rttm), read_rttm(hyp_rttm), read_uem(uem) if uem is not None else None, collar, skip_overlap
    )
