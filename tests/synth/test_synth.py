"""Synthetic corpora: determinism, Kaldi data dir validity, RTTM consistency, errors, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kaldi_scripts import assert_valid, make_recipe, needs_kaldi_utils
from unspeech import audio, datadir, synth
from unspeech.cli import main as cli_main
from unspeech.errors import ConfigError

HAVE_ESPEAK = bool(shutil.which("espeak-ng") and shutil.which("sox"))
needs_espeak = [pytest.mark.audio, pytest.mark.skipif(not HAVE_ESPEAK, reason="needs espeak-ng and sox")]


def _tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` except wav.scp (its paths name the directory)."""
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "wav.scp"}


# --------------------------------------------------------------------------- no binaries needed


def test_sentences_are_short_and_seeded():
    a = [synth.make_sentence(np.random.default_rng(5)) for _ in range(3)]
    assert len(set(a)) == 1
    rng = np.random.default_rng(0)
    sentences = [synth.make_sentence(rng) for _ in range(200)]
    assert all(4 <= len(s.split()) <= 8 for s in sentences)
    assert len(set(sentences)) > 150


def test_speaker_profiles_are_seeded_and_cover_engines():
    engines = {"espeak-ng": ("en-us+m1", "de+f2", "fr-fr+m3"), "flite": ("slt", "awb"), "festival": ("kal_diphone",)}
    a = synth.draw_speakers(np.random.default_rng(1), 30, engines)
    b = synth.draw_speakers(np.random.default_rng(1), 30, engines)
    assert a == b
    assert [s.speaker_id for s in a[:3]] == ["spk000", "spk001", "spk002"]
    assert {s.engine for s in a} == set(engines)
    assert all(s.voice in engines[s.engine] for s in a)
    assert a != synth.draw_speakers(np.random.default_rng(2), 30, engines)


def test_noise_is_added_at_the_requested_snr():
    x = np.sin(np.arange(32000) * 0.05).astype(np.float32)
    channel = synth.ChannelProfile(1000.0, 1.0, 0.0, 0.0, 10.0, 0.5, 0.5, 7)
    y = synth._apply_noise_and_level(x, channel)
    assert np.max(np.abs(y)) == pytest.approx(0.5)
    speech = x * (np.dot(y, x) / np.dot(x, x))  # the scaled clean part
    snr = 10 * np.log10(np.mean(speech**2) / np.mean((y - speech) ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)
    np.testing.assert_array_equal(y, synth._apply_noise_and_level(x, channel))


def test_trim_silence_keeps_the_speech():
    x = np.zeros(16000, dtype=np.float32)
    x[4000:8000] = 0.5
    y = synth._trim_silence(x)
    assert 4000 <= len(y) <= 4000 + 2 * 480 + 160
    assert np.all(y[np.abs(y) > 0] == 0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"speakers_per_conversation": (1, 3)}, "within 2..6"),
        ({"speakers_per_conversation": (2, 7), "num_speakers": 9}, "within 2..6"),
        ({"speakers_per_conversation": (4, 3)}, "low <= high"),
        ({"num_speakers": 3, "speakers_per_conversation": (2, 4)}, "must be at least the largest"),
        ({"turns_per_conversation": 2}, "turns_per_conversation >= 4"),
        ({"overlap_prob": 1.5}, "overlap_prob"),
        ({"pause_s": (1.0, 0.5)}, "pause_s"),
    ],
)
def test_conversation_config_errors(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        synth.synthesize_conversations(tmp_path / "c", **kwargs)


def test_utterance_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="num_speakers"):
        synth.synthesize_utterances(tmp_path / "u", num_speakers=0)
    with pytest.raises(ConfigError, match="unknown TTS engine 'mbrola'"):
        synth.synthesize_utterances(tmp_path / "u", engines=["mbrola"])
    with pytest.raises(ConfigError, match="snr_db"):
        synth.synthesize_utterances(tmp_path / "u", snr_db=(30, 10))


# --------------------------------------------------------------------------- with espeak-ng + sox


@pytest.fixture(scope="module")
def utts(tmp_path_factory):
    if not HAVE_ESPEAK:
        pytest.skip("needs espeak-ng and sox")
    root = tmp_path_factory.mktemp("utts")
    synth.synthesize_utterances(root / "a", num_speakers=3, utts_per_speaker=2, seed=11, nj=1, engines=["espeak-ng"])
    synth.synthesize_utterances(root / "b", num_speakers=3, utts_per_speaker=2, seed=11, nj=2, engines=["espeak-ng"])
    return root


