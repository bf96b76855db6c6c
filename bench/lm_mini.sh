#!/usr/bin/env bash
# PTB-mini and WT2-mini: jacobi K=2,4,8 vs sequential, identical settings per table.
#   PTB-mini: train on ptb.valid.txt, evaluate on ptb.test.txt.
#   WT2-mini: train on wikitext-2/test.txt, evaluate on wikitext-2/valid.txt.
# The last 10% of the lines of each training file are held out for model selection
# and LR decay (so the evaluation file is never seen during training).
# Usage: bench/lm_mini.sh [ptb|wt2|all]   (results: exp/lm-mini/results.tsv)
# Environment: SHARED (default ../shared/data), EXP (default exp/lm-mini), EPOCHS_PTB/WT2, MINUTES_PTB/WT2 (per-run budget), THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/data}
EXP=${EXP:-exp/lm-mini}
EPOCHS_PTB=${EPOCHS_PTB:-6}
EPOCHS_WT2=${EPOCHS_WT2:-2}
MINUTES_PTB=${MINUTES_PTB:-10}
MINUTES_WT2=${MINUTES_WT2:-15}
THREADS=${THREADS:-1}
PY=${PY:-.venv/bin/python}
mkdir -p "$EXP/data"

split_file() {  # split_file SRC NAME: first 90% of lines -> NAME.train, rest -> NAME.heldout
  local lines; lines=$(wc -l < "$1")
  local keep=$(( lines * 9 / 10 ))
  head -n "$keep" "$1" > "$EXP/data/$2.train"
  tail -n +"$(( keep + 1 ))" "$1" > "$EXP/data/$2.heldout"
}

run() {  # run TASK EPOCHS MINUTES TRAIN HELDOUT TEST OUT SOLVER_ARGS...
  local task=$1 epochs=$2 minutes=$3 train=$4 heldout=$5 test=$6 out=$7; shift 7
  rm -rf "$out"
  local start end
  start=$(date +%s.%N)
  "$PY" -m rescorer train --train "$train" --valid "$heldout" --test "$test" --out "$out" \
    --cell lstm --layers 1 --embed 256 --hidden 256 --dropout 0.3 \
    --optimizer adam --lr 1e-3 --batch-size 20 --bptt 35 --clip 0.25 --epochs "$epochs" \
    --seed 1 --device cpu --threads "$THREADS" --max-minutes "$minutes" "$@"
  end=$(date +%s.%N)
  "$PY" - "$task" "$out" "$start" "$end" "$*" >> "$EXP/results.tsv" <<'PY'
import json, sys
task, out, start, end, args = sys.argv[1:]
final = json.loads(open(f"{out}/log.jsonl").read().splitlines()[-1])
print(f"{task}\t{args}\t{final['test_ppl']:.2f}\t{final['valid_ppl']:.2f}\t{final['best_epoch']}/{final['epochs_run']}"
      f"\t{final['stopped']}\t{float(end) - float(start):.0f}")
PY
}

variants() {  # variants TASK EPOCHS MINUTES TRAIN HELDOUT TEST PREFIX
  run "$1" "$2" "$3" "$4" "$5" "$6" "$7-k2" --solver jacobi --iterations 2
  run "$1" "$2" "$3" "$4" "$5" "$6" "$7-k4" --solver jacobi --iterations 4
  run "$1" "$2" "$3" "$4" "$5" "$6" "$7-k8" --solver jacobi --iterations 8
  run "$1" "$2" "$3" "$4" "$5" "$6" "$7-seq" --solver sequential
}

which=${1:-all}
[ -f "$EXP/results.tsv" ] || printf 'task\tsolver\ttest_ppl\theldout_ppl\tbest/epochs\tstopped\twall_s\n' > "$EXP/results.tsv"
if [ "$which" = ptb ] || [ "$which" = all ]; then
  split_file "$SHARED/ptb/ptb.valid.txt" ptb
  variants ptb-mini "$EPOCHS_PTB" "$MINUTES_PTB" "$EXP/data/ptb.train" "$EXP/data/ptb.heldout" "$SHARED/ptb/ptb.test.txt" "$EXP/ptb"
  # The rescoring engineers use the K=4 model from here.
  mkdir -p "$EXP/../ptb-mini-k4" && cp "$EXP/ptb-k4/model.pt" "$EXP/../ptb-mini-k4/model.pt"
fi
if [ "$which" = wt2 ] || [ "$which" = all ]; then
  split_file "$SHARED/wikitext-2/test.txt" wt2
  variants wt2-mini "$EPOCHS_WT2" "$MINUTES_WT2" "$EXP/data/wt2.train" "$EXP/data/wt2.heldout" "$SHARED/wikitext-2/valid.txt" "$EXP/wt2"
fi
column -t -s $'\t' "$EXP/results.tsv"
