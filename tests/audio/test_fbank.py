"""Fbank features, speed perturbation, make_fbank_datadir and the ``unspeech fbank`` command."""

from __future__ import annotations

import math
import os
import shutil

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from unspeech import audio, datadir, fbank
from unspeech.cli import main as cli_main
from unspeech.errors import AudioError, ConfigError, DataError


def _noise(n: int, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _kaldi_mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)


@pytest.mark.parametrize("n", [400, 401, 559, 560, 16000, 16123])
def test_frame_count_follows_snip_edges(n):
    feats = fbank.compute_fbank(_noise(n))
    assert feats.shape == (1 + (n - 400) // 160, 40)
    assert feats.dtype == np.float32
    assert fbank.num_frames(n) == feats.shape[0]


def test_too_short_is_an_error():
    with pytest.raises(AudioError, match=r"utt7: 399 samples .* too short"):
        fbank.compute_fbank(_noise(399), name="utt7")
    with pytest.raises(AudioError, match="expected mono samples"):
        fbank.compute_fbank(np.zeros((800, 2), dtype=np.float32))
    with pytest.raises(ConfigError, match="num_bins"):
        fbank.compute_fbank(_noise(800), num_bins=0)


def test_matches_kaldi_native_fbank_on_the_16bit_scale():
    import kaldi_native_fbank as knf

    x = _noise(8000, seed=3)
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 40
    ref = knf.OnlineFbank(opts)
    ref.accept_waveform(16000, (x * 32768).tolist())
    ref.input_finished()
    expected = np.stack([ref.get_frame(i) for i in range(ref.num_frames_ready)])
    np.testing.assert_allclose(fbank.compute_fbank(x), expected, rtol=1e-5, atol=1e-4)


def test_tone_lights_up_its_mel_bin():
    t = np.arange(16000) / 16000
    feats = fbank.compute_fbank((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    # 40 triangular bins equally spaced on Kaldi's mel scale between 20 Hz and 8 kHz
    edges = np.linspace(_kaldi_mel(20), _kaldi_mel(8000), 42)
    centres = edges[1:-1]
    expected_bin = int(np.argmin(np.abs(centres - _kaldi_mel(1000))))
    assert abs(int(np.argmax(feats.mean(axis=0))) - expected_bin) <= 1


def test_dither_zero_is_deterministic_and_dither_changes_output():
    x = _noise(4000, seed=1, amp=0.01)
    np.testing.assert_array_equal(fbank.compute_fbank(x), fbank.compute_fbank(x))
    assert not np.array_equal(fbank.compute_fbank(x, dither=1.0), fbank.compute_fbank(x))


def test_num_bins_option():
    assert fbank.compute_fbank(_noise(1000), num_bins=23).shape == (4, 23)


@pytest.mark.parametrize("factor, prefix", [(0.9, "sp0.9-"), (1.1, "sp1.1-"), (1.0, "")])
def test_speed_perturb_length_and_prefix(factor, prefix):
    x = _noise(16000)
    y = fbank.speed_perturb(x, factor)
    assert len(y) == math.ceil(16000 / factor)
    assert fbank.speed_prefix(factor) == prefix


def test_speed_perturb_shifts_pitch():
    t = np.arange(16000) / 16000
    y = fbank.speed_perturb(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 1.1)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert np.argmax(spec) * 16000 / len(y) == pytest.approx(1100, abs=3)
    with pytest.raises(ConfigError, match="speed factor"):
        fbank.speed_perturb(y, 0.0)


# --------------------------------------------------------------------------- data dirs


@pytest.fixture
def corpus(tmp_path):
    """Three recordings (one stereo 8 kHz), wav.scp, utt2spk and a segments file."""
    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "r1.wav", _noise(16000, 1), 16000, subtype="PCM_16")
    sf.write(src / "r2.flac", _noise(12000, 2), 16000, subtype="PCM_16")
    sf.write(src / "r3.wav", np.stack([_noise(8000, 3), _noise(8000, 4)], 1), 8000, subtype="PCM_16")
    wav = {"r1": str(src / "r1.wav"), "r2": f"sox {src / 'r2.flac'} -t wav - |", "r3": str(src / "r3.wav")}
    datadir.write_wav_scp(src / "wav.scp", wav)
    datadir.write_utt2spk(src / "utt2spk", {"r1": "spk1", "r2": "spk1", "r3": "spk2"})
    segs = {"r2-a": datadir.Segment("r2", 0.0, 0.4), "r2-b": datadir.Segment("r2", 0.3, 0.75),
            "r1-a": datadir.Segment("r1", 0.5, -1)}
    datadir.write_segments(src / "segments", segs)
    datadir.write_utt2spk(src / "seg_utt2spk", {"r2-a": "spkB", "r2-b": "spkB", "r1-a": "spkA"})
    return src


def test_datadir_with_speed_perturbation(corpus, tmp_path):
    out = tmp_path / "out"
    calls = []
    summary = fbank.make_fbank_datadir(corpus / "wav.scp", out, utt2spk=corpus / "utt2spk",
                                       speed_perturb=True, progress=lambda d, t: calls.append((d, t)))
    assert summary.num_utterances == 9 and summary.num_speakers == 6
    assert calls[-1] == (9, 9)
    utt2spk = datadir.read_utt2spk(out / "utt2spk")
    assert utt2spk["sp0.9-r1"] == "sp0.9-spk1" and utt2spk["sp1.1-r3"] == "sp1.1-spk2"
    spk2utt = datadir.read_spk2utt(out / "spk2utt")
    assert spk2utt["spk1"] == ["r1", "r2"] and spk2utt["sp0.9-spk1"] == ["sp0.9-r1", "sp0.9-r2"]
    assert "sp0.9-spk1" != "spk1" and len(spk2utt) == 6
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    ids = list(feats.keys())
    assert ids == datadir.c_sorted(ids)
    frames = {u: int(n[0]) for u, n in datadir.read_table(out / "utt2num_frames").items()}
    assert frames["r1"] == 98 and frames["sp0.9-r1"] == fbank.num_frames(math.ceil(16000 / 0.9))
    assert frames["r3"] == 98  # 1 s of 8 kHz stereo became 1 s of 16 kHz mono
    np.testing.assert_array_equal(feats["r3"], fbank.compute_fbank(audio.load_audio(str(corpus / "r3.wav"), channel=0)))  # Kaldi: channel 0
    datadir.validate_datadir(out)


def test_datadir_without_utt2spk_each_utterance_is_its_speaker(corpus, tmp_path):
    fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "o")
    assert datadir.read_utt2spk(tmp_path / "o" / "utt2spk") == {"r1": "r1", "r2": "r2", "r3": "r3"}


def test_datadir_with_segments(corpus, tmp_path):
    fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "o", segments=corpus / "segments",
                             utt2spk=corpus / "seg_utt2spk")
    feats = kaldiio.load_scp(str(tmp_path / "o" / "feats.scp"))
    assert list(feats.keys()) == ["r1-a", "r2-a", "r2-b"]
    assert feats["r2-a"].shape == (38, 40) and feats["r1-a"].shape == (48, 40)
    whole = audio.load_audio(str(corpus / "r2.flac"))
    np.testing.assert_array_equal(feats["r2-b"], fbank.compute_fbank(whole[4800:12000]))


