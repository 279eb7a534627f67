#!/usr/bin/env bash
# Train the bundled context model models/$NAME on real speech in LibriSpeech's layout, then evaluate it:
#
#   stage 1  list the corpus (LibriSpeech tree <spk>/<chapter>/<spk>-<chapter>-<n>.flac, or a Kaldi data dir):
#            wav.scp + utt2spk, without the speakers of $EXCLUDE (held out for evaluation)
#            and a synthetic corpus for voice and channel variety: 80 TTS speakers x 16 utterances, seed 2025
#            (the demo data's seed is 2024), each utterance on a channel of its own; one noisy, babble or
#            reverberant copy of every real utterance for the speaker head (scripts/augment_copies.py)
#   stage 2  40-dim Kaldi fbank: the utterances, Kaldi's 3-way speed perturbation (sp0.9-/sp1.1- copies
#            are new voices to the model), a narrow-band copy (nb8k-: resampled through 8 kHz, as
#            telephone speech), and the synthetic utterances joined into 2 "sessions" of 8 utterances
#            per speaker (one TTS sentence is too short for a group of windows; across the joins the
#            channel changes and the voice does not); the model is never told who speaks; the
#            augmented copies at the three speeds (for the head only, not the context model)
#   stage 3  train the context model (unsup_model_neg.py, fixed --max_steps, seed 1)
#   stage 4  export: config.json + the final checkpoint + train.log + model.onnx into unspeech/models/$NAME,
#            then fit the speaker head (unspeech train-head: every training item is a class of its own,
#            its narrow-band copy and its noisy/babble/reverberant copy (scripts/augment_copies.py, at the
#            three speeds) share its class; speed-perturbed copies are new voices, new classes; an
#            ensemble of $HEAD_MEMBERS networks)
#   stage 5  evaluate on speakers it never heard: benchmarks/real_speech_bench.py (DER on real-voice
#            conversations of the held-out speakers, utterance EER; next to fbank statistics and, when
#            benchmarks/setup_peer_venv.sh was run, Resemblyzer d-vectors), DER on 20 held-out synthetic
#            conversations, MFLOP per window and the real-time factor on one hour;
#            figures in $WORK/eval/summary.txt
#
# Usage: scripts/train_real_model.sh [CORPUS]          (all stages; run from anywhere)
#        STAGE=3 scripts/train_real_model.sh CORPUS    (start at stage 3; earlier outputs must exist)
#        STOP=2 NJ=4 scripts/train_real_model.sh CORPUS  (features only, 4 jobs)
# CORPUS defaults to the 251-speaker LibriSpeech subset of ../shared/data (one utterance per speaker);
# with the full train-clean-100 (100 h, 251 speakers) run the same command on its folder
# (e.g. LibriSpeech/train-clean-100) and consider more --max_steps (MAX_STEPS=...).
# Work files go to exp/real_model/ (git-ignored). On 2 busy CPU cores with the subset: stages 1-2 about
# 2 min, training about 25 min, evaluation about 15 min.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
NJ=${NJ:-2}
STAGE=${STAGE:-1}
STOP=${STOP:-5}
CORPUS=${1:-../shared/data/librispeech-subset/train-clean-100}
EXCLUDE=${EXCLUDE:-benchmarks/real_speech_heldout.txt}
NAME=${NAME:-unspeech_dnn_w32_libri200}
WORK=${WORK:-exp/real_model}
MAX_STEPS=${MAX_STEPS:-14000}
HEAD_MEMBERS=${HEAD_MEMBERS:-3}
MODEL="unspeech/models/$NAME"
unspeech() { "$PYTHON" -m unspeech.cli "$@"; }
stage() { [ "$STAGE" -le "$1" ] && [ "$1" -le "$STOP" ]; }

