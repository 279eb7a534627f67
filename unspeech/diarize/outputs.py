"""Diarization results as files: RTTM, the ``vad`` format and JSON (all written atomically).

* RTTM: 10 fields, 3 decimals, via :func:`unspeech.datadir.write_rttm`.
* ``vad`` format (ModelScope style): one speaker per line, speakers in order of first speech,
  each with its segments in seconds: ``spk1: [1.0, 3.0], [5.0, 8.0]``.
* JSON: ``{"file_id", "duration", "speakers", "segments": [{"start", "end", "speaker"}]}``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from unspeech._fileutil import atomic_open
from unspeech.datadir import Turn, write_rttm
from unspeech.errors import ConfigError, DataError

__all__ = [
    "OUTPUT_FORMATS",
    "speakers_in_order",
    "format_vad",
    "parse_vad",
    "to_json_dict",
    "write_rttm",
    "write_vad",
    "write_json",
    "write_outputs",
]

OUTPUT_FORMATS = ("rttm", "vad", "json")
"""Formats :func:`write_outputs` knows, with file endings ``.rttm``, ``.vad``, ``.json``."""

_SUFFIX = {"rttm": ".rttm", "vad": ".vad", "json": ".json"}


def _sec(x: float) -> str:
    text = f"{x:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def speakers_in_order(turns: Iterable[Turn]) -> list[str]:
    """Speaker labels in the order they first speak."""
    seen: dict[str, None] = {}
    for t in sorted(turns, key=lambda t: (t.onset, t.speaker)):
        seen.setdefault(t.speaker, None)
    return list(seen)


def format_vad(turns: Sequence[Turn]) -> str:
    """The ``vad`` format of one file's turns: ``spk1: [1.0, 3.0], [5.0, 8.0]`` lines (no turns: "")."""
    lines = []
    for spk in speakers_in_order(turns):
        spans = sorted((t.onset, t.onset + t.duration) for t in turns if t.speaker == spk)
        lines.append(f"{spk}: " + ", ".join(f"[{_sec(a)}, {_sec(b)}]" for a, b in spans))
    return "".join(line + "\n" for line in lines)


_SPAN = re.compile(r"\[\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\]")


def parse_vad(text: str, file_id: str = "<vad>", channel: str = "1") -> list[Turn]:
    """Read the ``vad`` format back into turns (for round trips and scoring)."""
    turns = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        spk, sep, rest = line.partition(":")
        spans = _SPAN.findall(rest)
        if not sep or not spk.strip() or not spans or _SPAN.sub("", rest).replace(",", "").strip():
            raise DataError(f"{file_id}:{lineno}: expected 'speaker: [start, end], ...', got {line!r}")
        for a, b in spans:
            start, end = float(a), float(b)
            if end < start:
                raise DataError(f"{file_id}:{lineno}: segment [{a}, {b}] ends before it starts")
            turns.append(Turn(file_id, channel, start, round(end - start, 6), spk.strip()))
    return turns


def to_json_dict(turns: Sequence[Turn], file_id: str, duration: float | None = None) -> dict:
    """One file's result as a JSON-ready dict (segments sorted by start)."""
    return {
        "file_id": file_id,
        "duration": None if duration is None else round(float(duration), 3),
        "speakers": speakers_in_order(turns),
        "segments": [
            {"start": round(t.onset, 3), "end": round(t.onset + t.duration, 3), "speaker": t.speaker}
            for t in sorted(turns, key=lambda t: (t.onset, t.speaker))
        ],
    }


def write_vad(path: str | os.PathLike, turns: Sequence[Turn]) -> None:
    with atomic_open(path) as fh:
        fh.write(format_vad(turns))


def write_json(path: str | os.PathLike, turns: Sequence[Turn], file_id: str, duration: float | None = None) -> None:
    with atomic_open(path) as fh:
        json.dump(to_json_dict(turns, file_id, duration), fh, indent=1)
        fh.write("\n")


def write_outputs(
    out_dir: str | os.PathLike,
    file_id: str,
    turns: Sequence[Turn],
    formats: Iterable[str] = ("rttm",),
    duration: float | None = None,
) -> list[Path]:
    """Write ``out_dir/<file_id>.rttm`` / ``.vad`` / ``.json``; returns the paths written."""
    formats = list(formats)
    unknown = [f for f in formats if f not in OUTPUT_FORMATS]
    if unknown:
        raise ConfigError(f"unknown output format(s) {unknown}; choose from {', '.join(OUTPUT_FORMATS)}")
    out = Path(out_dir)
    written = []
    for fmt in formats:
        path = out / f"{file_id}{_SUFFIX[fmt]}"
        if fmt == "rttm":
            write_rttm(path, turns)
        elif fmt == "vad":
            write_vad(path, turns)
        else:
            write_json(path, turns, file_id, duration)
        written.append(path)
    return written
