"""Kaldi data dir tables, RTTM and UEM: C-locale order, whole speaker ids, validation."""

import pytest

from unspeech import datadir
from unspeech.errors import DataError


def test_speaker_ids_are_never_truncated(tmp_path):
    utt2spk = {"sp0.9-spk1-u1": "sp0.9-spk1", "spk1-u1": "spk1", "sp1.1-spk1-u1": "sp1.1-spk1"}
    datadir.write_utt2spk(tmp_path / "utt2spk", utt2spk)
    assert datadir.read_utt2spk(tmp_path / "utt2spk") == utt2spk
    spk2utt = datadir.utt2spk_to_spk2utt(utt2spk)
    assert len(spk2utt) == 3
    assert spk2utt["spk1"] == ["spk1-u1"]


def test_c_locale_order(tmp_path):
    table = {"b": "x", "B": "y", "a-1": "z", "a_1": "w", "ä": "v"}
    datadir.write_utt2spk(tmp_path / "utt2spk", table)
    keys = [line.split()[0] for line in (tmp_path / "utt2spk").read_text(encoding="utf-8").splitlines()]
    assert keys == ["B", "a-1", "a_1", "b", "ä"]


def test_round_trips(tmp_path):
    segs = {"r1-0001": datadir.Segment("r1", 0.0, 1.5), "r1-0002": datadir.Segment("r1", 2.0, 3.25)}
    datadir.write_segments(tmp_path / "segments", segs)
    assert datadir.read_segments(tmp_path / "segments") == segs
    wav = {"r1": "sox in.wav -t wav - |", "r2": "/data/r2.flac"}
    datadir.write_wav_scp(tmp_path / "wav.scp", wav)
    assert datadir.read_wav_scp(tmp_path / "wav.scp") == wav
    turns = [datadir.Turn("rec", "1", 0.5, 1.25, "A"), datadir.Turn("rec", "1", 2.0, 0.5, "B")]
    datadir.write_rttm(tmp_path / "x.rttm", turns)
    assert (tmp_path / "x.rttm").read_text().splitlines()[0] == "SPEAKER rec 1 0.500 1.250 <NA> <NA> A <NA> <NA>"
    assert datadir.read_rttm(tmp_path / "x.rttm") == turns
    datadir.write_uem(tmp_path / "x.uem", {"rec": [(0.0, 10.0)]})
    assert datadir.read_uem(tmp_path / "x.uem") == {"rec": [(0.0, 10.0)]}
    datadir.write_text(tmp_path / "text", {"u1": "hello big world"})
    assert datadir.read_text(tmp_path / "text") == {"u1": "hello big world"}


def test_validate_datadir(tmp_path):
    datadir.write_utt2spk(tmp_path / "utt2spk", {"s1-a": "s1", "s2-b": "s2"})
    datadir.write_spk2utt(tmp_path / "spk2utt", {"s1": ["s1-a"], "s2": ["s2-b"]})
    datadir.write_wav_scp(tmp_path / "wav.scp", {"s1-a": "a.wav", "s2-b": "b.wav"})
    datadir.validate_datadir(tmp_path)
    (tmp_path / "spk2utt").write_text("s1 s1-a s2-b\n")
    with pytest.raises(DataError, match="spk2utt is not the inverse"):
        datadir.validate_datadir(tmp_path)
    (tmp_path / "utt2spk").write_text("s2-b s2\ns1-a s1\n")
    with pytest.raises(DataError, match="utt2spk: not sorted in C-locale order"):
        datadir.validate_datadir(tmp_path)


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="file not found: .*nope"):
        datadir.read_utt2spk(tmp_path / "nope")
    (tmp_path / "utt2spk").write_text("u1 s1\nu1 s2\n")
    with pytest.raises(DataError, match=r"utt2spk:2: key 'u1' appears twice"):
        datadir.read_utt2spk(tmp_path / "utt2spk")
    (tmp_path / "segments").write_text("u1 r1 2.0 1.0\n")
    with pytest.raises(DataError, match=r"utterance 'u1': bad span"):
        datadir.read_segments(tmp_path / "segments")
    (tmp_path / "x.rttm").write_text("SPEAKER rec 1 abc 1.0 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(DataError, match=r"x\.rttm:1: onset/duration must be numbers"):
        datadir.read_rttm(tmp_path / "x.rttm")
    with pytest.raises(DataError, match="invalid key"):
        datadir.write_utt2spk(tmp_path / "out", {"has space": "s"})
    assert not (tmp_path / "out").exists()
