#!/usr/bin/env bash
# Penn Treebank (Mikolov): fixed-point LSTM LM (jacobi) vs the sequential baseline of the
# same size; evaluation with `fprescore eval --json`, table in exp/results.md.
#   recipes/ptb/run.sh                      # download, 2x650, GPU when present
#   recipes/ptb/run.sh --data-dir DIR       # offline: DIR has ptb.{train,valid,test}.txt
#   recipes/ptb/run.sh --ngpu 4             # torchrun data parallelism
#   recipes/ptb/run.sh --mini               # PTB-mini on ../shared/data (train valid, eval test)
# Stages: see recipes/common/lm_recipe.sh.
set -euo pipefail
cd "$(dirname "$0")"
source ../common/lib.sh
source ../common/lm_recipe.sh
corpus=ptb
train_name=ptb.train.txt
valid_name=ptb.valid.txt
test_name=ptb.test.txt
mini_train=ptb/ptb.valid.txt
mini_eval=ptb/ptb.test.txt
lm_recipe_main "$@"
