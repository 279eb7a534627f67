"""Speaker ids, size summaries, Kaldi data dirs and all-or-nothing output staging."""

import os

import numpy as np
import pytest

from kaldi_scripts import assert_valid, make_recipe, needs_kaldi_utils
from unspeech import datadir
from unspeech.cluster.outputs import (
    StagedOutputs,
    cluster_size_summary,
    format_size_summary,
    speaker_ids,
    write_clustered_datadir,
    write_membership,
)
from unspeech.errors import ConfigError, DataError


def test_speaker_ids_by_first_appearance():
    assert speaker_ids([4, 4, 1, -1, 4, 0]) == ["spk0000000", "spk0000000", "spk0000001", "spknoise", "spk0000000", "spk0000002"]


def test_size_summary():
    s = cluster_size_summary([0, 0, 0, 1, 2, -1, -1])
    assert s == {"n_utts": 7, "n_clusters": 3, "n_singletons": 2, "n_noise": 2, "largest_cluster": 3,
                 "median_cluster": 1.0, "mean_cluster": 5 / 3}
    assert format_size_summary(s).startswith("7 utterances -> 3 clusters (2 singletons, 2 noise)")
    assert cluster_size_summary([-1])["largest_cluster"] == 0


def _source_dir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    utts = ["a-1", "a-2", "b-1"]
    datadir.write_utt2spk(src / "utt2spk", {u: u.split("-")[0] for u in utts})
    datadir.write_text(src / "text", {"a-1": "hello world", "a-2": "good bye", "b-1": "ünïcode text"})
    datadir.write_segments(src / "segments", {u: datadir.Segment("rec1", i, i + 1.0) for i, u in enumerate(utts)})
    datadir.write_wav_scp(src / "wav.scp", {"rec1": "sox in.wav -t wav - |"})
    (src / "cmvn.scp").write_text("a x.ark:1\nb x.ark:2\n")
    return src


def test_clustered_datadir_renames_utterances(tmp_path, caplog):
    src = _source_dir(tmp_path)
    out = tmp_path / "out"
    n = write_clustered_datadir(out, ["b-1", "a-1", "a-2", "not-in-src"], ["spk0000000", "spk0000001", "spk0000000", "spk0000001"], src)
    assert n == 3
    assert "not-in-src" in caplog.text and "cmvn.scp" in caplog.text
    utt2spk = datadir.read_utt2spk(out / "utt2spk")
    assert utt2spk == {"spk0000000-b-1": "spk0000000", "spk0000001-a-1": "spk0000001", "spk0000000-a-2": "spk0000000"}
    assert datadir.read_text(out / "text")["spk0000000-b-1"] == "ünïcode text"
    assert datadir.read_segments(out / "segments")["spk0000001-a-1"].recording == "rec1"
    assert (out / "wav.scp").read_text() == (src / "wav.scp").read_text()
    assert not (out / "cmvn.scp").exists()
    datadir.validate_datadir(out)


@needs_kaldi_utils
def test_kaldi_accepts_the_clustered_datadir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    segs = {"a-1": ("rec1", 0.0, 1.0), "a-2": ("rec1", 1.0, 2.5), "b-1": ("rec2", 0.0, 1.0)}
    datadir.write_segments(src / "segments", {u: datadir.Segment(*v) for u, v in segs.items()})
    datadir.write_utt2spk(src / "utt2spk", {u: u.split("-")[0] for u in segs})
    datadir.write_spk2utt(src / "spk2utt", datadir.utt2spk_to_spk2utt(datadir.read_utt2spk(src / "utt2spk")))
    datadir.write_text(src / "text", {u: "some words" for u in segs})
    datadir.write_wav_scp(src / "wav.scp", {"rec1": "/d/rec1.wav", "rec2": "sox /d/rec2.flac -t wav - |"})
    datadir.write_table(src / "reco2dur", {"rec1": "3", "rec2": "2"})
    datadir.write_table(src / "utt2dur", {u: f"{e - s:g}" for u, (_, s, e) in segs.items()})
    out = tmp_path / "out"
    # b-1 is not clustered: rec2 must leave wav.scp and reco2dur with it
    assert write_clustered_datadir(out, ["a-2", "a-1"], ["spk0000000", "spk0000001"], src) == 2
    assert list(datadir.read_wav_scp(out / "wav.scp")) == ["rec1"]
    assert_valid(make_recipe(tmp_path / "recipe"), out, "--no-feats")


def test_clustered_datadir_errors(tmp_path):
    with pytest.raises(DataError, match="not a Kaldi data dir"):
        write_clustered_datadir(tmp_path / "o1", ["u"], ["s"], tmp_path)
    src = _source_dir(tmp_path)
    with pytest.raises(DataError, match="none of the clustered utterances"):
        write_clustered_datadir(tmp_path / "o2", ["zzz"], ["s"], src)


def test_staged_outputs_all_or_nothing(tmp_path):
    with StagedOutputs() as out:
        out.file(tmp_path / "a.txt").write_text("A")
        (out.directory(tmp_path / "dir") / "f").write_text("F")
        assert not (tmp_path / "a.txt").exists()
    assert (tmp_path / "a.txt").read_text() == "A" and (tmp_path / "dir" / "f").read_text() == "F"

    with pytest.raises(RuntimeError, match="boom"):
        with StagedOutputs() as out:
            out.file(tmp_path / "b.txt").write_text("B")
            out.directory(tmp_path / "dir2")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "dir"]  # no temp files left

    with pytest.raises(ConfigError, match="already exists and is not empty"):
        with StagedOutputs() as out:
            out.directory(tmp_path / "dir")


def test_membership_npz(tmp_path):
    path = tmp_path / "m.npz"
    write_membership(path, ["u1", "u2"], ["spk0000000", "spknoise"], np.array([0.9, 0.0]), np.array([[0.8], [0.1]]), ["spk0000000"])
    with np.load(path) as z:
        assert z["utt_ids"].tolist() == ["u1", "u2"]
        assert z["membership"].shape == (2, 1) and z["clusters"].tolist() == ["spk0000000"]


def test_staged_outputs_never_mix_two_runs_when_killed_while_publishing(tmp_path, monkeypatch):
    """A kill between the renames leaves outputs missing, never a new utt2spk beside an old spk2utt."""

    class Killed(BaseException):
        pass

    def run(tag: str) -> None:
        with StagedOutputs() as out:
            out.file(tmp_path / "utt2spk").write_text(f"{tag}\n")
            out.file(tmp_path / "spk2utt").write_text(f"{tag}\n")

    run("old")
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(Killed()) if str(b).endswith("spk2utt") else real(a, b))
    with pytest.raises(Killed):
        run("new")
    monkeypatch.setattr(os, "replace", real)
    present = {p.name: p.read_text() for p in tmp_path.iterdir() if not p.name.startswith(".")}
    assert present == {"utt2spk": "new\n"}  # spk2utt missing, not the old one
