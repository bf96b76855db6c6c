# LM recipe body shared by recipes/ptb/run.sh and recipes/wikitext2/run.sh (sourced
# after lib.sh). The caller sets: corpus (ptb|wikitext2), train_name, valid_name,
# test_name (file names inside --data-dir), mini_train and mini_eval (shared files),
# then calls lm_recipe_main "$@".
#
# Stages:
#   0  data: `fprescore data download` into data/ (or use --data-dir); --mini: the
#      offline mini protocol on ../shared/data, 10% of its training file held out
#   1  train the fixed-point model (jacobi, K=--iterations)
#   2  train the sequential baseline of the same size
#   3  evaluate both with `fprescore eval --json`, write exp/results.md

lm_recipe_main() {
  stage=0
  stop_stage=3
  data_dir=""           # folder with the corpus files (default: download into data/)
  python="$REPO/.venv/bin/python"
  device=auto           # auto: CUDA when present
  ngpu=1                # >1: torchrun --nproc_per_node N
  mini=false
  exp_dir=exp
  layers=2              # 2x650 LSTM: the "medium" configuration (see the README)
  embed=650
  hidden=650
  dropout=0.5
  iterations=4          # Jacobi K
  epochs=40
  batch_size=20
  bptt=35
  optimizer=sgd
  lr=20
  max_minutes=0         # 0: no wall-clock budget
  threads=1
  seed=1
  usage="Usage: $0 [--stage 0] [--stop-stage 3] [--data-dir DIR] [--mini] [--device auto]
  [--ngpu 1] [--layers 2] [--embed 650] [--hidden 650] [--dropout 0.5] [--iterations 4]
  [--epochs 40] [--batch-size 20] [--bptt 35] [--optimizer sgd] [--lr 20] [--max-minutes 0]
  [--threads 1] [--seed 1] [--python PY] [--exp-dir exp]
--mini: train on $mini_train, evaluate on $mini_eval (../shared/data), 1x256, 4 epochs, Adam."
  local argument
  for argument in "$@"; do  # --mini changes the defaults; explicit options still win
    if [ "$argument" = --mini ]; then
      layers=1; embed=256; hidden=256; dropout=0.3; epochs=4; optimizer=adam; lr=1e-3
      max_minutes=10
    fi
  done
  parse_options "$@"
  [ "$device" != auto ] || device=$(detect_device)
  mkdir -p "$exp_dir"

  local train valid test
  if [ "$mini" = true ]; then
    train="$exp_dir/data/mini.train"; valid="$exp_dir/data/mini.heldout"; test="$SHARED_DATA/$mini_eval"
  else
    [ -n "$data_dir" ] || data_dir=data
    train="$data_dir/$train_name"; valid="$data_dir/$valid_name"; test="$data_dir/$test_name"
  fi

  if want_stage 0; then
    if [ "$mini" = true ]; then
      log "stage 0: mini protocol: train on $mini_train (last 10% held out), evaluate on $mini_eval"
      split_heldout "$SHARED_DATA/$mini_train" "$exp_dir/data" mini
    elif [ ! -f "$train" ]; then
      log "stage 0: download $corpus into $data_dir"
      "$python" -m rescorer data download "$corpus" --dest "$data_dir"
    fi
  fi

  local solver
  for solver in jacobi sequential; do
    local number=1; [ "$solver" = jacobi ] || number=2
    want_stage "$number" || continue
    log "stage $number: train ${layers}x$hidden $solver ($device)"
    local launcher=("$python" -m rescorer)
    if [ "$ngpu" -gt 1 ]; then
      launcher=("$python" -m torch.distributed.run --nproc_per_node "$ngpu" -m rescorer)
    fi
    local budget=(); [ "$max_minutes" = 0 ] || budget=(--max-minutes "$max_minutes")
    rm -rf "$exp_dir/$solver"
    timed_stage "$number" "${launcher[@]}" train --train "$train" --valid "$valid" \
      --test "$test" --out "$exp_dir/$solver" --cell lstm --layers "$layers" \
      --embed "$embed" --hidden "$hidden" --dropout "$dropout" --solver "$solver" \
      --iterations "$iterations" --epochs "$epochs" --batch-size "$batch_size" --bptt "$bptt" \
      --optimizer "$optimizer" --lr "$lr" --device "$device" --threads "$threads" \
      --seed "$seed" "${budget[@]}"
  done

  if want_stage 3; then
    log "stage 3: evaluate both models on $test"
    {
      echo "| model | test PPL | tokens | OOV rate |"
      echo "|---|---|---|---|"
      for solver in jacobi sequential; do
        local name="${layers}x$hidden LSTM $solver"
        [ "$solver" = sequential ] || name="$name K=$iterations"
        "$python" -m rescorer eval --model "$exp_dir/$solver/model.pt" --text "$test" --json \
          --device "$device" > "$exp_dir/$solver/eval.json"
        "$python" -c 'import json, sys; r = json.load(open(sys.argv[1]))
print("| %s | %.2f | %d | %.2f%% |" % (sys.argv[2], r["ppl"], r["tokens"], 100 * r["oov_rate"]))' \
          "$exp_dir/$solver/eval.json" "$name"
      done
    } > "$exp_dir/results.md"
    cat "$exp_dir/results.md"
  fi
}
