"""Kaldi-compatible log mel filterbank features and speed perturbation.

:func:`compute_fbank` is Kaldi's ``compute-fbank-feats`` computed by kaldi-native-fbank, with
the settings of the usual Kaldi recipes: 40 mel bins, 25 ms windows every 10 ms at 16 kHz,
Povey window, pre-emphasis 0.97, DC removal, ``snip_edges=true`` (so an utterance of ``N``
samples gives ``1 + (N - 400) // 160`` frames), no energy coefficient. Like Kaldi, which reads
16-bit WAV files as integers, samples in [-1, 1] are scaled by 32768 before analysis, so the
numbers match ``compute-fbank-feats`` on the same audio. ``dither`` defaults to 0 here (Kaldi's
default is 1.0 on the integer scale) so that the same audio always gives the same features.

:func:`make_fbank_datadir` turns a ``wav.scp`` (+ optional ``segments`` and ``utt2spk``) into
``feats.ark``/``feats.scp``/``utt2num_frames``/``utt2spk``/``spk2utt``, in parallel and in sorted
utterance order. With ``speed_perturb=True`` it also adds copies at speed 0.9 and 1.1 the way
Kaldi's ``perturb_data_dir_speed_3way.sh`` does: the audio is resampled (tempo and pitch change
together, like ``sox speed``), and both the utterance id and the speaker id get the prefix
``sp0.9-`` / ``sp1.1-``, so ``sp0.9-spk1`` is a speaker of its own, distinct from ``spk1``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from unspeech.audio import TARGET_RATE, convert_audio, cut_segment, is_pipe, load_audio, read_audio
from unspeech.errors import AudioError, ConfigError, DataError

__all__ = [
    "KALDI_SAMPLE_SCALE",
    "SPEED_FACTORS",
    "compute_fbank",
    "num_frames",
    "speed_perturb",
    "speed_prefix",
    "FbankSummary",
    "make_fbank_datadir",
]

logger = logging.getLogger(__name__)

KALDI_SAMPLE_SCALE = 32768.0
"""Factor from float samples in [-1, 1] to the 16-bit integer scale Kaldi computes features on."""

SPEED_FACTORS = (0.9, 1.1)
"""Speeds added next to the original audio by ``speed_perturb=True`` (Kaldi's 3-way recipe)."""


def num_frames(num_samples: int, sample_rate: int = TARGET_RATE, frame_length_ms: float = 25.0,
               frame_shift_ms: float = 10.0, snip_edges: bool = True) -> int:
    """Number of feature frames Kaldi produces for ``num_samples`` samples."""
    length = int(sample_rate * frame_length_ms / 1000)
    shift = int(sample_rate * frame_shift_ms / 1000)
    if snip_edges:
        return 0 if num_samples < length else 1 + (num_samples - length) // shift
    return (num_samples + shift // 2) // shift


def compute_fbank(
    samples: np.ndarray,
    sample_rate: int = TARGET_RATE,
    num_bins: int = 40,
    dither: float = 0.0,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    snip_edges: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    name: str = "<array>",
) -> np.ndarray:
    """Log mel filterbank features of one mono signal (Kaldi ``compute-fbank-feats``).

    Parameters
    ----------
    samples : ndarray of shape (n_samples,), float in [-1, 1]
    sample_rate : int, Hz (the signal is not resampled here; see :mod:`unspeech.audio`)
    num_bins : int, number of mel bins (the feature dimension)
    dither : float
        Dither on the 16-bit integer scale (Kaldi's ``--dither``); 0 gives reproducible output.
    frame_length_ms, frame_shift_ms : float
    snip_edges : bool, Kaldi's ``--snip-edges`` (true: only frames that fit completely)
    low_freq, high_freq : float, Hz; ``high_freq <= 0`` is an offset from Nyquist (Kaldi rule)
    name : str, named in error messages

    Returns
    -------
    ndarray of shape (n_frames, num_bins), float32; ``n_frames = 1 + (n - 400) // 160`` with
    the defaults.
    """
    import kaldi_native_fbank as knf

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise AudioError(f"{name}: expected mono samples of shape (n,), got shape {samples.shape}")
    if num_bins < 1:
        raise ConfigError(f"`num_bins` must be >= 1. Received: num_bins={num_bins}")
    expected = num_frames(len(samples), sample_rate, frame_length_ms, frame_shift_ms, snip_edges)
    if expected < 1:
        raise AudioError(
            f"{name}: {len(samples)} samples ({len(samples) / sample_rate:.3f} s) are too short "
            f"for one {frame_length_ms:g} ms frame"
        )
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(sample_rate)
    opts.frame_opts.frame_length_ms = float(frame_length_ms)
    opts.frame_opts.frame_shift_ms = float(frame_shift_ms)
    opts.frame_opts.dither = float(dither)
    opts.frame_opts.snip_edges = bool(snip_edges)
    opts.mel_opts.num_bins = int(num_bins)
    opts.mel_opts.low_freq = float(low_freq)
    opts.mel_opts.high_freq = float(high_freq)
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(float(sample_rate), samples * np.float32(KALDI_SAMPLE_SCALE))
    fbank.input_finished()
    n = fbank.num_frames_ready
    if n == 0:
        raise AudioError(f"{name}: no feature frames could be computed")
    return np.stack([fbank.get_frame(i) for i in range(n)]).astype(np.float32, copy=False)


def speed_prefix(factor: float) -> str:
    """Kaldi's id prefix for a speed factor: ``sp0.9-``; the empty string for 1.0."""
    return "" if factor == 1.0 else f"sp{factor:g}-"


def speed_perturb(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``samples`` ``factor`` times faster, changing pitch too (like ``sox speed``).

    The signal is resampled by ``1 / factor`` with a polyphase filter, so 0.9 makes it about
    11 % longer and lower, 1.1 about 9 % shorter and higher.

    Returns ndarray of shape (ceil(n / factor),), float32.
    """
    if not 0.1 <= factor <= 10.0:
        raise ConfigError(f"speed factor must lie in [0.1, 10]. Received: factor={factor}")
    if factor == 1.0:
        return np.asarray(samples, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(str(factor)).limit_denominator(1000)
    out = resample_poly(np.asarray(samples, dtype=np.float32), ratio.denominator, ratio.numerator)
    return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class FbankSummary:
    """What :func:`make_fbank_datadir` wrote."""

    out_dir: str
    num_utterances: int
    num_speakers: int
    num_frames: int
    seconds: float


# --------------------------------------------------------------------------- the data dir job

# One unit of work: a source and the utterances cut from it, in output order.
# item: (out_id, utt_id, start, end, speed_factor)
_Item = tuple[str, str, "float | None", "float | None", float]


def _as_mapping(value, reader: Callable, what: str):
    if value is None or isinstance(value, Mapping):
        return value
    path = os.fspath(value)
    if not os.path.isfile(path):
        raise DataError(f"{what} file {path!r} does not exist")
    return reader(path)


def _plan(
    wav: Mapping[str, str],
    segments: Mapping | None,
    utt2spk: Mapping[str, str] | None,
    factors: Sequence[float],
    wav_name: str,
) -> tuple[list[tuple[str, list[_Item]]], dict[str, str]]:
    """Group the output utterances (sorted ids) into tasks sharing one source."""
    from unspeech import datadir

    if segments is not None:
        base = {}
        for utt, seg in segments.items():
            if seg.recording not in wav:
                raise DataError(f"segments: utterance {utt!r} refers to recording {seg.recording!r}, "
                                f"which is not in {wav_name}")
            base[utt] = (wav[seg.recording], seg.start, seg.end)
    else:
        base = {utt: (src, None, None) for utt, src in wav.items()}
    if not base:
        raise DataError(f"{wav_name}: no utterances to process")
    if utt2spk is None:
        speakers = {utt: utt for utt in base}  # Kaldi convention: each utterance its own speaker
    else:
        missing = sorted(set(base) - set(utt2spk))
        if missing:
            raise DataError(f"utt2spk has no speaker for utterance {missing[0]!r} "
                            f"({len(missing)} utterance(s) missing)")
        speakers = {utt: utt2spk[utt] for utt in base}
    out: dict[str, tuple[str, float]] = {}
    out_spk: dict[str, str] = {}
    for utt in base:
        for factor in (1.0, *factors):
            prefix = speed_prefix(factor)
            out[prefix + utt] = (utt, factor)
            out_spk[prefix + utt] = prefix + speakers[utt]
    tasks: list[tuple[str, list[_Item]]] = []
    for out_id in datadir.c_sorted(out):
        utt, factor = out[out_id]
        src, start, end = base[utt]
        item = (out_id, utt, start, end, factor)
        if tasks and tasks[-1][0] == src and is_pipe(src) and len(tasks[-1][1]) < 64:
            tasks[-1][1].append(item)
        else:
            tasks.append((src, [item]))
    return tasks, out_spk


def _run_task(args) -> list[tuple[str, np.ndarray, int]]:
    """Worker: features of every item of one task → [(out_id, feats, n_samples)]."""
    src, items, opts = args
    cached = None
    results = []
    for out_id, utt, start, end, factor in items:
        try:
            if is_pipe(src) and len(items) > 1:
                if cached is None:
                    cached = read_audio(src)
                data, rate = cached
                if start is not None:
                    data = cut_segment(data, rate, start, end, src)
                samples = convert_audio(data, rate, TARGET_RATE, src)
            else:
                samples = load_audio(src, start, end)
        except AudioError as exc:
            raise AudioError(f"utterance {utt!r}: {exc}") from None
        samples = speed_perturb(samples, factor)
        feats = compute_fbank(samples, TARGET_RATE, name=f"utterance {out_id!r}", **opts)
        results.append((out_id, feats, len(samples)))
    return results


def make_fbank_datadir(
    wav_scp: str | os.PathLike | Mapping[str, str],
    out_dir: str | os.PathLike,
    segments: str | os.PathLike | Mapping | None = None,
    utt2spk: str | os.PathLike | Mapping[str, str] | None = None,
    nj: int = 1,
    speed_perturb: bool = False,
    progress: Callable[[int, int], None] | None = None,
    *,
    dither: float = 0.0,
    num_bins: int = 40,
    compress: bool = False,
) -> FbankSummary:
    """Compute fbank features of a Kaldi data set and write a data dir.

    Parameters
    ----------
    wav_scp : path or mapping recording id → source (file path or ``cmd |``)
    out_dir : path; receives ``feats.ark``, ``feats.scp`` (pointing at ``out_dir/feats.ark`` as
        given), ``utt2num_frames``, ``utt2spk`` and ``spk2utt``
    segments : path or mapping utterance id → ``Segment(recording, start, end)``, optional;
        without it every recording is one utterance with the recording's id
    utt2spk : path or mapping, optional; without it every utterance is its own speaker
    nj : int, worker processes
    speed_perturb : bool; add ``sp0.9-`` / ``sp1.1-`` copies (see the module notes)
    progress : callable ``(completed, total)`` called after each utterance, optional
    dither, num_bins : see :func:`compute_fbank`
    compress : bool; store Kaldi-compressed matrices

    Returns
    -------
    FbankSummary. Utterances are written in sorted (C-locale) id order whatever ``nj`` is;
    every output file is written atomically and nothing is written when an utterance fails.
    """
    from unspeech import datadir, kaldi_io

    if nj < 1:
        raise ConfigError(f"`nj` must be >= 1. Received: nj={nj}")
    wav_name = "wav.scp" if isinstance(wav_scp, Mapping) else os.fspath(wav_scp)
    wav = _as_mapping(wav_scp, datadir.read_wav_scp, "wav.scp")
    segs = _as_mapping(segments, datadir.read_segments, "segments")
    u2s = _as_mapping(utt2spk, datadir.read_utt2spk, "utt2spk")
    factors = SPEED_FACTORS if speed_perturb else ()
    tasks, out_spk = _plan(wav, segs, u2s, factors, wav_name)
    total = len(out_spk)
    opts = {"dither": float(dither), "num_bins": int(num_bins)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames: dict[str, int] = {}
    counters = {"samples": 0}
    started = time.perf_counter()

    def _results(pool) -> Iterator[tuple[str, np.ndarray]]:
        jobs = [(src, items, opts) for src, items in tasks]
        stream = pool.imap(_run_task, jobs) if pool is not None else map(_run_task, jobs)
        for batch in stream:
            for out_id, feats, n in batch:
                frames[out_id] = len(feats)
                counters["samples"] += n
                yield out_id, feats
                if progress is not None:
                    progress(len(frames), total)

    ark = out_dir / "feats.ark"
    scp = out_dir / "feats.scp"
    workers = min(nj, len(tasks))
    if workers > 1:
        with multiprocessing.get_context().Pool(workers) as pool:
            kaldi_io.write_mats(ark, _results(pool), scp, compress=compress)
    else:
        kaldi_io.write_mats(ark, _results(None), scp, compress=compress)

    from unspeech._fileutil import atomic_open

    with atomic_open(out_dir / "utt2num_frames") as fh:
        fh.writelines(f"{utt} {n}\n" for utt, n in sorted(frames.items()))
    datadir.write_utt2spk(out_dir / "utt2spk", out_spk)
    spk2utt = datadir.utt2spk_to_spk2utt(out_spk)
    datadir.write_spk2utt(out_dir / "spk2utt", spk2utt)
    seconds = counters["samples"] / TARGET_RATE
    elapsed = time.perf_counter() - started
    logger.info("%d utterances, %.1f s of audio in %.1f s (%.0fx real time) -> %s",
                total, seconds, elapsed, seconds / max(elapsed, 1e-9), scp)
    return FbankSummary(str(out_dir), total, len(spk2utt), sum(frames.values()), seconds)
