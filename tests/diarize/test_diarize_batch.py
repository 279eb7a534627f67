"""Batch diarization: failures are reported per recording while the others are processed."""

import logging
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from unspeech import datadir
from unspeech.datadir import Segment
from unspeech.diarize.batch import collect_inputs, diarize_batch, speech_from_segments
from unspeech.errors import AudioError, ConfigError

pytestmark = pytest.mark.audio


@pytest.fixture()
def mixed_scp(conversations, tmp_path):
    """A wav.scp with two good conversations, a silent file, an unreadable file and a too-short clip."""
    wav = datadir.read_wav_scp(conversations / "wav.scp")
    sf.write(tmp_path / "silent.wav", np.zeros(16000 * 3, np.int16), 16000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    sf.write(tmp_path / "short.wav", (np.random.default_rng(0).standard_normal(4000) * 3000).astype(np.int16), 16000)
    wav.update({"silent": str(tmp_path / "silent.wav"), "broken": str(tmp_path / "broken.wav"),
                "short": str(tmp_path / "short.wav")})
    datadir.write_wav_scp(tmp_path / "wav.scp", wav)
    return tmp_path / "wav.scp"


def test_failures_are_collected_and_the_rest_written(mixed_scp, tmp_path, caplog):
    recordings = datadir.read_wav_scp(mixed_scp)
    progress = []
    result = diarize_batch(recordings, {"num_speakers": 2}, tmp_path / "out", ["rttm", "vad"],
                           progress=lambda done, total, r: progress.append((done, total)))
    assert sorted(result.failed) == ["broken", "short"]
    assert "cannot read audio" in result.failed["broken"] and "shorter than one embedding window" in result.failed["short"]
    assert sorted(result.turns) == ["conv000", "conv001", "silent"] and result.turns["silent"] == []
    assert (tmp_path / "out" / "silent.rttm").read_text() == ""  # silent audio: an empty RTTM ...
    assert "no speech found" in caplog.text  # ... and a warning
    assert {t.speaker for t in datadir.read_rttm(tmp_path / "out" / "conv000.rttm")} == {"spk1", "spk2"}
    assert (tmp_path / "out" / "conv001.vad").read_text().startswith("spk1: [")
    assert not (tmp_path / "out" / "broken.rttm").exists()
    assert progress == [(k, 5) for k in range(1, 6)]
    assert result.audio_seconds > 20 and 0 < result.real_time_factor < 10


@pytest.mark.slow
def test_parallel_jobs_give_the_same_result(mixed_scp, tmp_path, caplog):
    recordings = datadir.read_wav_scp(mixed_scp)
    serial = diarize_batch(recordings, {"num_speakers": 2})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="unspeech"):
        parallel = diarize_batch(recordings, {"num_speakers": 2}, nj=2)
    assert parallel.turns == serial.turns and parallel.failed == serial.failed
    assert "no speech found" in caplog.text  # warnings of worker processes reach the parent's log ...
    assert "conv000: 2 speakers" in caplog.text  # ... and so do their INFO lines (the count per recording)


def test_setup_problems_stop_the_batch_up_front(conversations, tmp_path):
    recordings = datadir.read_wav_scp(conversations / "wav.scp")
    with pytest.raises(ConfigError, match="is not a run dir of the context model"):
        diarize_batch(recordings, {"model": str(tmp_path)}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_segments_are_speech_regions_of_their_recording(conversations):
    segments = datadir.read_segments(conversations / "segments")
    spans = speech_from_segments(segments)
    assert sorted(spans) == ["conv000", "conv001"]
    assert spans["conv000"] == sorted((s.start, s.end) for s in segments.values() if s.recording == "conv000")
    assert speech_from_segments({"u": Segment("r", 1.0, -1)}) == {"r": [(1.0, float("inf"))]}
    recordings = {"conv000": datadir.read_wav_scp(conversations / "wav.scp")["conv000"]}
    result = diarize_batch(recordings, {"num_speakers": 2}, speech=spans)
    speech = sum(t.duration for t in result.turns["conv000"])
    reference = sum(e - s for s, e in spans["conv000"])
    assert speech == pytest.approx(reference, rel=0.02)


def test_collect_inputs_from_files_folders_and_scp(conversations, tmp_path):
    found = collect_inputs([conversations / "wav"])
    assert sorted(found) == ["conv000", "conv001"]
    assert collect_inputs([conversations / "wav.scp"]) == datadir.read_wav_scp(conversations / "wav.scp")
    assert collect_inputs([str(conversations / "wav" / "conv001.flac")]) == {"conv001": str(conversations / "wav" / "conv001.flac")}
    (tmp_path / "conv000.wav").write_bytes(b"")
    with pytest.raises(ConfigError, match="two inputs give the recording id 'conv000'"):
        collect_inputs([conversations / "wav", tmp_path / "conv000.wav"])
    with pytest.raises(ConfigError, match="input '.*missing.wav' does not exist"):
        collect_inputs([tmp_path / "missing.wav"])
    (tmp_path / "Gespräch nr 1.flac").write_bytes(b"")
    with pytest.raises(ConfigError, match="contains whitespace"):
        collect_inputs([tmp_path / "Gespräch nr 1.flac"])
    (tmp_path / "conv000.wav").unlink()
    (tmp_path / "Gespräch nr 1.flac").unlink()
    with pytest.raises(AudioError, match=r"no audio files \(.wav, .flac, .* found"):
        collect_inputs([tmp_path])
    with pytest.raises(ConfigError, match="`nj` must be >= 1"):
        diarize_batch({}, nj=0)


def test_folders_include_every_format_the_reader_takes(conversations, tmp_path):
    """An mp3 (made by sox) in a folder is found and diarized like the flac it came from."""
    from unspeech.audio import AUDIO_EXTENSIONS

    assert {".wav", ".flac", ".ogg", ".opus", ".mp3"} <= set(AUDIO_EXTENSIONS)
    if shutil.which("sox") is None:
        pytest.skip("sox is needed to write an mp3")
    folder = tmp_path / "mixed"
    folder.mkdir()
    flac = conversations / "wav" / "conv000.flac"
    made = subprocess.run(["sox", str(flac), str(folder / "talk.mp3")], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"sox cannot write mp3 here: {made.stderr.decode(errors='replace').strip()}")
    shutil.copy(flac, folder / "conv000.flac")
    (folder / "notes.txt").write_text("not audio")
    found = collect_inputs([folder])
    assert sorted(found) == ["conv000", "talk"] and found["talk"].endswith("talk.mp3")
    result = diarize_batch(found, {"num_speakers": 2})
    assert not result.failed
    assert result.durations["talk"] == pytest.approx(result.durations["conv000"], abs=0.2)  # mp3 padding
    assert {t.speaker for t in result.turns["talk"]} == {"spk1", "spk2"}
