"""Conversations from real corpora: layouts, turn cutting, references, determinism, errors, CLI.

The corpora are made here: speech-like signals (harmonic syllables in phrases, pauses between
phrases, a quiet noise floor) written as a LibriSpeech tree and as a Kaldi data dir (8 kHz and
stereo recordings with ``segments``). One test also runs on the real LibriSpeech subset of
``../shared`` when it is there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kaldi_scripts import assert_valid, make_recipe, needs_kaldi_utils
from unspeech import corpus_conversations as cc
from unspeech import datadir
from unspeech.cli import main as cli_main
from unspeech.errors import AudioError, ConfigError, DataError

HAVE_SOX = shutil.which("sox") is not None
SHARED_LIBRISPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "librispeech-subset" / "train-clean-100"
TURN_S = (1.0, 3.0)


def _speechlike(rng: np.random.Generator, seconds: float, f0: float, rate: int = 16000) -> np.ndarray:
    """Phrases of harmonic syllables (gaps under 0.1 s) separated by 0.25–0.6 s pauses; float32 (n,)."""
    out = [rng.normal(0, 1e-3, int(0.3 * rate))]
    total = 0.3
    while total < seconds:
        phrase_end = total + rng.uniform(0.8, 2.2)
        while total < phrase_end:
            n = int(rng.uniform(0.12, 0.3) * rate)
            t = np.arange(n) / rate
            tone = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6))
            out.append(0.2 * rng.uniform(0.5, 1.0) * np.hanning(n) * tone + rng.normal(0, 1e-3, n))
            gap = rng.uniform(0.02, 0.06)
            out.append(rng.normal(0, 1e-3, int(gap * rate)))
            total += n / rate + gap
        pause = rng.uniform(0.25, 0.6)
        out.append(rng.normal(0, 1e-3, int(pause * rate)))
        total += pause
    return np.concatenate(out).astype(np.float32)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "wav.scp"}


@pytest.fixture(scope="module")
def libri(tmp_path_factory) -> Path:
    """LibriSpeech layout one folder deep: train-clean-100/<spk>/<chapter>/<spk>-<chapter>-<n>.flac."""
    root = tmp_path_factory.mktemp("libri") / "LibriSpeech"
    rng = np.random.default_rng(0)
    for i, spk in enumerate(["19", "26", "103", "1034"]):
        chapter = root / "train-clean-100" / spk / f"{200 + i}"
        chapter.mkdir(parents=True)
        for n in range(2):
            sf.write(chapter / f"{spk}-{200 + i}-{n:04d}.flac", _speechlike(rng, 7.0, 110 + 40 * i), 16000)
        (chapter / f"{spk}-{200 + i}.trans.txt").write_text("not audio\n")
    return root


@pytest.fixture(scope="module")
def kaldi(tmp_path_factory) -> Path:
    """A Kaldi data dir: an 8 kHz recording of two speakers (segments) and a 16 kHz stereo one."""
    d = tmp_path_factory.mktemp("kaldi")
    rng = np.random.default_rng(1)
    a = np.concatenate([_speechlike(rng, 8.0, 120), _speechlike(rng, 8.0, 220)])[::2]  # crude 8 kHz
    sf.write(d / "a.wav", a, 8000)
    b = _speechlike(rng, 9.0, 160)
    sf.write(d / "b.flac", np.stack([b, 0.5 * b], axis=1), 16000)
    split = round(len(a) / 2 / 8000, 3)
    datadir.write_wav_scp(d / "wav.scp", {"recA": str(d / "a.wav"), "recB": f"cat {d / 'b.flac'} |"})
    datadir.write_segments(d / "segments", {"x-1": datadir.Segment("recA", 0.0, split),
                                            "y-1": datadir.Segment("recA", split, len(a) / 8000),
                                            "z-1": datadir.Segment("recB", 0.0, len(b) / 16000)})
    datadir.write_utt2spk(d / "utt2spk", {"x-1": "x", "y-1": "y", "z-1": "z"})
    return d


KW = dict(num_conversations=3, speakers_per_conversation=(2, 3), turns_per_conversation=6, turn_s=TURN_S,
          overlap_prob=0.5, seed=5)


@pytest.fixture(scope="module")
def convs(libri, tmp_path_factory) -> Path:
    if not HAVE_SOX:
        pytest.skip("needs sox")
    root = tmp_path_factory.mktemp("convs")
    cc.simulate_conversations(libri, root / "a", nj=1, **KW)
    cc.simulate_conversations(libri, root / "b", nj=2, **KW)
    cc.simulate_conversations(libri, root / "clean", channel_variation=False, **{**KW, "overlap_prob": 0.0})
    return root


# --------------------------------------------------------------------------- corpora


def test_layouts_are_detected(libri, kaldi, tmp_path):
    assert cc.detect_corpus_layout(libri) == "librispeech"
    assert cc.detect_corpus_layout(libri / "train-clean-100") == "librispeech"
    assert cc.detect_corpus_layout(kaldi) == "kaldi"
    (tmp_path / "x.flac").write_bytes(b"")
    with pytest.raises(ConfigError, match="unknown corpus layout"):
        cc.detect_corpus_layout(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        cc.detect_corpus_layout(tmp_path / "missing")


def test_librispeech_utterances_and_speaker_lists(libri, tmp_path):
    utts = cc.load_corpus_utterances(libri)
    assert len(utts) == 8 and {u.speaker_id for u in utts} == {"19", "26", "103", "1034"}
    assert utts[0].utterance_id == "103-202-0000" and utts[0].source.endswith("103-202-0000.flac")
    (tmp_path / "keep").write_text("19\n# a comment\n\n103\n")
    (tmp_path / "drop").write_text("103\nnot-in-corpus\n")
    kept = cc.load_corpus_utterances(libri, speakers=tmp_path / "keep", exclude_speakers=tmp_path / "drop")
    assert {u.speaker_id for u in kept} == {"19"}
    (tmp_path / "bad").write_text("19\nnope\n")
    with pytest.raises(ConfigError, match=r"speaker list .*bad names 1 speaker\(s\) not in corpus .*: nope"):
        cc.load_corpus_utterances(libri, speakers=tmp_path / "bad")
    with pytest.raises(ConfigError, match="`speakers` names"):
        cc.load_corpus_utterances(libri, speakers=["nope"])
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="names no speaker"):
        cc.load_corpus_utterances(libri, speakers=tmp_path / "empty")


def test_kaldi_utterances_resample_to_16k_mono(kaldi):
    utts = {u.utterance_id: u for u in cc.load_corpus_utterances(kaldi)}
    assert sorted(utts) == ["x-1", "y-1", "z-1"] and utts["y-1"].start > 0
    x, z = utts["x-1"].load(), utts["z-1"].load()
    assert x.dtype == np.float32 and x.ndim == z.ndim == 1
    assert len(x) / 16000 == pytest.approx(utts["x-1"].end, abs=0.01)
    assert len(z) / 16000 == pytest.approx(sf.info(str(kaldi / "b.flac")).duration, abs=0.01)


def test_kaldi_dir_errors(kaldi, tmp_path):
    d = tmp_path / "k"
    shutil.copytree(kaldi, d)
    (d / "segments").unlink()
    with pytest.raises(DataError, match=r"wav.scp: no audio for utterances \['x-1'"):
        cc.load_corpus_utterances(d)
    (d / "utt2spk").unlink()
    with pytest.raises(DataError, match="has wav.scp but no utt2spk"):
        cc.load_corpus_utterances(d)


# --------------------------------------------------------------------------- cutting


def test_turns_end_at_pauses_within_the_range():
    rng = np.random.default_rng(3)
    x = _speechlike(rng, 20.0, 150)
    levels = cc._frame_levels(x)
    speech = cc._speech_frames(levels)
    spans = cc._cut_spans(levels, speech, np.random.default_rng(0), 100, 300, 300)
    assert len(spans) >= 4
    for a, b in spans:
        assert speech[a] and speech[b - 1]
        assert 100 <= b - a <= 300
        assert not speech[b:b + cc._CUT_PAUSE].any() or b == len(speech)  # a pause follows
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))


def test_without_a_pause_in_reach_turns_still_keep_the_range():
    # 0.7 s of speech, 1.5 s of silence, then 8 s of speech without any pause
    speech = np.zeros(1000, dtype=bool)
    speech[:70] = speech[220:] = True
    levels = np.where(speech, -20.0, -60.0) + np.random.default_rng(0).uniform(0, 3, 1000)
    spans = cc._cut_spans(levels, speech, np.random.default_rng(1), 150, 300, 600)
    assert spans and all(150 <= b - a <= 600 and speech[a] and speech[b - 1] for a, b in spans)
    assert spans[0][0] == 0 and spans[0][1] > 220  # the short stretch is not a turn of its own
    speech[400:405] = False  # a gap too short to be a pause is still better than cutting speech
    spans = cc._cut_spans(levels, speech, np.random.default_rng(1), 150, 300, 600)
    assert spans[0] == (0, 400)
    speech[70:] = False
    assert cc._cut_spans(levels, speech, np.random.default_rng(1), 150, 300, 600) == []


def test_turn_order_everyone_first_then_alternating_while_possible():
    members = {"a": [None], "b": [None] * 4, "c": [None] * 2}
    order = cc._turn_order(members, 10, np.random.default_rng(0))
    assert set(order[:3]) == {"a", "b", "c"} and len(order) == 7
    assert [order.count(s) for s in "abc"] == [1, 4, 2]
    repeats = [i for i in range(1, 7) if order[i] == order[i - 1]]
    assert all(set(order[i:]) == {order[i]} for i in repeats)  # only once the others ran out


def test_speech_frames_drop_clicks_and_lone_blips():
    levels = np.full(200, -60.0)
    for a, b in [(5, 7), (50, 58), (100, 108), (110, 150), (190, 200)]:
        levels[a:b] = -20.0
    assert cc._runs(cc._speech_frames(levels)).tolist() == [[100, 108], [110, 150], [190, 200]]


# --------------------------------------------------------------------------- conversations


@needs_kaldi_utils
def test_kaldi_accepts_the_conversations(convs, tmp_path):
    assert_valid(make_recipe(tmp_path / "recipe"), convs / "a", "--no-feats", "--no-text")


@pytest.mark.audio
def test_outputs_are_a_conversation_corpus(convs, libri):
    d = convs / "a"
    assert {p.name for p in d.iterdir()} == {"wav", "wav.scp", "rttm", "uem", "segments", "utt2spk", "spk2utt",
                                             "reco2num_spk", "reco2dur", "utt2dur", "synth.json"}
    datadir.validate_datadir(d)
    wav, uem, turns = datadir.read_wav_scp(d / "wav.scp"), datadir.read_uem(d / "uem"), datadir.read_rttm(d / "rttm")
    meta = json.loads((d / "synth.json").read_text())
    assert meta["seed"] == 5 and meta["source"]["layout"] == "librispeech" and meta["source"]["corpus"] == str(libri)
    assert sorted(wav) == sorted(uem) == ["conv000", "conv001", "conv002"]
    num_spk = datadir.read_table(d / "reco2num_spk")
    for conv, info in zip(meta["conversations"], (sf.info(d / "wav" / f"{c}.flac") for c in sorted(wav))):
        c = conv["id"]
        assert wav[c] == f"sox {(d / 'wav' / f'{c}.flac').absolute()} -t wav -b 16 - |"  # Kaldi reads pipes
        assert (info.samplerate, info.channels) == (16000, 1)
        [(start, end)] = uem[c]
        assert start == 0.0 and end == pytest.approx(info.duration, abs=1e-3)
        mine = [t for t in turns if t.file_id == c]
        assert min(t.onset for t in mine) >= 0.3 and max(t.end for t in mine) <= end
        assert {t.speaker for t in mine} == set(conv["speakers"]) and int(num_spk[c][0]) == len(conv["speakers"])
        assert 2 <= len(conv["speakers"]) <= 3 and len(conv["turns"]) <= 6
        for t in conv["turns"]:
            assert TURN_S[0] <= t["duration"] <= TURN_S[1]
            # the turn's RTTM lines lie inside it, the first and last at its edges
            t_end = t["onset"] + t["duration"]
            inside = [r for r in mine if r.speaker == t["speaker"] and t["onset"] - 1e-3 <= r.onset < t_end]
            assert inside and inside[0].onset == pytest.approx(t["onset"], abs=2e-3)
            assert inside[-1].end == pytest.approx(t_end, abs=2e-3)
        for spk in conv["speakers"]:  # a speaker never overlaps itself
            own = sorted((t for t in mine if t.speaker == spk), key=lambda t: t.onset)
            assert all(b.onset >= a.end - 1e-3 for a, b in zip(own, own[1:]))
    assert {s["speaker_id"] for s in meta["speakers"]} <= {"19", "26", "103", "1034"}
    segments, utt2spk = datadir.read_segments(d / "segments"), datadir.read_utt2spk(d / "utt2spk")
    assert {(s.recording, round(s.start, 3), utt2spk[u]) for u, s in segments.items()} == \
        {(t.file_id, round(t.onset, 3), t.speaker) for t in turns}


@pytest.mark.audio
def test_same_seed_same_bytes_whatever_nj(convs, libri, tmp_path):
    a = _tree_bytes(convs / "a")
    assert a == _tree_bytes(convs / "b")
    cc.simulate_conversations(libri, tmp_path / "c", **{**KW, "seed": 6})
    assert _tree_bytes(tmp_path / "c") != a


@pytest.mark.audio
def test_overlap_only_when_asked_and_speech_where_the_reference_says(convs):
    overlapping = []
    for name in ("a", "clean"):
        turns = sorted(datadir.read_rttm(convs / name / "rttm"), key=lambda t: (t.file_id, t.onset))
        overlapping.append(any(b.onset < a.end for a, b in zip(turns, turns[1:]) if a.file_id == b.file_id))
    assert overlapping == [True, False]
    d = convs / "clean"
    turns = datadir.read_rttm(d / "rttm")
    for conv in datadir.read_wav_scp(d / "wav.scp"):
        x, rate = sf.read(d / "wav" / f"{conv}.flac")
        inside = np.zeros(len(x), dtype=bool)
        for t in turns:
            if t.file_id == conv:
                inside[int(t.onset * rate):int(t.end * rate)] = True
        assert np.sqrt(np.mean(x[inside] ** 2)) > 10 * np.sqrt(np.mean(x[~inside] ** 2))


def test_kaldi_corpus_conversations(kaldi, tmp_path):
    cc.simulate_conversations(kaldi, tmp_path / "k", num_conversations=1, speakers_per_conversation=(3, 3),
                              turns_per_conversation=4, turn_s=TURN_S, channel_variation=False, seed=1)
    turns = datadir.read_rttm(tmp_path / "k" / "rttm")
    assert {t.speaker for t in turns} == {"x", "y", "z"}
    assert sf.info(str(tmp_path / "k" / "wav" / "conv000.flac")).samplerate == 16000


@pytest.mark.audio
@pytest.mark.skipif(not SHARED_LIBRISPEECH.is_dir(), reason="the real LibriSpeech subset of ../shared is not here")
@pytest.mark.skipif(not HAVE_SOX, reason="needs sox")
def test_real_librispeech_speakers(tmp_path):
    speakers = sorted(p.name for p in SHARED_LIBRISPEECH.iterdir())[:3]
    (tmp_path / "corpus").mkdir()
    for spk in speakers:
        (tmp_path / "corpus" / spk).symlink_to(SHARED_LIBRISPEECH / spk, target_is_directory=True)
    summary = cc.simulate_conversations(tmp_path / "corpus", tmp_path / "out", num_conversations=1,
                                        speakers_per_conversation=(3, 3), turns_per_conversation=6, seed=2)
    turns = datadir.read_rttm(tmp_path / "out" / "rttm")
    assert {t.speaker for t in turns} == set(speakers) and summary.num_recordings == 1
    assert max(t.end for t in turns) <= sf.info(str(tmp_path / "out" / "wav" / "conv000.flac")).duration


def test_speakers_with_speech_for_one_turn_only_take_no_part(libri, tmp_path):
    corpus = tmp_path / "corpus"
    for spk in ("19", "26"):
        shutil.copytree(libri / "train-clean-100" / spk, corpus / spk)
    (corpus / "7" / "1").mkdir(parents=True)
    sf.write(corpus / "7" / "1" / "7-1-0000.flac", _speechlike(np.random.default_rng(9), 1.6, 300), 16000)
    cc.simulate_conversations(corpus, tmp_path / "out", num_conversations=3, speakers_per_conversation=(2, 2),
                              turns_per_conversation=6, turn_s=TURN_S, channel_variation=False)
    meta = json.loads((tmp_path / "out" / "synth.json").read_text())
    assert all(c["speakers"] == ["19", "26"] for c in meta["conversations"])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"speakers_per_conversation": (1, 3)}, "within 2..6"),
        ({"speakers_per_conversation": (3, 2)}, "low <= high"),
        ({"turns_per_conversation": 2}, "turns_per_conversation >= 4"),
        ({"turn_s": (0.2, 2.0)}, "turn_s"),
        ({"turn_s": (3.0, 2.0)}, "turn_s"),
        ({"overlap_prob": -0.1}, "overlap_prob"),
        ({"gain_db": (0.0, -6.0)}, "gain_db"),
        ({"nj": 0}, "nj"),
        ({"speakers_per_conversation": (2, 5)}, "has 4 speaker"),
        ({"speakers": ["19", "26"], "speakers_per_conversation": (3, 3)}, "has 2 speaker.*after the speaker selection"),
    ],
)
def test_config_errors_write_nothing(libri, tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        cc.simulate_conversations(libri, tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused(libri, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        cc.simulate_conversations(libri, tmp_path / "out", channel_variation=False)
    assert (tmp_path / "out" / "x").read_text() == "mine"


def _broken_corpus(libri: Path, root: Path) -> Path:
    shutil.copytree(libri / "train-clean-100" / "19", root / "19")
    shutil.copytree(libri / "train-clean-100" / "26", root / "26")
    for f in (root / "26").rglob("*.flac"):
        f.write_bytes(b"not a flac file")
    return root


def test_unreadable_audio_and_too_little_speech(libri, tmp_path):
    corpus = _broken_corpus(libri, tmp_path / "corpus")
    with pytest.raises(AudioError, match=r"cannot read audio .*26-201-000[01]\.flac"):
        cc.simulate_conversations(corpus, tmp_path / "out", speakers_per_conversation=(2, 2), turns_per_conversation=2,
                                  channel_variation=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
    with pytest.raises(DataError, match=r"only 0 speaker\(s\) have speech for 1 turn\(s\) of at least 30.0 s; a "
                                        r"conversation needs 3"):
        cc.simulate_conversations(libri, tmp_path / "out", speakers_per_conversation=(3, 3), turns_per_conversation=3,
                                  turn_s=(30.0, 40.0), channel_variation=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


# --------------------------------------------------------------------------- command line


def test_cli_from_corpus(libri, tmp_path, capsys):
    args = ["synth", "conversations", "--from-corpus", str(libri), "--num-conversations", "1", "--speakers", "2", "2",
            "--turns", "3", "--turn-seconds", "1", "3", "--quiet"]
    assert cli_main([*args, "--out-dir", str(tmp_path / "ok"), "--clean"]) == 0
    assert len({t.speaker for t in datadir.read_rttm(tmp_path / "ok" / "rttm")}) == 2
    assert cli_main([*args, "--out-dir", str(tmp_path / "x"), "--engines", "espeak-ng"]) == 1
    assert "--engines: TTS voices only; not with --from-corpus" in capsys.readouterr().err
    assert cli_main(["synth", "conversations", "--out-dir", str(tmp_path / "x"), "--turn-seconds", "1", "2",
                     "--quiet"]) == 1
    assert "--turn-seconds: only with --from-corpus DIR" in capsys.readouterr().err
    corpus = _broken_corpus(libri, tmp_path / "broken")
    assert cli_main(["synth", "conversations", "--from-corpus", str(corpus), "--out-dir", str(tmp_path / "x"),
                     "--speakers", "2", "2", "--turns", "2", "--clean", "--quiet"]) == 1
    assert "cannot read audio" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "ok"]
