"""Kaldi data directory files and diarization references: read, write, validate.

Files covered: ``utt2spk``, ``spk2utt``, ``segments``, ``wav.scp``, ``feats.scp``, ``text``,
RTTM and UEM. Writers sort lines in C-locale (byte) order, as Kaldi's ``utils/validate_data_dir.sh``
requires, and write atomically. Speaker ids are kept whole: ``sp0.9-spk1`` and ``spk1`` are
different speakers (the original toolkit cut ids at the first '-').

Times are in seconds everywhere.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from unspeech._fileutil import atomic_open
from unspeech.errors import DataError

__all__ = [
    "Segment",
    "Turn",
    "c_sorted",
    "read_table",
    "write_table",
    "read_utt2spk",
    "write_utt2spk",
    "read_spk2utt",
    "write_spk2utt",
    "utt2spk_to_spk2utt",
    "spk2utt_to_utt2spk",
    "read_segments",
    "write_segments",
    "read_wav_scp",
    "write_wav_scp",
    "kaldi_wav_entry",
    "kaldi_wav_scp",
    "read_text",
    "write_text",
    "read_rttm",
    "write_rttm",
    "read_uem",
    "write_uem",
    "validate_datadir",
]


class Segment(NamedTuple):
    """One line of a Kaldi ``segments`` file: a span of a recording, in seconds."""

    recording: str
    start: float
    end: float


class Turn(NamedTuple):
    """One RTTM ``SPEAKER`` line: who speaks in ``file_id`` from ``onset`` for ``duration`` seconds."""

    file_id: str
    channel: str
    onset: float
    duration: float
    speaker: str

    @property
    def end(self) -> float:
        return self.onset + self.duration


def c_sorted(keys: Iterable[str]) -> list[str]:
    """Sort like ``LC_ALL=C sort``: by the UTF-8 bytes of each key."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def _open_text(path: str | os.PathLike):
    try:
        return open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, expected a file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None


def read_table(path: str | os.PathLike, min_fields: int = 2, max_split: int = 1) -> dict[str, list[str]]:
    """Read a Kaldi table ``key field ...``; returns key -> fields (after the key).

    ``max_split=1`` keeps the rest of the line as one field (``wav.scp`` commands, ``text``).
    Duplicate keys and short lines raise :class:`DataError` with file and line number.
    """
    table: dict[str, list[str]] = {}
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.strip().split(None, max_split) if max_split else line.split()
            if len(parts) < min_fields:
                raise DataError(f"{path}:{lineno}: expected at least {min_fields} fields, got {line.strip()!r}")
            if parts[0] in table:
                raise DataError(f"{path}:{lineno}: key {parts[0]!r} appears twice")
            table[parts[0]] = parts[1:]
    return table


_WHITESPACE = re.compile(r"\s")  # str.isspace() characters (Unicode whitespace)


def write_table(path: str | os.PathLike, table: Mapping[str, str | Iterable[str]]) -> None:
    """Write ``key value`` lines in C-locale key order, atomically."""
    lines = []
    for key in c_sorted(table):
        value = table[key]
        value = value if isinstance(value, str) else " ".join(value)
        if not key or _WHITESPACE.search(key):
            raise DataError(f"{path}: invalid key {key!r} (must be non-empty, without whitespace)")
        lines.append(f"{key} {value}\n")
    with atomic_open(path) as fh:  # nothing is written when a key is invalid
        fh.writelines(lines)


# ------------------------------------------------------------------ speakers


def read_utt2spk(path: str | os.PathLike) -> dict[str, str]:
    """utt -> speaker, exactly as written (ids are never truncated)."""
    table: dict[str, str] = {}
    with _open_text(path) as fh:  # one pass (a million lines in about a second)
        for lineno, line in enumerate(fh, 1):
            fields = line.split()
            if len(fields) == 2:
                utt, spk = fields
                if utt in table:
                    raise DataError(f"{path}:{lineno}: key {utt!r} appears twice")
                table[utt] = spk
            elif len(fields) == 1:
                raise DataError(f"{path}:{lineno}: expected at least 2 fields, got {line.strip()!r}")
            elif fields:
                raise DataError(f"{path}: utterance {fields[0]!r} has {len(fields) - 1} speaker fields, expected 1")
    return table


def write_utt2spk(path: str | os.PathLike, utt2spk: Mapping[str, str]) -> None:
    write_table(path, utt2spk)


def read_spk2utt(path: str | os.PathLike) -> dict[str, list[str]]:
    return read_table(path, max_split=0)


