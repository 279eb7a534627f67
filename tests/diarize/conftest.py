"""Shared fixtures of the diarization tests: two short synthetic conversations (espeak-ng + sox)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def conversations(tmp_path_factory) -> Path:
    """A data dir with 2 two-speaker conversations (wav.scp, rttm, uem, segments) and enrollment audio.

    ``enroll/`` holds one utterance per speaker of the same synthetic voices (same seed and speaker
    pool), named ``<speaker>.flac``.
    """
    if shutil.which("sox") is None or shutil.which("espeak-ng") is None:
        pytest.skip("sox and espeak-ng are needed to synthesize test conversations")
    from unspeech.synth import synthesize_conversations, synthesize_utterances

    root = tmp_path_factory.mktemp("diarize")
    conv = root / "conv"
    synthesize_conversations(conv, num_conversations=2, num_speakers=2, speakers_per_conversation=(2, 2),
                             turns_per_conversation=5, overlap_prob=0.0, seed=3, engines=["espeak-ng"])
    utts = root / "utts"
    synthesize_utterances(utts, num_speakers=2, utts_per_speaker=2, seed=3, engines=["espeak-ng"])
    enroll = conv / "enroll"
    enroll.mkdir()
    for spk in ("spk000", "spk001"):
        shutil.copy(utts / "wav" / f"{spk}-000.flac", enroll / f"{spk}.flac")
    return conv
