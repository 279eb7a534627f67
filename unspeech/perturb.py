"""Kaldi's 3-way speed perturbation of a data dir, table for table.

:func:`plan_datadir` lays out the data dir that Kaldi's ``utils/data/perturb_data_dir_speed_3way.sh``
leaves behind (default options), so that what ``unspeech fbank --speed-perturb`` writes passes
``utils/validate_data_dir.sh`` and survives ``utils/fix_data_dir.sh``:

* **Ids.** Copies at speed 0.9 and 1.1 get the prefix ``sp0.9-`` / ``sp1.1-`` on the utterance,
  the speaker and the recording id. The original data keep their ids, or get ``sp1.0-`` on
  utterance and speaker (and on the recording when there is no ``segments`` file) with
  ``always_include_prefix`` (Kaldi's ``--always-include-prefix true``).
* **Audio.** Kaldi perturbs whole recordings: a perturbed recording is a ``wav.scp`` pipe that runs
  ``sox ... speed F`` on the original entry (``sox -t wav PATH -t wav - speed F |`` for a file,
  ``CMD | sox -t wav - -t wav - speed F |`` for a pipe). Features of a perturbed utterance are
  computed from that very pipe, so they are what Kaldi computes from the data dir.
* **Segments.** Segment times are divided by the factor and written with 2 decimals; a perturbed
  segment not longer than 0.01 s (or one that runs to the end, ``end = -1``) is dropped, as Kaldi does.
* **Bookkeeping.** ``utt2uniq`` maps every copy to its original utterance (Kaldi's egs hold-out keeps
  copies of one utterance together); ``utt2dur`` and ``reco2dur`` hold durations in seconds, those of
  the copies divided by the factor, printed with 6 significant digits like Kaldi's awk.

Everything is sorted in C-locale order. Times are in seconds.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from unspeech.audio import is_pipe
from unspeech.errors import ConfigError, DataError

__all__ = [
    "KALDI_SPEEDS",
    "PlannedUtterance",
    "DataDirPlan",
    "kaldi_duration",
    "perturbed_wav_entry",
    "plan_datadir",
]

KALDI_SPEEDS = ("0.9", "1.1")
"""The factors Kaldi's 3-way recipe adds, spelled as they appear in ids and ``sox speed``."""

_ORIGINAL = "1.0"
_ARK_OFFSET = re.compile(r":[0-9]+$")


def kaldi_duration(seconds: float) -> str:
    """A duration as Kaldi's scripts print it (awk's ``%.6g``): ``2.77778``, ``3``."""
    return f"{seconds:.6g}"


def _time(seconds: float) -> str:
    """A segment time from the input, written back without loss (``0.13``, ``-1``)."""
    return f"{seconds:.15g}"


def perturbed_wav_entry(entry: str, factor: str) -> str:
    """The ``wav.scp`` value Kaldi's ``perturb_data_dir_speed.sh`` makes of ``entry`` at ``factor``.

    ``entry`` is a ``wav.scp`` value: a pipe (``cmd |``), an archive offset (``x.ark:123``) or a
    file. Kaldi's rule reads a file as WAV (``sox -t wav``); a file of another format (possible
    only with plain audio paths, see :func:`unspeech.datadir.kaldi_wav_entry`) lets sox pick the
    format from its ending instead.
    """
    words = " ".join(entry.split())  # Kaldi's awk rebuilds the line with single spaces
    speed = f"-t wav - speed {factor} |"
    if is_pipe(words):
        return f"{words[:-1].rstrip()} | sox -t wav - {speed}"
    if _ARK_OFFSET.search(words):
        return f"wav-copy {words} - | sox -t wav - {speed}"
    if os.path.splitext(words)[1].lower() == ".wav":
        return f"sox -t wav {words} {speed}"
    return f"sox {words} {speed}"


@dataclass(frozen=True)
class PlannedUtterance:
    """One utterance of the output data dir.

    ``start``/``end`` are seconds in the (perturbed) recording as written to ``segments``
    (``None``: the whole recording; ``end = -1``: to its end); ``source_utt`` is the id in the
    input (the ``utt2uniq`` value) and ``source_recording`` the input recording.
    """

    utt: str
    speaker: str
    recording: str
    factor: str
    source_utt: str
    source_recording: str
    start: float | None
    end: float | None


@dataclass(frozen=True)
class DataDirPlan:
    """The output data dir before any audio is read.

    utterances : output id -> :class:`PlannedUtterance`, in C-locale order
    wav_scp : output recording id -> the ``wav.scp`` value written
    read_from : output recording id -> what the feature computation reads (the input's own
        entry for original-speed audio, the perturbed pipe for the copies)
    has_segments : bool, whether ``segments`` is written
    dropped : input utterance ids whose perturbed copies Kaldi's rule drops (too short, ``end = -1``)
    """

    utterances: dict[str, PlannedUtterance]
    wav_scp: dict[str, str]
    read_from: dict[str, str]
    has_segments: bool
    dropped: tuple[str, ...]

    @property
    def utt2spk(self) -> dict[str, str]:
        return {u.utt: u.speaker for u in self.utterances.values()}

    @property
    def utt2uniq(self) -> dict[str, str]:
        return {u.utt: u.source_utt for u in self.utterances.values()}

    def segments_table(self) -> dict[str, str]:
        """utt -> ``recording start end`` lines (only with ``has_segments``)."""
        out = {}
        for u in self.utterances.values():
            if u.factor == _ORIGINAL:
                out[u.utt] = f"{u.recording} {_time(u.start)} {_time(u.end)}"
            else:
                out[u.utt] = f"{u.recording} {u.start:.2f} {u.end:.2f}"
        return out

    def durations(self, recording_seconds: Mapping[str, float]) -> tuple[dict[str, str], dict[str, str]]:
        """``(utt2dur, reco2dur)`` tables from the input recordings' durations (seconds).

        An original utterance lasts its segment (``end - start``; ``end = -1`` runs to the end of
        the recording) or its recording; a copy lasts the original's printed duration divided by
        the factor, as Kaldi computes it from the source dir's ``utt2dur``/``reco2dur``.
        """
        originals = {u.source_utt: u for u in self.utterances.values() if u.factor == _ORIGINAL}
        reco2dur: dict[str, str] = {}
        utt2dur: dict[str, str] = {}
        for u in self.utterances.values():
            total = recording_seconds[u.source_recording]
            if self.has_segments:
                orig = originals[u.source_utt]
                base = (total if orig.end < 0 else orig.end) - orig.start
            else:
                base = total
            utt2dur[u.utt] = _scaled(base, u.factor)
            reco2dur[u.recording] = _scaled(total, u.factor)
        return utt2dur, reco2dur


