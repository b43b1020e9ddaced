"""Pre-tokenize an image dataset for generator training: a `datasets` dataset of token ids on disk.

As in the official `scripts/pretokenization.py`, every image is center-cropped (shorter side resized to the
model size) and tokenized twice, as is and horizontally flipped, which is the generator recipe's flip
augmentation done once up front.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.class_labels import dataset_class_names
from ..data.datasets import load_image_dataset
from ..data.images import Augmentation
from ..loaders import load_tokenizer
from ..models.titok.image_processing_titok import TiTokImageProcessor
from ..models.titok.modeling_titok import TiTokTokenizer

logger = logging.getLogger(__name__)


@torch.no_grad()
def pretokenize(
    tokenizer: str | TiTokTokenizer,
    source: str,
    output_dir: str | Path,
    split: str = "train",
    batch_size: int = 64,
    flip: bool = True,
    image_column: str | None = None,
    label_column: str | None = None,
    limit: int | None = None,
):
    """Write `output_dir` (`datasets.Dataset.save_to_disk`) with columns `token_ids` (N ids), `label`
    (a `ClassLabel` when the source names its classes) and `flipped`. Returns the dataset."""
    if isinstance(tokenizer, (str, Path)):
        model, processor = load_tokenizer(str(tokenizer))
    else:
        model, processor = tokenizer, TiTokImageProcessor.for_image_size(tokenizer.config.image_size)
    model.eval()
    if not model.is_vq:
        raise ValueError("pre-tokenization needs a VQ tokenizer (generators are trained on discrete ids)")
    # The tokenizer's own preprocessing (its saved processor), without flips: those are added below.
    center = Augmentation(processor.image_size, random_crop=False, random_flip=False, pad_small_images=processor.do_pad)
    images = load_image_dataset(source, split, center, image_column, label_column, streaming=False)
    total = len(images) if limit is None else min(limit, len(images))
    token_ids, labels, flipped = [], [], []
    with tqdm(total=total, desc="pre-tokenizing", unit="img") as bar:
        for start in range(0, total, batch_size):
            rows = [images[i] for i in range(start, min(start + batch_size, total))]
            pixels = torch.stack([row["pixel_values"] for row in rows])
            views = [(pixels, False)] + ([(pixels.flip(-1), True)] if flip else [])
            for view, is_flipped in views:
                token_ids.append(model.encode(view).token_ids.numpy())
                labels += [row["labels"] for row in rows]
                flipped += [is_flipped] * len(rows)
            bar.update(len(rows))
    features = {
        "token_ids": datasets.Sequence(datasets.Value("int32"), length=model.config.num_latent_tokens),
        "label": datasets.Value("int64"),
        "flipped": datasets.Value("bool"),
    }
    names = dataset_class_names(images)
    if names:
        features["label"] = datasets.ClassLabel(names=names)
    dataset = datasets.Dataset.from_dict(
        {"token_ids": np.concatenate(token_ids).tolist(), "label": labels, "flipped": flipped},
        features=datasets.Features(features),
    )
    dataset.save_to_disk(str(output_dir))
    logger.info(
        "wrote %d token sequences (%d images%s) to %s; %d unreadable images skipped",
        len(dataset),
        total,
        ", with flips" if flip else "",
        output_dir,
        getattr(images, "skipped", 0),
    )
    return dataset


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description="Pre-tokenize images (and their flips) for generator training."
    )
    parser.add_argument("--tokenizer", required=True, help="TiTok tokenizer directory or Hub id")
    parser.add_argument("--source", required=True, help="image folder, webdataset folder or Hub dataset id")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-flip", action="store_true", help="do not add the flipped copies")
    parser.add_argument("--limit", type=int, help="only the first N images")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        pretokenize(
            args.tokenizer,
            args.source,
            args.output_dir,
            args.split,
            args.batch_size,
            not args.no_flip,
            limit=args.limit,
        )
    except (ValueError, FileNotFoundError, OSError) as error:
        parser.exit(2, f"error: {error}\n")


__all__ = ["pretokenize", "main"]