def write_spk2utt(path: str | os.PathLike, spk2utt: Mapping[str, Iterable[str]]) -> None:
    write_table(path, {spk: c_sorted(utts) for spk, utts in spk2utt.items()})


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert utt2spk; speakers and their utterances in C-locale order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for utt, spk in utt2spk.items():
        groups[spk].append(utt)
    return {spk: c_sorted(groups[spk]) for spk in c_sorted(groups)}


def spk2utt_to_utt2spk(spk2utt: Mapping[str, Iterable[str]]) -> dict[str, str]:
    utt2spk: dict[str, str] = {}
    for spk, utts in spk2utt.items():
        for utt in utts:
            if utt in utt2spk:
                raise DataError(f"utterance {utt!r} belongs to speakers {utt2spk[utt]!r} and {spk!r}")
            utt2spk[utt] = spk
    return {u: utt2spk[u] for u in c_sorted(utt2spk)}


# ------------------------------------------------------------------ segments, wav.scp, text


def read_segments(path: str | os.PathLike) -> dict[str, Segment]:
    """``utt recording start end`` lines; ``end = -1`` (Kaldi: to the end) is kept as -1."""
    segments = {}
    for utt, fields in read_table(path, min_fields=4, max_split=0).items():
        try:
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise DataError(f"{path}: utterance {utt!r}: start/end must be numbers, got {fields[1:3]}") from None
        if start < 0 or (end != -1 and end <= start):
            raise DataError(f"{path}: utterance {utt!r}: bad span {start}..{end}")
        segments[utt] = Segment(fields[0], start, end)
    return segments


def write_segments(path: str | os.PathLike, segments: Mapping[str, Segment]) -> None:
    write_table(path, {u: f"{s.recording} {s.start:.3f} {s.end:.3f}" for u, s in segments.items()})


def read_wav_scp(path: str | os.PathLike) -> dict[str, str]:
    """recording -> file path or command ending in ``|`` (the whole rest of the line)."""
    return {key: fields[0] for key, fields in read_table(path).items()}


def write_wav_scp(path: str | os.PathLike, wav_scp: Mapping[str, str]) -> None:
    """Write ``recording value`` lines as given (see :func:`kaldi_wav_scp` for Kaldi-readable values)."""
    write_table(path, wav_scp)


def kaldi_wav_entry(source: str | os.PathLike, *, plain_paths: bool = False, absolute: bool = True) -> str:
    """The ``wav.scp`` value for an audio source that Kaldi's wav reader accepts.

    Kaldi reads WAV files and command pipes only ("expected RIFF or RIFX" for anything else), so a
    file of another format (flac, ogg, mp3, ...) becomes a sox decoding pipe to 16-bit WAV,
    ``sox x.flac -t wav -b 16 - |``; WAV files stay plain paths. Pipes (``cmd |``) and archive
    offsets (``x.ark:123``) are kept as they are.

    Parameters
    ----------
    source : path or ``wav.scp`` value
    plain_paths : bool
        Keep every file as its plain path (for tools that decode flac themselves: lhotse,
        torchaudio, ESPnet); Kaldi's binaries then cannot read non-WAV entries.
    absolute : bool
        Make file paths absolute (what Kaldi's data-prep scripts write), so the data dir works from
        any directory; False keeps them as given (relative to where commands are run).
    """
    import shlex

    from unspeech.audio import is_pipe

    text = os.fspath(source)
    if is_pipe(text) or re.search(r"\.ark:[0-9]+$", text):
        return text
    path = os.path.abspath(text) if absolute else text
    if plain_paths or os.path.splitext(path)[1].lower() == ".wav":
        return path
    return f"sox {shlex.quote(path)} -t wav -b 16 - |"


def kaldi_wav_scp(sources: Mapping[str, str], *, plain_paths: bool = False, absolute: bool = True) -> dict[str, str]:
    """:func:`kaldi_wav_entry` of every value of a recording id -> source mapping."""
    return {key: kaldi_wav_entry(src, plain_paths=plain_paths, absolute=absolute) for key, src in sources.items()}


def read_text(path: str | os.PathLike) -> dict[str, str]:
    table = read_table(path, min_fields=1)
    return {utt: fields[0] if fields else "" for utt, fields in table.items()}


def write_text(path: str | os.PathLike, text: Mapping[str, str]) -> None:
    write_table(path, text)


# ------------------------------------------------------------------ RTTM and UEM


