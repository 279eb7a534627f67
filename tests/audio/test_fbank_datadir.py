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


def test_a_folder_with_an_unreadable_file_gives_a_data_dir_of_the_rest(src, tmp_path, capsys, caplog):
    folder = tmp_path / "audio"
    folder.mkdir()
    shutil.copy(src / "r1.wav", folder / "r1.wav")
    shutil.copy(src / "r2.flac", folder / "r2.flac")
    (folder / "empty.wav").write_bytes(b"")
    (folder / "junk.wav").write_bytes(b"not audio at all")
    out = tmp_path / "out"
    assert cli_main(["fbank", "--wav-dir", str(folder), "--out-dir", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err  # the failures are logged as errors (the console shows them, --quiet too)
    failures = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(failures) == 2 and failures[0].startswith("left out empty: utterance 'empty': audio file")
    assert failures[0].endswith("is empty (0 bytes)") and failures[1].startswith("left out junk:")
    assert "2 recording(s) could not be read" in err and "the other 2 utterance(s)" in err
    for name in ("wav.scp", "feats.scp", "utt2spk", "spk2utt", "utt2num_frames", "utt2dur", "reco2dur"):
        assert sorted(datadir.read_table(out / name, min_fields=1)) == ["r1", "r2"], name
    assert [utt for utt, _ in kaldiio.load_ark(str(out / "feats.ark"))] == ["r1", "r2"]
    datadir.validate_datadir(out)


def test_nothing_is_written_when_no_recording_can_be_read(tmp_path, capsys):
    folder = tmp_path / "audio"
    folder.mkdir()
    (folder / "empty.wav").write_bytes(b"")
    out = tmp_path / "out"
    assert cli_main(["fbank", "--wav-dir", str(folder), "--out-dir", str(out), "--quiet"]) == 1
    assert "no recording could be read (1 failed)" in capsys.readouterr().err
    assert not (out / "feats.ark").exists() and not (out / "feats.scp").exists()


@needs_sox
@pytest.mark.parametrize("compress", [False, True])
def test_copies_written_before_their_recording_failed_are_removed(src, tmp_path, monkeypatch, compress):
    """Output ids are sorted: r2 and sp0.9-r2 are written before sp1.1-r2 is read; when that read
    fails, all of r2 leaves the ark (the other records copied byte for byte) and every table."""
    from unspeech import fbank

    real = fbank._run_task

    def failing(args):
        if "r2.flac" in args[0] and "speed 1.1" in args[0]:
            raise audio.AudioError("audio command failed: broken")
        return real(args)

    monkeypatch.setattr(fbank, "_run_task", failing)
    rewrites = []
    drop = fbank._drop_from_ark
    monkeypatch.setattr(fbank, "_drop_from_ark", lambda *a: rewrites.append(sorted(a[2])) or drop(*a))
    wav = {"r1": str(src / "r1.wav"), "r2": str(src / "r2.flac")}
    reference = fbank.make_fbank_datadir({"r1": wav["r1"]}, tmp_path / "ref", speed_perturb=True, compress=compress)
    summary = fbank.make_fbank_datadir(wav, tmp_path / "out", speed_perturb=True, keep_going=True, compress=compress)
    assert list(summary.failed) == ["r2"] and summary.num_utterances == 3
    assert rewrites == [["r2", "sp0.9-r2", "sp1.1-r2"]]  # r2 and sp0.9-r2 were already in the ark
    out = tmp_path / "out"
    feats = dict(kaldiio.load_ark(str(out / "feats.ark")))
    assert list(feats) == ["r1", "sp0.9-r1", "sp1.1-r1"]
    assert sorted(kaldiio.load_scp(str(out / "feats.scp"))) == sorted(feats)
    np.testing.assert_array_equal(kaldiio.load_scp(str(out / "feats.scp"))["r1"], feats["r1"])
    for utt, matrix in kaldiio.load_scp(str(tmp_path / "ref" / "feats.scp")).items():
        np.testing.assert_array_equal(feats[utt], matrix)
    for name in ("wav.scp", "utt2spk", "utt2uniq", "utt2dur", "reco2dur", "utt2num_frames"):
        assert sorted(datadir.read_table(out / name, min_fields=1)) == sorted(feats), name
    assert reference.num_utterances == 3
    datadir.validate_datadir(out)
