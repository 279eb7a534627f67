"""Speed-perturbed data dirs: unspeech.perturb and make_fbank_datadir against Kaldi's own scripts."""

from __future__ import annotations

import shutil

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from kaldi_scripts import assert_valid, make_recipe, needs_kaldi_utils, run_script
from unspeech import audio, datadir, fbank, perturb
from unspeech.errors import ConfigError, DataError

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")
TABLES = ("utt2spk", "spk2utt", "wav.scp", "segments", "utt2uniq", "utt2dur", "reco2dur")


def _noise(n: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """Two recordings (a wav file and a pipe), segments, utt2spk; absolute paths as Kaldi recipes have."""
    root = tmp_path_factory.mktemp("perturb") / "src"
    root.mkdir()
    sf.write(root / "r1.wav", _noise(40000, 1), 16000, subtype="PCM_16")  # 2.5 s
    sf.write(root / "r2.flac", _noise(24000, 2), 8000, subtype="PCM_16")  # 3 s at 8 kHz
    datadir.write_wav_scp(root / "wav.scp", {"r1": str(root / "r1.wav"),
                                             "r2": f"sox {root / 'r2.flac'} -t wav - |"})
    datadir.write_utt2spk(root / "utt2spk", {"r1": "A", "r2": "B"})
    (root / "segments").write_text("A-r1-000 r1 0.13 1.27\nA-r1-001 r1 1.5 2.5\nB-r2-000 r2 0.005 2.999\n")
    datadir.write_utt2spk(root / "seg_utt2spk", {"A-r1-000": "A", "A-r1-001": "A", "B-r2-000": "B"})
    return root


def _kaldi_source_dir(dst, wav, utt2spk, segments=None):
    """A data dir for Kaldi's script, with the utt2dur/reco2dur it cannot compute here (no wav-to-duration)."""
    dst.mkdir(parents=True)
    datadir.write_wav_scp(dst / "wav.scp", datadir.read_wav_scp(wav))
    u2s = datadir.read_utt2spk(utt2spk)
    datadir.write_utt2spk(dst / "utt2spk", u2s)
    datadir.write_spk2utt(dst / "spk2utt", datadir.utt2spk_to_spk2utt(u2s))
    seconds = {"r1": 2.5, "r2": 3.0}
    datadir.write_table(dst / "reco2dur", {r: perturb.kaldi_duration(s) for r, s in seconds.items()})
    if segments is not None:
        shutil.copy(segments, dst / "segments")
    else:
        datadir.write_table(dst / "utt2dur", {r: perturb.kaldi_duration(s) for r, s in seconds.items()})


@needs_kaldi_utils
@needs_sox
@pytest.mark.parametrize("with_segments, prefix_original", [(True, False), (False, True)])
def test_tables_equal_kaldis_3way_script(src, tmp_path, with_segments, prefix_original):
    recipe = make_recipe(tmp_path / "recipe")
    segs = src / "segments" if with_segments else None
    u2s = src / ("seg_utt2spk" if with_segments else "utt2spk")
    _kaldi_source_dir(recipe / "data" / "train", src / "wav.scp", u2s, segs)
    proc = run_script(recipe, "utils/data/perturb_data_dir_speed_3way.sh", "--always-include-prefix",
                      str(prefix_original).lower(), "data/train", "data/train_sp")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ours = tmp_path / "ours"
    summary = fbank.make_fbank_datadir(src / "wav.scp", ours, segments=segs, utt2spk=u2s, speed_perturb=True,
                                       always_include_prefix=prefix_original, nj=2)
    kaldi = recipe / "data" / "train_sp"
    for name in TABLES:
        if (kaldi / name).exists() or (ours / name).exists():
            assert (ours / name).read_text() == (kaldi / name).read_text(), name
    assert summary.num_utterances == (9 if with_segments else 6)
    assert_valid(recipe, ours, "--no-text")


@needs_sox
def test_perturbed_features_come_from_the_pipe_kaldi_runs(src, tmp_path):
    out = tmp_path / "o"
    fbank.make_fbank_datadir(src / "wav.scp", out, segments=src / "segments", utt2spk=src / "seg_utt2spk",
                             speed_perturb=True)
    wav = datadir.read_wav_scp(out / "wav.scp")
    segs = datadir.read_segments(out / "segments")
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    for utt in ("sp0.9-B-r2-000", "sp1.1-A-r1-001"):
        seg = segs[utt]
        data, rate = audio.read_audio(wav[seg.recording])
        expected = fbank.compute_fbank(audio.convert_audio(audio.cut_segment(data, rate, seg.start, seg.end), rate))
        np.testing.assert_array_equal(feats[utt], expected)
    frames = {u: int(v[0]) for u, v in datadir.read_table(out / "utt2num_frames").items()}
    durations = {u: float(v[0]) for u, v in datadir.read_table(out / "utt2dur").items()}
    for utt, n in frames.items():  # about 100 frames a second, less the 25 ms window
        assert abs(n - (durations[utt] * 100 - 1.5)) <= 2, utt
    # the same pipe gives the same samples every run (sox's dither is seeded: SOX_OPTS=-R)
    again = tmp_path / "again"
    fbank.make_fbank_datadir(src / "wav.scp", again, segments=src / "segments", utt2spk=src / "seg_utt2spk",
                             speed_perturb=True)
    assert (again / "feats.ark").read_bytes() == (out / "feats.ark").read_bytes()


def test_perturbed_wav_entries_follow_kaldis_rule():
    assert perturb.perturbed_wav_entry("/d/a.wav", "0.9") == "sox -t wav /d/a.wav -t wav - speed 0.9 |"
    assert (perturb.perturbed_wav_entry("sox  /d/a.flac -t wav -|", "1.1")
            == "sox /d/a.flac -t wav - | sox -t wav - -t wav - speed 1.1 |")
    assert (perturb.perturbed_wav_entry("/d/x.ark:123", "0.9")
            == "wav-copy /d/x.ark:123 - | sox -t wav - -t wav - speed 0.9 |")
    assert perturb.perturbed_wav_entry("/d/a.flac", "0.9") == "sox /d/a.flac -t wav - speed 0.9 |"


def test_segments_kaldi_drops_from_the_copies():
    segs = {"u1": datadir.Segment("r", 1.0, 1.0105), "u2": datadir.Segment("r", 2.0, -1), "u3": datadir.Segment("r", 0, 1)}
    plan = perturb.plan_datadir({"r": "r.wav"}, segs, None, {"r": "/d/r.wav"}, perturb.KALDI_SPEEDS)
    # u1 lasts 10.5 ms: 11.7 ms at speed 0.9 (kept), 9.5 ms at 1.1 (dropped); u2 runs to the end (-1)
    assert list(plan.utterances) == ["sp0.9-u1", "sp0.9-u3", "sp1.1-u3", "u1", "u2", "u3"]
    assert plan.dropped == ("u1", "u2")
    assert plan.segments_table()["sp1.1-u3"] == "sp1.1-r 0.00 0.91"
    assert plan.segments_table()["u2"] == "r 2 -1"
    utt2dur, reco2dur = plan.durations({"r": 3.0})
    assert utt2dur["u2"] == "1" and utt2dur["sp0.9-u3"] == "1.11111" and reco2dur["sp1.1-r"] == "2.72727"


def test_kaldi_wav_entries(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert datadir.kaldi_wav_entry("a/b.wav") == str(tmp_path / "a" / "b.wav")
    assert datadir.kaldi_wav_entry("a/b.WAV", absolute=False) == "a/b.WAV"
    assert datadir.kaldi_wav_entry("a/b c.flac", absolute=False) == "sox 'a/b c.flac' -t wav -b 16 - |"
    assert datadir.kaldi_wav_entry("b.mp3", plain_paths=True) == str(tmp_path / "b.mp3")
    assert datadir.kaldi_wav_entry("cat x.wav |") == "cat x.wav |"
    assert datadir.kaldi_wav_entry("x.ark:12") == "x.ark:12"


@needs_sox
def test_flac_pipe_reads_like_the_file(tmp_path):
    x = _noise(16000, 3)
    sf.write(tmp_path / "a.flac", x, 16000, subtype="PCM_16")
    entry = datadir.kaldi_wav_entry(tmp_path / "a.flac")
    np.testing.assert_array_equal(audio.load_audio(entry), audio.load_audio(str(tmp_path / "a.flac")))


def test_bad_options_and_stale_tables(src, tmp_path):
    with pytest.raises(ConfigError, match="always_include_prefix.*needs speed_perturb"):
        fbank.make_fbank_datadir(src / "wav.scp", tmp_path / "o", always_include_prefix=True)
    with pytest.raises(ConfigError, match="speed factors"):
        perturb.plan_datadir({"r": "r.wav"}, None, None, {"r": "r.wav"}, ("1.0",))
    out = tmp_path / "stale"
    out.mkdir()
    (out / "segments").write_text("u r 0 1\n")
    with pytest.raises(DataError, match=r"stale/segments \(from an earlier run\?\) lists other utterances"):
        fbank.make_fbank_datadir(src / "wav.scp", out)
    assert not (out / "feats.ark").exists()


def test_missing_pipe_program_is_named(tmp_path):
    from unspeech.errors import AudioError

    with pytest.raises(AudioError, match="exit code 127 .*not installed"):
        audio.load_audio("no-such-program-xyz in.flac -t wav - |")
