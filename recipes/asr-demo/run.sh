#!/usr/bin/env bash
# ASR demo: synthesize PTB test sentences with flite, add seeded noise, decode with
# pocketsphinx into HTK SLF lattices, convert them to k2, train a fixed-point LSTM LM
# on PTB-mini and rescore the lattices with it (first pass vs n-best vs lattice).
#
# Stages (select with --stage N --stop-stage M; each can be re-run on its own):
#   0  install flite (apt-get) and pocketsphinx 5.1.1 (pip, into --python's env)
#   1  choose sentences (local/select_sentences.py)        -> data/text, data/utt2line
#   2  synthesize + noise, lhotse manifests (local/synthesize.py) -> data/wav, data/*.jsonl.gz
#   3  decode, SLF lattices + decoder 1-best (local/decode.py)  -> exp/lat/*.slf.gz, exp/onebest
#   4  SLF -> k2 (fprescore convert)                       -> exp/lattices.pt, exp/words.txt
#   5  train the LM(s) (fprescore train)                    -> exp/lm-k{K}/model.pt
#   6  rescore (fprescore rescore) and print the WER table  -> exp/rescore-*/, exp/wer.md
#
# Examples:
#   recipes/asr-demo/run.sh                          # everything, 100 utterances
#   recipes/asr-demo/run.sh --stage 3 --stop-stage 3 --nj 2
#   recipes/asr-demo/run.sh --ci                     # CI: 4 utterances, tiny LM, stages 0-5
set -euo pipefail
cd "$(dirname "$0")"
source ../common/lib.sh

stage=0
stop_stage=6
num_utts=100
nj=2
text="$SHARED_DATA/ptb/ptb.test.txt"
first_line=1
last_line=0           # 0: the first half of --text
prefix=dev
python="$REPO/.venv/bin/python"
min_posterior=1e-6    # posterior pruning of the lattices (0: none)
data_dir=data
exp_dir=exp
lm_train="$SHARED_DATA/ptb/ptb.valid.txt"   # PTB-mini: train on valid (90%, 10% held out) ...
lm_test="$SHARED_DATA/ptb/ptb.test.txt"     # ... evaluate on test
iterations="4"        # Jacobi K of the LMs trained in stage 5 (e.g. "2 4 8")
layers=1
embed=256
hidden=256
epochs=4
max_minutes=8         # per LM
model=""              # use this checkpoint in stage 6 instead of exp/lm-k*/model.pt
lm_scales="0:4:0.5"   # --grid of stage 6 (added to am + the first-pass n-gram at scale 1)
beam=40               # --beam of stage 6 (prune before expansion)
nbest=100             # n-best list size of stage 6 --mode nbest
threads=1
ci=false
usage="Usage: $0 [--stage N] [--stop-stage M] [--num-utts 100] [--nj 2] [--text FILE]
  [--first-line 1] [--last-line 0] [--prefix dev] [--python PY] [--min-posterior 1e-6]
  [--iterations '4'] [--layers 1] [--embed 256] [--hidden 256] [--epochs 4] [--max-minutes 8]
  [--model CKPT] [--lm-scales 0:4:0.5] [--beam 40] [--nbest 100] [--threads 1] [--data-dir data] [--exp-dir exp] [--ci]
See the top of $0 for the stages."
parse_options "$@"
if [ "$ci" = true ]; then  # short CI run: 4 utterances, tiny LM, no rescoring table
  num_utts=4; stop_stage=$(( stop_stage < 5 ? stop_stage : 5 )); epochs=1
  embed=32; hidden=32; iterations=4; max_minutes=2
fi
fprescore() { "$python" -m rescorer "$@"; }
mkdir -p "$data_dir" "$exp_dir"

if want_stage 0; then
  log "stage 0: install flite and pocketsphinx"
  install_tools() {
    if ! command -v flite >/dev/null; then
      sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
      $sudo_cmd apt-get install -y -q flite || { $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q flite; }
    fi
    "$python" -c "import pocketsphinx" 2>/dev/null || "$python" -m pip install -q pocketsphinx==5.1.1
    "$python" -c "import numpy, soundfile, lhotse" || { echo "numpy, soundfile and lhotse are needed in $python's env" >&2; exit 1; }
  }
  timed_stage 0 install_tools
