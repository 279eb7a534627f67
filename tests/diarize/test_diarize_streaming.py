"""Long recordings through the streaming front end give what the whole-recording path gives."""

import tempfile

import numpy as np
import pytest
import soundfile as sf

from unspeech.diarize import streaming
from unspeech.diarize.pipeline import Diarizer
from unspeech.diarize.vad import EnergyVAD, frame_log_energy

pytestmark = pytest.mark.audio


def test_embedded_chunks_equal_whole_embedding():
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((2345, 3)).astype(np.float32)
    period, reach = 10, 37

    def embed(x):  # each row: the mean of the frames within `reach` of its frame (clipped at the edges)
        centres = np.arange(-(-len(x) // period)) * period
        return np.stack([x[max(0, c - reach):c + reach + 1].mean(axis=0) for c in centres])

    blocks = [frames[i:i + 97] for i in range(0, len(frames), 97)]
    chunked = np.concatenate(list(streaming.iter_embedded_chunks(blocks, len(frames), embed, period, reach + 1,
                                                                 chunk_frames=300)))
    np.testing.assert_allclose(chunked, embed(frames), rtol=0, atol=1e-6)


def test_log_energy_stream_equals_whole():
    x = (0.1 * np.random.default_rng(1).standard_normal(16000 * 3 + 77)).astype(np.float32)
    s = streaming.LogEnergyStream()
    for i in range(0, len(x), 1234):
        s.push(x[i:i + 1234])
    np.testing.assert_array_equal(s.result(), frame_log_energy(x))


def test_long_recording_is_streamed_with_the_same_result(conversations, monkeypatch):
    """The bundled model (with its speaker head) on a 2-conversation recording: rows within float
    rounding of the whole-recording rows, the same speech mask and the same turns."""
    import os

    src = sorted((conversations / "wav").glob("*.flac"))
    audio = np.concatenate([sf.read(p, dtype="float32")[0] for p in src])
    path = conversations.parent / "long.flac"
    sf.write(path, audio, 16000)
    whole = {}
    d = Diarizer(backend="spectral", num_speakers=2)
    turns_whole = d(str(path), hook=lambda step, a, **_: whole.__setitem__(step, a))
    monkeypatch.setattr(streaming, "STREAM_SECONDS", 1.0)
    monkeypatch.setattr(streaming, "CHUNK_FRAMES", 700)
    real = streaming.stream_rows
    calls = []
    monkeypatch.setattr(streaming, "stream_rows", lambda *a, **k: calls.append(1) or real(*a, chunk_frames=700, **k))
    spools = conversations.parent / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    streamed = {}
    # the rows of a streamed recording live on disk until the call returns: read them in the hook
    during = []
    turns_streamed = d(str(path), hook=lambda step, a, **_: streamed.__setitem__(
        step, np.asarray(a) if step == "embeddings" else a) or during.append(len(list(spools.iterdir()))))
    assert calls == [1]
    assert len(streamed["audio"]) == len(whole["audio"]) and streamed["fbank"].shape == whole["fbank"].shape
    np.testing.assert_array_equal(streamed["speech"], whole["speech"])
    np.testing.assert_allclose(streamed["embeddings"], whole["embeddings"], rtol=0, atol=2e-4)
    assert turns_streamed == turns_whole
    assert max(during) == 1 and list(spools.iterdir()) == []  # rows spooled during the call, gone after it
    assert os.fspath(path).endswith("long.flac") and {t.file_id for t in turns_streamed} == {"long"}


def test_stats_embedder_and_custom_vad_are_not_streamed(conversations, monkeypatch):
    monkeypatch.setattr(streaming, "STREAM_SECONDS", 1.0)
    path = sorted((conversations / "wav").glob("*.flac"))[0]
    d = Diarizer(backend="ahc", num_speakers=2, model="stats")
    d._setup()
    assert not d._streams(str(path), None)
    d = Diarizer(backend="ahc", num_speakers=2, vad=lambda x: np.ones(1, bool))
    d._setup()
    assert not d._streams(str(path), None)
    d = Diarizer(backend="ahc", num_speakers=2, vad=EnergyVAD(energy_threshold=2.0))
    d._setup()
    assert d._streams(str(path), None) and not d._streams(f"cat {path} |", None)
