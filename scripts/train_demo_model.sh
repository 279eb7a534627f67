#!/usr/bin/env bash
# Reproduce the bundled pretrained context model models/$NAME from scratch:
#
#   stage 1  synthetic training corpus: 80 speakers x 16 utterances, seed 2025 (NOT the demo data's
#            seed 2024), then a check that no training speaker repeats a demo speaker's voice settings
#   stage 2  40-dim Kaldi fbank of it (unspeech fbank, compressed)
#   stage 3  train the context model (unsup_model_neg.py, fixed --max_steps, seed 1)
#   stage 4  export: config.json + the final checkpoint + train.log into models/$NAME
#   stage 5  evaluate on held-out speakers: context accuracy (--test_perf on data/demo_utts), clustering
#            ARI/NMI of its speaker vectors (cluster.py), DER of unspeech diarize on data/demo_conversations
#            and on 20 generated conversations (seed 2026), MFLOP per window, real-time factor on one hour;
#            each next to the model-free fbank-statistics baseline; figures in $WORK/eval/summary.txt
#
# Usage: scripts/train_demo_model.sh              (all stages; run from anywhere)
#        STAGE=3 scripts/train_demo_model.sh      (start at stage 3; earlier outputs must exist)
#        STOP=2 NJ=4 scripts/train_demo_model.sh  (corpus and features only, 4 jobs)
# Work files go to exp/demo_model/ (git-ignored). On 2 busy CPU cores: stages 1-2 about 5 min,
# training about 13 min, evaluation about 25 min.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
NJ=${NJ:-2}
STAGE=${STAGE:-1}
STOP=${STOP:-5}
NAME=${NAME:-unspeech_dnn_w32_synth80}
WORK=${WORK:-exp/demo_model}
SEED=2025          # demo data uses 2024
SPEAKERS=80
UTTS=16
MAX_STEPS=${MAX_STEPS:-10000}
MODEL="models/$NAME"
unspeech() { "$PYTHON" -m unspeech.cli "$@"; }
stage() { [ "$STAGE" -le "$1" ] && [ "$1" -le "$STOP" ]; }

# check_voices TRAIN_SYNTH_JSON OTHER_SYNTH_JSON: fail if a speaker of the training corpus repeats the
# complete voice settings (engine, voice, pitch, rate, pitch shift, bass, treble, tempo) of a speaker
# of the other corpus
check_voices() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
train, other = (json.load(open(p))["speakers"] for p in sys.argv[1:3])
settings = lambda s: tuple(sorted((k, v) for k, v in s.items() if k != "speaker_id"))
known = {settings(s): s["speaker_id"] for s in other}
clashes = [(s["speaker_id"], known[settings(s)]) for s in train if settings(s) in known]
if clashes:
    sys.exit(f"{sys.argv[1]} repeats voices of {sys.argv[2]} exactly: {clashes}")
voices = {(s["engine"], s["voice"]) for s in other}
shared = sum((s["engine"], s["voice"]) in voices for s in train)
print(f"voice check: none of the {len(train)} training speakers repeats the settings of any of the {len(other)} "
      f"speakers of {sys.argv[2]} ({shared} share a base TTS voice, with other pitch/timbre/tempo settings)")
EOF
}

# The model: a tied BaselineDnn tower (3 x 384 leaky-ReLU layers with batch norm over a flattened
# 32-frame window, head 384 -> 100), unit-normalised embeddings with one trainable scale.
MODEL_FLAGS=(
    --embedding_transformation BaselineDnn --window_length 32 --window_neg_length 32
    --num_dnn_layers 3 --fc_size 384 --embedding_size 100 --batch_normalization
    --tied_embeddings_transforms --tied_final_embeddings_transforms --unit_normalize_var
    --left_contexts 2 --right_contexts 2 --negative_samples 4
)
TRAIN_FLAGS=(
    --batch_size 64 --learn_rate 0.001 --lr_schedule cosine --lr_warmup_steps 500 --l2_reg 0.0001
    --max_steps "$MAX_STEPS" --steps_per_checkpoint 1000 --steps_per_summary 1000 --early_stopping_patience 0
    --validation_fraction 0.05 --validation_batches 40 --keep_checkpoints 1 --nolog_tensorboard --seed 1
)

if stage 1; then
    rm -rf "$WORK/corpus"
    mkdir -p "$WORK"
    unspeech synth utterances --out-dir "$WORK/corpus" --num-speakers "$SPEAKERS" --utts-per-speaker "$UTTS" \
        --seed "$SEED" --nj "$NJ" --quiet
    check_voices "$WORK/corpus/synth.json" data/demo_utts/synth.json
fi

