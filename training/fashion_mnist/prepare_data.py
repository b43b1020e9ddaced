#!/usr/bin/env python
"""Fashion-MNIST from the Debian package -> `datasets` on disk (32x32 RGB images + class names).

    apt-get install dataset-fashion-mnist
    python training/fashion_mnist/prepare_data.py --output-dir data/fashion_mnist
"""

import argparse

import datasets

from hf_titok.fashion_mnist import fashion_mnist_dataset

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--output-dir", default="data/fashion_mnist")
parser.add_argument("--limit", type=int, help="only the first N images of each split (quick tests)")
args = parser.parse_args()
splits = datasets.DatasetDict({split: fashion_mnist_dataset(split, limit=args.limit) for split in ("train", "test")})
splits.save_to_disk(args.output_dir)
print(f"wrote {', '.join(f'{k}: {len(v)}' for k, v in splits.items())} to {args.output_dir}")
