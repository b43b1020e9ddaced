"""Pre-tokenize an image dataset for generator training: a `datasets` dataset of tokens on disk.

As in the official `scripts/pretokenization.py`, every image is center-cropped (shorter side resized to the
model size) and tokenized; for class-conditional data also horizontally flipped, which is the generator recipe's
flip augmentation done once up front.

A text-aware tokenizer (TA-TiTok) pre-tokenizes captioned data for the MaskGen recipes: its ids (VQ) or posterior
moments (VAE: mean and log-variance, sampled at each training step) with each image's caption and aesthetic
score, and the CLIP features a MaskGen step reads (`prompt_embeds`, `pooled_prompt_embeds`, stored in float16),
so that training runs neither the tokenizer nor the text encoder. Captioned images are not flipped by default (a
caption may say "left").
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import datasets
import torch
from tqdm.auto import tqdm

from ..data.class_labels import dataset_class_names
from ..data.datasets import TextColumns, load_image_dataset
from ..data.images import Augmentation
from ..loaders import load_text_encoder, load_tokenizer
from ..models.titok.image_processing_titok import TiTokImageProcessor
from ..models.titok.modeling_titok import TiTokTokenizer
from ..text_encoding import clip_text_features, tokenize_prompts

logger = logging.getLogger(__name__)


@torch.no_grad()
def pretokenize(
    tokenizer: str | TiTokTokenizer,
    source: str,
    output_dir: str | Path,
    split: str = "train",
    batch_size: int = 64,
    flip: bool | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    limit: int | None = None,
    text_encoder: str | None = None,
    text: TextColumns | None = None,
):
    """Write `output_dir` (`datasets.Dataset.save_to_disk`) and return the dataset. Columns: `token_ids` (N ids),
    `label` (a `ClassLabel` when the source names its classes) and `flipped`; for a text-aware tokenizer
    `token_ids` (VQ) or `latent_moments` (`[N, 2C]`, VAE), `caption`, `aesthetic_score`, `prompt_embeds`,
    `pooled_prompt_embeds` and `flipped`, with the CLIP text encoder `text_encoder` (a folder or Hub id, default the
    official one) and the text columns `text`. `flip`: add flipped copies (default: for class data only)."""
    if isinstance(tokenizer, (str, Path)):
        model, processor = load_tokenizer(str(tokenizer))
    else:
        model, processor = tokenizer, TiTokImageProcessor.for_image_size(tokenizer.config.image_size)
    model.eval()
    captioned = bool(model.decoder_inputs)
    if not captioned and not model.is_vq:
        raise ValueError("pre-tokenization of class data needs a VQ tokenizer (its generator trains on discrete ids)")
    flip = not captioned if flip is None else flip
    encoder = text_tokenizer = None
    if captioned:
        encoder, text_tokenizer = load_text_encoder(text_encoder)
    # The tokenizer's own preprocessing (its saved processor), without flips: those are added below.
    center = Augmentation(processor.image_size, random_crop=False, random_flip=False, pad_small_images=processor.do_pad)
    images = load_image_dataset(
        source,
        split,
        center,
        image_column,
        label_column,
        streaming=False,
        text=(text or TextColumns()) if captioned else None,
    )
    total = len(images) if limit is None else min(limit, len(images))
    columns: dict[str, list] = {}
    with tqdm(total=total, desc="pre-tokenizing", unit="img") as bar:
        for start in range(0, total, batch_size):
            rows = [row for i in range(start, min(start + batch_size, total)) if (row := images.sample_at(i))]
            bar.update(min(batch_size, total - start))
            if not rows:
                continue
            pixels = torch.stack([row["pixel_values"] for row in rows])
            text_columns = (
                _text_columns(encoder, text_tokenizer, rows) if captioned else {"label": [r["labels"] for r in rows]}
            )
            for view, is_flipped in [(pixels, False)] + ([(pixels.flip(-1), True)] if flip else []):
                encoded = model.encode(view)
                if model.is_vq:
                    tokens = {"token_ids": list(encoded.token_ids.int().numpy())}
                else:
                    moments = torch.cat([encoded.latents, encoded.posterior_logvar], dim=-1)
                    tokens = {"latent_moments": list(moments.float().numpy())}
                for name, values in {**tokens, **text_columns, "flipped": [is_flipped] * len(rows)}.items():
                    columns.setdefault(name, []).extend(values)
    dataset = datasets.Dataset.from_dict(columns, features=_features(model, images, columns, captioned))
    dataset.save_to_disk(str(output_dir))
    logger.info(
        "wrote %d token sequences (%d rows%s) to %s; %d bad rows skipped (%s)",
        len(dataset),
        total,
        ", with flips" if flip else "",
        output_dir,
        images.skipped,
        images.skipped_by_cause,
    )
    return dataset


def _text_columns(encoder, text_tokenizer, rows: list[dict]) -> dict[str, list]:
    captions = [row["caption"] for row in rows]
    features = clip_text_features(encoder, tokenize_prompts(text_tokenizer, captions))
    return {
        "caption": captions,
        "aesthetic_score": [row["aesthetic_score"] for row in rows],
        "prompt_embeds": list(features.condition.half().numpy()),
        "pooled_prompt_embeds": list(features.pooled.half().numpy()),
    }


def _features(model: TiTokTokenizer, images, columns: dict, captioned: bool) -> datasets.Features:
    config = model.config
    features = {"flipped": datasets.Value("bool")}
    if model.is_vq:
        features["token_ids"] = datasets.Sequence(datasets.Value("int32"), length=config.num_latent_tokens)
    else:
        features["latent_moments"] = datasets.Array2D((config.num_latent_tokens, 2 * config.token_size), "float32")
    if captioned:
        width = len(columns["pooled_prompt_embeds"][0]) if columns.get("pooled_prompt_embeds") else 0
        features.update(
            caption=datasets.Value("string"),
            aesthetic_score=datasets.Value("float32"),
            prompt_embeds=datasets.Array2D((config.text_max_length, config.text_hidden_size), "float16"),
            pooled_prompt_embeds=datasets.Sequence(datasets.Value("float16"), length=width),
        )
    else:
        names = dataset_class_names(images)
        features["label"] = datasets.ClassLabel(names=names) if names else datasets.Value("int64")
    return datasets.Features(features)


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Pre-tokenize images for generator training: class data (and its flips) for TiTok generators, "
        "captioned data with its CLIP features for MaskGen (with a TA-TiTok tokenizer).",
    )
    parser.add_argument("--tokenizer", required=True, help="TiTok or TA-TiTok tokenizer directory or Hub id")
    parser.add_argument("--source", required=True, help="image folder, webdataset folder or Hub dataset id")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=64)
    flips = parser.add_mutually_exclusive_group()
    flips.add_argument("--no-flip", dest="flip", action="store_false", help="do not add flipped copies")
    flips.add_argument("--flip", dest="flip", action="store_true", help="add flipped copies (captioned data too)")
    parser.set_defaults(flip=None)
    parser.add_argument("--limit", type=int, help="only the first N images")
    text = parser.add_argument_group("captioned data (a TA-TiTok tokenizer)")
    text.add_argument("--text-encoder", help="CLIP text encoder folder or Hub id (default: the official one)")
    text.add_argument("--caption-column", help="default: txt in webdataset shards, else text")
    text.add_argument("--aesthetic-score-column", help="default: none (every image gets the releases' 6.5)")
    text.add_argument("--recaption-column", help="replaces the caption with probability 0.95 (official rule)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    columns = dict(
        caption=args.caption_column, aesthetic_score=args.aesthetic_score_column, recaption=args.recaption_column
    )
    try:
        pretokenize(
            args.tokenizer,
            args.source,
            args.output_dir,
            args.split,
            args.batch_size,
            args.flip,
            limit=args.limit,
            text_encoder=args.text_encoder,
            text=TextColumns(**{key: value for key, value in columns.items() if value is not None}),
        )
    except (ValueError, FileNotFoundError, OSError) as error:
        parser.exit(2, f"error: {error}\n")


__all__ = ["pretokenize", "main"]
