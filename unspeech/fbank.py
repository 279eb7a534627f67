"""Kaldi-compatible log mel filterbank features and speed perturbation.

:func:`compute_fbank` is Kaldi's ``compute-fbank-feats`` computed by kaldi-native-fbank, with
the settings of the usual Kaldi recipes: 40 mel bins, 25 ms windows every 10 ms at 16 kHz,
Povey window, pre-emphasis 0.97, DC removal, ``snip_edges=true`` (so an utterance of ``N``
samples gives ``1 + (N - 400) // 160`` frames), no energy coefficient. Like Kaldi, which reads
16-bit WAV files as integers, samples in [-1, 1] are scaled by 32768 before analysis, so the
numbers match ``compute-fbank-feats`` on the same audio. ``dither`` defaults to 0 here (Kaldi's
default is 1.0 on the integer scale) so that the same audio always gives the same features.
Every other Kaldi option (window type, low/high frequency, snip-edges, energy, ...) is set with an
:class:`~unspeech.fbank_options.FbankOptions` (``options=``), e.g. read from a recipe's
``conf/fbank.conf``; with the same options the output matches ``torchaudio.compliance.kaldi.fbank``
(see ``tests/audio/test_fbank_torchaudio.py``). Multi-channel audio gives channel 0, as in Kaldi,
unless ``options.channel`` picks another.

:func:`make_fbank_datadir` turns a ``wav.scp`` (+ optional ``segments`` and ``utt2spk``) into a
Kaldi data dir: ``feats.ark``/``feats.scp``/``utt2num_frames``/``utt2spk``/``spk2utt`` plus
``wav.scp``, ``utt2dur`` and ``reco2dur`` (and ``segments``), in parallel and in sorted utterance
order. With ``speed_perturb=True`` it also adds copies at speed 0.9 and 1.1 exactly as Kaldi's
``perturb_data_dir_speed_3way.sh`` leaves a data dir (``sp0.9-`` ids, ``sox ... speed`` pipes in
``wav.scp``, re-timed segments, ``utt2uniq``; see :mod:`unspeech.perturb`), and computes the
features of the copies from those very pipes, so ``sp0.9-spk1`` is a speaker of its own and the
frame counts are what Kaldi gets from the same data dir. :func:`speed_perturb` does the same to an
array in memory (polyphase resampling, no sox).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from unspeech.audio import TARGET_RATE, convert_audio, cut_segment, is_pipe, load_audio, read_audio
from unspeech.errors import AudioError, ConfigError, DataError
from unspeech.fbank_options import FbankOptions

__all__ = [
    "KALDI_SAMPLE_SCALE",
    "FbankOptions",
    "SPEED_FACTORS",
    "compute_fbank",
    "iter_fbank",
    "num_frames",
    "speed_perturb",
    "speed_prefix",
    "FbankSummary",
    "make_fbank_datadir",
]

logger = logging.getLogger(__name__)

KALDI_SAMPLE_SCALE = 32768.0
"""Factor from float samples in [-1, 1] to the 16-bit integer scale Kaldi computes features on."""

STREAM_SECONDS = 600.0
"""File utterances longer than this (seconds) are computed block by block (bounded memory)."""

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
    *,
    options: FbankOptions | None = None,
) -> np.ndarray:
    """Log mel filterbank features of one mono signal (Kaldi ``compute-fbank-feats``).

    Parameters
    ----------
    samples : ndarray of shape (n_samples,), float in [-1, 1]
    sample_rate : int, Hz (the signal is not resampled here; see :mod:`unspeech.audio`)
    num_bins : int, number of mel bins (the feature dimension)
    dither : float
        Dither on the 16-bit integer scale (Kaldi's ``--dither``); 0 gives reproducible output.
    frame_length_ms, frame_shift_ms : float, ms
    snip_edges : bool, Kaldi's ``--snip-edges`` (true: only frames that fit completely)
    low_freq, high_freq : float, Hz; ``high_freq <= 0`` is an offset from Nyquist (Kaldi rule)
    name : str, named in error messages
    options : FbankOptions, optional
        Every Kaldi option (window type, pre-emphasis, energy, ...); when given it replaces
        ``num_bins`` ... ``high_freq``, and ``sample_rate`` must equal its ``sample_frequency``.

    Returns
    -------
    ndarray of shape (n_frames, options.dim), float32; ``n_frames = 1 + (n - 400) // 160`` with
    the defaults (25 ms frames every 10 ms at 16 kHz, snip_edges).
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise AudioError(f"{name}: expected mono samples of shape (n,), got shape {samples.shape}")
    if options is None:
        if num_bins < 1:
            raise ConfigError(f"`num_bins` must be >= 1. Received: num_bins={num_bins}")
        options = FbankOptions(
            sample_frequency=float(sample_rate), num_mel_bins=int(num_bins), dither=float(dither),
            frame_length=float(frame_length_ms), frame_shift=float(frame_shift_ms), snip_edges=bool(snip_edges),
            low_freq=float(low_freq), high_freq=float(high_freq),
        )
    elif float(sample_rate) != options.sample_frequency:
        raise ConfigError(f"{name}: samples at {sample_rate} Hz but the fbank options say "
                          f"--sample-frequency={options.sample_frequency:g}")
    if options.num_frames(len(samples)) < 1:
        raise AudioError(
            f"{name}: {len(samples)} samples ({len(samples) / sample_rate:.3f} s) are too short "
            f"for one {options.frame_length:g} ms frame"
        )
    feats = np.concatenate(list(iter_fbank([samples], int(sample_rate), options, name, subtract_mean=False)))
    if options.subtract_mean:
        feats -= feats.mean(axis=0, dtype=np.float64).astype(np.float32)
    return feats


def iter_fbank(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    options: FbankOptions,
    name: str = "<array>",
    *,
    subtract_mean: bool | None = None,
) -> Iterator[np.ndarray]:
    """Fbank frames of a signal that arrives in blocks: yields ``(n_i, options.dim)`` float32 blocks.

    ``blocks`` are mono float ``(n_i,)`` sample blocks in [-1, 1] at ``sample_rate`` (e.g. from
    :func:`unspeech.audio_stream.iter_audio_blocks`). kaldi-native-fbank is fed block by block
    and frames leave as soon as they are final, so the frames concatenated are exactly
    :func:`compute_fbank` of the whole signal while memory stays bounded by one block.
    ``options.subtract_mean`` needs the whole utterance: it is refused here unless
    ``subtract_mean=False`` says the caller subtracts the mean itself.
    """
    if float(sample_rate) != options.sample_frequency:
        raise ConfigError(f"{name}: samples at {sample_rate} Hz but the fbank options say "
                          f"--sample-frequency={options.sample_frequency:g}")
    if options.subtract_mean and subtract_mean is not False:
        raise ConfigError(f"{name}: --subtract-mean needs the whole utterance; iter_fbank streams it")
    import kaldi_native_fbank as knf

    fbank = knf.OnlineFbank(options.to_knf())
    total = 0

    def ready() -> np.ndarray:
        n = fbank.num_frames_ready
        # get_frame returns views into kaldi-native-fbank's buffer: copy them before pop frees it
        frames = np.array([fbank.get_frame(i) for i in range(total, n)], dtype=np.float32).reshape(-1, options.dim)
        fbank.pop(n - total)
        return frames

    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 1:
            raise AudioError(f"{name}: expected mono samples of shape (n,), got shape {block.shape}")
        fbank.accept_waveform(float(sample_rate), block * np.float32(KALDI_SAMPLE_SCALE))
        frames = ready()
        total += len(frames)
        if len(frames):
            yield frames
    fbank.input_finished()
    frames = ready()
    total += len(frames)
    if total == 0:
        raise AudioError(f"{name}: no feature frames could be computed")
    if len(frames):
        yield frames


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
    failed: Mapping[str, str] = field(default_factory=dict)  # input recording -> why it was left out


# --------------------------------------------------------------------------- the data dir job

# One unit of work: what to read (a wav.scp value) and the utterances cut from it, in output order.
# item: (out_id, start, end); the flag says whether the task reads an input recording at its
# original speed (then it also reports that recording's duration for utt2dur/reco2dur).
_Item = tuple[str, "float | None", "float | None"]
_Task = tuple[str, str, list[_Item], bool]  # (read_from, source recording, items, original speed)


def _as_mapping(value, reader: Callable, what: str):
    if value is None or isinstance(value, Mapping):
        return value
    path = os.fspath(value)
    if not os.path.isfile(path):
        raise DataError(f"{what} file {path!r} does not exist")
    return reader(path)


def _tasks(plan) -> list[_Task]:
    """Group the planned utterances (sorted ids) into tasks that read one source."""
    tasks: list[_Task] = []
    for u in plan.utterances.values():
        src = plan.read_from[u.recording]
        item = (u.utt, u.start, u.end)
        if (tasks and tasks[-1][0] == src and tasks[-1][1] == u.source_recording and is_pipe(src)
                and len(tasks[-1][2]) < 64):
            tasks[-1][2].append(item)
        else:
            tasks.append((src, u.source_recording, [item], u.factor == "1.0"))
    return tasks


def _file_seconds(path: str) -> float:
    """Duration of an audio file from its header (seconds)."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read audio {path!r}: {exc}") from exc
    return info.frames / info.samplerate


@dataclass
class _Spooled:
    """Features of a long utterance written by a worker to a raw float32 file (``rows x cols``)."""

    path: str
    rows: int
    cols: int
    num_samples: int
    mean: np.ndarray | None  # subtracted on reading (--subtract-mean)

    def __len__(self) -> int:
        return self.rows

    def row_blocks(self, block_rows: int = 1 << 15):
        """The matrix as :class:`unspeech.kaldi_io.RowBlocks` read back from the file, which is removed after."""
        from unspeech.kaldi_io import RowBlocks

        def blocks():
            try:
                with open(self.path, "rb") as fh:
                    while True:
                        data = fh.read(block_rows * self.cols * 4)
                        if not data:
                            break
                        block = np.frombuffer(data, dtype=np.float32).reshape(-1, self.cols)
                        yield block - self.mean if self.mean is not None else block
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)

        return RowBlocks((self.rows, self.cols), blocks())


def _spool_if_long(src: str, start, end, opts: FbankOptions, out_id: str, spool_dir: str,
                   longer_than: float) -> _Spooled | None:
    """Stream a file utterance longer than ``longer_than`` seconds to a spool file; None for a shorter one."""
    from unspeech.audio_stream import audio_length, iter_audio_blocks

    rate = int(opts.sample_frequency)
    try:
        n = audio_length(src, start, end, rate)
    except AudioError as exc:
        raise AudioError(f"utterance {out_id!r}: {exc}") from None
    if n is None or n <= longer_than * rate:
        return None
    fd, path = tempfile.mkstemp(suffix=".f32", dir=spool_dir)
    os.close(fd)
    total = np.zeros(opts.dim, np.float64)
    rows = 0
    where = f"utterance {out_id!r}"
    try:
        with open(path, "wb") as fh:
            blocks = iter_audio_blocks(src, start, end, rate, opts.channel)
            for frames in iter_fbank(blocks, rate, opts, where, subtract_mean=False):
                fh.write(frames.tobytes())
                total += frames.sum(axis=0, dtype=np.float64)
                rows += len(frames)
    except AudioError as exc:
        os.unlink(path)
        message = str(exc)
        raise AudioError(message if message.startswith(where) else f"{where}: {message}") from None
    except BaseException:
        os.unlink(path)
        raise
    mean = (total / rows).astype(np.float32) if opts.subtract_mean else None
    return _Spooled(path, rows, opts.dim, n, mean)


def _run_task(args) -> tuple[list[tuple[str, np.ndarray, int]], float | None]:
    """Worker: features of every item of one task -> ([(out_id, feats, n_samples)], seconds).

    ``seconds`` is the duration of the source recording when the task reads it at its original
    speed (None otherwise). A pipe is run once per task and every item cut from its output.
    With ``spool = (folder, seconds)``, utterances of files longer than ``seconds`` (the parent
    passes :data:`STREAM_SECONDS`) are streamed block by block into a file of ``folder`` and
    returned as :class:`_Spooled` (memory bounded by a block).
    """
    src, _, items, original, opts, spool = args
    cached = None
    results = []
    for out_id, start, end in items:
        if spool is not None and not is_pipe(src):
            spooled = _spool_if_long(src, start, end, opts, out_id, *spool)
            if spooled is not None:
                results.append((out_id, spooled, spooled.num_samples))
                continue
        try:
            if is_pipe(src):
                if cached is None:
                    cached = read_audio(src)
                data, rate = cached
                if start is not None:
                    data = cut_segment(data, rate, start, end, src)
                samples = convert_audio(data, rate, int(opts.sample_frequency), src, opts.channel)
            else:
                samples = load_audio(src, start, end, int(opts.sample_frequency), opts.channel)
        except AudioError as exc:
            hint = ""
            if not original and "RIFF header not found" in str(exc):
                hint = (" (speed perturbation, like Kaldi's, reads the wav.scp entry as WAV: a pipe must write WAV,"
                        " e.g. 'sox in.flac -t wav - |')")
            raise AudioError(f"utterance {out_id!r}: {exc}{hint}") from None
        feats = compute_fbank(samples, int(opts.sample_frequency), name=f"utterance {out_id!r}", options=opts)
        results.append((out_id, feats, len(samples)))
    seconds = None
    if original:
        seconds = len(cached[0]) / cached[1] if cached is not None else _file_seconds(src)
    return results, seconds


def _run_task_or_error(args) -> tuple[list[tuple[str, np.ndarray, int]], float | None, str | None]:
    """Worker: :func:`_run_task`, with an unreadable source returned as its error message instead of raised."""
    try:
        return (*_run_task(args), None)
    except (AudioError, DataError) as exc:
        return [], None, str(exc)


def _drop_from_ark(ark: Path, scp: Path, drop: set[str], absolute_paths: bool) -> None:
    """Rewrite ``ark``/``scp`` without the utterances in ``drop``, copying the other records byte for byte."""
    from unspeech._fileutil import temp_path_beside
    from unspeech.kaldi_io import read_scp_entries

    entries = [(utt, int(location.rsplit(":", 1)[1])) for utt, location in read_scp_entries(scp)]
    data = ark.read_bytes()
    starts = [pos - len(utt.encode("utf-8")) - 1 for utt, pos in entries]  # "utt " precedes each matrix
    ends = starts[1:] + [len(data)]
    name = os.path.abspath(ark) if absolute_paths else os.fspath(ark)
    ark_tmp, scp_tmp = temp_path_beside(ark), temp_path_beside(scp)
    lines, offset = [], 0
    try:
        with open(ark_tmp, "wb") as fd:
            for (utt, pos), start, end in zip(entries, starts, ends):
                if utt not in drop:
                    fd.write(data[start:end])
                    lines.append(f"{utt} {name}:{offset + pos - start}\n")
                    offset += end - start
        scp_tmp.write_text("".join(lines), encoding="utf-8")
        os.unlink(scp)  # never an scp next to an ark it was not written with
        os.replace(ark_tmp, ark)
        os.replace(scp_tmp, scp)
    except BaseException:
        for tmp in (ark_tmp, scp_tmp):
            tmp.unlink(missing_ok=True)
        raise


def _effective_options(options: FbankOptions | None, dither: float, num_bins: int) -> FbankOptions:
    """``options``, or the options of the ``dither`` / ``num_bins`` shortcuts (not both)."""
    if options is None:
        return FbankOptions(dither=float(dither), num_mel_bins=int(num_bins))
    if (dither, num_bins) != (0.0, 40):
        raise ConfigError("give `dither` and `num_bins` inside `options` (FbankOptions), not next to it. "
                          f"Received: dither={dither}, num_bins={num_bins}")
    return options


def _check_stale_tables(out_dir: Path, utts, written: set[str]) -> None:
    """Refuse to leave a table of an earlier run that no longer matches the utterances written."""
    from unspeech import datadir

    for name in ("segments", "utt2uniq", "text"):
        path = out_dir / name
        if name not in written and path.is_file() and set(datadir.read_table(path, min_fields=1)) != set(utts):
            raise DataError(f"{path} (from an earlier run?) lists other utterances than this run writes and "
                            f"would make the data dir invalid: remove it or choose another output dir")


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
    options: FbankOptions | None = None,
    compress: bool = False,
    always_include_prefix: bool = False,
    plain_audio_paths: bool = False,
    absolute_paths: bool = True,
    text: str | os.PathLike | Mapping[str, str] | None = None,
    keep_going: bool = False,
) -> FbankSummary:
    """Compute fbank features of a Kaldi data set and write a data dir.

    Parameters
    ----------
    wav_scp : path or mapping recording id → source (file path or ``cmd |``)
    out_dir : path; receives ``feats.ark``, ``feats.scp``, ``utt2num_frames``, ``utt2spk``,
        ``spk2utt``, ``wav.scp`` (Kaldi-readable values, see :func:`unspeech.datadir.kaldi_wav_entry`),
        ``utt2dur`` and ``reco2dur`` (seconds), ``segments`` when given, ``utt2uniq`` when perturbed
    segments : path or mapping utterance id → ``Segment(recording, start, end)``, optional;
        without it every recording is one utterance with the recording's id
    utt2spk : path or mapping, optional; without it every utterance is its own speaker
    nj : int, worker processes
    speed_perturb : bool; add ``sp0.9-`` / ``sp1.1-`` copies exactly as Kaldi's
        ``perturb_data_dir_speed_3way.sh`` does (see :mod:`unspeech.perturb`); needs ``sox``
    progress : callable ``(completed, total)`` called after each utterance, optional
    dither, num_bins : see :func:`compute_fbank`; leave them at their defaults when giving ``options``
    options : FbankOptions, optional
        All Kaldi fbank options (e.g. from :meth:`FbankOptions.from_kaldi_config`), the channel
        included (default -1: Kaldi's rule, channel 0 of multi-channel audio); audio is resampled to
        its ``sample_frequency``. The effective options are written to ``out_dir/conf/fbank.conf``.
    compress : bool; store Kaldi-compressed matrices
    always_include_prefix : bool; with ``speed_perturb``, prefix the original data with ``sp1.0-``
        (Kaldi's ``--always-include-prefix true``)
    plain_audio_paths : bool; write audio files to ``wav.scp`` as plain paths even when Kaldi
        cannot read them (flac, ogg, ...), for tools that decode them themselves
    absolute_paths : bool; absolute paths in ``feats.scp`` and ``wav.scp`` (default, as Kaldi
        writes them); False keeps them as given, relative to the working directory
    text : path or mapping utterance id -> transcript, optional; copied to ``text`` (perturbed
        copies keep the transcript of their original, as in Kaldi)
    keep_going : bool; a recording that cannot be read (or is too short) is left out with all its
        utterances and copies, the rest is written as a consistent data dir, and the reasons are in
        ``FbankSummary.failed``; a DataError when no recording could be read. Default: the first
        unreadable recording is an error.

    Returns
    -------
    FbankSummary. Utterances are written in sorted (C-locale) id order whatever ``nj`` is;
    the data dir is written to a staging folder beside ``out_dir`` and published as one set
    (``feats.scp`` removed first and written last: a kill leaves the old data dir, one without
    ``feats.scp``, or the new one), and nothing is published when an utterance fails (without
    ``keep_going``). One run per ``out_dir`` at a time (a lock file ``.NAME.lock`` beside it).
    Utterances of audio files longer than :data:`STREAM_SECONDS` are computed block by block, so
    memory does not grow with recording length.
    """
    from unspeech import datadir

    if nj < 1:
        raise ConfigError(f"`nj` must be >= 1. Received: nj={nj}")
    wav_name = "wav.scp" if isinstance(wav_scp, Mapping) else os.fspath(wav_scp)
    wav = _as_mapping(wav_scp, datadir.read_wav_scp, "wav.scp")
    segs = _as_mapping(segments, datadir.read_segments, "segments")
    u2s = _as_mapping(utt2spk, datadir.read_utt2spk, "utt2spk")
    transcripts = _as_mapping(text, datadir.read_text, "text")
    from unspeech import perturb
    from unspeech._fileutil import output_lock, temp_dir_beside

    if always_include_prefix and not speed_perturb:
        raise ConfigError("`always_include_prefix` (sp1.0- on the original data) needs speed_perturb")
    factors = perturb.KALDI_SPEEDS if speed_perturb else ()
    entries = datadir.kaldi_wav_scp(wav, plain_paths=plain_audio_paths, absolute=absolute_paths)
    plan = perturb.plan_datadir(wav, segs, u2s, entries, factors, always_include_prefix, wav_name)
    if plan.dropped:
        logger.warning("%d utterance(s) get no perturbed copies (segment too short or ending at -1, as in "
                       "Kaldi's perturb_data_dir_speed.sh), e.g. %r", len(plan.dropped), plan.dropped[0])
    out_dir = Path(out_dir)
    written = {name for name, yes in (("segments", plan.has_segments), ("utt2uniq", bool(factors)),
                                      ("text", text is not None)) if yes}
    _check_stale_tables(out_dir, plan.utterances, written)
    if factors and shutil.which("sox") is None:
        raise ConfigError("--speed-perturb needs the sox program (Kaldi's perturb_data_dir_speed.sh uses it "
                          "too); install it, e.g. apt-get install sox")
    if transcripts is not None:
        missing = datadir.c_sorted({u.source_utt for u in plan.utterances.values()} - set(transcripts))
        if missing:
            raise DataError(f"text has no transcript for utterance {missing[0]!r} ({len(missing)} missing)")
    tasks = _tasks(plan)
    opts = _effective_options(options, dither, num_bins)
    # everything is written to a staging folder beside out_dir and published as one set at the end
    # (feats.scp last): a failed or killed run leaves the old data dir, or one without feats.scp
    with output_lock(out_dir, "fbank run"):
        final_dir, out_dir = out_dir, temp_dir_beside(out_dir)
        try:
            return _write_datadir(final_dir, out_dir, plan, tasks, opts, nj, compress, absolute_paths, keep_going,
                                  progress, factors, transcripts, text)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)


def _write_datadir(final_dir: Path, out_dir: Path, plan, tasks, opts: FbankOptions, nj: int, compress, absolute_paths: bool,
                   keep_going: bool, progress, factors, transcripts, text) -> FbankSummary:
    """The body of :func:`make_fbank_datadir`: write the data dir into the staging folder ``out_dir``,
    then publish it into ``final_dir``."""
    from unspeech import datadir, kaldi_io
    from unspeech._fileutil import atomic_open, publish_folder, temp_dir_beside

    out_spk = plan.utt2spk
    total = len(out_spk)
    frames: dict[str, int] = {}
    reco_seconds: dict[str, float] = {}
    counters = {"samples": 0}
    failed: dict[str, str] = {}  # input recording -> first error
    started = time.perf_counter()

    def _results(pool) -> Iterator[tuple[str, np.ndarray]]:
        jobs = [(*task, opts, (spool_dir, STREAM_SECONDS)) for task in tasks]
        worker = _run_task_or_error if keep_going else _run_task
        stream = pool.imap(worker, jobs) if pool is not None else map(worker, jobs)
        done = 0
        for task, (batch, source_seconds, *error) in zip(tasks, stream):
            if error and error[0] is not None:
                failed.setdefault(task[1], error[0])
            if source_seconds is not None:
                reco_seconds[task[1]] = source_seconds
            for i, (out_id, feats, n) in enumerate(batch if task[1] not in failed else ()):
                frames[out_id] = len(feats)
                counters["samples"] += n
                yield out_id, feats.row_blocks() if isinstance(feats, _Spooled) else feats
                if progress is not None:
                    progress(done + i + 1, total)
            done += len(task[2])
            if progress is not None and task[1] in failed:
                progress(done, total)
        if failed and not set(frames) - {u.utt for u in plan.utterances.values() if u.source_recording in failed}:
            first = next(iter(failed.items()))
            raise DataError(f"no recording could be read ({len(failed)} failed); the first: {first[1]}")

    ark = out_dir / "feats.ark"
    scp = out_dir / "feats.scp"
    workers = min(nj, len(tasks))
    # long file utterances are streamed by the workers into this folder and copied into the ark
    # block by block (see _run_task); it goes with everything in it however the write ends
    spool_dir = os.fspath(temp_dir_beside(ark))
    try:
        if workers > 1:
            with multiprocessing.get_context().Pool(workers) as pool:
                kaldi_io.write_mats(ark, _results(pool), scp, compress=compress, absolute_paths=absolute_paths)
        else:
            kaldi_io.write_mats(ark, _results(None), scp, compress=compress, absolute_paths=absolute_paths)
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
    if failed:  # leave out every utterance and copy of a recording that failed
        dropped = {u.utt for u in plan.utterances.values() if u.source_recording in failed}
        if dropped & set(frames):  # copies written before their recording failed
            _drop_from_ark(ark, scp, dropped, absolute_paths)
        for utt in dropped & set(frames):
            del frames[utt]
        kept = {utt: u for utt, u in plan.utterances.items() if utt not in dropped}
        recordings = {u.recording for u in kept.values()}
        plan = dataclasses.replace(plan, utterances=kept,
                                   wav_scp={r: v for r, v in plan.wav_scp.items() if r in recordings},
                                   read_from={r: v for r, v in plan.read_from.items() if r in recordings})
        out_spk = plan.utt2spk
        total = len(out_spk)

    with atomic_open(out_dir / "utt2num_frames") as fh:
        fh.writelines(f"{utt} {n}\n" for utt, n in sorted(frames.items()))
    datadir.write_utt2spk(out_dir / "utt2spk", out_spk)
    spk2utt = datadir.utt2spk_to_spk2utt(out_spk)
    datadir.write_spk2utt(out_dir / "spk2utt", spk2utt)
    datadir.write_wav_scp(out_dir / "wav.scp", plan.wav_scp)
    if plan.has_segments:
        datadir.write_table(out_dir / "segments", plan.segments_table())
    if factors:
        datadir.write_table(out_dir / "utt2uniq", plan.utt2uniq)
    if transcripts is not None:
        datadir.write_text(out_dir / "text", {u.utt: transcripts[u.source_utt] for u in plan.utterances.values()})
    utt2dur, reco2dur = plan.durations(reco_seconds)
    datadir.write_table(out_dir / "utt2dur", utt2dur)
    datadir.write_table(out_dir / "reco2dur", reco2dur)
    (out_dir / "conf").mkdir(exist_ok=True)
    with atomic_open(out_dir / "conf" / "fbank.conf") as fh:
        fh.write(opts.to_kaldi_config())
    # feats.scp names the ark where it will lie, not where it was written
    staged = os.path.abspath(ark) if absolute_paths else os.fspath(ark)
    final = os.path.abspath(final_dir / "feats.ark") if absolute_paths else os.fspath(final_dir / "feats.ark")
    lines = []
    for utt, location in kaldi_io.read_scp_entries(scp):
        path, offset = location.rsplit(":", 1)
        assert path == staged, (path, staged)
        lines.append(f"{utt} {final}:{offset}\n")
    publish_folder(out_dir, final_dir, "feats.scp", "".join(lines).encode("utf-8"))
    seconds = counters["samples"] / opts.sample_frequency
    elapsed = time.perf_counter() - started
    logger.info("%d utterances, %.1f s of audio in %.1f s (%.0fx real time) -> %s",
                total, seconds, elapsed, seconds / max(elapsed, 1e-9), scp)
    return FbankSummary(str(final_dir), total, len(spk2utt), sum(frames.values()), seconds, dict(failed))
