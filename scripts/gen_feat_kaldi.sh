#!/usr/bin/env bash
# Export unspeech context embeddings as Kaldi online-ivector features for the sets of a Kaldi data tree.
#
#   scripts/gen_feat_kaldi.sh [options] RUN_DIR DATA_ROOT OUT_ROOT
#
# For every set (default: dev test train) that has DATA_ROOT/<set>/feats.scp (or feats.ark), writes
#   OUT_ROOT/<set>/ivector_online.scp  (+ ivector_online.<job>.ark),  OUT_ROOT/<set>/ivector_period
#   and OUT_ROOT/<set>/final.ie.id (the model's id: equal in every set exported with one model)
# ready for nnet3/chain training and decoding:
#   --online-ivector-dir OUT_ROOT/<set>     (steps/nnet3/*, which read ivector_online.scp and ivector_period,
#                                            and compare final.ie.id with steps/nnet2/check_ivectors_compatible.sh)
#
# Options:
#   --nj N           local processes per set (default 2); output is identical to --nj 1
#   --stride N       frames between rows = ivector_period (default 10)
#   --sets "A B"     sets to export (default "dev test train")
#   --extra "ARGS"   more flags for `unsup_model_neg.py --gen_feat` (e.g. "--genfeat_alignment center")
set -euo pipefail

nj=2
stride=10
sets="dev test train"
extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nj) nj="$2"; shift 2 ;;
    --stride) stride="$2"; shift 2 ;;
    --sets) sets="$2"; shift 2 ;;
    --extra) extra="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    --*) echo "$0: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -ne 3 ]; then
  echo "usage: $0 [--nj N] [--stride N] [--sets \"dev test train\"] [--extra ARGS] RUN_DIR DATA_ROOT OUT_ROOT" >&2
  exit 2
fi
run_dir=$1; data_root=$2; out_root=$3
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
[ -f "$run_dir/config.json" ] || { echo "$0: $run_dir is not a trained run dir (no config.json)" >&2; exit 1; }

done_any=false
for set in $sets; do
  if [ -f "$data_root/$set/feats.scp" ]; then
    feats="$data_root/$set/feats.scp"
  elif [ -f "$data_root/$set/feats.ark" ]; then
    feats="$data_root/$set/feats.ark"
  else
    echo "$0: skipping $set: no $data_root/$set/feats.scp or feats.ark" >&2
    continue
  fi
  mkdir -p "$out_root/$set"
  echo "$0: exporting $set ($feats) -> $out_root/$set/ivector_online.scp" >&2
  # shellcheck disable=SC2086
  "$python" "$here/unsup_model_neg.py" --gen_feat --train_dir "$run_dir" --filelist "$feats" \
    --genfeat_stride "$stride" --nj "$nj" --output_feat_file "$out_root/$set/ivector_online" $extra
  n_in=$(if [ "${feats##*.}" = scp ]; then wc -l < "$feats"; else echo -; fi)
  n_out=$(wc -l < "$out_root/$set/ivector_online.scp")
  if [ "$n_in" != "-" ] && [ "$n_in" -ne "$n_out" ]; then
    echo "$0: $set: $n_in utterances in, $n_out out" >&2
    exit 1
  fi
  echo "$0: $set: $n_out utterances, ivector_period $(cat "$out_root/$set/ivector_period"), id $(cat "$out_root/$set/final.ie.id")" >&2
  done_any=true
done
$done_any || { echo "$0: no set of \"$sets\" found under $data_root" >&2; exit 1; }
