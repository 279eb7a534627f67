"""Speaker diarization: audio in, RTTM out, and DER/JER scoring.

The pieces, in pipeline order: :mod:`~unspeech.diarize.vad` (speech activity),
:mod:`~unspeech.diarize.embedders` (frame-level embeddings), :mod:`~unspeech.diarize.clustering`
and :mod:`~unspeech.diarize.profiles` (who is who), :mod:`~unspeech.diarize.postprocess`
(smoothing, short segments), :mod:`~unspeech.diarize.outputs` (RTTM, ``vad`` format, JSON),
:mod:`~unspeech.diarize.timeline_plot` (pictures), :mod:`~unspeech.diarize.scoring` (DER/JER)
and :mod:`~unspeech.diarize.batch` (many recordings in parallel). :class:`Diarizer` ties them
together::

    from unspeech.diarize import Diarizer
    turns = Diarizer(backend="ahc", num_speakers=2)("meeting.wav")
"""

from __future__ import annotations

from unspeech.diarize.batch import BatchResult, collect_inputs, diarize_batch, speech_from_segments
from unspeech.diarize.clustering import CLUSTER_METHODS, cluster_rows
from unspeech.diarize.embedders import ContextEmbedder, Embedder, StatsEmbedder, load_embedder
from unspeech.diarize.outputs import OUTPUT_FORMATS, format_vad, parse_vad, write_outputs
from unspeech.diarize.pipeline import BACKENDS, Diarizer
from unspeech.diarize.postprocess import labels_to_turns, postprocess_labels, remove_short_segments, smooth_labels
from unspeech.diarize.profiles import UNKNOWN, SpeakerProfiles
from unspeech.diarize.scoring import FileScore, ScoreReport, score_rttm, score_turns
from unspeech.diarize.timeline_plot import plot_timeline, save_timeline
from unspeech.diarize.vad import EnergyVAD, oracle_speech_from_rttm, oracle_speech_from_uem

__all__ = [
    "Diarizer",
    "BACKENDS",
    "CLUSTER_METHODS",
    "EnergyVAD",
    "oracle_speech_from_rttm",
    "oracle_speech_from_uem",
    "Embedder",
    "StatsEmbedder",
    "ContextEmbedder",
    "load_embedder",
    "cluster_rows",
    "SpeakerProfiles",
    "UNKNOWN",
    "smooth_labels",
    "remove_short_segments",
    "postprocess_labels",
    "labels_to_turns",
    "OUTPUT_FORMATS",
    "format_vad",
    "parse_vad",
    "write_outputs",
    "plot_timeline",
    "save_timeline",
    "FileScore",
    "ScoreReport",
    "score_turns",
    "score_rttm",
    "BatchResult",
    "diarize_batch",
    "collect_inputs",
    "speech_from_segments",
]
