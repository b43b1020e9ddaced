#!/usr/bin/env python
"""Train a class-conditional generator (MaskGIT on TiTok tokens, or RAR) with the HF Trainer.

    accelerate launch training/train_generator.py --config titok_l32_generator

A thin wrapper of `hf-titok train` limited to the generator recipes (`generator`, `rar`).

Token ids come from a frozen tokenizer on the fly (`tokenizer:` + `data.source`) or from a dataset written
by training/pretokenize.py (`data.pretokenized`). A killed run resumes from its last checkpoint.
"""

from hf_titok.training.command import main

if __name__ == "__main__":
    main(entry_point="generator")
