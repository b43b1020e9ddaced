#!/usr/bin/env python
"""Fashion-MNIST from the Debian package -> `datasets` on disk (32x32 RGB images + class names).

    apt-get install dataset-fashion-mnist
    python training/fashion_mnist/prepare_data.py --output-dir data/fashion_mnist [--reference-npz PATH]

`--reference-npz` also writes the test split as an ADM reference batch (`arr_0`: uint8 [10000, 32, 32, 3],
`arr_1`: labels), the `--reference` of `hf-titok evaluate generation` for the built-in model's gFID.
"""

import argparse
from pathlib import Path

import datasets
import numpy as np

from hf_titok.data.fashion_mnist import fashion_mnist_dataset, load_fashion_mnist, to_rgb32

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--output-dir", default="data/fashion_mnist")
parser.add_argument("--limit", type=int, help="only the first N images of each split (quick tests)")
parser.add_argument("--reference-npz", help="also write the test split here in the ADM reference-batch layout")
parser.add_argument("--overwrite", action="store_true", help="rewrite the dataset even if --output-dir holds one")
args = parser.parse_args()
if (Path(args.output_dir) / "dataset_dict.json").is_file() and not args.overwrite:
    print(f"{args.output_dir} already holds the dataset (--overwrite to rewrite it)")
else:
    splits = datasets.DatasetDict(
        {split: fashion_mnist_dataset(split, limit=args.limit) for split in ("train", "test")}
    )
    splits.save_to_disk(args.output_dir)
    print(f"wrote {', '.join(f'{k}: {len(v)}' for k, v in splits.items())} to {args.output_dir}")
if args.reference_npz:
    images, labels = load_fashion_mnist("test")
    images, labels = to_rgb32(images[: args.limit]), labels[: args.limit]
    Path(args.reference_npz).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.reference_npz, arr_0=images, arr_1=labels)
    print(f"wrote {args.reference_npz} ({len(images)} test images, ADM layout)")
