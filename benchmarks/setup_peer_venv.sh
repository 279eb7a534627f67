#!/usr/bin/env bash
# Create the venv of the public d-vector peer used by benchmarks/real_speech_bench.py:
# Resemblyzer (GE2E d-vectors, pretrained weights shipped inside its wheel) + spectralcluster.
# It is a separate venv on purpose: torch and resemblyzer are never dependencies of unspeech.
#
#   bash benchmarks/setup_peer_venv.sh                 # creates exp/peer_venv (git-ignored)
#   PEER_VENV=/tmp/peer bash benchmarks/setup_peer_venv.sh
#
# Environment:
#   PEER_VENV     where the venv goes (default: exp/peer_venv under the repository root)
#   PYTHON        interpreter that creates it (default: python3; torch wheels need 3.9-3.13)
#   TORCH_REQ     the torch requirement, installed first so that resolving resemblyzer's `torch`
#                 does not pull the multi-GB CUDA wheels (default: torch==2.13.0+cpu, found in
#                 /opt/wheels through pip's find-links on the project machines; elsewhere give
#                 e.g. TORCH_REQ="torch --index-url https://download.pytorch.org/whl/cpu" or a
#                 wheel path)
#   WEBRTCVAD_REQ resemblyzer imports `webrtcvad`; the original `webrtcvad` is a source
#                 distribution that needs a C compiler and Python headers. The default,
#                 `webrtcvad-wheels`, is a drop-in binary build of the same module (same import
#                 name), so nothing is compiled. Set WEBRTCVAD_REQ=webrtcvad to build the original.
#
# resemblyzer is installed with --no-deps and its run-time needs are listed here: its metadata
# asks for `webrtcvad` (the source build) and `typing` (the old backport sdist, a shadow of the
# standard library on Python 3 that is best kept out). Nothing is downloaded at run time: the GE2E weights (pretrained.pt, 17 MB) are
# part of the resemblyzer wheel; the last step checks that VoiceEncoder("cpu") loads offline.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEER_VENV="${PEER_VENV:-$ROOT/exp/peer_venv}"
PYTHON="${PYTHON:-python3}"
TORCH_REQ="${TORCH_REQ:-torch==2.13.0+cpu}"
WEBRTCVAD_REQ="${WEBRTCVAD_REQ:-webrtcvad-wheels}"

if [ ! -x "$PEER_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$PEER_VENV"
fi
PIP=("$PEER_VENV/bin/python" -m pip install -q --disable-pip-version-check)
# shellcheck disable=SC2086  # TORCH_REQ may carry pip options (--index-url ...)
"${PIP[@]}" $TORCH_REQ
"${PIP[@]}" "$WEBRTCVAD_REQ" librosa numpy scipy soundfile spectralcluster
"${PIP[@]}" --no-deps resemblyzer==0.1.4

# offline check: no network access is needed (or allowed) from here on
HF_HUB_OFFLINE=1 "$PEER_VENV/bin/python" - <<'EOF'
import torch
from resemblyzer import VoiceEncoder
import spectralcluster, webrtcvad  # noqa: F401

encoder = VoiceEncoder("cpu", verbose=False)
print(f"peer venv ok: torch {torch.__version__}, resemblyzer VoiceEncoder loaded offline "
      f"({sum(p.numel() for p in encoder.parameters())} parameters)")
EOF
