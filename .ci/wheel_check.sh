#!/usr/bin/env bash
# The package as a user installs it: build the wheel, install it into a fresh virtualenv outside the clone, then
# run the demo and one tiny training run (a shipped recipe config by name, shrunk with --set) from it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/hf_titok_wheel.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
quietly() {  # a step's output only if it fails
  "$@" > "$WORK/step.log" 2>&1 || { cat "$WORK/step.log"; echo "wheel check: failed: $*"; exit 1; }
}
"$PYTHON" -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
quietly "$PY" -m pip install --upgrade pip
quietly "$PY" -m pip install torch==2.13.0        # first, pinned: a looser torch pulls a multi-GB CUDA build
quietly "$PY" -m pip wheel --no-deps --wheel-dir "$WORK/dist" .
quietly "$PY" -m pip install "$WORK"/dist/hf_titok-*.whl
echo "wheel check: installed $(basename "$WORK"/dist/hf_titok-*.whl) into a fresh virtualenv"
cd "$WORK"                                         # outside the clone: only the installed wheel is importable
"$PY" - <<'PYTHON'
import hf_titok, pathlib
assert "site-packages" in hf_titok.__file__, hf_titok.__file__
from hf_titok.training.config import shipped_configs
assert "titok_l32_stage1" in shipped_configs() and "fashion_mnist/generator" in shipped_configs()
# a tiny labelled image folder for the training run
import numpy as np, PIL.Image
rng = np.random.default_rng(0)
for c in range(2):
    folder = pathlib.Path("images") / f"class{c}"
    folder.mkdir(parents=True)
    for i in range(8):
        PIL.Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
PYTHON
quietly "$PY" -m hf_titok.demo --output-dir demo
test -s demo/samples.png && test -s demo/reconstructions.png
"$WORK/venv/bin/hf-titok" train --list
quietly "$WORK/venv/bin/hf-titok" train --config titok_bl64_vq8k_single_stage --output-dir run \
    --set model.preset=null \
    --set 'model.config={image_size: 32, encoder_patch_size: 8, decoder_patch_size: 8, encoder_hidden_size: 32, encoder_num_layers: 1, encoder_num_heads: 2, decoder_hidden_size: 32, decoder_num_layers: 1, decoder_num_heads: 2, num_latent_tokens: 8, token_size: 8, codebook_size: 32, decoder_head: pixels, legacy_encoder_layout: false, use_l2_norm: false}' \
    --set 'discriminator={hidden_channels: 16, channel_mult: [1, 2], num_groups: 8, pool_size: 4}' \
    --set data.source=images --set data.crop_size=32 --set data.streaming=false \
    --set training.max_steps=3 --set training.per_device_train_batch_size=4 --set training.use_cpu=true \
    --set training.logging_steps=1 --set training.save_steps=3 --set training.image_log_steps=0
test -s run/final/config.json && test -s run/final/model.safetensors
echo "wheel check: the installed wheel ran the demo and trained titok_bl64_vq8k_single_stage for 3 steps"
