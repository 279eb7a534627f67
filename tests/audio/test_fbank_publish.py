"""A data dir is published as one set: a kill at any rename leaves the old set, a folder without
feats.scp (refused by readers and by Kaldi's scripts), or the new set, never a mix."""

from __future__ import annotations

import os

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from unspeech import datadir, fbank


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the publishing code."""


def _recordings(folder, names, seed):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    wav = {}
    for name in names:
        path = folder / f"{name}.wav"
        sf.write(path, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000, subtype="PCM_16")
        wav[name] = str(path)
    return wav


def _state(out) -> str:
    """"old", "new" or "incomplete" (no feats.scp); fails on a data dir that mixes two runs."""
    if not (out / "feats.scp").exists():
        return "incomplete"
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    utts = sorted(feats)
    for name in ("utt2spk", "utt2num_frames", "utt2dur"):
        assert sorted(datadir.read_table(out / name, min_fields=1)) == utts, name
    frames = {u: int(n[0]) for u, n in datadir.read_table(out / "utt2num_frames").items()}
    assert all(feats[u].shape[0] == frames[u] for u in utts)
    datadir.validate_datadir(out)
    return {("a", "b"): "old", ("a", "b", "c"): "new"}[tuple(utts)]


def test_a_kill_at_any_rename_never_mixes_two_runs(tmp_path, monkeypatch):
    src = tmp_path / "src"
    old_wav = _recordings(src, ["a", "b"], 1)
    new_wav = _recordings(tmp_path / "src2", ["a", "b", "c"], 2)
    out = tmp_path / "data"
    seen = []
    for kill_at in range(1, 20):
        fbank.make_fbank_datadir(old_wav, out)
        assert _state(out) == "old"
        real = os.replace
        count = [0]

        def replace(src_path, dst, _real=real, _count=count, _kill=kill_at):
            if os.path.dirname(os.path.abspath(dst)).startswith(os.path.abspath(out)):  # a publishing rename
                _count[0] += 1
                if _count[0] == _kill:
                    raise _Killed
            return _real(src_path, dst)

        monkeypatch.setattr(os, "replace", replace)
        try:
            fbank.make_fbank_datadir(new_wav, out)
            finished = True
        except _Killed:
            finished = False
        monkeypatch.setattr(os, "replace", real)
        seen.append(_state(out))
        if finished:
            assert seen[-1] == "new"
            break
    assert seen[0] == "incomplete" and seen[-1] == "new" and set(seen) <= {"incomplete", "new"}
    assert len(seen) >= 8  # every table's rename was a kill point


def test_a_second_writer_of_the_same_data_dir_is_refused(tmp_path, capsys):
    from unspeech._fileutil import output_lock
    from unspeech.cli import main as cli_main

    wav = _recordings(tmp_path / "src", ["a"], 3)
    datadir.write_wav_scp(tmp_path / "wav.scp", wav)
    out = tmp_path / "data" / "train"
    with output_lock(out, "fbank run"):  # another run writing data/train
        assert cli_main(["fbank", "--wav-scp", str(tmp_path / "wav.scp"), "--out-dir", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "data/train is being written by another fbank run (pid" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert cli_main(["fbank", "--wav-scp", str(tmp_path / "wav.scp"), "--out-dir", str(out), "--quiet"]) == 0
    assert _state_utts(out) == ["a"]


def _state_utts(out):
    return sorted(kaldiio.load_scp(str(out / "feats.scp")))
