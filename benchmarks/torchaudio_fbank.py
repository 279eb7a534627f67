"""Reference fbank features from ``torchaudio.compliance.kaldi.fbank``, for the equivalence checks.

Runs in the kaldi-check venv (``bash benchmarks/setup_kaldi_check_venv.sh``; torch and torchaudio
are never dependencies of unspeech), or in any interpreter that imports torchaudio::

    python benchmarks/torchaudio_fbank.py REQUEST.npz RESULT.npz

``REQUEST.npz`` holds ``jobs`` (a JSON list of ``{"key": str, "wave": str, "options": {...},
"dtype": "float32" | "float64"}``; the options are torchaudio's keyword arguments, which carry
Kaldi's option names) and one 1-D array per ``wave`` name, on Kaldi's 16-bit integer scale.
``RESULT.npz`` gets one ``(frames, dim)`` float32 array per job ``key``, computed in the job's
dtype: float32 as Kaldi computes, float64 for a high-precision yardstick.

:func:`request_reference` is the client side (needs only numpy): the test
``tests/audio/test_fbank_torchaudio.py`` and ``benchmarks/fbank_equivalence.py`` call it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def request_reference(python: str, jobs, workdir, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Run this script under ``python`` for ``jobs`` and return ``{key: (frames, dim) float32}``.

    ``jobs``: ``(key, waveform, options)`` with the waveform 1-D on Kaldi's 16-bit scale and the
    options a dict of torchaudio keyword arguments; ``dtype`` is the precision torchaudio computes
    in. Raises RuntimeError with the script's stderr.
    """
    workdir = Path(workdir)
    waves, spec = {}, []
    for i, (key, wave, options) in enumerate(jobs):
        waves[f"w{i}"] = np.asarray(wave, np.float64)
        spec.append({"key": key, "wave": f"w{i}", "options": options, "dtype": dtype})
    np.savez(workdir / "request.npz", jobs=np.str_(json.dumps(spec)), **waves)
    proc = subprocess.run([python, __file__, str(workdir / "request.npz"), str(workdir / "result.npz")],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} {__file__} failed: {proc.stderr[-2000:]}")
    with np.load(workdir / "result.npz") as res:
        return {k: res[k] for k in res.files}


def main(request: str, result: str) -> int:
    import torch
    from torchaudio.compliance import kaldi

    with np.load(request) as req:
        jobs = json.loads(str(req["jobs"]))
        waves = {name: req[name] for name in req.files if name != "jobs"}
    out = {}
    with torch.no_grad():
        for job in jobs:
            wave = torch.from_numpy(np.asarray(waves[job["wave"]], dtype=job.get("dtype", "float32")))[None, :]
            out[job["key"]] = kaldi.fbank(wave, **job["options"]).numpy().astype(np.float32)
    np.savez(result, **out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