fi

dict_path() { "$python" -c "import pocketsphinx, os; print(os.path.join(pocketsphinx.get_model_path(), 'en-us', 'cmudict-en-us.dict'))"; }

if want_stage 1; then
  log "stage 1: choose $num_utts sentences from $text"
  timed_stage 1 "$python" local/select_sentences.py --text "$text" --dict "$(dict_path)" \
    --first-line "$first_line" --last-line "$last_line" --num-utts "$num_utts" \
    --prefix "$prefix" --out-dir "$data_dir"
fi

if want_stage 2; then
  log "stage 2: synthesize with flite and add noise"
  timed_stage 2 "$python" local/synthesize.py --data-dir "$data_dir" --nj "$nj"
fi

if want_stage 3; then
  log "stage 3: decode with pocketsphinx ($nj processes) and write SLF lattices"
  rm -rf "$exp_dir/lat"
  timed_stage 3 "$python" local/decode.py --data-dir "$data_dir" --out-dir "$exp_dir" \
    --nj "$nj" --min-posterior "$min_posterior"
  cp "$data_dir/text" "$exp_dir/text"
fi

if want_stage 4; then
  log "stage 4: convert the SLF lattices to one k2 FsaVec file"
  rm -f "$exp_dir/words.txt"
  timed_stage 4 fprescore convert "$exp_dir/lat" --to k2 --out "$exp_dir/lattices.pt" \
    --words-out "$exp_dir/words.txt"
  "$python" local/check_onebest.py "$exp_dir/lattices.pt" --words "$exp_dir/words.txt" \
    --onebest "$exp_dir/onebest" --text "$data_dir/text" | tee "$exp_dir/check_onebest.txt"
fi

if want_stage 5; then
  split_heldout "$lm_train" "$exp_dir/lm-data" train
  for k in $iterations; do
    log "stage 5: train a ${layers}x$hidden LSTM LM, jacobi K=$k"
    rm -rf "$exp_dir/lm-k$k"
    timed_stage "5-k$k" fprescore train --train "$exp_dir/lm-data/train.train" \
      --valid "$exp_dir/lm-data/train.heldout" --test "$lm_test" --out "$exp_dir/lm-k$k" \
      --cell lstm --layers "$layers" --embed "$embed" --hidden "$hidden" --dropout 0.3 \
      --solver jacobi --iterations "$k" --epochs "$epochs" --max-minutes "$max_minutes" \
      --device cpu --threads "$threads" --seed 1
  done
fi

if want_stage 6; then
  models=()
  if [ -n "$model" ]; then models=("$model"); else
    for k in $iterations; do models+=("$exp_dir/lm-k$k/model.pt"); done
  fi
  rescore_all() {
    local name mode systems=("decoder 1-best (pocketsphinx hyp)=$exp_dir/onebest")
    for ckpt in "${models[@]}"; do
      name=$(basename "$(dirname "$ckpt")")
      for mode in nbest lattice; do
        log "stage 6: rescore with $ckpt, --mode $mode, --grid $lm_scales"
        fprescore rescore "$exp_dir/lattices.pt" --words "$exp_dir/words.txt" --model "$ckpt" \
          --out "$exp_dir/rescore-$name-$mode" --cuts "$data_dir/cuts.jsonl.gz" \
          --mode "$mode" --nbest "$nbest" --beam "$beam" --am-scale 1 --ngram-scale 1 \
          --grid "$lm_scales" --threads "$threads" | tee "$exp_dir/rescore-$name-$mode.log"
        systems+=("$name $mode (best --lm-scale of $lm_scales)=$exp_dir/rescore-$name-$mode/onebest.txt")
      done
    done
    "$python" local/wer_table.py --refs "$data_dir/text" "${systems[@]}" | tee "$exp_dir/wer.md"
  }
  timed_stage 6 rescore_all
fi
log "done (stage times: $exp_dir/stage_times.tsv)"
