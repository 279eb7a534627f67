#!/usr/bin/env bash
# Create the venv that computes reference fbank features with torchaudio.compliance.kaldi.fbank,
# used by tests/audio/test_fbank_torchaudio.py and benchmarks/fbank_equivalence.py. A separate venv
# on purpose: torch and torchaudio are never dependencies of unspeech.
#
#   bash benchmarks/setup_kaldi_check_venv.sh            # creates exp/kaldi_check_venv (git-ignored)
#   KALDI_CHECK_VENV=/tmp/kc bash benchmarks/setup_kaldi_check_venv.sh
#
# Environment:
#   KALDI_CHECK_VENV  where the venv goes (default: exp/kaldi_check_venv under the repository root);
#                     the test finds it there, or through UNSPEECH_KALDI_CHECK_PYTHON=<venv>/bin/python
#   PYTHON            interpreter that creates it (default: python3)
#   TORCH_REQ         the torch requirement (default: torch==2.13.0+cpu, found in /opt/wheels through
#                     pip's find-links on the project machines; elsewhere e.g.
#                     TORCH_REQ="torch --index-url https://download.pytorch.org/whl/cpu")
#   TORCHAUDIO_REQ    default: torchaudio==2.11.1 (from PyPI), installed with --no-deps
#
# PyPI's torchaudio wheels carry compiled extensions linked against PyPI's CUDA build of one torch
# version; with the CPU torch they fail to load and `import torchaudio` stops. The Kaldi-compliance
# functions are plain Python on torch, and torchaudio imports without its extension libraries when
# they are absent, so this script removes them from this venv (the venv is for fbank references
# only). Measured on the project machine (2 cores): about 50 s, about 1 GB on disk.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KALDI_CHECK_VENV="${KALDI_CHECK_VENV:-$ROOT/exp/kaldi_check_venv}"
PYTHON="${PYTHON:-python3}"
TORCH_REQ="${TORCH_REQ:-torch==2.13.0+cpu}"
TORCHAUDIO_REQ="${TORCHAUDIO_REQ:-torchaudio==2.11.1}"

if [ ! -x "$KALDI_CHECK_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$KALDI_CHECK_VENV"
fi
PIP=("$KALDI_CHECK_VENV/bin/python" -m pip install -q --disable-pip-version-check)
# shellcheck disable=SC2086  # TORCH_REQ may carry pip options (--index-url ...)
"${PIP[@]}" $TORCH_REQ numpy
"${PIP[@]}" --no-deps "$TORCHAUDIO_REQ"
SITE="$("$KALDI_CHECK_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
find "$SITE/torchaudio/lib" -name '*.so' -delete 2>/dev/null || true

"$KALDI_CHECK_VENV/bin/python" - <<'EOF'
import torch
import torchaudio
from torchaudio.compliance import kaldi

feats = kaldi.fbank(torch.zeros(1, 16000).normal_(0, 1000), num_mel_bins=40, dither=0.0)
assert tuple(feats.shape) == (98, 40), feats.shape
print(f"kaldi-check venv ok: torch {torch.__version__}, torchaudio {torchaudio.__version__}")
EOF
