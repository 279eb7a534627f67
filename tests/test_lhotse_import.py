"""Data dirs the project writes import into lhotse (``lhotse.kaldi.load_kaldi_data_dir``, what
``lhotse kaldi import`` runs) and their wav.scp pipes play through lhotse.

lhotse needs torch (measured: a venv with CPU torch 2.13 + lhotse 1.33 takes about 1.0 GB), so it is
no dependency of unspeech, not even of the ``test`` extra. The test runs lhotse in a separate Python:
``UNSPEECH_LHOTSE_PYTHON``, else the Kaldi-check venv ``exp/kaldi_check_venv`` when it has lhotse
(``bash benchmarks/setup_lhotse_check.sh`` adds it, 7 s and 37 MB on top of the torch venv; CI does),
else this interpreter if it imports lhotse; it skips when none does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unspeech import datadir, fbank

ROOT = Path(__file__).resolve().parents[1]


def _lhotse_python() -> str | None:
    candidates = [os.environ.get("UNSPEECH_LHOTSE_PYTHON"), str(ROOT / "exp" / "kaldi_check_venv" / "bin" / "python"),
                  sys.executable]
    for python in candidates:
        if python and os.path.exists(python):
            probe = subprocess.run([python, "-c", "import lhotse"], capture_output=True)
            if probe.returncode == 0:
                return python
    return None


LHOTSE_PYTHON = _lhotse_python()
pytestmark = pytest.mark.skipif(LHOTSE_PYTHON is None or shutil.which("sox") is None,
                                reason="needs lhotse (see benchmarks/setup_lhotse_check.sh) and sox")

_IMPORT = textwrap.dedent("""
    import json, sys
    from lhotse.kaldi import load_kaldi_data_dir
    out = {}
    for path in sys.argv[1:]:
        recordings, supervisions, _ = load_kaldi_data_dir(path, sampling_rate=16000)
        played = {}
        for rec in recordings:
            if rec.id.startswith("sp0.9-") or rec.id.startswith("conv000"):
                played[rec.id] = [rec.load_audio().shape[1], rec.num_samples]
        out[path] = {"recordings": len(recordings), "supervisions": len(supervisions),
                     "speakers": sorted({s.speaker for s in supervisions}), "played": played}
    print(json.dumps(out))
""")


def _noise(n: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_lhotse_imports_our_data_dirs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "r1.wav", _noise(32000, 1), 16000, subtype="PCM_16")
    sf.write(src / "r2.flac", _noise(40000, 2), 16000, subtype="PCM_16")
    wav = {"r1": str(src / "r1.wav"), "r2": str(src / "r2.flac")}
    segs = {"a-r1-0": datadir.Segment("r1", 0.2, 1.7), "b-r2-0": datadir.Segment("r2", 0.0, 2.4)}
    u2s = {u: u.split("-")[0] for u in segs}
    text = {u: "some words" for u in segs}
    fbank.make_fbank_datadir(wav, tmp_path / "seg_sp", segments=segs, utt2spk=u2s, text=text, speed_perturb=True)
    fbank.make_fbank_datadir(wav, tmp_path / "whole_sp", speed_perturb=True)
    dirs = [tmp_path / "seg_sp", tmp_path / "whole_sp", ROOT / "data" / "demo_conversations"]
    proc = subprocess.run([LHOTSE_PYTHON, "-c", _IMPORT, *map(str, dirs)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    seg_sp, whole_sp, demo = (result[str(d)] for d in dirs)
    assert (seg_sp["recordings"], seg_sp["supervisions"]) == (6, 6)
    assert seg_sp["speakers"] == ["a", "b", "sp0.9-a", "sp0.9-b", "sp1.1-a", "sp1.1-b"]
    assert (whole_sp["recordings"], whole_sp["supervisions"]) == (6, 6)
    assert demo["recordings"] == 3 and demo["supervisions"] == len(datadir.read_utt2spk(dirs[2] / "utt2spk"))
    # the sox speed pipes play through lhotse, as long as reco2dur says (within a few samples)
    for info in (seg_sp, whole_sp, demo):
        assert info["played"] and all(abs(n - expected) <= 16 for n, expected in info["played"].values())
