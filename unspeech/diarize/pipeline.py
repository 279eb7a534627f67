"""The diarization pipeline: audio in, speaker turns out.

Stages (each reported to ``hook(step, artifact, completed=k, total=6)`` when one is given)::

    audio       16 kHz mono samples                     ndarray (n_samples,) float32
    fbank       Kaldi fbank, 40 bins, 10 ms frames      ndarray (T, 40) float32
    speech      energy VAD or oracle speech             ndarray (T,) bool
    embeddings  one row every ``step`` frames           ndarray (ceil(T / step), D) float32
    labels      speaker per frame after smoothing       ndarray (T,) int (-1 = non-speech)
    turns       RTTM turns                              list of unspeech.datadir.Turn

Only rows of speech frames get a speaker: rows whose block of ``step`` frames is at least half
speech ("core" rows) are clustered or decoded, other rows with some speech take the nearest
speaker, non-speech frames stay without speaker. Before clustering, rows are centred on the
recording's mean, L2-normalised and averaged over ``pool_rows`` neighbours (one row describes a
short window; a second of context makes speakers much easier to tell apart: on synthetic dev
conversations, pooling 10 rows of the context model cut the AHC DER from 24 % to 15 %). Frame
labels are then smoothed and cleaned by :mod:`unspeech.diarize.postprocess`.

Recording files longer than 10 minutes go through :mod:`unspeech.diarize.streaming`: samples and
fbank are computed block by block and never held whole (the ``audio`` and ``fbank`` artifacts are
then :class:`~unspeech.diarize.streaming.Streamed` stand-ins with a length and a shape); the rows
are those of the whole-recording path.
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from unspeech.datadir import Turn
from unspeech.diarize.clustering import (
    CLUSTER_METHODS,
    assign_to_centroids,
    check_count_rule,
    check_speaker_bounds,
    cluster_rows,
    merge_small_clusters,
)
from unspeech.diarize.postprocess import NON_SPEECH, labels_to_turns, postprocess_labels
from unspeech.diarize.profiles import SpeakerProfiles, l2_normalize
from unspeech.diarize.row_source import ROW_BLOCK, RowSpool, RowView, block_mean, take
from unspeech.diarize.vad import EnergyVAD, mask_from_spans, num_frames_of
from unspeech.errors import AudioError, ConfigError, DataError

__all__ = ["BACKENDS", "Diarizer"]

logger = logging.getLogger(__name__)

BACKENDS = (*CLUSTER_METHODS, "uisrnn", "enroll")
"""Ways to decide who is who: three clusterers, a trained UIS-RNN, enrolled speaker profiles."""

_STEPS = ("audio", "fbank", "speech", "embeddings", "labels", "turns")
_SAMPLE_RATE = 16000


def iter_moving_average(x, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`moving_average` of a row source (an array or rows on disk, :mod:`unspeech.diarize.row_source`)
    block by block: ``(first row, output rows)`` pairs, ``ROW_BLOCK`` rows each."""
    n, before = len(x), size // 2
    for a in range(0, n, ROW_BLOCK):
        b = min(n, a + ROW_BLOCK)
        if size <= 1:  # the rows themselves (no round-off of a running sum)
            yield a, np.asarray(x[a:b], dtype=np.float64)
            continue
        block = take(x, np.clip(np.arange(a - before, b + size - 1 - before), 0, n - 1)).astype(np.float64, copy=False)
        csum = np.concatenate([np.zeros((1,) + block.shape[1:]), np.cumsum(block, axis=0)])
        yield a, (csum[size:] - csum[:-size]) / size


def moving_average(x, size: int) -> np.ndarray:
    """Mean over ``size`` consecutive rows, ``(n, d) -> (n, d)`` float64: row ``i`` averages rows
    ``i - size // 2 .. i - size // 2 + size - 1``, the first / last row repeated past the ends
    (``scipy.ndimage.uniform_filter1d(x, size, axis=0, mode="nearest")``, without importing SciPy's
    image package on every command). ``x``: an array or any row source."""
    out = np.empty((len(x),) + tuple(x.shape[1:]), dtype=np.float64)
    for a, block in iter_moving_average(x, size):
        out[a:a + len(block)] = block
    return out