@pytest.mark.audio
def test_utterance_corpus_is_a_kaldi_data_dir(utts):
    d = utts / "a"
    datadir.validate_datadir(d)
    utt2spk = datadir.read_utt2spk(d / "utt2spk")
    assert len(utt2spk) == 6 and len(set(utt2spk.values())) == 3
    assert all(utt.startswith(spk + "-") for utt, spk in utt2spk.items())
    wav = datadir.read_wav_scp(d / "wav.scp")
    assert set(wav) == set(utt2spk) == set(datadir.read_text(d / "text"))
    durs = datadir.read_table(d / "utt2dur")
    assert datadir.read_table(d / "reco2dur") == durs
    for utt, entry in wav.items():
        path = d / "wav" / f"{utt}.flac"
        info = sf.info(path)
        assert (info.samplerate, info.channels) == (16000, 1)
        assert 0.5 < info.duration < 6.0
        assert info.duration == pytest.approx(float(durs[utt][0]), abs=1e-3)
        assert entry == f"sox {path.absolute()} -t wav -b 16 - |"  # the form Kaldi's wav reader accepts


@pytest.mark.audio
def test_same_seed_gives_identical_bytes_whatever_nj(utts):
    a, b = _tree_bytes(utts / "a"), _tree_bytes(utts / "b")
    assert len(a) == 6 + 6 and a == b  # 6 flac + utt2spk, spk2utt, text, utt2dur, reco2dur, synth.json


@pytest.mark.audio
def test_another_seed_gives_another_corpus(utts, tmp_path):
    synth.synthesize_utterances(tmp_path / "c", num_speakers=3, utts_per_speaker=2, seed=12, engines=["espeak-ng"])
    assert _tree_bytes(tmp_path / "c") != _tree_bytes(utts / "a")


@pytest.mark.audio
@pytest.mark.skipif(not (HAVE_ESPEAK and shutil.which("flite") and shutil.which("text2wave")),
                    reason="needs flite and festival")
def test_every_engine_renders(tmp_path):
    engines = synth.available_engines()
    speakers = [synth.SpeakerProfile("s", engine, voices[0], 50, 170, 100.0, 2.0, -2.0, 1.05)
                for engine, voices in engines.items()]
    for spk in speakers:
        x = synth._render_turn(spk, "the red boat waits", None)
        assert x.dtype == np.float32 and 0.4 < len(x) / 16000 < 4.0, spk.engine


@pytest.fixture(scope="module")
def convs(tmp_path_factory):
    if not HAVE_ESPEAK:
        pytest.skip("needs espeak-ng and sox")
    root = tmp_path_factory.mktemp("convs")
    kw = dict(num_conversations=2, num_speakers=5, speakers_per_conversation=(2, 3), turns_per_conversation=5,
              overlap_prob=0.5, seed=3, engines=["espeak-ng"])
    synth.synthesize_conversations(root / "a", nj=2, **kw)
    synth.synthesize_conversations(root / "b", nj=1, **kw)
    return root


@needs_kaldi_utils
@pytest.mark.audio
def test_kaldi_accepts_both_products(utts, convs, tmp_path):
    recipe = make_recipe(tmp_path / "recipe")
    assert_valid(recipe, utts / "a", "--no-feats")
    assert_valid(recipe, convs / "a", "--no-feats")  # segments, overlapping turns, text


@pytest.mark.audio
def test_conversation_rttm_matches_audio(convs):
    d = convs / "a"
    turns = datadir.read_rttm(d / "rttm")
    uem = datadir.read_uem(d / "uem")
    wav = datadir.read_wav_scp(d / "wav.scp")
    num_spk = datadir.read_table(d / "reco2num_spk")
    assert sorted(wav) == sorted(uem) == ["conv000", "conv001"]
    for conv in wav:
        info = sf.info(d / "wav" / f"{conv}.flac")
        assert (info.samplerate, info.channels) == (16000, 1)
        mine = [t for t in turns if t.file_id == conv]
        assert len(mine) == 5
        assert uem[conv] == [(0.0, pytest.approx(info.duration, abs=1e-3))]
        assert max(t.end for t in mine) <= info.duration
        assert min(t.onset for t in mine) >= 0.3
        speakers = {t.speaker for t in mine}
        assert 2 <= len(speakers) <= 3 and int(num_spk[conv][0]) == len(speakers)
        # speech really is where the RTTM says: louder inside turns than in the lead-in
        x = audio.load_audio(wav[conv])  # through the wav.scp pipe, as every reader does
        first = int(min(t.onset for t in mine) * 16000)
        inside = np.concatenate([x[int(t.onset * 16000):int(t.end * 16000)] for t in mine])
        assert np.sqrt(np.mean(inside**2)) > 2 * np.sqrt(np.mean(x[: first - 800] ** 2))


@pytest.mark.audio
def test_conversation_turns_are_a_data_dir(convs):
    d = convs / "a"
    datadir.validate_datadir(d)
    segments = datadir.read_segments(d / "segments")
    utt2spk = datadir.read_utt2spk(d / "utt2spk")
    rttm = {(t.file_id, round(t.onset, 3), t.speaker) for t in datadir.read_rttm(d / "rttm")}
    assert {(s.recording, round(s.start, 3), utt2spk[u]) for u, s in segments.items()} == rttm
    assert all(u.startswith(utt2spk[u] + "-") for u in utt2spk)


