"""Timeline figure of a diarization: one lane per speaker, the reference above the hypothesis.

matplotlib runs with the non-interactive Agg backend; files are written atomically in the
format their ending names (``.png``, ``.pdf``, ``.svg``).
"""

from __future__ import annotations

import os
from typing import Sequence

from unspeech.datadir import Turn

__all__ = ["plot_timeline", "save_timeline"]


def _overlap(a: Sequence[Turn], b: Sequence[Turn]) -> float:
    return sum(max(0.0, min(x.onset + x.duration, y.onset + y.duration) - max(x.onset, y.onset)) for x in a for y in b)


def _matched_colours(reference: Sequence[Turn], hypothesis: Sequence[Turn]) -> dict[str, int]:
    """Colour index of each hypothesis speaker: that of the reference speaker it is mapped to (the
    one-to-one mapping of most overlap, as DER's), new indices after the reference's for the rest."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    from unspeech.diarize.outputs import speakers_in_order

    ref, hyp = speakers_in_order(reference), speakers_in_order(hypothesis)
    overlap = np.array([[_overlap([t for t in reference if t.speaker == r], [t for t in hypothesis if t.speaker == h])
                         for h in hyp] for r in ref]).reshape(len(ref), len(hyp))
    colours = {}
    for i, j in zip(*linear_sum_assignment(-overlap)):
        if overlap[i, j] > 0:
            colours[hyp[j]] = int(i)
    extra = len(ref)
    for h in hyp:
        if h not in colours:
            colours[h], extra = extra, extra + 1
    return colours


def _draw_lanes(ax, turns: Sequence[Turn], title: str, cmap, colours: dict[str, int] | None = None) -> None:
    from unspeech.diarize.outputs import speakers_in_order

    speakers = speakers_in_order(turns)
    for lane, spk in enumerate(speakers):
        spans = [(t.onset, t.duration) for t in turns if t.speaker == spk]
        colour = cmap((colours or {}).get(spk, lane) % cmap.N)
        ax.broken_barh(spans, (lane - 0.4, 0.8), facecolors=colour, edgecolors="none")
    ax.set_yticks(range(len(speakers)))
    ax.set_yticklabels(speakers)
    ax.set_ylim(-0.6, max(len(speakers), 1) - 0.4)
    ax.invert_yaxis()
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if not speakers:
        ax.text(0.5, 0.5, "no speech", transform=ax.transAxes, ha="center", va="center", color="gray")


def plot_timeline(
    hypothesis: Sequence[Turn],
    reference: Sequence[Turn] | None = None,
    file_id: str | None = None,
    duration: float | None = None,
    collar: float = 0.25,
):
    """A figure with the hypothesis lanes (and, above them, the reference lanes when given).

    With a reference, each hypothesis speaker takes the colour of the reference speaker it is
    mapped to (most overlap, one to one, as in DER) and the title gives the DER.

    Parameters
    ----------
    hypothesis, reference : turns of one file (other files' turns are ignored when ``file_id`` is set)
    file_id : str, optional; named in the title
    duration : float, seconds; the x range (default: the last turn end)
    collar : float, seconds each side of reference boundaries not scored by the DER in the title

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if file_id is not None:
        hypothesis = [t for t in hypothesis if t.file_id == file_id]
        reference = None if reference is None else [t for t in reference if t.file_id == file_id]
    panels = [("hypothesis", hypothesis)] if reference is None else [("reference", reference), ("hypothesis", hypothesis)]
    heights = [max(len({t.speaker for t in turns}), 1) + 1 for _, turns in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(12, 0.45 * sum(heights) + 1.2), sharex=True,
        gridspec_kw={"height_ratios": heights}, squeeze=False,
    )
    cmap = plt.get_cmap("tab10")
    title = file_id or ""
    colours = None
    if reference:
        from unspeech.diarize.scoring import score_turns

        colours = _matched_colours(reference, hypothesis)
        file_ids = {t.file_id for t in reference}
        if len(file_ids) == 1:
            report = score_turns(reference, hypothesis, collar=collar)
            title = (f"{title}: " if title else "") + (f"DER {100 * report.total.der:.1f} % (collar {collar:g} s, overlap "
                                                       "scored); colours: hypothesis speakers as the reference "
                                                       "speakers they are mapped to")
    for ax, (name, turns) in zip(axes[:, 0], panels):
        _draw_lanes(ax, turns, name, cmap, colours if name == "hypothesis" else None)
    end = duration if duration is not None else max((t.onset + t.duration for _, ts in panels for t in ts), default=1.0)
    axes[-1, 0].set_xlim(0, max(end, 1e-3))
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def save_timeline(
    path: str | os.PathLike,
    hypothesis: Sequence[Turn],
    reference: Sequence[Turn] | None = None,
    file_id: str | None = None,
    duration: float | None = None,
    dpi: int = 100,
    collar: float = 0.25,
) -> None:
    """Draw :func:`plot_timeline` and write it to ``path`` atomically."""
    import matplotlib.pyplot as plt

    from unspeech._fileutil import atomic_path

    fig = plot_timeline(hypothesis, reference, file_id, duration, collar)
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
    finally:
        plt.close(fig)