if stage 2; then
    rm -rf "$WORK/fbank"
    unspeech fbank --wav-scp "$WORK/corpus/wav.scp" --utt2spk "$WORK/corpus/utt2spk" --out-dir "$WORK/fbank" \
        --compress --nj "$NJ" --quiet
fi

if stage 3; then
    rm -rf "$WORK/train"
    "$PYTHON" unsup_model_neg.py --filelist "$WORK/fbank/feats.ark" --train_dir "$WORK/train" \
        "${MODEL_FLAGS[@]}" "${TRAIN_FLAGS[@]}"
fi

if stage 4; then
    runs=("$WORK"/train/runs/*)
    run=${runs[-1]}
    rm -rf "$MODEL/checkpoints" "$MODEL/config.json" "$MODEL/train.log"  # MODEL_CARD.md stays
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
        echo "== context accuracy on data/demo_utts (held-out speakers): unspeech gen-feat --test_perf"
        unspeech gen-feat --train_dir "$MODEL" --filelist data/demo_utts/feats.ark --test_perf --quiet 2>&1 | tail -n 1
    } | tee "$summary"

    # clustering the utterances of the 24 held-out demo speakers: the model's speaker vectors (mean of
    # its rows) against the baseline of mean+std pooled fbank
    unspeech gen-feat --train_dir "$MODEL" --filelist data/demo_utts/feats.ark --output_feat_file "$eval/spkvec" \
        --generate_speaker_vectors --genfeat_alignment center --quiet
    for input in model:"$eval/spkvec.ark" fbank-stats:data/demo_utts/feats.ark; do
        for algo in "-a ahc -n 24" "-a hdbscan"; do
            echo "== cluster.py --pooling mean+std $algo on ${input%%:*} vectors of data/demo_utts"
            "$PYTHON" cluster.py --input-ark "${input#*:}" --pooling mean+std --utt2spk data/demo_utts/utt2spk $algo -q \
                | grep -E "^(ARI|NMI)"
        done
    done | tee -a "$summary"

    # diarization: the bundled conversations and 20 more held-out ones (their own speakers, seed 2026)
    unspeech synth conversations --out-dir "$eval/heldout_conversations" --num-conversations 20 --num-speakers 40 \
        --speakers 2 4 --turns 14 --overlap-prob 0.15 --seed 2026 --nj "$NJ" --quiet
    check_voices "$WORK/corpus/synth.json" "$eval/heldout_conversations/synth.json" | tee -a "$summary"
    for set in data/demo_conversations "$eval/heldout_conversations"; do
        for model in "$MODEL" stats; do
            tag=$(basename "$set")_$(basename "$model")
            for backend in ahc spectral; do
                unspeech diarize "$set/wav.scp" -o "$eval/$tag/$backend" --model "$model" --backend "$backend" --quiet
            done
            # AHC cut at the true speaker count of each recording (reco2num_spk)
            mkdir -p "$eval/$tag/oracle_count"
            while read -r rec n; do
                grep "^$rec " "$set/wav.scp" > "$eval/$tag/$rec.scp"
                unspeech diarize "$eval/$tag/$rec.scp" -o "$eval/$tag/oracle_count/$rec" --model "$model" \
                    --num_speakers "$n" --quiet
                cat "$eval/$tag/oracle_count/$rec/all.rttm"
            done < "$set/reco2num_spk" > "$eval/$tag/oracle_count/all.rttm"
            for backend in ahc spectral oracle_count; do
                echo "== DER (collar 0.25, overlap excluded) on $set: unspeech diarize --model $(basename "$model") [$backend]"
                unspeech score --ref "$set/rttm" --hyp "$eval/$tag/$backend/all.rttm" --uem "$set/uem" --collar 0.25 \
                    --skip-overlap --quiet | tail -n 1
            done
        done
    done | tee -a "$summary"

    # cost of one window embedding, counted by TensorFlow's profiler (as benchmarks/genfeat_bench.py does)
    "$PYTHON" - "$MODEL" <<'EOF' | tee -a "$summary"
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
EOF

    # speed: one hour of audio (the demo conversations repeated), default diarizer settings
    hour=$eval/hour.flac
    reps=()
    for _ in $(seq 35); do reps+=(data/demo_conversations/wav/conv000.flac data/demo_conversations/wav/conv001.flac \
                                  data/demo_conversations/wav/conv002.flac); done
    sox "${reps[@]}" "$hour"
    for model in "$MODEL" stats; do
        echo "== speed: unspeech diarize --model $(basename "$model") on $(soxi -d "$hour") of audio"
        unspeech diarize "$hour" -o "$eval/hour_$(basename "$model")" --model "$model" 2>&1 \
            | grep -o "[0-9.]* s of audio in .*factor [0-9.]*)"
    done | tee -a "$summary"
    echo "evaluation summary: $summary"
fi
