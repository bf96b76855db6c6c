#!/usr/bin/env bash
# Every figure of issue 7's targets in one run, on this machine (docs/RESULTS.md).
#   1. best path and total log score against real k2 (bench/k2_peer.py, .venv-k2; skipped without it)
#   2. each stage's CPU share at K=2, 4, 8 from SLF and from one k2 file, beam 8 (the bench's
#      default) and at K=4 also beam 16 (the CLI's), one torch thread, --jobs 1
#   3. the K=4 beam-8 non-LM/LM ratio RUNS more times, for its spread
#   4. wall of whole `fprescore rescore --jobs 2 --beam 16` processes, SLF and k2 file, 5 runs each
# Usage: bench/issue7_targets.sh [MODELS]   MODELS holds ptb-k2, ptb-k4, ptb-k8 (model.pt each);
#   default exp/lm-mini, made by `bench/lm_mini.sh ptb` when missing (about 5 minutes).
# Environment: SHARED (default ../shared/data), RUNS (default 5), OUT (default exp/issue7).
# Run it on a quiet machine: CPU seconds resist load, wall times do not.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${1:-exp/lm-mini}
SHARED=${SHARED:-../shared/data}
RUNS=${RUNS:-5}
OUT=${OUT:-exp/issue7}
PY=.venv/bin/python
K2_FILE=exp/bench/k2/asr-dev.pt
mkdir -p "$OUT"

for k in 2 4 8; do
  [ -f "$MODELS/ptb-k$k/model.pt" ] || { [ "$MODELS" = exp/lm-mini ] && bench/lm_mini.sh ptb; }
  [ -f "$MODELS/ptb-k$k/model.pt" ] || { echo "issue7_targets: no $MODELS/ptb-k$k/model.pt" >&2; exit 2; }
done
[ -f "$K2_FILE" ] || "$PY" -m rescorer convert "$SHARED/asr-dev/lat" --to k2 -o "$K2_FILE"

echo "== $(date -u '+%F %T') UTC, $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes)," \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. against real k2"
if [ -x .venv-k2/bin/python ]; then
  PYTHONPATH=$PWD .venv-k2/bin/python -W ignore bench/k2_peer.py "$K2_FILE" --repeats 9
else
  echo "(no .venv-k2: run bin/setup-k2-env)"
fi

MODEL_ARGS=(--model "2=$MODELS/ptb-k2/model.pt" --model "4=$MODELS/ptb-k4/model.pt"
            --model "8=$MODELS/ptb-k8/model.pt")
echo "== 2. stage shares, --jobs 1, beam 8"
"$PY" bench/rescore_throughput.py "${MODEL_ARGS[@]}" --jobs 1 --both-inputs --beam 8 \
  --data "$SHARED/asr-dev" --k2-folder exp/bench/k2 --out "$OUT/scratch" --json "$OUT/beam8.json"
echo "== 2. stage shares, --jobs 1, K=4, beam 16"
"$PY" bench/rescore_throughput.py --model "4=$MODELS/ptb-k4/model.pt" --jobs 1 --both-inputs \
  --data "$SHARED/asr-dev" --k2-folder exp/bench/k2 --beam 16 --out "$OUT/scratch" \
  --json "$OUT/beam16.json"

echo "== 3. K=4 beam 8 non-LM/LM, $RUNS more runs per input"
for run in $(seq "$RUNS"); do
  "$PY" bench/rescore_throughput.py --model "4=$MODELS/ptb-k4/model.pt" --jobs 1 --both-inputs \
    --data "$SHARED/asr-dev" --k2-folder exp/bench/k2 --beam 8 --out "$OUT/scratch" \
    --json "$OUT/ratio$run.json" > /dev/null
done
"$PY" - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
ratios = {}
for run in range(1, runs + 1):
    for row in json.load(open(f"{out}/ratio{run}.json"))["runs"]:
        stages = row["stages"]
        ratios.setdefault(row["name"], []).append(
            (sum(stages.values()) - stages["score"]) / stages["score"])
for name, values in ratios.items():
    print(f"{name}: non-LM/LM " + ", ".join(f"{v:.3f}" for v in values)
          + f"; median {statistics.median(values):.3f}")
PY

echo "== 4. wall, --jobs 2 --beam 16, K=4"
"$PY" bench/rescore_wall.py --runs "$RUNS" --model "$MODELS/ptb-k4/model.pt" \
  --data "$SHARED/asr-dev" --input "$SHARED/asr-dev/lat" --words '' | tail -1
"$PY" bench/rescore_wall.py --runs "$RUNS" --model "$MODELS/ptb-k4/model.pt" \
  --data "$SHARED/asr-dev" --input "$K2_FILE" --words exp/bench/k2/words.txt | tail -1
