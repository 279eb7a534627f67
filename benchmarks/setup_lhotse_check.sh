#!/usr/bin/env bash
# Add lhotse to the Kaldi-check venv, for tests/test_lhotse_import.py (every data dir unspeech writes
# must import with lhotse.kaldi.load_kaldi_data_dir, what `lhotse kaldi import` runs).
#
#   bash benchmarks/setup_lhotse_check.sh          # exp/kaldi_check_venv, made first if missing
#
# lhotse requires torch, so it is no dependency of unspeech, not even of the test extra: measured on
# the project machine, CPU torch 2.13 + lhotse 1.33 and their dependencies take about 1.0 GB
# (torch 754 MB, lhotse 8 MB). The venv is the one benchmarks/setup_kaldi_check_venv.sh makes (CPU
# torch, torchaudio); this adds lhotse and urllib3 (lhotse 1.33 imports it without declaring it):
# about 7 s and 37 MB on top of it. .ci/run runs it.
#
# Environment:
#   KALDI_CHECK_VENV  the venv (default: exp/kaldi_check_venv under the repository root); the test
#                     finds it there, or through UNSPEECH_LHOTSE_PYTHON=<venv>/bin/python
#   LHOTSE_REQ        the lhotse requirement (default: lhotse==1.33.0)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KALDI_CHECK_VENV="${KALDI_CHECK_VENV:-$ROOT/exp/kaldi_check_venv}"
export KALDI_CHECK_VENV
[ -x "$KALDI_CHECK_VENV/bin/python" ] || bash "$ROOT/benchmarks/setup_kaldi_check_venv.sh"
"$KALDI_CHECK_VENV/bin/python" -m pip install -q --disable-pip-version-check "${LHOTSE_REQ:-lhotse==1.33.0}" urllib3
"$KALDI_CHECK_VENV/bin/python" -c "import lhotse; print(f'lhotse {lhotse.__version__} in $KALDI_CHECK_VENV')"
