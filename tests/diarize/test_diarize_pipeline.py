"""The Diarizer on synthetic conversations: backends, hooks, oracle speech and bad input."""

import logging

import numpy as np
import pytest
import soundfile as sf

from unspeech import datadir, kaldi_io
from unspeech.diarize.pipeline import Diarizer
from unspeech.diarize.profiles import UNKNOWN
from unspeech.diarize.scoring import score_turns
from unspeech.errors import AudioError, ConfigError, DataError

pytestmark = pytest.mark.audio


def _diarize_all(conversations, diarizer, **kwargs):
    wav = datadir.read_wav_scp(conversations / "wav.scp")
    return [t for rid, src in wav.items() for t in diarizer(src, file_id=rid, **kwargs)]


def test_conversations_are_diarized(conversations):
    ref = datadir.read_rttm(conversations / "rttm")
    hyp = _diarize_all(conversations, Diarizer(backend="spectral", num_speakers=2))
    report = score_turns(ref, hyp, collar=0.25, skip_overlap=True)
    assert report.total.der < 0.2
    assert all(f.hyp_speakers == 2 for f in report.files)
    assert report.total.false_alarm + report.total.missed < 0.05 * report.total.scored


def test_hook_sees_every_stage_in_order(conversations):
    seen = []
    src = str(conversations / "wav" / "conv000.flac")  # a file: its name gives the RTTM file id
    turns = Diarizer(backend="ahc", num_speakers=2, model="stats")(src, hook=lambda step, artifact, **kw: seen.append((step, artifact, kw)))
    assert [s for s, _, _ in seen] == ["audio", "fbank", "speech", "embeddings", "labels", "turns"]
    assert [kw for _, _, kw in seen] == [{"completed": k, "total": 6} for k in range(1, 7)]
    samples, fbank, mask, rows, labels, final = (a for _, a, _ in seen)
    assert fbank.shape == (1 + (len(samples) - 400) // 160, 40) and mask.shape == labels.shape == (len(fbank),)
    assert rows.shape == (-(-len(fbank) // 10), 80)
    assert final == turns and {t.file_id for t in turns} == {"conv000"}  # the file name without extension
    assert np.all(labels[~mask] == -1)  # non-speech never gets a speaker


def test_oracle_speech_from_the_reference(conversations):
    ref = datadir.read_rttm(conversations / "rttm")
    wav = datadir.read_wav_scp(conversations / "wav.scp")
    d = Diarizer(backend="ahc", num_speakers=2, dur_threshold=1)
    hyp = []
    for rid, src in wav.items():
        spans = [(t.onset, t.onset + t.duration) for t in ref if t.file_id == rid]
        hyp += d(src, file_id=rid, speech=spans)
    total = score_turns(ref, hyp, collar=0.0).total
    assert total.false_alarm + total.missed < 0.01 * total.scored  # only frame rounding remains


def test_enrolled_speakers_and_unknown(conversations):
    enroll = sorted(str(p) for p in (conversations / "enroll").glob("*.flac"))
    src = datadir.read_wav_scp(conversations / "wav.scp")["conv001"]
    turns = Diarizer(backend="enroll", enroll=enroll)(src)
    assert {t.speaker for t in turns} <= {"spk000", "spk001"} and turns
    everyone_unknown = Diarizer(enroll=enroll, backend="enroll", unknown_threshold=1.01)(src)
    assert {t.speaker for t in everyone_unknown} == {UNKNOWN}


def test_profile_of_wrong_dimension(conversations, tmp_path):
    kaldi_io.write_mats(tmp_path / "prof.ark", [("alice", np.ones(100, np.float32))], tmp_path / "prof.scp")
    src = datadir.read_wav_scp(conversations / "wav.scp")["conv000"]
    with pytest.raises(DataError, match=r"prof.scp: speaker profiles have dimension 100, but the embedder \(stats\) makes 80"):
        Diarizer(backend="enroll", profiles=str(tmp_path / "prof.scp"), model="stats")(src)


def test_silent_and_empty_audio_give_no_turns_and_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="unspeech"):
        assert Diarizer()(np.zeros(3 * 16000, np.float32), file_id="silence") == []
    assert "no speech found in 'silence'" in caplog.text
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.int16), 16000)
    with caplog.at_level(logging.WARNING, logger="unspeech"):
        assert Diarizer()(tmp_path / "empty.wav") == []
    assert "empty.wav' is empty" in caplog.text


def test_too_short_and_unreadable_audio_raise(tmp_path):
    short = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1  # 0.5 s at 16 kHz
    with pytest.raises(AudioError, match=r"audio 'clip' is 0.500 s long, shorter than one embedding window of 150 frames"):
        Diarizer(model="stats")(short, file_id="clip")
    (tmp_path / "bad.wav").write_text("not audio")
    with pytest.raises(AudioError, match="cannot read audio .*bad.wav"):
        Diarizer()(tmp_path / "bad.wav")
    with pytest.raises(AudioError, match="does not exist"):
        Diarizer()(tmp_path / "missing.flac")


