#!/usr/bin/env bash
# The built-in text-to-image Fashion-MNIST model, end to end with the project's own recipes (seeded, CPU):
# captioned data -> CLIP text encoder (contrastive) -> TA-TiTok -> pre-tokenization (ids + CLIP features) -> MaskGen-VQ.
# Every stage resumes from its last checkpoint if interrupted, and is skipped once its final model exists.
# Run from the repository root:  bash training/fashion_mnist/train_text.sh
set -euo pipefail
PY=${PYTHON:-python}
CONFIGS=fashion_mnist  # shipped configs: hf-titok train --list
OUT=outputs/fashion_mnist

# The captioned dataset (a `text` column since the text model); --overwrite rewrites an older one without it.
[ -f data/fashion_mnist/dataset_dict.json ] && grep -q '"text"' data/fashion_mnist/train/dataset_info.json \
  || $PY training/fashion_mnist/prepare_data.py --output-dir data/fashion_mnist --overwrite

stage() {  # stage NAME ENTRY
  if [ -f "$OUT/$1/final/config.json" ] || [ -f "$OUT/$1/final/model_index.json" ]; then
    echo "== $1: done"; return
  fi
  echo "== $1"; $PY "training/$2" --config "$CONFIGS/$1"
}

stage clip train_tokenizer.py
stage tatitok train_tokenizer.py
[ -f "$OUT/text_tokens/state.json" ] || $PY training/pretokenize.py --tokenizer "$OUT/tatitok/final" \
    --text-encoder "$OUT/clip/final" --caption-column text --source data/fashion_mnist --split train \
    --output-dir "$OUT/text_tokens" --batch-size 256
stage maskgen_vq train_maskgen.py
echo "== done: $OUT/maskgen_vq/final is the text-to-image pipeline"