# check_voices TRAIN_SYNTH_JSON OTHER_SYNTH_JSON: fail if a speaker of the synthetic training corpus repeats
# the complete voice settings (engine, voice, pitch, rate, pitch shift, bass, treble, tempo) of a speaker of
# the other corpus (the bundled demo data, the held-out synthetic conversations)
check_voices() {
    "$PYTHON" - "$1" "$2" <<'EOF_PY'
import json, sys
train, other = (json.load(open(p))["speakers"] for p in sys.argv[1:3])
settings = lambda s: tuple(sorted((k, v) for k, v in s.items() if k != "speaker_id"))
known = {settings(s): s["speaker_id"] for s in other}
clashes = [(s["speaker_id"], known[settings(s)]) for s in train if settings(s) in known]
if clashes:
    sys.exit(f"{sys.argv[1]} repeats voices of {sys.argv[2]} exactly: {clashes}")
print(f"voice check: none of the {len(train)} synthetic training speakers repeats the settings of any of the "
      f"{len(other)} speakers of {sys.argv[2]}")
EOF_PY
}

# The model: a tied BaselineDnn tower (3 x 384 leaky-ReLU layers with batch norm over a flattened
# 32-frame window, head 384 -> 100), unit-normalised embeddings with one trainable scale. Positives are
# 4 + 4 context windows, each block up to 0.5 s away from the target (--context_gap 50), negatives 8 windows of
# other utterances.
MODEL_FLAGS=(
    --embedding_transformation BaselineDnn --window_length 32 --window_neg_length 32
    --num_dnn_layers 3 --fc_size 384 --embedding_size 100 --batch_normalization
    --tied_embeddings_transforms --tied_final_embeddings_transforms --unit_normalize_var
    --left_contexts 4 --right_contexts 4 --context_gap 50 --negative_samples 8
)
TRAIN_FLAGS=(
    --batch_size 64 --learn_rate 0.001 --lr_schedule cosine --lr_warmup_steps 500 --l2_reg 0.0001
    --max_steps "$MAX_STEPS" --steps_per_checkpoint 1000 --steps_per_summary 1000 --early_stopping_patience 0
    --validation_fraction 0.05 --validation_batches 40 --keep_checkpoints 1 --nolog_tensorboard --seed 1
)

if stage 1; then
    rm -rf "$WORK/data"
    mkdir -p "$WORK/data"
    "$PYTHON" - "$CORPUS" "$EXCLUDE" "$WORK/data" <<'EOF_PY'
import sys
from unspeech import datadir
from unspeech.corpus import load_corpus

corpus, exclude, out = sys.argv[1:4]
layout, utts = load_corpus(corpus, exclude_speakers=exclude)
if any(u.start is not None or u.end is not None for u in utts):
    sys.exit(f"{corpus}: utterances with segments are not supported by this recipe; give whole-file utterances")
datadir.write_wav_scp(f"{out}/wav.scp", {u.utterance_id: u.source for u in utts})
datadir.write_utt2spk(f"{out}/utt2spk", {u.utterance_id: u.speaker_id for u in utts})
print(f"{corpus} ({layout}): {len(utts)} utterances of {len({u.speaker_id for u in utts})} speakers "
      f"(speakers of {exclude} left out)")
EOF_PY
    # the narrow-band copy: every recording through 8 kHz (sox pipes, resampled back to 16 kHz by fbank)
    awk '{print "nb8k-"$1" sox "$2" -r 8000 -t wav - |"}' "$WORK/data/wav.scp" > "$WORK/data/wav_nb.scp"
    awk '{print "nb8k-"$1" nb8k-"$2}' "$WORK/data/utt2spk" > "$WORK/data/utt2spk_nb"
    rm -rf "$WORK/synth_corpus"
    unspeech synth utterances --out-dir "$WORK/synth_corpus" --num-speakers 80 --utts-per-speaker 16 --seed 2025 \
        --nj "$NJ" --quiet
    check_voices "$WORK/synth_corpus/synth.json" data/demo_utts/synth.json
    # one noisy, babble or reverberant copy of every real utterance, for the speaker head (stage 4)
    rm -rf "$WORK/aug"
    "$PYTHON" scripts/augment_copies.py "$WORK/data/wav.scp" "$WORK/aug" --utt2spk "$WORK/data/utt2spk" --seed 0
fi