def test_other_sample_rates_are_resampled():
    rng = np.random.default_rng(0)
    t = np.arange(8000 * 3) / 8000
    x = np.where((t > 0.5) & (t < 2.5), 0.3 * np.sin(2 * np.pi * 200 * t), 0.0) + 0.001 * rng.standard_normal(len(t))
    turns = Diarizer(num_speakers=1)(np.stack([x, x], axis=1), sample_rate=8000, file_id="tone")
    assert len(turns) == 1 and turns[0].onset == pytest.approx(0.5, abs=0.1) and turns[0].end == pytest.approx(2.5, abs=0.1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "kmeans"}, "`backend` must be one of hdbscan, ahc, spectral, uisrnn, enroll"),
        ({"backend": "uisrnn"}, "backend 'uisrnn' needs a trained model: give `uisrnn`"),
        ({"backend": "enroll"}, "backend 'enroll' needs `enroll` audio"),
        ({"backend": "enroll", "enroll": ["a.wav"], "profiles": "p.scp"}, "give either `enroll` audio or `profiles`"),
        ({"num_speakers": 3, "max_speakers": 2}, r"`num_speakers` must lie within \[min_speakers, max_speakers\]"),
        ({"step": 0}, "`step` must be >= 1"),
        ({"pool_rows": 0}, "`pool_rows` must be >= 1"),
        ({"count_rule": "bic"}, "`count_rule` must be one of relative, eigengap, consensus, threshold"),
    ],
)
def test_bad_parameters_raise_on_first_use(kwargs, message):
    diarizer = Diarizer(**kwargs)  # the constructor only stores
    assert diarizer.get_params()["backend"] == kwargs.get("backend", "spectral")
    with pytest.raises(ConfigError, match=message):
        diarizer(np.zeros(16000 * 2, np.float32))


def test_the_count_is_estimated_and_logged_per_recording(conversations, caplog):
    ref = datadir.read_rttm(conversations / "rttm")
    with caplog.at_level(logging.INFO, logger="unspeech"):
        # the context model's own rows: on these two short espeak-only conversations the speaker head's
        # rows pass the one-speaker test for conv000 (coherence 0.86 against the 0.8 bar)
        hyp = _diarize_all(conversations, Diarizer(backend="ahc", count_rule="relative", speaker_head=False))
    assert "speaker count (relative): 2 speakers (relative threshold, AHC cut at cosine distance " in caplog.text
    assert "conv000: 2 speakers" in caplog.text and "conv001: 2 speakers" in caplog.text
    assert score_turns(ref, hyp, collar=0.25, skip_overlap=True).total.der < 0.1  # the old 0.5 cut found 1 speaker each


def test_describe_names_model_and_count_rule():
    assert Diarizer(model="stats").describe() == "model stats (windowed fbank statistics, no model); backend spectral; " \
        "speaker count consensus (majority of 8 eigengap counts: 2 graphs x 2 Laplacians x 2 choices of p)"
    assert Diarizer(count_rule="eigengap").describe().endswith("speaker count eigengap (normalised maximum eigengap, NME-SC)")
    assert Diarizer(count_rule="relative").describe().endswith(
        "speaker count relative (AHC cut at 1.5x the recording's within-turn distance)")
    assert Diarizer(count_rule="threshold", threshold=0.4, max_speakers=5).describe().endswith(
        "speaker count threshold (AHC cut at cosine distance 0.4) within max_speakers=5")
    assert Diarizer(backend="spectral", num_speakers=2).describe().endswith("speaker count fixed: 2")
    assert "HDBSCAN's clusters of >= 20 rows (noise joins the nearest)" in Diarizer(backend="hdbscan").describe()
    from unspeech.diarize.embedders import bundled_model

    # the default is the model shipped in the package, named in the log; "stats" only when asked for
    assert Diarizer().describe().startswith("model bundled unspeech_dnn_w32_libri200 (")
    assert Diarizer(model=bundled_model()).describe() == Diarizer().describe()
    loaded = Diarizer()
    loaded._setup()  # once loaded, the log line also says which runtime runs the model
    assert ", onnx runtime; backend spectral;" in loaded.describe()


@pytest.mark.parametrize("size", [2, 3, 10, 25])
def test_moving_average_equals_scipy_uniform_filter(size):
    from scipy.ndimage import uniform_filter1d

    from unspeech.diarize.pipeline import moving_average

    rng = np.random.default_rng(size)
    for n in (1, 4, 60):
        x = rng.normal(size=(n, 5))
        np.testing.assert_allclose(moving_average(x, size), uniform_filter1d(x, size, axis=0, mode="nearest"), atol=1e-12)
