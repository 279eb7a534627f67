"""`unspeech fbank` data dirs as Kaldi's scripts see them: wav.scp, durations, paths."""

from __future__ import annotations

import os
import shutil

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from kaldi_scripts import assert_valid, make_recipe, needs_kaldi_utils
from unspeech import audio, datadir
from unspeech.cli import main as cli_main

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")


def _noise(n: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.fixture
def src(tmp_path):
    """A wav, a flac (44.1 kHz) and a pipe recording with segments, utt2spk and text."""
    d = tmp_path / "src"
    d.mkdir()
    sf.write(d / "r1.wav", _noise(32000, 1), 16000, subtype="PCM_16")
    sf.write(d / "r2.flac", _noise(88200, 2), 44100, subtype="PCM_16")
    sf.write(d / "r3.flac", _noise(32000, 3), 16000, subtype="PCM_16")
    datadir.write_wav_scp(d / "wav.scp", {"r1": str(d / "r1.wav"), "r2": str(d / "r2.flac"),
                                          "r3": f"sox {d / 'r3.flac'} -t wav - |"})
    segs = {"a-r1-0": datadir.Segment("r1", 0.1, 1.2), "a-r2-0": datadir.Segment("r2", 0.0, 1.9),
            "b-r3-0": datadir.Segment("r3", 0.5, 1.5)}
    datadir.write_segments(d / "segments", segs)
    datadir.write_utt2spk(d / "utt2spk", {u: u.split("-")[0] for u in segs})
    datadir.write_text(d / "text", {u: f"words of {u}" for u in segs})
    return d


@needs_sox
def test_wav_scp_input_gives_a_complete_data_dir(src, tmp_path):
    out = tmp_path / "data" / "train"
    assert cli_main(["fbank", "--wav-scp", str(src / "wav.scp"), "--segments", str(src / "segments"),
                     "--utt2spk", str(src / "utt2spk"), "--text", str(src / "text"), "--out-dir", str(out),
                     "--quiet"]) == 0
    wav = datadir.read_wav_scp(out / "wav.scp")
    assert wav == {"r1": str(src / "r1.wav"), "r2": f"sox {src / 'r2.flac'} -t wav -b 16 - |",
                   "r3": f"sox {src / 'r3.flac'} -t wav - |"}
    # our readers read every entry, and the flac pipe gives the file's samples
    np.testing.assert_array_equal(audio.load_audio(wav["r2"]), audio.load_audio(str(src / "r2.flac")))
    assert datadir.read_table(out / "reco2dur") == {"r1": ["2"], "r2": ["2"], "r3": ["2"]}
    assert datadir.read_table(out / "utt2dur")["a-r1-0"] == ["1.1"]
    assert datadir.read_segments(out / "segments") == datadir.read_segments(src / "segments")
    assert datadir.read_text(out / "text") == datadir.read_text(src / "text")
    assert not (out / "utt2uniq").exists()
    for line in (out / "feats.scp").read_text().splitlines():
        assert os.path.isabs(line.split()[1])
    datadir.validate_datadir(out)


@needs_kaldi_utils
@needs_sox
def test_kaldi_accepts_fbank_data_dirs(src, tmp_path):
    recipe = make_recipe(tmp_path / "recipe")
    plain = tmp_path / "plain"
    assert cli_main(["fbank", "--wav-scp", str(src / "wav.scp"), "--segments", str(src / "segments"),
                     "--utt2spk", str(src / "utt2spk"), "--text", str(src / "text"), "--out-dir", str(plain),
                     "--quiet"]) == 0
    assert_valid(recipe, plain)
    folder = tmp_path / "audio"
    folder.mkdir()
    for name in ("r1.wav", "r2.flac"):
        shutil.copy(src / name, folder / name)
    perturbed = tmp_path / "perturbed"
    assert cli_main(["fbank", "--wav-dir", str(folder), "--out-dir", str(perturbed), "--speed-perturb",
                     "--quiet"]) == 0
    assert_valid(recipe, perturbed, "--no-text")
    assert len(kaldiio.load_scp(str(perturbed / "feats.scp"))) == 6


def test_relative_plain_paths_stay_as_given(src, tmp_path, monkeypatch):
    monkeypatch.chdir(src.parent)
    datadir.write_wav_scp("rel.scp", {"r1": "src/r1.wav", "r2": "src/r2.flac"})
    assert cli_main(["fbank", "--wav-scp", "rel.scp", "--out-dir", "out", "--relative-paths",
                     "--plain-audio-paths", "--quiet"]) == 0
    assert datadir.read_wav_scp("out/wav.scp") == {"r1": "src/r1.wav", "r2": "src/r2.flac"}
    assert (src.parent / "out" / "feats.scp").read_text().startswith("r1 out/feats.ark:")
    assert sorted(kaldiio.load_scp("out/feats.scp")) == ["r1", "r2"]
