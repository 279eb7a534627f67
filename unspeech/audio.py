"""Audio input: audio files (wav, flac, ogg, mp3, ...) and Kaldi ``wav.scp`` pipes → 16 kHz mono float32.

Every reader here returns samples as ``ndarray of shape (n_samples,), float32`` in [-1, 1]
at :data:`TARGET_RATE` (16 kHz), whatever the source looks like:

* **Sources.** A path to anything libsndfile reads (wav, flac, ogg, ...), or a Kaldi ``wav.scp``
  value that is a command ending in ``|``: the command runs through ``/bin/sh`` and its standard
  output must be a WAV (or other libsndfile-readable) byte stream, e.g.
  ``sox in.mp3 -t wav - |`` or ``sph2pipe -f wav x.sph |``.
* **Channels.** ``channel=None`` (the default of these readers, used by diarization) down-mixes
  multi-channel audio to mono by the **mean of all channels**. ``channel=-1`` is Kaldi's
  ``compute-fbank-feats --channel`` default, used by ``unspeech fbank``: mono audio as it is,
  **channel 0** of multi-channel audio (with a warning, once per source). ``channel=k >= 0``
  takes channel ``k`` (0 = left, 1 = right); a source without that channel is an error.
* **Sample rate.** Any other rate (8 kHz telephone audio, 22.05/44.1/48 kHz) is converted with
  polyphase resampling (:func:`scipy.signal.resample_poly`, Kaiser-windowed FIR), which keeps
  ``ceil(n * 16000 / rate)`` samples.
* **Segments.** ``start``/``end`` (seconds, as in a Kaldi ``segments`` file) cut a recording
  before resampling, at sample ``int(t * rate)`` (truncated, as Kaldi's ``extract-segments`` does,
  so segment lengths and frame counts are Kaldi's). ``end`` of ``None`` or negative means "to the
  end of the recording". Like
  Kaldi's ``extract-segments`` an end time up to :data:`MAX_OVERSHOOT` seconds past the end of
  the recording is clipped; further than that is an error.

Problems a user can cause (missing or unreadable file, failing pipe command, no samples,
non-finite samples, a segment outside the recording) raise :class:`unspeech.errors.AudioError`
naming the source.
"""

from __future__ import annotations

import io
import logging
import math
import os
import subprocess
from typing import Iterable

import numpy as np
import soundfile as sf

from unspeech.errors import AudioError

logger = logging.getLogger(__name__)

__all__ = [
    "TARGET_RATE",
    "MAX_OVERSHOOT",
    "AUDIO_EXTENSIONS",
    "is_pipe",
    "read_audio",
    "to_mono",
    "resample",
    "cut_segment",
    "convert_audio",
    "load_audio",
    "write_audio",
    "find_audio_files",
]

TARGET_RATE = 16000
"""Sample rate (Hz) of everything :func:`load_audio` returns."""

MAX_OVERSHOOT = 0.5
"""Seconds a segment's end may lie past the end of its recording before it is an error."""

_FORMAT_EXTENSIONS = {
    "WAV": (".wav",),
    "FLAC": (".flac",),
    "OGG": (".ogg", ".oga", ".opus"),  # Vorbis and Opus in an Ogg container
    "MP3": (".mp3",),  # libsndfile >= 1.1 (mpg123)
    "AIFF": (".aiff", ".aif"),
    "AU": (".au",),
    "CAF": (".caf",),
    "W64": (".w64",),
    "RF64": (".rf64",),
}


def _readable_extensions() -> tuple[str, ...]:
    """The endings of the formats this libsndfile build reads (m4a/AAC is never among them)."""
    available = sf.available_formats()
    return tuple(ext for fmt, exts in _FORMAT_EXTENSIONS.items() if fmt in available for ext in exts)


AUDIO_EXTENSIONS = _readable_extensions()
"""File name endings :func:`find_audio_files` picks up (case-insensitive): every format the
installed libsndfile reads (wav, flac, ogg/oga/opus, mp3, aiff, au, caf, w64, rf64). The one list
of audio endings: folders given to ``unspeech diarize`` and ``unspeech fbank --wav-dir`` use it."""


def is_pipe(source: str) -> bool:
    """True if a ``wav.scp`` value is a command whose standard output is the audio (``cmd |``)."""
    return str(source).rstrip().endswith("|")


