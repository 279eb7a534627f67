"""Speech corpora as lists of utterances: Kaldi data dirs and LibriSpeech trees.

* **Kaldi data dir**: a folder with ``wav.scp`` (paths or ``cmd |`` pipes), ``utt2spk`` and
  optionally ``segments`` (then each segment is an utterance; otherwise each ``wav.scp`` entry).
* **LibriSpeech tree**: ``<root>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac``, or one folder
  deeper (``LibriSpeech/train-clean-100/<speaker>/...``); other files (``*.trans.txt``) are ignored.

Listing reads no audio; :meth:`CorpusUtterance.load` gives 16 kHz mono float32 whatever the
source's rate and channels (:func:`unspeech.audio.load_audio`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from unspeech.audio import load_audio
from unspeech.errors import ConfigError, DataError

__all__ = [
    "CORPUS_LAYOUTS",
    "CorpusUtterance",
    "detect_corpus_layout",
    "read_speaker_list",
    "load_corpus",
    "load_corpus_utterances",
]

CORPUS_LAYOUTS = ("kaldi", "librispeech")
"""Corpus layouts :func:`detect_corpus_layout` recognises."""

_LIBRI_NAME = re.compile(r"^(?P<spk>[^-\s]+)-(?P<chapter>[^-\s]+)-\d+\.(flac|wav)$", re.IGNORECASE)


@dataclass(frozen=True)
class CorpusUtterance:
    """One utterance of a corpus: a whole file (or ``cmd |``), or a ``segments`` span of one."""

    utterance_id: str
    speaker_id: str
    source: str
    start: float | None = None  # seconds within ``source``; None: the whole recording
    end: float | None = None    # None: to the end

    def load(self) -> np.ndarray:
        """Samples, ndarray of shape (n,), float32, 16 kHz mono."""
        return load_audio(self.source, self.start, self.end)


def _librispeech_files(root: Path) -> dict[str, tuple[str, str]]:
    """utt -> (speaker, path) of ``<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac`` under root."""
    for pattern in ("*/*/*", "*/*/*/*"):
        found: dict[str, tuple[str, str]] = {}
        for path in sorted(root.glob(pattern)):
            m = _LIBRI_NAME.match(path.name)
            if m and path.parent.name == m["chapter"] and path.parent.parent.name == m["spk"]:
                if path.stem in found:
                    raise DataError(f"two LibriSpeech files have the id {path.stem!r}: "
                                    f"{found[path.stem][1]} and {path}")
                found[path.stem] = (m["spk"], str(path))
        if found:
            return found
    return {}


def _scan(root: Path) -> tuple[str, list[CorpusUtterance]]:
    """The layout and the utterances of a corpus folder."""
    if not root.is_dir():
        raise ConfigError(f"corpus {root} is not a directory")
    if (root / "wav.scp").is_file():
        return "kaldi", _kaldi_utterances(root)
    files = _librispeech_files(root)
    if files:
        return "librispeech", [CorpusUtterance(u, spk, path) for u, (spk, path) in files.items()]
    raise ConfigError(f"unknown corpus layout in {root}: expected a Kaldi data dir (wav.scp, utt2spk, optional "
                      f"segments) or a LibriSpeech tree (<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac, "
                      f"possibly one folder deeper)")


def detect_corpus_layout(corpus: str | os.PathLike) -> str:
    """``"kaldi"`` (a folder with ``wav.scp``) or ``"librispeech"``; anything else is a ConfigError."""
    return _scan(Path(corpus))[0]


def _kaldi_utterances(root: Path) -> list[CorpusUtterance]:
    from unspeech import datadir

    if not (root / "utt2spk").is_file():
        raise DataError(f"Kaldi data dir {root} has wav.scp but no utt2spk")
    wav = datadir.read_wav_scp(root / "wav.scp")
    utt2spk = datadir.read_utt2spk(root / "utt2spk")
    if not (root / "segments").is_file():
        missing = [u for u in utt2spk if u not in wav]
        if missing:
            raise DataError(f"{root / 'wav.scp'}: no audio for utterances {missing[:3]} of utt2spk")
        return [CorpusUtterance(u, s, wav[u]) for u, s in utt2spk.items()]
    segments = datadir.read_segments(root / "segments")
    utts = []
    for utt, spk in utt2spk.items():
        seg = segments.get(utt)
        if seg is None:
            raise DataError(f"{root / 'segments'}: no segment for utterance {utt!r} of utt2spk")
        if seg.recording not in wav:
            raise DataError(f"{root / 'segments'}: utterance {utt!r} names recording {seg.recording!r} "
                            f"not in wav.scp")
        utts.append(CorpusUtterance(utt, spk, wav[seg.recording], seg.start, None if seg.end < 0 else seg.end))
    return utts


def read_speaker_list(path: str | os.PathLike) -> list[str]:
    """Speaker ids of a file, one a line (blank lines and ``#`` comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read speaker list {path}: {exc}") from None
    ids = [line.split("#", 1)[0].strip() for line in lines]
    ids = [i for i in ids if i]
    if not ids:
        raise ConfigError(f"speaker list {path} names no speaker")
    return ids


def _speaker_set(value: str | os.PathLike | Iterable[str], name: str) -> tuple[set[str], str]:
    if isinstance(value, (str, os.PathLike)):
        return set(read_speaker_list(value)), f"speaker list {value}"
    return {str(v) for v in value}, f"`{name}`"


def load_corpus(
    corpus: str | os.PathLike,
    speakers: str | os.PathLike | Iterable[str] | None = None,
    exclude_speakers: str | os.PathLike | Iterable[str] | None = None,
) -> tuple[str, list[CorpusUtterance]]:
    """The layout and the utterances of a Kaldi data dir or LibriSpeech tree (no audio is read).

    Parameters
    ----------
    corpus : path of the corpus (layout as :func:`detect_corpus_layout` finds it)
    speakers : only these speakers: ids, or the path of a file with one id a line; an id the
        corpus does not have is a ConfigError
    exclude_speakers : never these speakers (ids or file); ids the corpus does not have are ignored

    Returns
    -------
    layout : str, one of :data:`CORPUS_LAYOUTS`
    utterances : list of CorpusUtterance, sorted by utterance id
    """
    root = Path(corpus)
    layout, utts = _scan(root)
    present = {u.speaker_id for u in utts}
    if speakers is not None:
        wanted, what = _speaker_set(speakers, "speakers")
        unknown = sorted(wanted - present)
        if unknown:
            raise ConfigError(f"{what} names {len(unknown)} speaker(s) not in corpus {root}: "
                              f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
        utts = [u for u in utts if u.speaker_id in wanted]
    if exclude_speakers is not None:
        excluded, _ = _speaker_set(exclude_speakers, "exclude_speakers")
        utts = [u for u in utts if u.speaker_id not in excluded]
    return layout, sorted(utts, key=lambda u: u.utterance_id.encode("utf-8"))


def load_corpus_utterances(
    corpus: str | os.PathLike,
    speakers: str | os.PathLike | Iterable[str] | None = None,
    exclude_speakers: str | os.PathLike | Iterable[str] | None = None,
) -> list[CorpusUtterance]:
    """The utterances of :func:`load_corpus` (same parameters), without the layout."""
    return load_corpus(corpus, speakers, exclude_speakers)[1]
