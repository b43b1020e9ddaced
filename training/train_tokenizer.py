#!/usr/bin/env python
"""Train a TiTok tokenizer recipe (or its MaskGIT-VQGAN teacher) with the HF Trainer.

    accelerate launch training/train_tokenizer.py --config titok_l32_stage1
    python training/train_tokenizer.py --config ... --set data.source=/data/my_images --set training.max_steps=2000

A thin wrapper of `hf-titok train` limited to vqgan, stage1, stage2, single_stage recipes (configs by name:
`hf-titok train --list`, or a path). A killed run resumes from its last
checkpoint when started again with the same output directory.
"""

from hf_titok.training.command import main

if __name__ == "__main__":
    main(entry_point="tokenizer")