if stage 2; then
    rm -rf "$WORK/fbank_sp" "$WORK/fbank_nb"
    unspeech fbank --wav-scp "$WORK/data/wav.scp" --utt2spk "$WORK/data/utt2spk" --out-dir "$WORK/fbank_sp" \
        --speed-perturb --compress --nj "$NJ" --quiet
    unspeech fbank --wav-scp "$WORK/data/wav_nb.scp" --utt2spk "$WORK/data/utt2spk_nb" --out-dir "$WORK/fbank_nb" \
        --compress --nj "$NJ" --quiet
    rm -rf "$WORK/fbank_synth"
    unspeech fbank --wav-scp "$WORK/synth_corpus/wav.scp" --utt2spk "$WORK/synth_corpus/utt2spk" \
        --out-dir "$WORK/fbank_synth" --compress --nj "$NJ" --quiet
    "$PYTHON" - "$WORK/fbank_synth" <<'EOF_PY'
import sys
import numpy as np
from unspeech import datadir, kaldi_io
d = sys.argv[1]
feats = dict(kaldi_io.iter_mats(f"{d}/feats.scp"))
sessions = []
for spk, utts in sorted(datadir.read_spk2utt(f"{d}/spk2utt").items()):
    for n, start in enumerate(range(0, len(utts), 8)):
        sessions.append((f"{spk}-session{n}", np.concatenate([feats[u] for u in utts[start:start + 8]])))
kaldi_io.write_mats(f"{d}/sessions.ark", sessions, f"{d}/sessions.scp", compress=True)
print(f"{d}: {len(sessions)} sessions of {len(feats)} synthetic utterances")
EOF_PY
    cat "$WORK/fbank_sp/feats.scp" "$WORK/fbank_nb/feats.scp" "$WORK/fbank_synth/sessions.scp" > "$WORK/train.scp"
    wc -l "$WORK/train.scp"
    rm -rf "$WORK/fbank_aug"
    unspeech fbank --wav-scp "$WORK/aug/wav.scp" --utt2spk "$WORK/aug/utt2spk" --out-dir "$WORK/fbank_aug" \
        --speed-perturb --compress --nj "$NJ" --quiet
fi

if stage 3; then
    rm -rf "$WORK/train"
    "$PYTHON" unsup_model_neg.py --filelist "$WORK/train.scp" --train_dir "$WORK/train" \
        "${MODEL_FLAGS[@]}" "${TRAIN_FLAGS[@]}"
fi

if stage 4; then
    runs=("$WORK"/train/runs/*)
    run=${runs[-1]}
    rm -rf "$MODEL/checkpoints" "$MODEL/config.json" "$MODEL/train.log" "$MODEL/model.onnx" "$MODEL/model.int8.onnx" "$MODEL/speaker_head.npz"  # MODEL_CARD.md stays
    mkdir -p "$MODEL/checkpoints"
    # config.json with repository-relative paths; the final checkpoint (model + optimizer state, so the
    # run can be resumed on the same corpus) and its state file, whose paths are relative to checkpoints/
    "$PYTHON" - "$run/config.json" "$MODEL" <<'EOF_PY'
import dataclasses, sys
from unspeech.context.config import ContextConfig
config = ContextConfig.from_json(sys.argv[1])
dataclasses.replace(config, train_dir=sys.argv[2]).to_json(f"{sys.argv[2]}/config.json")
EOF_PY
    last=$(sed -n 's/^model_checkpoint_path: "\(.*\)"$/\1/p' "$run/checkpoints/checkpoint")
    case $last in */*) echo "checkpoint state of $run holds a path, not a name: $last" >&2; exit 1;; esac
    cp "$run/checkpoints/$last".* "$MODEL/checkpoints/"
    printf 'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' "$last" "$last" > "$MODEL/checkpoints/checkpoint"
    grep -v "absl" "$run/train.log" > "$MODEL/train.log"
    "$PYTHON" -m unspeech.cli export "$MODEL" --int8 --quiet  # the towers for ONNX Runtime (+ the int8 copy)
    # the speaker head: pseudo-labels = training items; a narrow-band or augmented copy keeps its source's
    # class (sp0.9-aug-X belongs to sp0.9-X)
    cat "$WORK/train.scp" "$WORK/fbank_aug/feats.scp" > "$WORK/train_head.scp"
    awk '{ c = $1; sub(/^nb8k-/, "", c); if (c ~ /^aug-/) sub(/^aug-/, "", c); else if (c ~ /^sp[0-9.]+-aug-/) sub(/-aug-/, "-", c)
           print $1, c }' "$WORK/train_head.scp" > "$WORK/utt2class"
    unspeech train-head "$MODEL" "$WORK/train_head.scp" --utt2class "$WORK/utt2class" --members "$HEAD_MEMBERS" \
        --seed 0 --quiet
    du -sh "$MODEL"