def _scaled(seconds: float, factor: str) -> str:
    if factor == _ORIGINAL:
        return kaldi_duration(seconds)
    return kaldi_duration(float(kaldi_duration(seconds)) / float(factor))


def plan_datadir(
    wav_scp: Mapping[str, str],
    segments: Mapping | None,
    utt2spk: Mapping[str, str] | None,
    wav_entries: Mapping[str, str],
    factors: Sequence[str] = (),
    always_include_prefix: bool = False,
    wav_name: str = "wav.scp",
) -> DataDirPlan:
    """Lay out the output data dir of :func:`unspeech.fbank.make_fbank_datadir`.

    Parameters
    ----------
    wav_scp : recording id -> input ``wav.scp`` value (what is read for the original speed)
    segments : utterance id -> ``Segment(recording, start, end)`` in seconds, or None (each
        recording is one utterance with the recording's id)
    utt2spk : utterance id -> speaker, or None (each utterance its own speaker)
    wav_entries : recording id -> the ``wav.scp`` value written for the original recording (see
        :func:`unspeech.datadir.kaldi_wav_entry`); perturbed recordings are built from it
    factors : speed factors as strings (``KALDI_SPEEDS`` or ``()``)
    always_include_prefix : bool, ``sp1.0-`` on the original data (only with ``factors``)
    wav_name : str, named in error messages

    Returns
    -------
    DataDirPlan
    """
    from unspeech import datadir

    for factor in factors:
        try:
            ok = 0.1 <= float(factor) <= 10.0 and factor != _ORIGINAL
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"speed factors must be numbers in [0.1, 10] other than 1.0. Received: {factor!r}")
    if segments is not None:
        for utt, seg in segments.items():
            if seg.recording not in wav_scp:
                raise DataError(f"segments: utterance {utt!r} refers to recording {seg.recording!r}, "
                                f"which is not in {wav_name}")
        base = {utt: (seg.recording, seg.start, seg.end) for utt, seg in segments.items()}
    else:
        base = {reco: (reco, None, None) for reco in wav_scp}
    if not base:
        raise DataError(f"{wav_name}: no utterances to process")
    if utt2spk is None:
        speakers = {utt: utt for utt in base}  # Kaldi convention: each utterance its own speaker
    else:
        missing = datadir.c_sorted(set(base) - set(utt2spk))
        if missing:
            raise DataError(f"utt2spk has no speaker for utterance {missing[0]!r} "
                            f"({len(missing)} utterance(s) missing)")
        speakers = {utt: utt2spk[utt] for utt in base}
    has_segments = segments is not None
    original = f"sp{_ORIGINAL}-" if factors and always_include_prefix else ""
    utts: dict[str, PlannedUtterance] = {}
    wav_out: dict[str, str] = {}
    read_from: dict[str, str] = {}
    for reco in wav_scp:
        out_reco = reco if has_segments else original + reco
        wav_out[out_reco] = wav_entries[reco]
        read_from[out_reco] = wav_scp[reco]
        for factor in factors:
            pipe = perturbed_wav_entry(wav_entries[reco], factor)
            wav_out[f"sp{factor}-{reco}"] = read_from[f"sp{factor}-{reco}"] = pipe
    dropped = set()
    for utt, (reco, start, end) in base.items():
        spk = speakers[utt]
        out_reco = reco if has_segments else original + utt
        utts[original + utt] = PlannedUtterance(original + utt, original + spk, out_reco, _ORIGINAL,
                                                utt, reco, start, end)
        for factor in factors:
            prefix = f"sp{factor}-"
            if has_segments:
                new_start, new_end = start / float(factor), end / float(factor)
                if not new_end > new_start + 0.01:
                    dropped.add(utt)
                    continue
                new_start, new_end = float(f"{new_start:.2f}"), float(f"{new_end:.2f}")
            else:
                new_start = new_end = None
            utts[prefix + utt] = PlannedUtterance(prefix + utt, prefix + spk, prefix + reco, factor,
                                                  utt, reco, new_start, new_end)
    if has_segments:
        used = {u.recording for u in utts.values()}
        wav_out = {r: v for r, v in wav_out.items() if r in used}
        read_from = {r: v for r, v in read_from.items() if r in used}
    ordered = {k: utts[k] for k in datadir.c_sorted(utts)}
    return DataDirPlan(ordered, {k: wav_out[k] for k in datadir.c_sorted(wav_out)},
                       read_from, has_segments, tuple(datadir.c_sorted(dropped)))
