"""Timeline figure of a diarization: one lane per speaker, the reference above the hypothesis.

matplotlib runs with the non-interactive Agg backend; files are written atomically in the
format their ending names (``.png``, ``.pdf``, ``.svg``).
"""

from __future__ import annotations

import os
from typing import Sequence

from unspeech.datadir import Turn

__all__ = ["plot_timeline", "save_timeline"]


def _draw_lanes(ax, turns: Sequence[Turn], title: str, cmap) -> None:
    from unspeech.diarize.outputs import speakers_in_order

    speakers = speakers_in_order(turns)
    for lane, spk in enumerate(speakers):
        spans = [(t.onset, t.duration) for t in turns if t.speaker == spk]
        ax.broken_barh(spans, (lane - 0.4, 0.8), facecolors=cmap(lane % cmap.N), edgecolors="none")
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
):
    """A figure with the hypothesis lanes (and, above them, the reference lanes when given).

    Parameters
    ----------
    hypothesis, reference : turns of one file (other files' turns are ignored when ``file_id`` is set)
    file_id : str, optional; named in the title
    duration : float, seconds; the x range (default: the last turn end)

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
    for ax, (name, turns) in zip(axes[:, 0], panels):
        _draw_lanes(ax, turns, name, cmap)
    end = duration if duration is not None else max((t.onset + t.duration for _, ts in panels for t in ts), default=1.0)
    axes[-1, 0].set_xlim(0, max(end, 1e-3))
    axes[-1, 0].set_xlabel("time (s)")
    if file_id is not None:
        fig.suptitle(file_id, fontsize=11)
    fig.tight_layout()
    return fig


def save_timeline(
    path: str | os.PathLike,
    hypothesis: Sequence[Turn],
    reference: Sequence[Turn] | None = None,
    file_id: str | None = None,
    duration: float | None = None,
    dpi: int = 100,
) -> None:
    """Draw :func:`plot_timeline` and write it to ``path`` atomically."""
    import matplotlib.pyplot as plt

    from unspeech._fileutil import atomic_path

    fig = plot_timeline(hypothesis, reference, file_id, duration)
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
    finally:
        plt.close(fig)
