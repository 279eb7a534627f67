""".ci/install-system-deps (issue 15): works as root without sudo, says what to do when neither is there,
and installs festival with a voice (the bundled demo data was made with festival's kal_diphone)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "install-system-deps"


def _fake_bin(tmp_path: Path, uid: int, installed: bool) -> Path:
    """A PATH with stub id/dpkg/apt-get (apt-get records its arguments) and no sudo."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {"id": f"echo {uid}", "dpkg": "exit 0" if installed else "exit 1",
             "apt-get": f'echo "$@" >> {tmp_path}/apt.log'}
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("installed", [True, False])
def test_root_needs_no_sudo(tmp_path, installed):
    env = dict(os.environ, PATH=str(_fake_bin(tmp_path, 0, installed)))
    proc = subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "apt.log").read_text() if (tmp_path / "apt.log").exists() else ""
    if installed:
        assert log == ""
    else:
        assert "update" in log and "festival festvox-kallpc16k" in log


def test_a_user_without_sudo_is_told_to_run_it_as_root(tmp_path):
    env = dict(os.environ, PATH=str(_fake_bin(tmp_path, 1000, False)))
    proc = subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "install-system-deps: run it as root (sudo is not installed)"
    assert not (tmp_path / "apt.log").exists()