fi

if stage 5; then
    export TF_CPP_MIN_LOG_LEVEL=3
    eval=$WORK/eval
    rm -rf "$eval"
    mkdir -p "$eval"
    summary=$eval/summary.txt
    {
        echo "== context accuracy on held-out utterances of the training corpus (last validation of train.log)"
        grep -o "step [0-9]* |.*| val loss [0-9.]* acc [0-9.]*" "$MODEL/train.log" | tail -n 1
    } | tee "$summary"

    # real speech: conversations of the held-out speakers, utterance EER (benchmarks/real_speech_bench.py)
    systems=unspeech,stats
    [ -x exp/peer_venv/bin/python ] && systems=$systems,peer
    "$PYTHON" benchmarks/real_speech_bench.py --conversations "$eval/real_conversations" --make-conversations \
        --model "$MODEL" --systems "$systems" --out "$eval/real_speech" --quiet
    cat "$eval/real_speech/results.md" >> "$summary"

    # synthetic: 20 held-out TTS conversations (their own voices, seed 2026), estimated speaker count
    set=$eval/synthetic_conversations
    unspeech synth conversations --out-dir "$set" --num-conversations 20 --num-speakers 40 \
        --speakers 2 4 --turns 14 --overlap-prob 0.15 --seed 2026 --nj "$NJ" --quiet
    check_voices "$WORK/synth_corpus/synth.json" "$set/synth.json" | tee -a "$summary"
    for model in "$MODEL" stats; do
        for backend in ahc spectral; do
            out=$eval/synthetic_$(basename "$model")_$backend
            unspeech diarize "$set/wav.scp" -o "$out" --model "$model" --backend "$backend" --quiet
            echo "== DER (collar 0.25, overlap excluded) on $set: unspeech diarize --model $(basename "$model") --backend $backend"
            unspeech score --ref "$set/rttm" --hyp "$out/all.rttm" --uem "$set/uem" --collar 0.25 --skip-overlap --quiet \
                | tail -n 1
        done
    done | tee -a "$summary"

    # cost of one window embedding, counted by TensorFlow's profiler (as benchmarks/genfeat_bench.py does)
    "$PYTHON" - "$MODEL" <<'EOF_PY' | tee -a "$summary"
import sys
sys.path.insert(0, "benchmarks")
import tensorflow as tf
from genfeat_bench import graph_flops
from unspeech.context.rundir import load_run
config, model = load_run(sys.argv[1])
spec = tf.TensorSpec((1, config.window_length, config.feat_size), tf.float32)
flops = graph_flops(lambda x: model.embed_targets(x, training=False), spec)
params = sum(int(v.numpy().size) for v in model.trainable_variables)
print(f"== cost: {flops / 1e6:.2f} MFLOP per {config.window_length}-frame window, {params / 1e6:.3f} M parameters")
EOF_PY

    # speed: one hour of audio (the demo conversations repeated), default diarizer settings
    hour=$eval/hour.flac
    reps=()
    for _ in $(seq 35); do reps+=(data/demo_conversations/wav/conv000.flac data/demo_conversations/wav/conv001.flac \
                                  data/demo_conversations/wav/conv002.flac); done
    sox "${reps[@]}" "$hour"
    echo "== speed: unspeech diarize --model $NAME on $(soxi -d "$hour") of audio" | tee -a "$summary"
    unspeech diarize "$hour" -o "$eval/hour" --model "$MODEL" 2>&1 | grep -o "[0-9.]* s of audio in .*factor [0-9.]*)" \
        | tee -a "$summary"
    echo "evaluation summary: $summary"
fi
