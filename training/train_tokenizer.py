#!/usr/bin/env python
"""Train a TiTok tokenizer recipe (or its MaskGIT-VQGAN teacher) with the HF Trainer.

    accelerate launch training/train_tokenizer.py --config training/configs/titok_l32_stage1.yaml
    python training/train_tokenizer.py --config ... --set data.source=/data/my_images --set training.max_steps=2000

Recipes: vqgan, stage1, stage2, single_stage (see training/configs). A killed run resumes from its last
checkpoint when started again with the same output directory.
"""

from hf_titok.training.recipes import main

if __name__ == "__main__":
    main(entry_point="tokenizer")
