"""`make demo`'s script on the bundled data: every announced output exists and scores are printed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_script_writes_every_output(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(out), MPLBACKEND="Agg")
    res = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    for rel in ("ivector/ivector_online.scp", "ivector/ivector_period", "spkvec/utt_vectors.scp", "cluster/utt2spk",
                "cluster/spk2utt", "cluster/results.csv", "cluster/clusters.png", "diarize/conv001.rttm",
                "diarize/conv001.vad", "diarize/conv001.png"):
        assert (out / rel).is_file() and (out / rel).stat().st_size > 0, rel
    assert "ARI:" in res.stdout and "NMI" in res.stdout
    assert "DER%" in res.stdout
    assert len((out / "cluster" / "utt2spk").read_text().splitlines()) == 240
    assert "== done. Outputs:" in res.stderr
    # every printed figure is explained (issue 15): which DER table is which, what scored_s and ARI/NMI are
    assert "overlapped speech included (--ref)" in res.stderr and "overlapped speech left out (--skip-overlap)" in res.stderr
    assert res.stdout.count("# scored_s: reference speech scored") == 2
    assert "ARI and NMI compare the clusters with the true speakers" in res.stderr
    # nothing a newcomer would take for an error
    for noise in ("I0000", "E0000", "absl", "Traceback", "WARNING: All log messages"):
        assert noise not in res.stdout + res.stderr, noise