def read_rttm(path: str | os.PathLike) -> list[Turn]:
    """``SPEAKER`` lines of an RTTM file (other types are skipped), in file order."""
    turns = []
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts or parts[0].startswith(";"):
                continue
            if parts[0] != "SPEAKER":
                continue
            if len(parts) < 8:
                raise DataError(f"{path}:{lineno}: RTTM SPEAKER line needs at least 8 fields, got {len(parts)}")
            try:
                onset, duration = float(parts[3]), float(parts[4])
            except ValueError:
                raise DataError(f"{path}:{lineno}: onset/duration must be numbers, got {parts[3:5]}") from None
            if onset < 0 or duration < 0:
                raise DataError(f"{path}:{lineno}: negative onset or duration")
            turns.append(Turn(parts[1], parts[2], onset, duration, parts[7]))
    return turns


def write_rttm(path: str | os.PathLike, turns: Iterable[Turn]) -> None:
    """Write 10-field RTTM lines (3 decimals), sorted by file then onset."""
    turns = sorted(turns, key=lambda t: (t.file_id.encode("utf-8"), t.onset, t.speaker))
    with atomic_open(path) as fh:
        for t in turns:
            fh.write(
                f"SPEAKER {t.file_id} {t.channel} {t.onset:.3f} {t.duration:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
            )


def read_uem(path: str | os.PathLike) -> dict[str, list[tuple[float, float]]]:
    """``file channel start end`` lines -> file -> list of (start, end) spans."""
    uem: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts or parts[0].startswith(";"):
                continue
            if len(parts) != 4:
                raise DataError(f"{path}:{lineno}: UEM lines have 4 fields (file channel start end)")
            try:
                start, end = float(parts[2]), float(parts[3])
            except ValueError:
                raise DataError(f"{path}:{lineno}: start/end must be numbers") from None
            if end < start:
                raise DataError(f"{path}:{lineno}: end {end} before start {start}")
            uem[parts[0]].append((start, end))
    return dict(uem)


def write_uem(path: str | os.PathLike, uem: Mapping[str, Iterable[tuple[float, float]]]) -> None:
    with atomic_open(path) as fh:
        for file_id in c_sorted(uem):
            for start, end in uem[file_id]:
                fh.write(f"{file_id} 1 {start:.3f} {end:.3f}\n")


# ------------------------------------------------------------------ validation


def validate_datadir(path: str | os.PathLike) -> None:
    """Check a Kaldi data dir like ``utils/validate_data_dir.sh --no-feats --no-text`` would.

    Checks: ``utt2spk`` exists; every table is sorted in C order; ``spk2utt`` is the inverse of
    ``utt2spk``; ``feats.scp``, ``segments``, ``text`` cover exactly the utterances of
    ``utt2spk``; recordings named in ``segments`` are in ``wav.scp``. Raises :class:`DataError`.
    """
    d = Path(path)
    if not (d / "utt2spk").is_file():
        raise DataError(f"{d}: not a Kaldi data dir (no utt2spk)")
    for name in ("utt2spk", "spk2utt", "feats.scp", "segments", "wav.scp", "text"):
        f = d / name
        if f.is_file():
            keys = [line.split(None, 1)[0] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
            if keys != c_sorted(keys):
                raise DataError(f"{f}: not sorted in C-locale order (run: LC_ALL=C sort -k1,1 -u)")
    utt2spk = read_utt2spk(d / "utt2spk")
    utts = set(utt2spk)
    if (d / "spk2utt").is_file():
        if spk2utt_to_utt2spk(read_spk2utt(d / "spk2utt")) != utt2spk:
            raise DataError(f"{d}: spk2utt is not the inverse of utt2spk")
    for name in ("feats.scp", "segments", "text"):
        f = d / name
        if f.is_file():
            keys = set(read_table(f, min_fields=1))
            if keys != utts:
                missing = c_sorted(utts - keys)[:3]
                extra = c_sorted(keys - utts)[:3]
                raise DataError(f"{f}: utterances differ from utt2spk (missing {missing}, extra {extra})")
    if (d / "segments").is_file():
        if not (d / "wav.scp").is_file():
            raise DataError(f"{d}: segments given but no wav.scp")
        recordings = set(read_wav_scp(d / "wav.scp"))
        for utt, seg in read_segments(d / "segments").items():
            if seg.recording not in recordings:
                raise DataError(f"{d / 'segments'}: utterance {utt!r} names recording {seg.recording!r} not in wav.scp")
    elif (d / "wav.scp").is_file() and not (d / "feats.scp").is_file():
        missing = utts - set(read_wav_scp(d / "wav.scp"))
        if missing:
            raise DataError(f"{d / 'wav.scp'}: no audio for utterances {c_sorted(missing)[:3]}")
