"""Diarize many recordings (a ``wav.scp``, files, a folder) with ``nj`` worker processes.

Set-up problems (a model that does not load, profiles of the wrong dimension, bad options) stop
the batch before it starts. A recording that fails (unreadable audio, too short) is reported
with its message while the others go on; :attr:`BatchResult.failed` lists them and the command line
exits non-zero when it is not empty. Outputs are written by the parent process, atomically,
per recording as soon as it is done.

Kaldi ``segments`` with a ``wav.scp``: the segments of a recording are taken as its speech
regions (like oracle speech), and the recording is diarized as a whole, so speaker labels are
consistent across its segments.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from unspeech.datadir import Segment, Turn
from unspeech.errors import ConfigError, UnspeechError

__all__ = ["BatchResult", "diarize_batch", "speech_from_segments", "collect_inputs"]

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What :func:`diarize_batch` did: turns per recording, failures, audio seconds, wall time."""

    turns: dict[str, list[Turn]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def audio_seconds(self) -> float:
        return float(sum(self.durations.values()))

    @property
    def real_time_factor(self) -> float:
        """Wall time divided by audio time (lower is faster)."""
        return self.elapsed / self.audio_seconds if self.audio_seconds else float("nan")


def speech_from_segments(segments: Mapping[str, Segment]) -> dict[str, list[tuple[float, float]]]:
    """Recording → its segments' ``(start, end)`` spans (seconds), from ``read_segments`` output."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for seg in segments.values():
        spans.setdefault(seg.recording, []).append((seg.start, seg.end if seg.end >= 0 else float("inf")))
    return {rec: sorted(s) for rec, s in spans.items()}


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> dict[str, str]:
    """Recording id → source for audio files, folders (searched recursively) and ``*.scp`` files.

    A path that does not exist is a :class:`ConfigError` (entries inside a wav.scp are checked when read)."""
    from unspeech.audio import find_audio_files
    from unspeech.datadir import read_wav_scp

    found: dict[str, str] = {}
    for item in inputs:
        path = os.fspath(item)
        if os.path.isdir(path):
            new = find_audio_files(path)
        elif path.endswith(".scp") and os.path.isfile(path):
            new = read_wav_scp(path)
        elif not os.path.exists(path):  # said up front, before a model is loaded or a file written
            raise ConfigError(f"input {path!r} does not exist (give audio files, folders or wav.scp files)")
        else:
            stem = os.path.splitext(os.path.basename(path))[0]
            if any(ch.isspace() for ch in stem):  # as `unspeech fbank` and folders: RTTM/Kaldi ids hold no spaces
                raise ConfigError(f"file name {path!r} contains whitespace, which RTTM and Kaldi recording ids "
                                  "cannot hold; rename it, or list it in a wav.scp under an id of your choice")
            new = {stem: path}
        for key, source in new.items():
            if key in found and found[key] != source:
                raise ConfigError(f"two inputs give the recording id {key!r}: {found[key]!r} and {source!r}")
            found[key] = source
    if not found:
        raise ConfigError("no input recordings given")
    return found


# ---------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


class _Collect(logging.Handler):
    """Log records of a worker process, as ``(level, message)``, for the parent to log again."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelno, record.getMessage()))


def _init_worker(params: dict, level: int = logging.WARNING) -> None:
    """Pool worker set-up: one BLAS thread each (nj processes must not oversubscribe the cores);
    the package logs at the parent's level (its records are passed back with the results)."""
    from threadpoolctl import threadpool_limits

    from unspeech.diarize.pipeline import Diarizer

    logging.getLogger("unspeech").setLevel(level)
    _WORKER["limits"] = threadpool_limits(1)
    _WORKER["diarizer"] = Diarizer(**params)
    _WORKER["capture"] = True


def _run_one(job: tuple[str, str, list | None]) -> tuple[str, list[Turn] | None, str | None, float, list[tuple[int, str]]]:
    """Diarize one recording; never raises: ``(id, turns, error, audio seconds, log records)``."""
    file_id, source, speech = job
    handler = _Collect() if _WORKER.get("capture") else None
    pkg_logger = logging.getLogger("unspeech")
    if handler is not None:
        pkg_logger.addHandler(handler)
    seconds = [0.0]

    def hook(step, artifact, **_):
        if step == "audio":
            seconds[0] = len(artifact) / 16000

    try:
        turns = _WORKER["diarizer"](source, hook=hook, file_id=file_id, speech=speech)
        error = None
    except UnspeechError as exc:
        turns, error = None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken recording must not stop the batch
        turns, error = None, f"{type(exc).__name__}: {exc}"
    finally:
        if handler is not None:
            pkg_logger.removeHandler(handler)
    return file_id, turns, error, seconds[0], handler.messages if handler is not None else []


def _results(jobs: list, diarizer, params: dict, nj: int) -> Iterator[tuple]:
    if nj <= 1 or len(jobs) <= 1:
        _WORKER.update(diarizer=diarizer, capture=False)
        try:
            yield from map(_run_one, jobs)
        finally:
            _WORKER.clear()
        return
    ctx = multiprocessing.get_context("spawn")
    level = logging.getLogger("unspeech").getEffectiveLevel()
    with ctx.Pool(min(nj, len(jobs)), initializer=_init_worker, initargs=(params, level)) as pool:
        yield from pool.imap_unordered(_run_one, jobs)


def diarize_batch(
    recordings: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike | None = None,
    formats: Sequence[str] = ("rttm",),
    nj: int = 1,
    speech: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    progress: Callable[[int, int, BatchResult], None] | None = None,
    on_result: Callable[[str, list[Turn], float], None] | None = None,
) -> BatchResult:
    """Diarize recordings in parallel; failures are collected, not raised.

    Parameters
    ----------
    recordings : recording id → path or ``"cmd |"``
    params : keyword arguments of :class:`~unspeech.diarize.pipeline.Diarizer`
    out_dir : folder for ``<id>.rttm`` / ``.vad`` / ``.json`` (nothing is written when None)
    formats : subset of :data:`~unspeech.diarize.outputs.OUTPUT_FORMATS`
    nj : int, worker processes
    speech : recording id → oracle speech spans (seconds); recordings missing from it have none
    progress : callable ``(done, total, result_so_far)`` after every recording
    on_result : callable ``(id, turns, duration)`` after every successful recording

    Returns
    -------
    BatchResult
    """
    from unspeech.diarize.outputs import write_outputs
    from unspeech.diarize.pipeline import Diarizer

    if nj < 1:
        raise ConfigError(f"`nj` must be >= 1. Received: nj={nj}")
    params = dict(params or {})
    diarizer = Diarizer(**params)
    diarizer._setup()  # a bad model, profile or option fails the whole batch once, up front
    logger.info("diarizing %d recording(s): %s", len(recordings), diarizer.describe())
    jobs = [(rid, src, None if speech is None else list(speech.get(rid, []))) for rid, src in recordings.items()]
    result = BatchResult()
    started = time.perf_counter()
    for done, (file_id, turns, error, seconds, records) in enumerate(_results(jobs, diarizer, params, nj), 1):
        for level, message in records:
            logger.log(level, "%s", message)
        result.durations[file_id] = seconds
        if error is not None:
            logger.error("%s: %s", file_id, error)
            result.failed[file_id] = error
        else:
            result.turns[file_id] = turns
            if out_dir is not None:
                write_outputs(Path(out_dir), file_id, turns, formats, seconds or None)
            if on_result is not None:
                on_result(file_id, turns, seconds)
        result.elapsed = time.perf_counter() - started
        if progress is not None:
            progress(done, len(jobs), result)
    return result
