#!/usr/bin/env bash
# Regenerate the bundled demo data from scratch (same seed -> same files):
#   data/demo_utts/           24 synthetic speakers x 10 utterances as Kaldi-compressed 40-dim fbank
#                             (feats.ark, utt2spk, spk2utt, utt2num_frames, text, synth.json)
#   data/demo_conversations/  3 conversations of 2-4 of those speakers: 16 kHz flac, reference
#                             rttm, uem, and the turns as a Kaldi data dir (segments, utt2spk, ...)
# Both products use the same seed and speaker pool, so spk007 in a conversation is the spk007 of
# demo_utts. Byte-identical output needs the same espeak-ng/flite/festival/sox/libsndfile versions.
#
# Usage: scripts/make_demo_data.sh            (from anywhere; writes into the repository's data/)
#        PYTHON=python3 NJ=4 scripts/make_demo_data.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
NJ=${NJ:-2}
SEED=2024
SPEAKERS=24
unspeech() { "$PYTHON" -m unspeech.cli "$@"; }

# the voices drawn from decide the output: say so when they differ from those of the bundled data
"$PYTHON" - <<'EOF'
import json, os, sys
from unspeech.synth import available_engines
if os.path.exists("data/demo_utts/synth.json"):
    want = {(e, v) for e, vs in json.load(open("data/demo_utts/synth.json"))["engines"].items() for v in vs}
    have = {(e, v) for e, vs in available_engines().items() for v in vs}
    if want != have:
        diff = [f"{e} {v} (missing)" for e, v in sorted(want - have)] + [f"{e} {v} (extra)" for e, v in sorted(have - want)]
        print(f"make_demo_data.sh: warning: the TTS voices differ from those of the bundled data, so the output "
              f"will too: {', '.join(diff[:6])}{' ...' if len(diff) > 6 else ''} (.ci/install-system-deps installs "
              f"them)", file=sys.stderr)
EOF

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
unspeech synth utterances --out-dir "$work/utts" --num-speakers "$SPEAKERS" --utts-per-speaker 10 \
    --seed "$SEED" --nj "$NJ" --quiet
unspeech fbank --wav-scp "$work/utts/wav.scp" --utt2spk "$work/utts/utt2spk" --out-dir "$work/fbank" \
    --compress --nj "$NJ" --quiet
rm -rf data/demo_utts
mkdir -p data/demo_utts
cp "$work/fbank/feats.ark" "$work/fbank/utt2spk" "$work/fbank/spk2utt" "$work/fbank/utt2num_frames" \
   "$work/utts/text" "$work/utts/synth.json" data/demo_utts/

# wav.scp paths are relative to the repository root (--relative-paths: the repository can move; Kaldi
# convention: relative to where you run), as sox decoding pipes Kaldi's wav reader accepts.
rm -rf data/demo_conversations
unspeech synth conversations --out-dir data/demo_conversations --num-conversations 3 \
    --num-speakers "$SPEAKERS" --speakers 2 4 --turns 14 --overlap-prob 0.15 --seed "$SEED" \
    --nj "$NJ" --relative-paths --quiet

echo "demo data written in $(( $(date +%s) - start )) s:"
du -sh data/demo_utts data/demo_conversations
