"""Our fbank against ``torchaudio.compliance.kaldi.fbank`` with the same Kaldi options (within 1e-3).

torchaudio is not a dependency: the reference runs in the kaldi-check venv
(``bash benchmarks/setup_kaldi_check_venv.sh``, which CI runs), found at ``exp/kaldi_check_venv`` or
through ``UNSPEECH_KALDI_CHECK_PYTHON``, or in this interpreter when it imports torchaudio. Without
any of them the test skips and says how to get one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from unspeech import audio, fbank
from unspeech.fbank import KALDI_SAMPLE_SCALE
from unspeech.fbank_options import FbankOptions

ROOT = Path(__file__).resolve().parents[2]
CONFS = sorted((Path(__file__).parent / "kaldi_confs").glob("*.conf"))
TOLERANCE = 1e-3  # max abs difference in log-mel units


def _reference_python() -> str | None:
    given = os.environ.get("UNSPEECH_KALDI_CHECK_PYTHON")
    if given:
        return given
    venv = ROOT / "exp" / "kaldi_check_venv" / "bin" / "python"
    if venv.exists():
        return str(venv)
    return sys.executable if importlib.util.find_spec("torchaudio") else None


def _client():
    spec = importlib.util.spec_from_file_location("torchaudio_fbank", ROOT / "benchmarks" / "torchaudio_fbank.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchaudio_fbank(jobs: list[tuple[str, np.ndarray, FbankOptions]], tmp_path: Path) -> dict[str, np.ndarray]:
    """``{key: features}`` from torchaudio for ``(key, samples in [-1, 1], options)`` jobs."""
    python = _reference_python()
    if python is None:
        pytest.skip("no torchaudio: run `bash benchmarks/setup_kaldi_check_venv.sh` (or set UNSPEECH_KALDI_CHECK_PYTHON)")
    scaled = [(key, samples * np.float32(KALDI_SAMPLE_SCALE), dataclasses.asdict(opts)) for key, samples, opts in jobs]
    return _client().request_reference(python, scaled, tmp_path)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """3 s of the bundled conversations followed by 0.1 s of digital silence (16 kHz)."""
    samples = audio.load_audio(str(ROOT / "data" / "demo_conversations" / "wav" / "conv000.flac"), 1.0, 4.0)
    return np.concatenate([samples, np.zeros(1600, np.float32)])


def test_matches_torchaudio_on_kaldi_configs(tmp_path, speech):
    jobs = []
    for conf in CONFS:
        opts = FbankOptions.from_kaldi_config(conf)
        rate = int(opts.sample_frequency)
        jobs.append((conf.stem, audio.resample(speech, audio.TARGET_RATE, rate), opts))
    for window in ("hanning", "rectangular"):  # torchaudio has no "sine" window
        jobs.append((f"window_{window}", speech, FbankOptions(window_type=window)))
    reference = torchaudio_fbank(jobs, tmp_path)
    diffs = {}
    for key, samples, opts in jobs:
        ours = fbank.compute_fbank(samples, int(opts.sample_frequency), options=opts, name=key)
        assert ours.shape == reference[key].shape, key
        assert ours.shape[1] == opts.dim
        diffs[key] = float(np.abs(ours - reference[key]).max())
    print("max abs difference to torchaudio:", json.dumps(diffs, indent=1))
    assert {k for k, d in diffs.items() if d > TOLERANCE} == set(), diffs
    assert len(diffs) == len(CONFS) + 2 >= 8


def test_reference_can_tell_options_apart(tmp_path, speech):
    """The check has teeth: a config computed with another window is far outside the tolerance."""
    povey = FbankOptions()
    hamming = FbankOptions(window_type="hamming", low_freq=64, high_freq=8000)
    reference = torchaudio_fbank([("hamming", speech, hamming)], tmp_path)["hamming"]
    assert np.abs(fbank.compute_fbank(speech, options=povey) - reference).max() > 100 * TOLERANCE