class Diarizer:
    """Who spoke when, for one recording at a time.

    Parameters
    ----------
    backend : {"hdbscan", "ahc", "spectral", "uisrnn", "enroll"}
    model : str, optional
        A training run directory of the unspeech context model, the name of a model shipped with
        the package, or ``"stats"`` (windowed fbank statistics, a model-free baseline). Default
        ``None``: the bundled model (:data:`unspeech.diarize.embedders.BUNDLED_MODEL`).
    step : int, frames between embedding rows (10 = 100 ms)
    num_speakers, min_speakers, max_speakers : int, optional speaker-count constraints
    smooth_size : int, label smoothing window in frames (83)
    dur_threshold : int, shortest kept segment in frames (10 = 100 ms)
    short_segments : {"merge", "drop"}, what happens to shorter segments
    count_rule : {"relative", "eigengap", "threshold"}, how backends "ahc", "spectral" and "enroll"
        estimate the speaker count when ``num_speakers`` is not given: the normalised maximum
        eigengap (default; :mod:`unspeech.diarize.speaker_count`), an AHC cut relative to the
        recording's own within-turn distance, or the old fixed AHC cut at ``threshold``
    threshold : float, AHC cosine-distance cut of ``count_rule="threshold"``
    min_cluster_size : int, the smallest speaker in rows (20 = 2 s at step 10): HDBSCAN's smallest
        cluster; smaller clusters of AHC and spectral, HDBSCAN's noise and (without ``num_speakers``)
        smaller UIS-RNN speakers join the nearest speaker: they are never counted as speakers
    uisrnn : path of a UIS-RNN model saved by :class:`unspeech.uisrnn.UISRNN` (backend "uisrnn");
        it must have been trained on rows of the same embedder, as ``--gen_feat`` exports them
    enroll : list of enrollment audio paths, one speaker each (named by file name), or a mapping
        name → path (backend "enroll"). The recording is clustered as with "ahc" (speaker-count
        options apply) and clusters are matched to profiles one to one by centroid similarity
        (:meth:`~unspeech.diarize.profiles.SpeakerProfiles.assign_groups`), "unknown" below
        ``unknown_threshold``
    profiles : Kaldi rspecifier of speaker embeddings (backend "enroll"), instead of ``enroll``
    unknown_threshold : float, optional; cosine similarity below which speech is "unknown"
    vad : :class:`~unspeech.diarize.vad.EnergyVAD`, optional; the speech detector's settings
    pool_rows : int, moving average of the normalised rows over this many rows before clustering or
        profile matching (10 rows = 1 s at step 10; 1 = none); UIS-RNN always sees the raw rows
    max_points : int, most rows clustered directly per recording
    runtime : str, runtime of a context model: "auto" (its ``model.onnx`` through ONNX Runtime when
        current, else TensorFlow), "onnx" or "keras"
    speaker_head : bool, pass the context model's rows through its speaker head when the model has
        one (:mod:`unspeech.context.speaker_head`; the bundled model does). Backends "uisrnn" and
        "enroll" with ``profiles`` never use it: they compare rows with vectors made from
        ``--gen_feat`` exports, which are the model's own rows

    Fitted attributes (set on first use): ``embedder_``, ``profiles_``, ``uisrnn_``.
    """

    def __init__(
        self,
        backend: str = "spectral",
        model: str | os.PathLike | None = None,
        step: int = 10,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        smooth_size: int = 83,
        dur_threshold: int = 10,
        short_segments: str = "merge",
        count_rule: str = "consensus",
        threshold: float = 0.5,
        min_cluster_size: int = 20,
        uisrnn: str | os.PathLike | None = None,
        enroll: Sequence[str | os.PathLike] | dict | None = None,
        profiles: str | os.PathLike | None = None,
        unknown_threshold: float | None = None,
        vad: EnergyVAD | None = None,
        pool_rows: int = 10,
        max_points: int = 3000,
        runtime: str = "auto",
        speaker_head: bool = True,
    ):
        self.backend = backend
        self.model = model
        self.step = step
        self.num_speakers = num_speakers
        self.min_speakers = min_speakers
        self.max_speakers = max_speakers
        self.smooth_size = smooth_size
        self.dur_threshold = dur_threshold
        self.short_segments = short_segments
        self.count_rule = count_rule
        self.threshold = threshold
        self.min_cluster_size = min_cluster_size
        self.uisrnn = uisrnn
        self.enroll = enroll
        self.profiles = profiles
        self.unknown_threshold = unknown_threshold
        self.vad = vad
        self.pool_rows = pool_rows
        self.max_points = max_points
        self.runtime = runtime
        self.speaker_head = speaker_head

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (enough to build an equal Diarizer in another process)."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {name: getattr(self, name) for name in names}

    def describe(self) -> str:
        """Which model and which speaker-count rule this diarizer uses, in one line for a log."""
        from unspeech.diarize.embedders import bundled_models_dir, resolve_model

        model = resolve_model(self.model)
        if model == "stats":
            model = "stats (windowed fbank statistics, no model)"
        elif os.path.dirname(os.path.abspath(model)) == os.fspath(bundled_models_dir()):
            model = f"bundled {os.path.basename(os.path.normpath(model))} ({model})"
        embedder = getattr(self, "embedder_", None)  # known once loaded
        if getattr(embedder, "head", None) is not None:
            model += ", speaker head"
        runtime = getattr(embedder, "runtime", None)
        if runtime is not None:
            model += f", {runtime} runtime"
        if self.num_speakers is not None:
            count = f"fixed: {self.num_speakers}"
        elif self.backend == "uisrnn":
            count = f"decided by the UIS-RNN (speakers under {self.min_cluster_size} rows join the nearest)"
        elif self.backend == "hdbscan":
            count = f"HDBSCAN's clusters of >= {self.min_cluster_size} rows (noise joins the nearest)"
        elif self.count_rule == "relative":
            count = "relative (AHC cut at 1.5x the recording's within-turn distance)"
        elif self.count_rule == "eigengap":
            count = "eigengap (normalised maximum eigengap, NME-SC)"
        elif self.count_rule == "consensus":
            count = "consensus (majority of 8 eigengap counts: 2 graphs x 2 Laplacians x 2 choices of p)"
        else:
            count = f"threshold (AHC cut at cosine distance {self.threshold})"
        bounds = [f"{name}={value}" for name, value in (("min_speakers", self.min_speakers), ("max_speakers", self.max_speakers))
                  if value is not None and self.num_speakers is None]
        return f"model {model}; backend {self.backend}; speaker count {count}" + (f" within {', '.join(bounds)}" if bounds else "")

    # ------------------------------------------------------------------ set-up

    def _check_params(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"`backend` must be one of {', '.join(BACKENDS)}. Received: backend={self.backend!r}")
        check_speaker_bounds(self.num_speakers, self.min_speakers, self.max_speakers)
        check_count_rule(self.count_rule)
        if self.backend == "uisrnn" and not self.uisrnn:
            raise ConfigError("backend 'uisrnn' needs a trained model: give `uisrnn`, the path of a model saved by "
                              "`unspeech uisrnn train` (or converted by `unspeech uisrnn convert`)")
        if self.backend == "enroll" and not (self.enroll or self.profiles):
            raise ConfigError("backend 'enroll' needs `enroll` audio (--enroll a.wav b.wav) or `profiles` (--profiles profile.scp)")
        if self.backend == "enroll" and self.enroll and self.profiles:
            raise ConfigError("give either `enroll` audio or `profiles`, not both")
        if int(self.step) < 1:
            raise ConfigError(f"`step` must be >= 1. Received: step={self.step}")
        if int(self.pool_rows) < 1:
            raise ConfigError(f"`pool_rows` must be >= 1. Received: pool_rows={self.pool_rows}")

    def _setup(self) -> None:
        """Load the embedder, profiles and UIS-RNN once (fitted attributes end in ``_``)."""
        if getattr(self, "embedder_", None) is not None:
            return
        self._check_params()
        from unspeech.diarize.embedders import load_embedder

        # UIS-RNN models and Kaldi-ark profiles live in the space of the exported (head-less) rows
        head = bool(self.speaker_head) and self.backend != "uisrnn" and not (self.backend == "enroll" and self.profiles)
        self.embedder_ = load_embedder(self.model, int(self.step), runtime=self.runtime, speaker_head=head)
        self.profiles_ = None
        self.uisrnn_ = None
        if self.backend == "enroll":
            if self.profiles:
                self.profiles_ = SpeakerProfiles.from_ark(self.profiles)
            else:
                self.profiles_ = SpeakerProfiles.from_enrollment(self.enroll, self._enrollment_rows)
            self.profiles_.check_dim(self.embedder_.dim, f"the embedder ({self.embedder_.name})")
        elif self.backend == "uisrnn":
            from unspeech.uisrnn import UISRNN

            self.uisrnn_ = UISRNN.from_file(self.uisrnn, verbosity=0, enable_cuda=False)
            if self.uisrnn_.observation_dim != self.embedder_.dim:
                raise DataError(
                    f"{os.fspath(self.uisrnn)}: the UIS-RNN expects {self.uisrnn_.observation_dim}-dimensional "
                    f"observations, but the embedder ({self.embedder_.name}) makes {self.embedder_.dim}"
                )

    # ------------------------------------------------------------------ stages

    @staticmethod
    def _load(audio, sample_rate: int) -> tuple[np.ndarray, str | None]:
        from unspeech.audio import convert_audio, read_audio

        if isinstance(audio, (str, os.PathLike)):
            data, rate = read_audio(audio)
            name = os.fspath(audio)
        else:
            data, rate, name = np.asarray(audio, dtype=np.float32), int(sample_rate), None
        if data.shape[0] == 0:
            return np.zeros(0, np.float32), name
        return convert_audio(data, rate, _SAMPLE_RATE, name or "<array>"), name

    def _speech_mask(self, samples: np.ndarray, n_frames: int, speech) -> np.ndarray:
        if speech is None:
            mask = (self.vad or EnergyVAD())(samples)
        elif isinstance(speech, np.ndarray) and speech.dtype == bool:
            mask = speech
        else:
            mask = mask_from_spans(speech, n_frames)
        if len(mask) != n_frames:
            raise DataError(f"speech mask has {len(mask)} frames, the audio has {n_frames}")
        return mask

    def _check_length(self, n_samples: int, name: str) -> None:
        window = self.embedder_.window_frames
        if num_frames_of(n_samples) < window:
            raise AudioError(
                f"audio {name!r} is {n_samples / _SAMPLE_RATE:.3f} s long, shorter than one embedding "
                f"window of {window} frames ({(window - 1) * 0.01 + 0.025:.3f} s) of {self.embedder_.name}"
            )

    def _rows(self, fbank: np.ndarray, mask: np.ndarray, embedded: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Embedding rows, their speech fraction and which rows are "core" speech rows
        (``embedded``: ``fbank`` already holds the rows)."""
        rows = fbank if embedded else self.embedder_.embed(fbank)
        step = int(self.step)
        padded = np.zeros(len(rows) * step, dtype=bool)
        padded[: len(mask)] = mask
        fraction = padded.reshape(len(rows), step).mean(axis=1)
        core = fraction >= 0.5
        if not core.any():
            core = fraction > 0
        return rows, fraction, core

    def _enrollment_rows(self, path: str) -> np.ndarray:
        from unspeech.fbank import compute_fbank

        samples, _ = self._load(path, _SAMPLE_RATE)
        if len(samples) == 0:
            return np.zeros((0, self.embedder_.dim), np.float32)
        # enrollment may be shorter than a window: the embedders then use (or pad) what there is
        mask = self._speech_mask(samples, num_frames_of(len(samples)), None)
        rows, _, core = self._rows(compute_fbank(samples, name=path), mask)
        return rows[core] if mask.any() else rows[:0]

    def _pooled(self, rows, core: np.ndarray, center: bool, spool: str | None = None):
        """Rows (optionally centred on the core rows' mean) L2-normalised and averaged over ``pool_rows``:
        an array ``(N, D)`` float64, or with ``spool`` (a folder) the same rows written there and read
        back block by block (:mod:`unspeech.diarize.row_source`). ``rows``: an array or rows on disk."""
        mean = block_mean(RowView(rows, np.flatnonzero(core))) if center and core.sum() > 1 else None
        x = RowView(rows, mean=mean, normalise=True)
        size = max(int(self.pool_rows), 1)
        if spool is None:
            return moving_average(x, size)
        out = RowSpool(spool, "pooled", x.shape[1], np.float64)
        try:
            for _, block in iter_moving_average(x, size):
                out.append(block)
        finally:
            out.close()
        return out.rows()

    def _cluster_labels(self, x, core: np.ndarray, speech_rows: np.ndarray, method: str) -> np.ndarray:
        """Cluster the core rows of ``x`` (an array or rows on disk) with ``method``; other speech rows
        join the nearest cluster."""
        labels = np.full(len(x), NON_SPEECH, dtype=np.int64)
        labels[core] = cluster_rows(
            RowView(x, np.flatnonzero(core)), method, self.num_speakers, self.min_speakers, self.max_speakers,
            count_rule=self.count_rule, threshold=self.threshold, min_cluster_size=self.min_cluster_size, center=False,
            max_points=self.max_points, positions=np.flatnonzero(core), lag=int(self.pool_rows),
        )
        return self._extend(x, labels, core, speech_rows)


    @staticmethod
    def _extend(x, labels: np.ndarray, core: np.ndarray, speech_rows: np.ndarray) -> np.ndarray:
        """Give speech rows outside the core the label of the nearest core-label centroid
        (``x``: an array or rows on disk, read block by block)."""
        rest = speech_rows & ~core
        if rest.any():
            kept = np.unique(labels[core])
            centroids = np.stack([block_mean(RowView(x, np.flatnonzero(core & (labels == k)))) for k in kept])
            labels[rest] = kept[assign_to_centroids(RowView(x, np.flatnonzero(rest)), centroids)]
        return labels

    def _row_labels(self, rows, fraction: np.ndarray, core: np.ndarray,
                    spool: str | None = None) -> tuple[np.ndarray, list[str] | None]:
        """Speaker index per row (-1 where a row has no speech) and the label names. ``rows``: an
        array, or rows on disk (a long recording): then ``spool`` is a folder for the pooled rows,
        and the clustering backends read them block by block."""
        speech_rows = fraction > 0
        if self.backend == "uisrnn":  # the UIS-RNN sees rows exactly as it was trained on them
            from unspeech.uisrnn import default_arguments

            _, _, inference_args = default_arguments()
            x = np.asarray(rows, dtype=np.float64)
            labels = np.full(len(rows), NON_SPEECH, dtype=np.int64)
            decoded = np.asarray(self.uisrnn_.predict(
                x[core], inference_args, num_speakers=self.num_speakers, max_speakers=self.max_speakers
            ), dtype=np.int64)
            if self.num_speakers is None:  # speakers under min_cluster_size rows join the nearest one
                decoded = merge_small_clusters(l2_normalize(x[core]), decoded, int(self.min_cluster_size))
            labels[core] = decoded
            return self._extend(x, labels, core, speech_rows), None
        if self.backend != "enroll":
            return self._cluster_labels(self._pooled(rows, core, True, spool), core, speech_rows, self.backend), None
        # enrolled speakers: cluster like "ahc", then match clusters to profiles one to one (or "unknown");
        # profiles live in the embedder's own space, so clusters are compared through uncentred rows
        clusters = self._cluster_labels(self._pooled(rows, core, center=True), core, speech_rows, "ahc")
        own_space = self._pooled(rows, core, center=False)
        kept = np.unique(clusters[speech_rows])
        centroids = np.stack([own_space[clusters == k].mean(axis=0) for k in kept])
        who = np.full(int(kept.max()) + 1, NON_SPEECH, dtype=np.int64)
        who[kept] = self.profiles_.assign_groups(centroids, self.unknown_threshold)
        labels = np.where(speech_rows, who[np.maximum(clusters, 0)], NON_SPEECH)
        return labels, self.profiles_.labels

    # ------------------------------------------------------------------ the call

    def __call__(
        self,
        audio: str | os.PathLike | np.ndarray,
        hook: Callable[..., None] | None = None,
        file_id: str | None = None,
        sample_rate: int = _SAMPLE_RATE,
        speech: np.ndarray | Sequence[tuple[float, float]] | None = None,
    ) -> list[Turn]:
        """Diarize one recording.

        Parameters
        ----------
        audio : path, ``wav.scp`` pipe (``"cmd |"``) or samples ``(n,)`` / ``(n, channels)`` float
        hook : callable ``hook(step, artifact, completed=k, total=6)``, optional. For a long recording
            file (streamed) the "audio" and "fbank" artifacts are :class:`~unspeech.diarize.streaming.Streamed`
            stand-ins and "embeddings" is a :class:`~unspeech.kaldi_io.LazyMatrix` over rows spooled to
            a temporary folder: readable (``np.asarray``, slices) during the hook call only
        file_id : str, the RTTM file id (default: the file name without extension, or "audio")
        sample_rate : int, Hz, the rate of ``audio`` samples (files carry their own)
        speech : oracle speech instead of the VAD: a mask ``(T,) bool`` or ``[(start, end), ...]`` seconds

        Returns
        -------
        list of Turn, sorted by onset. Empty (with a warning) for empty or silent audio.
        """
        self._setup()
        report = hook or (lambda *args, **kwargs: None)
        if self._streams(audio, speech):
            return self._call_streamed(os.fspath(audio), report, file_id, speech)
        samples, name = self._load(audio, sample_rate)
        if file_id is None:
            file_id = os.path.splitext(os.path.basename(name))[0] if name and not name.rstrip().endswith("|") else "audio"
        where = name or file_id
        report("audio", samples, completed=1, total=len(_STEPS))
        if len(samples) == 0:
            logger.warning("audio %r is empty: no speakers", where)
            return []
        self._check_length(len(samples), where)
        from unspeech.fbank import compute_fbank

        fbank = compute_fbank(samples, name=where)
        report("fbank", fbank, completed=2, total=len(_STEPS))
        mask = self._speech_mask(samples, len(fbank), speech)
        report("speech", mask, completed=3, total=len(_STEPS))
        if not mask.any():
            logger.warning("no speech found in %r: no speakers", where)
            return []
        rows, fraction, core = self._rows(fbank, mask)
        report("embeddings", rows, completed=4, total=len(_STEPS))
        return self._turns(rows, fraction, core, mask, file_id, report)

    def _streams(self, audio, speech) -> bool:
        """Whether ``audio`` goes through the bounded-memory front end (:mod:`unspeech.diarize.streaming`):
        a file (not a pipe) longer than ``STREAM_SECONDS``, an embedder that works on chunks, and the
        energy VAD (or given speech)."""
        from unspeech.audio import is_pipe
        from unspeech.audio_stream import audio_length
        from unspeech.diarize import streaming

        if not isinstance(audio, (str, os.PathLike)) or is_pipe(os.fspath(audio)):
            return False
        if getattr(self.embedder_, "context_frames", None) is None:
            return False
        if speech is None and self.vad is not None and not isinstance(self.vad, EnergyVAD):
            return False
        n = audio_length(audio, sample_rate=_SAMPLE_RATE)
        return n is not None and n > streaming.STREAM_SECONDS * _SAMPLE_RATE

    def _call_streamed(self, path: str, report, file_id: str | None, speech) -> list[Turn]:
        """:meth:`__call__` for a long recording file: samples and fbank are never held whole."""
        from unspeech.diarize.streaming import Streamed, stream_rows

        if file_id is None:
            file_id = os.path.splitext(os.path.basename(path))[0]
        with tempfile.TemporaryDirectory(prefix="unspeech-diarize-") as spool:
            # the rows (and later the pooled rows) go to disk: memory does not grow with the recording
            rows, log_energy, n_frames, n_samples = stream_rows(path, self.embedder_, log_energy=speech is None,
                                                                spool=spool)
            report("audio", Streamed("samples", (n_samples,)), completed=1, total=len(_STEPS))
            report("fbank", Streamed("fbank", (n_frames, self.embedder_.num_bins)), completed=2, total=len(_STEPS))
            if speech is None:
                mask = (self.vad or EnergyVAD()).from_log_energy(log_energy)
            else:
                mask = self._speech_mask(None, n_frames, speech)
            del log_energy
            report("speech", mask, completed=3, total=len(_STEPS))
            if not mask.any():
                logger.warning("no speech found in %r: no speakers", path)
                return []
            rows, fraction, core = self._rows(rows, mask, embedded=True)
            report("embeddings", rows, completed=4, total=len(_STEPS))  # on disk: readable during the call
            return self._turns(rows, fraction, core, mask, file_id, report, spool)

    def _turns(self, rows, fraction, core, mask, file_id: str, report, spool: str | None = None) -> list[Turn]:
        """Stages 5-6: speaker labels of the rows, frame labels, turns."""
        row_labels, names = self._row_labels(rows, fraction, core, spool)
        found = np.unique(row_labels[row_labels >= 0])
        logger.info("%s: %d speaker%s", file_id, len(found), "" if len(found) == 1 else "s")
        # frame labels in the smallest integer type that holds them (4 h of frames: 2.9 MB as int16)
        row_labels = row_labels.astype(np.min_scalar_type(-max(int(row_labels.max(initial=0)), 1)), copy=False)
        frame_labels = np.repeat(row_labels, int(self.step))[: len(mask)]
        frame_labels[~mask] = NON_SPEECH
        frame_labels = postprocess_labels(frame_labels, int(self.smooth_size), int(self.dur_threshold), self.short_segments)
        report("labels", frame_labels, completed=5, total=len(_STEPS))
        turns = labels_to_turns(frame_labels, file_id, names)
        report("turns", turns, completed=6, total=len(_STEPS))
        return turns
