#!/usr/bin/env python
"""Train a MaskGen text-to-image generator (VQ or KL, stage 1 or 2) on TA-TiTok tokens with the HF Trainer.

    accelerate launch training/train_maskgen.py --config maskgen_vq_l_stage1

A thin wrapper of `hf-titok train` limited to the MaskGen recipes (the official scripts/train_maskgen.py).

Tokens come from a frozen TA-TiTok on the fly (`tokenizer:` + captioned `data.source`) or from a dataset written
by `hf-titok pretokenize` (`data.pretokenized`); the prompts go through the frozen CLIP text encoder
(`text_encoder:`). Stage 2 continues from stage 1's export (`model.init_from`). A killed run resumes from its last
checkpoint.
"""

from hf_titok.training.command import main

if __name__ == "__main__":
    main(entry_point="maskgen")
