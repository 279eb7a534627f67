"""Advisory output locks: one holder at a time, the holder named, nothing left behind."""

import os

import pytest

from unspeech._fileutil import hold_lock, output_lock
from unspeech.errors import ConfigError


def test_a_second_holder_is_refused_and_the_lock_file_goes_with_the_lock(tmp_path):
    out = tmp_path / "exp" / "utt2spk"
    with output_lock(out, "cluster run") as lock:
        assert lock == tmp_path / "exp" / ".utt2spk.lock"
        assert f"pid {os.getpid()} on " in lock.read_text()
        with pytest.raises(ConfigError, match=r"utt2spk is being written by another cluster run \(pid \d+ on .* since "):
            with output_lock(out, "cluster run"):
                pass
    assert os.listdir(tmp_path / "exp") == []
    with output_lock(out, "cluster run"):  # free again
        pass


def test_a_lock_file_left_by_a_killed_holder_is_taken_over(tmp_path):
    stale = tmp_path / ".lock"
    stale.write_text("pid 1 on elsewhere since 2026-01-01 00:00:00\n")  # nobody holds it
    with hold_lock(stale, lambda holder: RuntimeError(holder)):
        assert f"pid {os.getpid()}" in stale.read_text()
    assert not stale.exists()


def test_a_lock_on_a_removed_file_is_not_kept(tmp_path, monkeypatch):
    """A process that opened the lock file just before its last holder removed it locks the new file."""
    import builtins

    path = tmp_path / ".lock"
    real_open = builtins.open
    opened = []

    def open_then_lose_it(file, *args, **kwargs):
        fh = real_open(file, *args, **kwargs)
        if os.fspath(file) == os.fspath(path) and not opened:
            opened.append(fh)
            os.unlink(path)  # the previous holder's exit, between our open and our flock
        return fh

    monkeypatch.setattr(builtins, "open", open_then_lose_it)
    with hold_lock(path, lambda holder: RuntimeError(holder)):
        assert path.exists() and opened[0].closed  # the first, removed file was given up
    assert not path.exists()