@pytest.mark.audio
def test_conversations_overlap_when_asked(convs):
    turns = sorted(datadir.read_rttm(convs / "a" / "rttm"), key=lambda t: (t.file_id, t.onset))
    overlaps = [b.onset < a.end for a, b in zip(turns, turns[1:]) if a.file_id == b.file_id]
    assert any(overlaps)


@pytest.mark.audio
def test_conversations_are_deterministic(convs):
    assert _tree_bytes(convs / "a") == _tree_bytes(convs / "b")


@pytest.mark.audio
@pytest.mark.skipif(not HAVE_ESPEAK, reason="needs espeak-ng and sox")
def test_conversations_share_speakers_with_utterances(utts, tmp_path):
    import json

    synth.synthesize_conversations(tmp_path / "c", num_conversations=1, num_speakers=3, speakers_per_conversation=(2, 2),
                                   turns_per_conversation=2, overlap_prob=0.0, seed=11, engines=["espeak-ng"])
    conv = json.loads((tmp_path / "c" / "synth.json").read_text())["speakers"]
    pool = {s["speaker_id"]: s for s in json.loads((utts / "a" / "synth.json").read_text())["speakers"]}
    assert conv and all(pool[s["speaker_id"]] == s for s in conv)
    turns = datadir.read_rttm(tmp_path / "c" / "rttm")
    assert all(b.onset >= a.end for a, b in zip(turns, turns[1:]))  # overlap_prob=0: none


@pytest.mark.audio
@pytest.mark.skipif(not HAVE_ESPEAK, reason="needs espeak-ng and sox")
def test_cli_synth(tmp_path, capsys):
    assert cli_main(["synth", "utterances", "--out-dir", str(tmp_path / "u"), "--num-speakers", "2",
                     "--utts-per-speaker", "1", "--engines", "espeak-ng", "--clean", "--quiet"]) == 0
    assert len(datadir.read_utt2spk(tmp_path / "u" / "utt2spk")) == 2
    assert cli_main(["synth", "conversations", "--out-dir", str(tmp_path / "c"), "--num-speakers", "2",
                     "--num-conversations", "1", "--speakers", "2", "2", "--turns", "2",
                     "--engines", "espeak-ng", "--quiet"]) == 0
    assert len(datadir.read_rttm(tmp_path / "c" / "rttm")) == 2
    assert cli_main(["synth", "utterances", "--out-dir", str(tmp_path / "x"), "--engines", "nope", "--quiet"]) == 1
    assert "unknown TTS engine 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------- bundled demo data

DATA = Path(__file__).resolve().parents[2] / "data"


def test_demo_utts_are_compressed_fbank_of_20_plus_speakers():
    from unspeech import kaldi_io

    d = DATA / "demo_utts"
    ids, feats = kaldi_io.readArk(str(d / "feats.ark"))
    utt2spk = datadir.read_utt2spk(d / "utt2spk")
    assert ids == list(utt2spk) and len(set(utt2spk.values())) >= 20
    assert all(m.shape[1] == 40 and np.isfinite(m).all() for m in feats)
    assert b"CM" in (d / "feats.ark").read_bytes()[:40]  # Kaldi-compressed matrices
    frames = datadir.read_table(d / "utt2num_frames")
    assert all(int(frames[u][0]) == len(m) for u, m in zip(ids, feats))
    datadir.validate_datadir(d)


def test_demo_conversations_match_their_references():
    d = DATA / "demo_conversations"
    turns = datadir.read_rttm(d / "rttm")
    uem = datadir.read_uem(d / "uem")
    assert len(uem) >= 3
    for conv, [(start, end)] in uem.items():
        info = sf.info(d / "wav" / f"{conv}.flac")
        assert (info.samplerate, info.channels, start) == (16000, 1, 0.0)
        assert end == pytest.approx(info.duration, abs=1e-3)
        mine = [t for t in turns if t.file_id == conv]
        assert len({t.speaker for t in mine}) >= 2 and max(t.end for t in mine) <= end
    # relative to the repository root (relocatable), as sox pipes Kaldi reads
    assert all(p.startswith("sox data/demo_conversations/wav/") and p.endswith(" -t wav -b 16 - |")
               for p in datadir.read_wav_scp(d / "wav.scp").values())
    datadir.validate_datadir(d)
    # the conversations' speakers are the demo_utts speakers of the same name
    import json

    pool = {s["speaker_id"]: s for s in json.loads((DATA / "demo_utts" / "synth.json").read_text())["speakers"]}
    used = json.loads((d / "synth.json").read_text())["speakers"]
    assert used and all(pool[s["speaker_id"]] == s for s in used)


def test_demo_data_is_small():
    assert sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file()) < 10 * 1024 * 1024
