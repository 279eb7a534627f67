"""Errors a newcomer can act on (issue 15): one line naming the file or flag, exit code 1, and
nothing written before the inputs are checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from unspeech.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
FEATS = REPO / "data" / "demo_utts" / "feats.ark"
CONV = REPO / "data" / "demo_conversations" / "wav" / "conv000.flac"


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_gen_feat_with_a_missing_train_dir_says_it_does_not_exist(tmp_path, capsys):
    out = tmp_path / "exp" / "ivector_online"
    assert cli_main(["gen-feat", "--train_dir", str(tmp_path / "no_such_run"), "--filelist", str(FEATS),
                     "--output_feat_file", str(out)]) == 1
    assert _error_lines(capsys) == [f"unspeech gen-feat: error: run dir {tmp_path / 'no_such_run'} does not exist"]
    assert list(tmp_path.iterdir()) == []


def test_seed_gen_feat_with_a_missing_train_dir_says_it_does_not_exist(tmp_path):
    proc = subprocess.run([sys.executable, "unsup_model_neg.py", "--gen_feat", "--train_dir", str(tmp_path / "gone"),
                           "--filelist", str(FEATS), "--output_feat_file", str(tmp_path / "ivec")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"unsup_model_neg.py: error: run dir {tmp_path / 'gone'} does not exist"
    assert list(tmp_path.iterdir()) == []


def test_diarize_backend_uisrnn_without_a_model_names_the_flag(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_main(["diarize", str(CONV), "-o", str(out), "--backend", "uisrnn"]) == 1
    lines = _error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("unspeech diarize: error: --backend uisrnn needs a trained "
                                                   "UIS-RNN model: add --uisrnn MODEL"), lines
    assert not out.exists()