def test_parallel_output_is_identical_to_serial(corpus, tmp_path):
    for nj in (1, 2):
        fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / f"nj{nj}", segments=corpus / "segments",
                                 speed_perturb=True, nj=nj)
    for name in ("feats.ark", "utt2spk", "spk2utt", "utt2num_frames"):
        assert (tmp_path / "nj1" / name).read_bytes() == (tmp_path / "nj2" / name).read_bytes()


def test_compressed_output_reads_back(corpus, tmp_path):
    fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "c", compress=True)
    fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "u")
    c = kaldiio.load_scp(str(tmp_path / "c" / "feats.scp"))
    u = kaldiio.load_scp(str(tmp_path / "u" / "feats.scp"))
    np.testing.assert_allclose(c["r1"], u["r1"], atol=0.1)
    assert (tmp_path / "c" / "feats.ark").stat().st_size < (tmp_path / "u" / "feats.ark").stat().st_size


def test_bad_audio_names_utterance_and_leaves_nothing(corpus, tmp_path):
    (corpus / "broken.wav").write_bytes(b"RIFF garbage")
    wav = datadir.read_wav_scp(corpus / "wav.scp")
    wav["r0"] = str(corpus / "broken.wav")
    out = tmp_path / "o"
    with pytest.raises(AudioError, match=r"utterance 'r0': cannot read audio '.*broken\.wav'"):
        fbank.make_fbank_datadir(wav, out, nj=2)
    assert not out.exists()  # nothing is published, not even the folder
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # nor is the staging folder left


