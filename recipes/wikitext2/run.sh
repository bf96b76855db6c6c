#!/usr/bin/env bash
# WikiText-2 (tokenized): fixed-point LSTM LM (jacobi) vs the sequential baseline of the
# same size; evaluation with `fprescore eval --json`, table in exp/results.md.
#   recipes/wikitext2/run.sh                  # download, 2x650, GPU when present
#   recipes/wikitext2/run.sh --data-dir DIR   # offline: DIR has {train,valid,test}.txt
#   recipes/wikitext2/run.sh --ngpu 4         # torchrun data parallelism
#   recipes/wikitext2/run.sh --mini           # WT2-mini on ../shared/data (train test, eval valid)
# Stages: see recipes/common/lm_recipe.sh.
set -euo pipefail
cd "$(dirname "$0")"
source ../common/lib.sh
source ../common/lm_recipe.sh
corpus=wikitext2
train_name=train.txt
valid_name=valid.txt
test_name=test.txt
mini_train=wikitext-2/test.txt
mini_eval=wikitext-2/valid.txt
lm_recipe_main "$@"
