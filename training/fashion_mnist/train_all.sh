#!/usr/bin/env bash
# The built-in Fashion-MNIST model, end to end with the project's own recipes (seeded, ~1 h on 2 CPU cores):
# MaskGIT-VQGAN teacher -> TiTok stage 1 -> stage 2 -> pre-tokenization -> MaskGIT generator.
# Every stage resumes from its last checkpoint if interrupted, and is skipped once its final model exists.
# Run from the repository root:  bash training/fashion_mnist/train_all.sh
set -euo pipefail
PY=${PYTHON:-python}
CONFIGS=fashion_mnist  # shipped configs: hf-titok train --list
OUT=outputs/fashion_mnist

[ -f data/fashion_mnist/dataset_dict.json ] || $PY training/fashion_mnist/prepare_data.py --output-dir data/fashion_mnist

stage() {  # stage NAME ENTRY
  if [ -f "$OUT/$1/final/config.json" ] || [ -f "$OUT/$1/final/model_index.json" ]; then
    echo "== $1: done"; return
  fi
  echo "== $1"; $PY "training/$2" --config "$CONFIGS/$1"
}

stage vqgan train_tokenizer.py
stage stage1 train_tokenizer.py
stage stage2 train_tokenizer.py
[ -f "$OUT/tokens/state.json" ] || $PY training/pretokenize.py --tokenizer "$OUT/stage2/final" \
    --source data/fashion_mnist --split train --output-dir "$OUT/tokens" --batch-size 256
stage generator train_generator.py
echo "== done: $OUT/generator/final is the pipeline"
