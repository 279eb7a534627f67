"""Simulated conversations made of real utterances of a corpus, with reference RTTM and UEM.

The standard way diarization systems are trained and tested on simulated conversations: real
speakers' speech is cut into turns, the turns of 2–6 speakers are placed one after the other with
pauses and some overlap, and the reference is known exactly. The output layout is the one of
:func:`unspeech.synth.synthesize_conversations` (``wav/<conv>.flac``, ``wav.scp``, ``rttm``,
``uem``, ``segments``, ``utt2spk``, ``spk2utt``, ``reco2num_spk``, ``synth.json``), without
``text``; speaker ids are the corpus's own.

**Corpora** (:mod:`unspeech.corpus`, whose loaders are re-exported here): a Kaldi data dir
(``wav.scp`` with paths or ``cmd |`` pipes, ``utt2spk``, optional ``segments``), or a LibriSpeech
tree ``<root>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac`` (also one folder deeper, as in
``LibriSpeech/train-clean-100/...``). Any sample rate or channel count is read as 16 kHz mono.

**Speech, pauses and turns.** An utterance is analysed in 10 ms frames: a frame is speech when its
level exceeds ``max(p10 + 6 dB, p95 - 35 dB)``, capped at ``p95 - 15 dB`` (p10, p95: percentiles
of the utterance's frame levels), i.e. 6 dB over the noise floor, at most 35 dB under the loud
frames; speech runs shorter than 30 ms, or than 0.1 s with no other speech within 0.3 s, are
clicks and breaths, not speech. A speaker's turns are cut from its utterances one after the
other: each turn starts at speech, draws a length from ``turn_s`` and ends at the end of speech
before a pause of at least 0.1 s, the one closest to that length within ``turn_s``; only when no
such pause lies within ``turn_s`` is the turn cut at a shorter gap (the one closest to the drawn
length) or, without any, at the quietest speech frame of that range. So a turn lasts ``turn_s`` from its first to its last speech frame. Each piece
serves at most once per conversation; a speaker whose speech gives fewer than two pieces (one
when there are as many turns as speakers) takes no part. When a speaker has little speech (one 14 s utterance but 7
turns to give), the drawn lengths shrink towards ``turn_s[0]`` so that the material lasts. After
every speaker's first turn, the floor goes to another speaker, weighted by the pieces each has
left; when only the last speaker has any, it goes on after a pause; when nobody has, the
conversation ends with fewer turns than asked (logged, and recorded in ``synth.json``).

**Reference.** A placed turn is the piece from its first to its last speech frame (leading and
trailing silence trimmed; 20 ms of the original audio on either side are faded in and out and
are not in the reference). Its RTTM lines are its speech runs, where pauses shorter than
:data:`REFERENCE_BRIDGE_S` (0.3 s, the NIST RT convention) are part of the turn and longer ones
split it. Each RTTM line is also an utterance of ``segments``/``utt2spk``
(``<speaker>-<conv>-<nnn>``).

**Levels and channel.** Pieces are scaled to an active speech level of -26 dBFS, then by a gain
per speaker and conversation drawn from ``gain_db`` (± 1 dB per turn). Each conversation gets one
channel as the TTS conversations do (:func:`unspeech.synth._draw_channel`: sox equalizer, reverb
half of the time, coloured noise at an SNR drawn from ``snr_db``, output level), or none.

Determinism: every random choice comes from ``numpy.random.Generator(seed)`` in a fixed order
before rendering; same corpus, seed and options → the same bytes, whatever ``nj`` is.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from unspeech.audio import TARGET_RATE, write_audio
from unspeech.corpus import (CORPUS_LAYOUTS, CorpusUtterance, detect_corpus_layout, load_corpus,
                             load_corpus_utterances, read_speaker_list)
from unspeech.diarize.vad import spans_from_mask
from unspeech.errors import ConfigError, DataError
from unspeech.synth import (ChannelProfile, SynthSummary, _apply_channel, _audio_path, _check_range, _draw_channel,
                            _parallel_map, _write_conversation_tables)

__all__ = [
    "CORPUS_LAYOUTS",
    "REFERENCE_BRIDGE_S",
    "CorpusUtterance",
    "detect_corpus_layout",
    "read_speaker_list",
    "load_corpus",
    "load_corpus_utterances",
    "simulate_conversations",
]

logger = logging.getLogger(__name__)

REFERENCE_BRIDGE_S = 0.3
"""Pauses inside a turn shorter than this (seconds) are part of its reference segment."""

_HOP = TARGET_RATE // 100  # 10 ms analysis frames
_MIN_RUN = 3               # frames; shorter speech runs are clicks, not speech
_LONE_RUN = 10             # frames; nor are shorter ones without other speech within the bridge
_BRIDGE = round(REFERENCE_BRIDGE_S * 100)  # frames
_CUT_PAUSE = 10            # frames; a pause this long is a place to end a turn
_CONTEXT = TARGET_RATE // 50  # samples (20 ms) of audio kept around a piece's speech, faded
_ACTIVE_LEVEL_DB = -26.0   # dBFS active speech level of a piece before its gain
_MIN_TURNS = 2             # turns a speaker must be able to give to take part (if turns allow)
_USABLE = 0.8              # share of a speaker's speech span that ends up in pieces (for the budget)


@dataclass(frozen=True)
class _Piece:
    """A turn cut from an utterance: speech samples ``[first, last)`` of its 16 kHz audio."""

    utt: CorpusUtterance
    first: int
    last: int
    runs: tuple[tuple[int, int], ...]  # reference segments, samples relative to ``first``
    level: float                       # active RMS of the speech frames


@dataclass(frozen=True)
class _Turn:
    speaker: str
    piece: _Piece
    onset: int     # sample of the conversation where the piece's speech starts
    gain_db: float


@dataclass(frozen=True)
class _Plan:
    conv: str
    turns: tuple[_Turn, ...]
    num_samples: int
    channel: ChannelProfile | None
    requested_turns: int


# --------------------------------------------------------------------------- cutting turns


def _frame_levels(x: np.ndarray) -> np.ndarray:
    """Level of each 10 ms frame in dBFS, ndarray of shape (len(x) // 160,), float64."""
    n = len(x) // _HOP
    frames = x[: n * _HOP].reshape(n, _HOP).astype(np.float64)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def _runs(mask: np.ndarray) -> np.ndarray:
    """``[start, end)`` of the True runs of a boolean vector, ndarray of shape (n_runs, 2), int64."""
    return np.array(spans_from_mask(mask), dtype=np.int64).reshape(-1, 2)


def _speech_frames(levels: np.ndarray) -> np.ndarray:
    """Speech/non-speech per frame (the rule in the module notes), bool ndarray like ``levels``."""
    if levels.size == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = np.percentile(levels, [10, 95])
    speech = levels > min(max(lo + 6.0, hi - 35.0), hi - 15.0)
    for start, end in _runs(speech):
        if end - start < _MIN_RUN:
            speech[start:end] = False
    runs = _runs(speech)
    gaps = np.diff(np.concatenate([[-_BRIDGE], runs.ravel(), [len(levels) + _BRIDGE]]))[::2]
    isolated = np.minimum(gaps[:-1], gaps[1:]) >= _BRIDGE  # no other speech within the bridge
    for (start, end), alone in zip(runs, isolated):
        if alone and end - start < _LONE_RUN:
            speech[start:end] = False
    return speech


def _cut_spans(levels: np.ndarray, speech: np.ndarray, rng: np.random.Generator,
               lo_f: int, draw_hi_f: int, hi_f: int) -> list[tuple[int, int]]:
    """Frame spans ``[first, last)`` of the pieces of one utterance, in order (see module notes)."""
    runs = _runs(speech)
    if len(runs) == 0:
        return []
    last = int(runs[-1, 1])
    pauses = runs[1:, 0] - runs[:-1, 1] >= _CUT_PAUSE
    ends = np.append(runs[:-1, 1][pauses], last)  # speech ends before a pause, and the utterance's end
    spans = []
    pos = int(runs[0, 0])
    while last - pos >= lo_f:
        target = pos + int(rng.integers(lo_f, draw_hi_f + 1))
        ok = ends[(ends - pos >= lo_f) & (ends - pos <= hi_f)]
        if ok.size:
            end = boundary = int(ok[np.argmin(np.abs(ok - target))])
            spans.append((pos, end))
        else:  # no pause within reach (then last - pos > hi_f): a shorter gap, or the quietest speech
            cuts = pos + lo_f + np.flatnonzero(speech[pos + lo_f - 1: pos + hi_f])  # frames after speech
            gaps = cuts[~speech[cuts]]
            if cuts.size == 0:  # silence all over the range: the speech before it is too short
                boundary = pos + hi_f
            else:
                end = int(gaps[np.argmin(np.abs(gaps - target))] if gaps.size else cuts[np.argmin(levels[cuts])])
                spans.append((pos, end))
                boundary = end + int(speech[end])  # a speech frame cut at is left out
        following = np.flatnonzero(speech[boundary:])
        if following.size == 0:
            break
        pos = boundary + int(following[0])
    return spans


def _make_piece(utt: CorpusUtterance, levels: np.ndarray, speech: np.ndarray, first: int, last: int) -> _Piece:
    runs = _runs(speech[first:last])
    bridged = [list(runs[0])]
    for start, end in runs[1:]:
        if start - bridged[-1][1] < _BRIDGE:
            bridged[-1][1] = end
        else:
            bridged.append([start, end])
    active = 10 ** (levels[first:last][speech[first:last]] / 10)
    return _Piece(utt, first * _HOP, last * _HOP, tuple((int(a) * _HOP, int(b) * _HOP) for a, b in bridged),
                  float(np.sqrt(np.mean(active))))


def _speaker_pieces(utts: list[CorpusUtterance], num_turns: int, turn_s: tuple[float, float],
                    rng: np.random.Generator) -> list[_Piece]:
    """Pieces for ``num_turns`` turns of one speaker, in random order (fewer if the speech runs out)."""
    lo, hi = turn_s
    analysed, material = [], 0.0
    for i in rng.permutation(len(utts)):
        levels = _frame_levels(utts[i].load())
        speech = _speech_frames(levels)
        analysed.append((utts[i], levels, speech))
        where = np.flatnonzero(speech)
        material += (where[-1] + 1 - where[0]) / 100 if where.size else 0.0
        if _USABLE * material >= num_turns * (lo + hi) / 2:
            break
    budget = _USABLE * material / num_turns  # seconds a piece may take on average
    draw_hi = hi if budget >= (lo + hi) / 2 else min(hi, max(lo, 2 * budget - lo))
    pieces = [_make_piece(utt, levels, speech, a, b)
              for utt, levels, speech in analysed
              for a, b in _cut_spans(levels, speech, rng, round(lo * 100), round(draw_hi * 100), round(hi * 100))]
    return [pieces[i] for i in rng.permutation(len(pieces))]


# --------------------------------------------------------------------------- planning


class _Dealer:
    """Hands out speakers for conversations from shuffled decks, so that all get used evenly."""

    def __init__(self, by_speaker: dict[str, list[CorpusUtterance]], turn_s, rng, corpus: str):
        self.by_speaker, self.turn_s, self.rng, self.corpus = by_speaker, turn_s, rng, corpus
        self.pool = sorted(by_speaker, key=lambda s: s.encode("utf-8"))
        self.deck: list[str] = []
        self.unusable: set[str] = set()

    def deal(self, k: int, num_turns: int) -> dict[str, list[_Piece]]:
        """``k`` distinct speakers with pieces for ``num_turns`` turns each, or at least two."""
        members: dict[str, list[_Piece]] = {}
        need = min(_MIN_TURNS, num_turns)
        while len(members) < k:
            free = [i for i, s in enumerate(self.deck) if s not in members and s not in self.unusable]
            if not free:
                if not [s for s in self.pool if s not in members and s not in self.unusable]:
                    usable = len(self.pool) - len(self.unusable)
                    raise DataError(f"corpus {self.corpus}: only {usable} speaker(s) have speech for {need} turn(s) "
                                    f"of at least {self.turn_s[0]} s; a conversation needs {k}")
                self.deck += [self.pool[i] for i in self.rng.permutation(len(self.pool))]
                continue
            spk = self.deck.pop(free[0])
            pieces = _speaker_pieces(self.by_speaker[spk], num_turns, self.turn_s, self.rng)
            if len(pieces) >= need:
                members[spk] = pieces
            else:
                logger.info("speaker %s: speech for %d turn(s) of >= %s s only; not used", spk, len(pieces),
                            self.turn_s[0])
                self.unusable.add(spk)
        return members


def _turn_order(members: dict[str, list[_Piece]], num_turns: int, rng: np.random.Generator) -> list[str]:
    """Everyone once, then a speaker other than the last, weighted by the pieces it has left; the
    last speaker goes on (after a pause) only when nobody else has any left."""
    names = list(members)
    order = [names[i] for i in rng.permutation(len(names))]
    while len(order) < num_turns:
        left = np.array([len(members[s]) - order.count(s) for s in names], dtype=float)
        others = np.where(np.array(names) == order[-1], 0.0, left)
        weights = others if others.sum() > 0 else left
        if weights.sum() <= 0:
            break
        order.append(names[int(rng.choice(len(names), p=weights / weights.sum()))])
    return order


def _plan_conversation(conv: str, members: dict[str, list[_Piece]], num_turns: int, pause_s, overlap_prob: float,
                       gain_db, snr_db, channel_variation: bool, rng: np.random.Generator) -> _Plan:
    order = _turn_order(members, num_turns, rng)
    gains = {s: float(rng.uniform(*gain_db)) for s in members}
    cursor = int(rng.uniform(0.3, 0.8) * TARGET_RATE)  # end of the speech so far
    turns: list[_Turn] = []
    speaker_end: dict[str, int] = {}
    for idx, spk in enumerate(order):
        piece = members[spk][order[:idx].count(spk)]
        overlap, u = bool(rng.random() < overlap_prob), float(rng.random())
        pause, jitter = float(rng.uniform(*pause_s)), float(rng.uniform(-1.0, 1.0))
        if idx == 0:
            start = cursor
        elif overlap and spk != turns[-1].speaker:
            prev = turns[-1]
            longest = max(0.2, min(1.0, 0.5 * (prev.piece.last - prev.piece.first) / TARGET_RATE))
            start = max(prev.onset, cursor - int((0.2 + u * (longest - 0.2)) * TARGET_RATE),
                        speaker_end.get(spk, 0))  # never over the speaker's own previous turn
        else:
            start = cursor + int(pause * TARGET_RATE)
        turns.append(_Turn(spk, piece, start, round(gains[spk] + jitter, 2)))
        speaker_end[spk] = start + piece.last - piece.first
        cursor = max(cursor, speaker_end[spk])
    channel = _draw_channel(rng, snr_db) if channel_variation else None
    if len(order) < num_turns:
        logger.info("%s: %d of %d turns (the speakers' speech ran out)", conv, len(order), num_turns)
    return _Plan(conv, tuple(turns), cursor + TARGET_RATE // 2, channel, num_turns)


# --------------------------------------------------------------------------- rendering


def _render(plan: _Plan) -> np.ndarray:
    """The conversation's audio, ndarray of shape (plan.num_samples,), float32, channel applied."""
    mix = np.zeros(plan.num_samples, dtype=np.float32)
    audio: dict[str, np.ndarray] = {}
    for turn in plan.turns:
        p = turn.piece
        if p.utt.utterance_id not in audio:
            audio[p.utt.utterance_id] = p.utt.load()
        x = audio[p.utt.utterance_id]
        a, b = max(0, p.first - _CONTEXT), min(len(x), p.last + _CONTEXT)
        gain = 10 ** ((_ACTIVE_LEVEL_DB + turn.gain_db) / 20) / max(p.level, 1e-9)
        seg = x[a:b] * np.float32(gain)
        fade_in, fade_out = p.first - a, b - p.last
        seg[:fade_in] *= np.sin(np.linspace(0, np.pi / 2, fade_in, endpoint=False, dtype=np.float32)) ** 2
        seg[len(seg) - fade_out:] *= np.cos(np.linspace(0, np.pi / 2, fade_out, dtype=np.float32)) ** 2
        start = turn.onset - fade_in
        mix[start:start + len(seg)] += seg
    return _apply_channel(mix, plan.channel)


def _references(plan: _Plan):
    """RTTM turns and ``segments``/``utt2spk`` entries of a conversation, in time order."""
    from unspeech.datadir import Segment, Turn

    spans = sorted((turn.onset + a, turn.onset + b, turn.speaker) for turn in plan.turns for a, b in turn.piece.runs)
    rttm, segments, utt2spk = [], {}, {}
    for n, (start, end, spk) in enumerate(spans):
        onset, dur = start / TARGET_RATE, (end - start) / TARGET_RATE
        utt = f"{spk}-{plan.conv}-{n:03d}"
        rttm.append(Turn(plan.conv, "1", onset, dur, spk))
        segments[utt] = Segment(plan.conv, onset, onset + dur)
        utt2spk[utt] = spk
    return rttm, segments, utt2spk


def _plan_record(plan: _Plan) -> dict:
    return {
        "id": plan.conv, "speakers": sorted({t.speaker for t in plan.turns}),
        "requested_turns": plan.requested_turns, "num_seconds": round(plan.num_samples / TARGET_RATE, 3),
        "channel": None if plan.channel is None else asdict(plan.channel),
        "turns": [{"speaker": t.speaker, "utterance": t.piece.utt.utterance_id,
                   "source_start": round(t.piece.first / TARGET_RATE, 3),
                   "source_end": round(t.piece.last / TARGET_RATE, 3),
                   "onset": round(t.onset / TARGET_RATE, 3),
                   "duration": round((t.piece.last - t.piece.first) / TARGET_RATE, 3), "gain_db": t.gain_db}
                  for t in plan.turns],
    }


# --------------------------------------------------------------------------- the product


def _check_options(num_conversations, speakers_per_conversation, turns_per_conversation, turn_s, pause_s,
                   overlap_prob, gain_db, snr_db, channel_variation, nj) -> None:
    lo, hi = speakers_per_conversation
    for name, value in (("speakers_per_conversation", speakers_per_conversation), ("turn_s", turn_s),
                        ("pause_s", pause_s), ("gain_db", gain_db), ("snr_db", snr_db)):
        _check_range(name, *value)
    if lo < 2 or hi > 6:
        raise ConfigError(f"`speakers_per_conversation` must lie within 2..6. Received: ({lo}, {hi})")
    if num_conversations < 1 or turns_per_conversation < hi:
        raise ConfigError(f"need num_conversations >= 1 and turns_per_conversation >= {hi} (every speaker "
                          f"speaks). Received: {num_conversations}, {turns_per_conversation}")
    if turn_s[0] < 0.5 or pause_s[0] < 0:
        raise ConfigError(f"`turn_s` must start at >= 0.5 s and `pause_s` at >= 0. Received: "
                          f"turn_s={tuple(turn_s)}, pause_s={tuple(pause_s)}")
    if not 0.0 <= overlap_prob <= 1.0:
        raise ConfigError(f"`overlap_prob` must lie in [0, 1]. Received: overlap_prob={overlap_prob}")
    if nj < 1:
        raise ConfigError(f"`nj` must be >= 1. Received: nj={nj}")
    if channel_variation and shutil.which("sox") is None:
        raise ConfigError("`sox` is required for the channel (EQ, reverb) but was not found on PATH; "
                          "install it or ask for clean audio")


def simulate_conversations(
    corpus: str | os.PathLike,
    out_dir: str | os.PathLike,
    num_conversations: int = 3,
    speakers_per_conversation: tuple[int, int] = (2, 4),
    turns_per_conversation: int = 10,
    turn_s: tuple[float, float] = (1.5, 6.0),
    pause_s: tuple[float, float] = (0.2, 1.0),
    overlap_prob: float = 0.1,
    gain_db: tuple[float, float] = (-6.0, 0.0),
    snr_db: tuple[float, float] = (15.0, 30.0),
    channel_variation: bool = True,
    speakers: str | os.PathLike | Iterable[str] | None = None,
    exclude_speakers: str | os.PathLike | Iterable[str] | None = None,
    seed: int = 0,
    nj: int = 1,
    progress: Callable[[int, int], None] | None = None,
    plain_audio_paths: bool = False,
    absolute_paths: bool = True,
) -> SynthSummary:
    """Write conversations of real speakers of ``corpus`` with their reference RTTM and UEM.

    Parameters
    ----------
    corpus : Kaldi data dir or LibriSpeech tree (see :func:`load_corpus_utterances`)
    out_dir : output folder; created, must not hold files. Everything is written to a temporary
        folder beside it and renamed at the end, so a failure leaves nothing behind.
    num_conversations : int
    speakers_per_conversation : (low, high) within 2..6; each conversation draws its number,
        then distinct speakers, dealt from shuffled decks so that every speaker gets used evenly
    turns_per_conversation : int, >= high; the first turns give every speaker the floor once
    turn_s : (low, high) seconds of speech a turn lasts (after trimming)
    pause_s : (low, high) seconds of silence before a turn that does not overlap
    overlap_prob : probability that a turn starts 0.2 s to (half the previous turn, at most 1 s)
        before the speech so far ends
    gain_db : (low, high) level of each speaker in a conversation, dB relative to -26 dBFS
    snr_db : (low, high) signal-to-noise ratio of the conversation's noise, dB
    channel_variation : False: no EQ, reverb or noise
    speakers, exclude_speakers : see :func:`load_corpus_utterances`
    seed : int; every random choice follows from it
    nj : int, conversations rendered in parallel
    progress : callable ``(completed, total)`` after each conversation, optional
    plain_audio_paths, absolute_paths : bool; how ``wav.scp`` names the flac files (see
        :func:`unspeech.synth.synthesize_utterances`)

    Returns
    -------
    SynthSummary (``num_utterances`` counts RTTM segments)
    """
    from unspeech.cluster.outputs import StagedOutputs, check_output_dir

    _check_options(num_conversations, speakers_per_conversation, turns_per_conversation, turn_s, pause_s,
                   overlap_prob, gain_db, snr_db, channel_variation, nj)
    check_output_dir(out_dir)
    layout, utts = load_corpus(corpus, speakers, exclude_speakers)
    by_speaker: dict[str, list[CorpusUtterance]] = {}
    for utt in utts:
        by_speaker.setdefault(utt.speaker_id, []).append(utt)
    lo, hi = speakers_per_conversation
    if len(by_speaker) < hi:
        raise ConfigError(f"corpus {corpus} has {len(by_speaker)} speaker(s)"
                          f"{' after the speaker selection' if speakers or exclude_speakers else ''}; "
                          f"`speakers_per_conversation` asks for up to {hi}")

    rng = np.random.default_rng(seed)
    dealer = _Dealer(by_speaker, tuple(turn_s), rng, str(corpus))
    plans = []
    for c in range(num_conversations):
        k = int(rng.integers(lo, hi + 1))
        members = dealer.deal(k, math.ceil(turns_per_conversation / k))
        plans.append(_plan_conversation(f"conv{c:03d}", members, turns_per_conversation, pause_s, overlap_prob,
                                        gain_db, snr_db, channel_variation, rng))

    out = Path(out_dir)
    with StagedOutputs("conversations run") as staged:
        tmp = staged.directory(out)
        (tmp / "wav").mkdir()

        def _write(plan: _Plan) -> None:
            write_audio(_audio_path(tmp, plan.conv, "flac"), _render(plan))

        _parallel_map(_write, plans, nj, progress)
        rttm, segments, utt2spk = [], {}, {}
        for r, seg, u in map(_references, plans):
            rttm += r
            segments.update(seg)
            utt2spk.update(u)
        members = {p.conv: {t.speaker for t in p.turns} for p in plans}
        _write_conversation_tables(
            tmp, {p.conv: _audio_path(out, p.conv, "flac") for p in plans}, rttm,
            {p.conv: [(0.0, p.num_samples / TARGET_RATE)] for p in plans}, segments, utt2spk,
            {c: str(len(speakers)) for c, speakers in members.items()}, plain_audio_paths, absolute_paths)
        used = sorted(set().union(*members.values()), key=lambda s: s.encode("utf-8"))
        meta = {
            "seed": seed, "product": "conversations",
            "source": {"corpus": str(corpus), "layout": layout, "num_speakers": len(by_speaker)},
            "options": {"num_conversations": num_conversations,
                        "speakers_per_conversation": list(speakers_per_conversation),
                        "turns_per_conversation": turns_per_conversation, "turn_s": list(turn_s),
                        "pause_s": list(pause_s), "overlap_prob": overlap_prob, "gain_db": list(gain_db),
                        "snr_db": list(snr_db) if channel_variation else None,
                        "reference_bridge_s": REFERENCE_BRIDGE_S},
            "speakers": [{"speaker_id": s, "conversations": [c for c in members if s in members[c]]} for s in used],
            "conversations": [_plan_record(p) for p in plans],
        }
        (tmp / "synth.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    total = sum(p.num_samples for p in plans) / TARGET_RATE
    return SynthSummary(str(out), len(used), len(utt2spk), len(plans), total)
