#!/usr/bin/env bash
# `make demo`: the main jobs of unspeech on the bundled data, with the bundled model.
#
#   1. export context embeddings of data/demo_utts (held-out synthetic speakers) as Kaldi features:
#      frame-level ivector_online.scp + ivector_period, and one speaker vector per utterance
#   2. cluster the utterances into pseudo-speakers (cluster.py): utt2spk, scores against the gold
#      speakers, a picture of the clusters
#   3. diarize a bundled conversation (unspeech diarize): RTTM, the vad format, a timeline picture,
#      and its DER against the reference RTTM (unspeech score)
# Outputs go to OUT (default exp/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-exp/demo}
MODEL=${MODEL:-unspeech/models/unspeech_dnn_w32_libri200}
CONV=${CONV:-conv001}
unspeech() { "$PYTHON" -m unspeech.cli "$@"; }
say() { printf '\n== %s\n' "$*" >&2; }
mkdir -p "$OUT"

say "1/3 feature export with $MODEL"
"$PYTHON" unsup_model_neg.py --gen_feat --train_dir "$MODEL" --filelist data/demo_utts/feats.ark \
    --output_feat_file "$OUT/ivector/ivector_online"
"$PYTHON" unsup_model_neg.py --gen_feat --train_dir "$MODEL" --filelist data/demo_utts/feats.ark \
    --generate_speaker_vectors --output_feat_file "$OUT/spkvec/utt_vectors"

say "2/3 clustering the 240 demo utterances (24 held-out synthetic speakers) into pseudo-speakers"
note() { printf '   %s\n' "$@" >&2; }
note "ARI and NMI compare the clusters with the true speakers: 1 = identical, 0 = no better than chance;" \
     "pairwise precision is low when clusters merge speakers, recall low when they split one"
"$PYTHON" cluster.py --input-ark "$OUT/spkvec/utt_vectors.ark" --utt2spk data/demo_utts/utt2spk \
    --output_utt2spk "$OUT/cluster/utt2spk" --output_spk2utt "$OUT/cluster/spk2utt" \
    --results-csv "$OUT/cluster/results.csv" --plot "$OUT/cluster/clusters.png"

say "3/3 diarization of data/demo_conversations/wav/$CONV.flac"
note "the first table scores the RTTM against the reference with overlapped speech included (--ref);" \
     "DER of one short synthetic conversation varies a lot: the README's Results give figures over 20"
unspeech diarize "data/demo_conversations/wav/$CONV.flac" --model "$MODEL" --out-dir "$OUT/diarize" \
    --format rttm,vad --plot --ref data/demo_conversations/rttm
grep "^SPEAKER $CONV " data/demo_conversations/rttm > "$OUT/diarize/$CONV.ref.rttm"
say "the same RTTM scored by unspeech score with overlapped speech left out (--skip-overlap)"
unspeech score --ref "$OUT/diarize/$CONV.ref.rttm" --hyp "$OUT/diarize/$CONV.rttm" --collar 0.25 --skip-overlap

cat >&2 <<MSG

== done. Outputs:
  Kaldi features       $OUT/ivector/ivector_online.scp  (period: $OUT/ivector/ivector_period)
  speaker vectors      $OUT/spkvec/utt_vectors.scp
  pseudo speakers      $OUT/cluster/utt2spk, $OUT/cluster/spk2utt  (scores: $OUT/cluster/results.csv)
  cluster picture      $OUT/cluster/clusters.png
  diarization          $OUT/diarize/$CONV.rttm, $OUT/diarize/$CONV.vad  (all.rttm: every recording together)
  timeline picture     $OUT/diarize/$CONV.png
MSG