def _read_pipe_bytes(command: str) -> bytes:
    cmd = command.rstrip()[:-1].strip()
    if not cmd:
        raise AudioError(f"empty pipe command in wav.scp entry {command!r}")
    # sox dithers with a time-seeded generator; -R seeds it fixed so the same pipe gives the same
    # samples (and features) every run. A SOX_OPTS the user set wins.
    env = {**os.environ, "SOX_OPTS": os.environ.get("SOX_OPTS", "-R")}
    proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        hint = " (a program of the pipe is not installed; wav.scp pipes written by unspeech need sox)" \
            if proc.returncode == 127 else ""
        raise AudioError(
            f"audio command {cmd!r} failed with exit code {proc.returncode}{hint}"
            + (f": {' / '.join(tail)}" if tail else "")
        )
    if not proc.stdout:
        raise AudioError(f"audio command {cmd!r} wrote no bytes to its standard output")
    return proc.stdout


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise AudioError(f"audio file {path!r} does not exist")
    if os.path.isdir(path):
        raise AudioError(f"audio path {path!r} is a directory, not a file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"audio file {path!r} is empty (0 bytes)")


def read_audio(
    source: str | os.PathLike, start_frame: int = 0, stop_frame: int | None = None
) -> tuple[np.ndarray, int]:
    """Read audio as it is stored, without any conversion.

    Parameters
    ----------
    source : path or ``"cmd |"``
        A file libsndfile can read, or a command whose standard output is the audio.
    start_frame, stop_frame : int
        Read only frames ``[start_frame, stop_frame)`` (at the file's own rate). For pipes the
        whole stream is decoded and then sliced.

    Returns
    -------
    samples : ndarray of shape (n_frames, n_channels), float32 in [-1, 1]
    sample_rate : int, Hz
    """
    src = os.fspath(source)
    try:
        if is_pipe(src):
            data, rate = sf.read(io.BytesIO(_read_pipe_bytes(src)), dtype="float32", always_2d=True)
            data = data[start_frame:stop_frame]
        else:
            _check_file(src)
            data, rate = sf.read(
                src, start=start_frame, stop=stop_frame, dtype="float32", always_2d=True
            )
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise AudioError(f"cannot read audio {src!r}: {exc}") from exc
    return data, int(rate)


_warned_channel_sources: set[str] = set()


def to_mono(samples: np.ndarray, channel: int | None = None, name: str = "<array>") -> np.ndarray:
    """``(n, channels)`` to ``(n,)`` float32: the mean of the channels, or one channel.

    ``channel``: None = mean of all channels; -1 = Kaldi's rule (channel 0 of multi-channel
    audio, with a warning once per ``name``); ``k >= 0`` = channel ``k`` (:class:`AudioError`
    naming ``name`` when the audio has fewer channels).
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    n_channels = samples.shape[1]
    if channel is None:
        return samples[:, 0] if n_channels == 1 else samples.mean(axis=1, dtype=np.float32)
    if channel < -1:
        raise AudioError(f"channel must be -1 (Kaldi's default) or >= 0. Received: channel={channel}")
    if channel == -1:
        if n_channels > 1 and name not in _warned_channel_sources:
            _warned_channel_sources.add(name)
            logger.warning("%s has %d channels and no channel was chosen: using channel 0, as Kaldi does "
                           "(--channel picks another)", name, n_channels)
        return samples[:, 0]
    if channel >= n_channels:
        raise AudioError(f"audio {name!r} has {n_channels} channel(s) but channel {channel} was asked for "
                         f"(channels count from 0)")
    return samples[:, channel]


def resample(samples: np.ndarray, orig_rate: int, target_rate: int = TARGET_RATE) -> np.ndarray:
    """Polyphase resampling of a mono signal.

    Parameters
    ----------
    samples : ndarray of shape (n,), float
    orig_rate, target_rate : int, Hz

    Returns
    -------
    ndarray of shape (ceil(n * target_rate / orig_rate),), float32
    """
    if orig_rate <= 0 or target_rate <= 0:
        raise AudioError(
            f"sample rates must be positive. Received: orig_rate={orig_rate}, target_rate={target_rate}"
        )
    samples = np.asarray(samples, dtype=np.float32)
    if orig_rate == target_rate or samples.size == 0:
        return samples
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_rate), int(target_rate))
    out = resample_poly(samples, int(target_rate) // g, int(orig_rate) // g)
    return out.astype(np.float32, copy=False)


def _segment_frames(
    start: float, end: float | None, rate: int, n_frames: int | None, name: str
) -> tuple[int, int | None]:
    """Frame range ``[first, last)`` of a segment; validates it against the recording length."""
    if start < 0:
        raise AudioError(f"segment of {name!r} starts before 0 s (start={start})")
    first = int(start * rate)  # truncated, as Kaldi's extract-segments does (2.01 s at 16 kHz: 32159)
    if end is None or end < 0:
        last = n_frames
    else:
        if end <= start:
            raise AudioError(f"segment of {name!r} ends before it starts (start={start}, end={end})")
        last = int(end * rate)
        if n_frames is not None and last > n_frames:
            overshoot = (last - n_frames) / rate
            if overshoot > MAX_OVERSHOOT:
                raise AudioError(
                    f"segment {start}-{end} s lies past the end of {name!r} "
                    f"({n_frames / rate:.3f} s) by {overshoot:.3f} s (> {MAX_OVERSHOOT} s)"
                )
            last = n_frames
    if n_frames is not None and first >= n_frames:
        raise AudioError(
            f"segment starting at {start} s lies past the end of {name!r} ({n_frames / rate:.3f} s)"
        )
    return first, last


def cut_segment(
    samples: np.ndarray, sample_rate: int, start: float, end: float | None, name: str = "<array>"
) -> np.ndarray:
    """Cut ``samples[start:end]`` given in seconds (see the module notes for the edge rules).

    ``samples`` has shape (n, ...) at ``sample_rate``; ``name`` is used in error messages.
    """
    first, last = _segment_frames(start, end, sample_rate, len(samples), name)
    return samples[first:last]


def convert_audio(
    samples: np.ndarray, sample_rate: int, target_rate: int = TARGET_RATE, name: str = "<array>",
    channel: int | None = None,
) -> np.ndarray:
    """Check, down-mix and resample audio as read by :func:`read_audio`.

    Parameters
    ----------
    samples : ndarray of shape (n,) or (n, channels), float
    sample_rate : int, Hz, the rate of ``samples``
    target_rate : int, Hz
    name : str, the source named in error messages
    channel : int or None, see :func:`to_mono` (None: mean of the channels)

    Returns
    -------
    ndarray of shape (ceil(n * target_rate / sample_rate),), float32
    """
    if samples.shape[0] == 0:
        raise AudioError(f"audio {name!r} contains no samples (zero-length)")
    mono = to_mono(samples, channel, name)
    if not np.isfinite(mono).all():
        raise AudioError(f"audio {name!r} contains NaN or infinite sample values")
    return resample(mono, sample_rate, target_rate)


def load_audio(
    source: str | os.PathLike,
    start: float | None = None,
    end: float | None = None,
    sample_rate: int = TARGET_RATE,
    channel: int | None = None,
) -> np.ndarray:
    """Read a file or ``wav.scp`` pipe, optionally cut a segment, convert to mono at ``sample_rate``.

    Parameters
    ----------
    source : path or ``"cmd |"``
    start, end : float or None
        Segment boundaries in seconds; both ``None`` reads the whole recording.
    sample_rate : int
        Output rate in Hz (16 kHz by default).
    channel : int or None
        None: mean of the channels; -1: Kaldi's rule; k: channel k (see :func:`to_mono`).

    Returns
    -------
    ndarray of shape (n_samples,), float32 in [-1, 1]
    """
    name = os.fspath(source)
    if start is None and end is None:
        data, rate = read_audio(name)
        return convert_audio(data, rate, sample_rate, name, channel)
    start = 0.0 if start is None else float(start)
    if is_pipe(name):
        data, rate = read_audio(name)
        data = cut_segment(data, rate, start, end, name)
        return convert_audio(data, rate, sample_rate, name, channel)
    first, last, _ = file_range(name, start, end)
    data, rate = read_audio(name, first, last)
    return convert_audio(data, rate, sample_rate, name, channel)


def file_range(name: str, start: float | None, end: float | None) -> tuple[int, int, int]:
    """``(first, last, rate)``: the sample range ``[first, last)`` of a file's ``[start, end)`` segment
    (seconds; both None for the whole file) at its own rate, from the header."""
    _check_file(name)
    try:
        info = sf.info(name)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read audio {name!r}: {exc}") from exc
    if start is None and end is None:
        return 0, int(info.frames), int(info.samplerate)
    first, last = _segment_frames(0.0 if start is None else float(start), end, info.samplerate, info.frames, name)
    return first, int(info.frames if last is None else last), int(info.samplerate)


def write_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = TARGET_RATE) -> None:
    """Write float samples in [-1, 1] as 16-bit PCM; the format follows the ending (.wav/.flac).

    The file is written atomically (temporary name, then rename).
    """
    from unspeech._fileutil import atomic_path

    path = os.fspath(path)
    fmt = "FLAC" if path.lower().endswith(".flac") else "WAV"
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 32767 / 32768)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), clipped, sample_rate, format=fmt, subtype="PCM_16")


def find_audio_files(folder: str | os.PathLike, extensions: Iterable[str] = AUDIO_EXTENSIONS) -> dict[str, str]:
    """Map recording id → path for every audio file under ``folder`` (recursively).

    The id is the file name without its extension. Two files with the same id, or an id with
    whitespace (not allowed in Kaldi ids), raise :class:`AudioError`; so does a folder without
    any audio file.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise AudioError(f"audio folder {folder!r} does not exist or is not a directory")
    exts = tuple(e.lower() for e in extensions)
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for fname in sorted(files):
            stem, ext = os.path.splitext(fname)
            if ext.lower() not in exts or fname.startswith("."):
                continue
            path = os.path.join(root, fname)
            if any(ch.isspace() for ch in stem):
                raise AudioError(
                    f"file name {path!r} contains whitespace, which Kaldi ids cannot hold; rename it"
                )
            if stem in found:
                raise AudioError(
                    f"two audio files give the same id {stem!r}: {found[stem]!r} and {path!r}"
                )
            found[stem] = path
    if not found:
        raise AudioError(f"no audio files ({', '.join(exts)}) found in {folder!r}")
    return dict(sorted(found.items()))
