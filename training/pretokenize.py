#!/usr/bin/env python
"""Tokenize an image dataset (each image and its horizontal flip) for generator training.

    python training/pretokenize.py --tokenizer outputs/titok_l32_stage2/final \
        --source timm/imagenet-1k-wds --output-dir data/imagenet_titok_l32_tokens
"""

from hf_titok.training.pretokenize import main

if __name__ == "__main__":
    main()
