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


def _jobs(speech: np.ndarray) -> list[tuple[str, np.ndarray, FbankOptions]]:
    jobs = []
    for conf in CONFS:
        opts = FbankOptions.from_kaldi_config(conf)
        jobs.append((conf.stem, audio.resample(speech, audio.TARGET_RATE, int(opts.sample_frequency)), opts))
    for window in ("hanning", "rectangular"):  # torchaudio has no "sine" window
        jobs.append((f"window_{window}", speech, FbankOptions(window_type=window)))
    # linear mel energies (up to ~1e9): compared relatively
    jobs.append(("linear", speech, FbankOptions(use_log_fbank=False, window_type="hamming")))
    return jobs


@pytest.fixture(scope="module")
def reference(speech, tmp_path_factory) -> dict[str, np.ndarray]:
    """torchaudio's features of every job, from one run of the reference interpreter."""
    return torchaudio_fbank(_jobs(speech), tmp_path_factory.mktemp("torchaudio"))


def test_matches_torchaudio_on_kaldi_configs(speech, reference):
    diffs = {}
    for key, samples, opts in _jobs(speech):
        ours = fbank.compute_fbank(samples, int(opts.sample_frequency), options=opts, name=key)
        assert ours.shape == reference[key].shape, key
        assert ours.shape[1] == opts.dim
        if opts.use_log_fbank:
            diffs[key] = float(np.abs(ours - reference[key]).max())
        else:
            diffs[key] = float((np.abs(ours - reference[key]) / np.maximum(np.abs(reference[key]), 1e-6)).max())
    print("max abs (linear: relative) difference to torchaudio:", json.dumps(diffs, indent=1))
    assert {k for k, d in diffs.items() if d > TOLERANCE} == set(), diffs
    assert len(diffs) == len(CONFS) + 3 >= 9


def test_reference_can_tell_options_apart(speech, reference):
    """The check has teeth: our default options against the Hamming 64-8000 Hz reference differ by far more."""
    assert np.abs(fbank.compute_fbank(speech) - reference["hamming_64_8000"]).max() > 100 * TOLERANCE