def test_too_short_utterance_is_named(corpus, tmp_path):
    segs = {"tiny": datadir.Segment("r1", 0.0, 0.02)}
    with pytest.raises(AudioError, match="utterance 'tiny'.*too short"):
        fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "o", segments=segs)


def test_inconsistent_tables(corpus, tmp_path):
    with pytest.raises(DataError, match="utt2spk has no speaker for utterance 'r3'"):
        fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "o", utt2spk={"r1": "a", "r2": "b"})
    with pytest.raises(DataError, match="refers to recording 'r9'"):
        fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "o", segments={"u": datadir.Segment("r9", 0, 1)})
    with pytest.raises(DataError, match=r"utt2spk file '.*missing' does not exist"):
        fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "o", utt2spk=tmp_path / "missing")
    with pytest.raises(DataError, match="no utterances"):
        fbank.make_fbank_datadir({}, tmp_path / "o")
    with pytest.raises(ConfigError, match="nj"):
        fbank.make_fbank_datadir(corpus / "wav.scp", tmp_path / "o", nj=0)


# --------------------------------------------------------------------------- command line


def test_cli_wav_dir_to_feats_scp(tmp_path, capsys):
    wavs = tmp_path / "wavs"
    (wavs / "deeper").mkdir(parents=True)
    sf.write(wavs / "alpha.wav", _noise(16000, 5), 16000, subtype="PCM_16")
    sf.write(wavs / "deeper" / "beta.flac", _noise(44100, 6), 44100, subtype="PCM_16")
    out = tmp_path / "data"
    assert cli_main(["fbank", "--wav-dir", str(wavs), "--out-dir", str(out), "--nj", "2",
                     "--speed-perturb", "--quiet"]) == 0
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    assert sorted(feats) == ["alpha", "beta", "sp0.9-alpha", "sp0.9-beta", "sp1.1-alpha", "sp1.1-beta"]
    assert feats["beta"].shape == (98, 40)
    wav = datadir.read_wav_scp(out / "wav.scp")
    assert wav["beta"] == f"sox {wavs / 'deeper' / 'beta.flac'} -t wav -b 16 - |"
    assert wav["sp0.9-beta"] == f"{wav['beta'][:-2]} | sox -t wav - -t wav - speed 0.9 |"
    assert wav["alpha"] == str(wavs / "alpha.wav")
    datadir.validate_datadir(out)


def test_cli_failure_exit(tmp_path, capsys):
    assert cli_main(["fbank", "--wav-dir", str(tmp_path / "none"), "--out-dir", str(tmp_path / "o"),
                     "--quiet"]) == 1
    assert "does not exist or is not a directory" in capsys.readouterr().err


@pytest.mark.audio
@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_cli_on_a_synthesized_corpus(tmp_path):
    from unspeech import synth

    synth.synthesize_utterances(tmp_path / "corpus", num_speakers=2, utts_per_speaker=2, engines=["espeak-ng"])
    out = tmp_path / "fb"
    assert cli_main(["fbank", "--wav-scp", str(tmp_path / "corpus" / "wav.scp"), "--utt2spk",
                     str(tmp_path / "corpus" / "utt2spk"), "--out-dir", str(out), "--quiet"]) == 0
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    assert sorted(feats) == ["spk000-000", "spk000-001", "spk001-000", "spk001-001"]
    assert all(m.shape[1] == 40 and np.isfinite(m).all() for m in feats.values())
    assert datadir.read_utt2spk(out / "utt2spk")["spk001-000"] == "spk001"
