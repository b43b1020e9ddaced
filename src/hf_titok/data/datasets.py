"""Image datasets: ImageNet webdataset shards from the Hub, any local image folder, `save_to_disk` datasets,
as augmented `{"pixel_values", "labels"}` rows for training (`hf_titok.training`) and evaluation
(`hf_titok.evaluation`). Images that cannot be decoded are skipped (the next sample is used instead) and
counted.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import numbers
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import torch

from ..text_encoding import tokenize_prompts
from ..utils.sampling_settings import AESTHETIC_SCORE_RANGE, DEFAULT_AESTHETIC_SCORE
from .images import Augmentation, decode_image, sample_rng

logger = logging.getLogger(__name__)

IMAGENET_WDS = "timm/imagenet-1k-wds"


# The prefixes the official data loader strips from a recaption (its first letter is then capitalised).
RECAPTION_PREFIXES = (
    "The image depicts",
    "The image displays",
    "The image showcases",
    "The image features",
    "The image shows",
)


@dataclass(frozen=True)
class TextColumns:
    """Where a captioned dataset keeps its text (`data.caption_column`, ...): the caption, optionally a LAION
    aesthetic score per image (else every image gets `default_aesthetic_score`) and a recaption that replaces the
    caption with probability `recaption_probability` (the official MaskGen data loader's rule)."""

    caption: str | None = None  # None: the source's usual column ("txt" in webdataset shards, else "text")
    aesthetic_score: str | None = None
    recaption: str | None = None
    recaption_probability: float = 0.95
    default_aesthetic_score: float = DEFAULT_AESTHETIC_SCORE

    def check_columns(self, columns) -> None:
        """The named columns exist (`columns`: the dataset's, when known)."""
        for what, column in (
            ("caption", self.caption),
            ("aesthetic score", self.aesthetic_score),
            ("recaption", self.recaption),
        ):
            if column is not None and columns is not None and column not in columns:
                raise ValueError(
                    f"the dataset has no {what} column {column!r}; columns: {sorted(columns)} (set data."
                    f"{what.replace(' ', '_')}_column){close_name(column, columns)}"
                )


class SkippedRow(Exception):
    """A row that is not trained on: an unreadable image, an empty or non-string caption, a score out of range."""


def close_name(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def clean_recaption(text: str) -> str:
    """A recaption as the official loader uses it: a known "The image ..." prefix stripped, first letter capitalised."""
    text = text.strip()
    for prefix in RECAPTION_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    return text[:1].upper() + text[1:]


def caption_fields(row: dict, text: TextColumns, rng) -> dict:
    """The text of one row: `caption` (the recaption instead, with its probability) and `aesthetic_score`; raises
    `SkippedRow` naming what is wrong."""
    caption = row.get(text.caption)
    recaption = row.get(text.recaption) if text.recaption is not None else None
    if isinstance(recaption, str) and recaption.strip() and rng.random() < text.recaption_probability:
        caption = clean_recaption(recaption)
    if not isinstance(caption, str):
        raise SkippedRow(f"its caption is not text ({type(caption).__name__})")
    if not caption.strip():
        raise SkippedRow("its caption is empty")
    score = text.default_aesthetic_score
    if text.aesthetic_score is not None:
        score = row.get(text.aesthetic_score)
        low, high = AESTHETIC_SCORE_RANGE
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or not low <= score <= high:
            raise SkippedRow(f"its aesthetic score {score!r} is not a number in [{low:g}, {high:g}]")
    return {"caption": caption, "aesthetic_score": float(score)}


class _RowReader:
    """What both dataset classes do with a row: its text checked first (cheap), then its image decoded and
    augmented with the row's own RNG (seed, epoch, key); a bad row raises `SkippedRow` and is counted by cause."""

    def _setup(self, augmentation, image_column, label_column, text: TextColumns | None, seed: int):
        self.augmentation, self.image_column, self.label_column, self.text = (
            augmentation,
            image_column,
            label_column,
            text,
        )
        self.seed, self.epoch = seed, 0
        self._skipped_keys: dict[str, set] = {}

    @property
    def skipped_by_cause(self) -> dict[str, int]:
        """How many distinct rows were skipped so far, by cause ("image": unreadable, "text": caption or score)."""
        return {cause: len(keys) for cause, keys in self._skipped_keys.items()}

    @property
    def skipped(self) -> int:
        """How many distinct rows were skipped so far (every cause)."""
        return sum(self.skipped_by_cause.values())

    def _skip(self, key, cause: str, reason) -> None:
        keys = self._skipped_keys.setdefault(cause, set())
        if key not in keys:  # a bad row met again (as the stand-in of another index, or next epoch) is said once
            keys.add(key)
            logger.warning("skipping row %s: %s", key, reason)

    def _sample(self, row: dict, key, augmentation: Augmentation | None = None) -> dict:
        rng = sample_rng(self.seed, self.epoch, key)
        fields = caption_fields(row, self.text, rng) if self.text is not None else {}
        try:
            image = decode_image(row[self.image_column])
        except (OSError, ValueError, SyntaxError, PIL.UnidentifiedImageError) as error:
            raise SkippedRow(f"unreadable image: {error}") from None
        sample = {"pixel_values": (augmentation or self.augmentation)(image, rng), **fields}
        if self.text is None:
            sample["labels"] = int(row[self.label_column]) if self.label_column and self.label_column in row else 0
        return sample

    def preview(self, row: dict, key, augmentation: Augmentation) -> dict | None:
        """`row` as a sample made with another `augmentation` (e.g. the center crops of reconstruction grids), or
        None for a bad row; nothing is counted or logged."""
        try:
            return self._sample(row, key, augmentation)
        except SkippedRow:
            return None

    def _read(self, row: dict, key) -> dict | None:
        try:
            return self._sample(row, key)
        except SkippedRow as error:
            self._skip(key, "image" if str(error).startswith("unreadable") else "text", error)
            return None


class ImageTrainingDataset(_RowReader, torch.utils.data.Dataset):
    """Map-style wrapper of a `datasets.Dataset` yielding `{"pixel_values", "labels"}` with the augmentation, or,
    with `text` (`TextColumns`), `{"pixel_values", "caption", "aesthetic_score"}`.

    A bad row (unreadable image, bad caption or score) is replaced by the next good one and counted in
    `skipped_by_cause`, with a warning."""

    def __init__(
        self,
        dataset,
        augmentation: Augmentation,
        image_column: str = "image",
        label_column: str | None = "label",
        seed: int = 0,
        max_skips: int = 64,
        text: TextColumns | None = None,
    ):
        if image_column not in dataset.column_names:
            raise ValueError(f"the dataset has no image column {image_column!r}; columns: {dataset.column_names}")
        if text is not None:
            text.check_columns(dataset.column_names)
        if label_column is not None and label_column not in dataset.column_names:
            label_column = None
        # Decode ourselves so a corrupt file is a skipped sample, not a crash inside `datasets`.
        if isinstance(dataset.features.get(image_column), datasets.Image):
            dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
        self.dataset, self.max_skips = dataset, max_skips
        self._setup(augmentation, image_column, label_column, text, seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def sample_at(self, position: int) -> dict | None:
        """Row `position` as a sample, or None for a bad row (counted and said, as every skip)."""
        return self._read(self.dataset[position], position)

    def __getitem__(self, index: int) -> dict:
        for attempt in range(self.max_skips):
            sample = self.sample_at((index + attempt) % len(self.dataset))
            if sample is not None:
                return sample
        raise RuntimeError(
            f"{self.max_skips} consecutive bad rows from index {index} ({self.skipped_by_cause}): is the dataset "
            "corrupt, or are the columns wrong?"
        )


class StreamingImageDataset(_RowReader, torch.utils.data.IterableDataset):
    """Iterable wrapper of a streaming `datasets.IterableDataset` (e.g. ImageNet webdataset shards): rows as
    `ImageTrainingDataset` gives them, augmentation keyed by the sample's `__key__`, bad rows skipped and
    counted."""

    def __init__(
        self,
        dataset,
        augmentation: Augmentation,
        image_column: str = "jpg",
        label_column: str | None = "cls",
        seed: int = 0,
        text: TextColumns | None = None,
    ):
        self.dataset = dataset
        self._setup(augmentation, image_column, label_column, text, seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        for position, row in enumerate(self.dataset):
            if position == 0 and self.text is not None:
                self.text.check_columns(row.keys())  # a stream's columns are known once a row is read
            sample = self._read(row, row.get("__key__", position))
            if sample is not None:
                yield sample


def load_image_dataset(
    source: str,
    split: str = "train",
    augmentation: Augmentation | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    streaming: bool | None = None,
    seed: int = 0,
    text: TextColumns | None = None,
):
    """A training dataset of augmented images (with `text`, of captioned images: `TextColumns`).

    `source` is a local folder (`imagefolder`: `ROOT/<split>/<class>/*` or `ROOT/<class>/*`, labels from
    the sub-folders), a local folder of webdataset `.tar` shards, a dataset written with `save_to_disk`,
    or a Hub dataset id (default ImageNet: `timm/imagenet-1k-wds`, streamed, columns `jpg`/`cls`)."""
    augmentation = augmentation or Augmentation()
    path = Path(source)
    if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        dataset = datasets.load_from_disk(str(path))  # a `save_to_disk` dataset
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[split]
        image_column, label_column = image_column or "image", label_column or "label"
    elif path.is_dir():
        tars = sorted(path.glob(f"*{split}*.tar")) or sorted(path.glob("*.tar"))
        if tars:
            dataset = datasets.load_dataset(
                "webdataset", data_files={split: [str(t) for t in tars]}, split=split, streaming=bool(streaming)
            )
            image_column, label_column = image_column or "jpg", label_column or "cls"
            text = _with_caption_column(text, "txt")
        else:
            data_dir = path / split if (path / split).is_dir() else path
            dataset = datasets.load_dataset(
                "imagefolder", data_dir=str(data_dir), split="train", streaming=bool(streaming)
            )
            image_column, label_column = image_column or "image", label_column or "label"
    elif path.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1:
        # A Hub dataset id is "owner/name": anything else was meant as a local path.
        raise FileNotFoundError(f"dataset folder not found: {source}")
    else:
        is_wds = source == IMAGENET_WDS
        streaming = is_wds if streaming is None else streaming
        try:
            dataset = datasets.load_dataset(source, split=split, streaming=streaming)
        except Exception as error:  # offline, gated, unknown repo or split
            raise FileNotFoundError(
                f"dataset {source!r} is neither a local folder (no such folder) nor a dataset the Hub gives: "
                f"{' '.join(str(error).split())}"
            ) from None
        image_column = image_column or ("jpg" if is_wds else "image")
        label_column = label_column or ("cls" if is_wds else "label")
    text = _with_caption_column(text, "txt" if source == IMAGENET_WDS else "text")
    if isinstance(dataset, datasets.IterableDataset):
        return StreamingImageDataset(dataset, augmentation, image_column, label_column, seed, text=text)
    return ImageTrainingDataset(dataset, augmentation, image_column, label_column, seed, text=text)


def _with_caption_column(text: TextColumns | None, default: str) -> TextColumns | None:
    return dataclasses.replace(text, caption=default) if text is not None and text.caption is None else text


def evaluation_images(
    source: str, split: str, image_size: int, max_images: int | None = None, pad_small_images: bool = False
):
    """Evaluation-preprocessed images (shorter side `image_size`, bicubic; center crop; no flip - what a
    tokenizer's image processor does, `pad_small_images` its `do_pad`) of a `datasets` split, a `save_to_disk`
    dataset or an image folder: an iterable of `(pixel_values, label)`."""
    augmentation = Augmentation(
        crop_size=image_size, random_crop=False, random_flip=False, pad_small_images=pad_small_images
    )
    dataset = load_image_dataset(source, split, augmentation)
    # Map-style datasets by index (their __getitem__ replaces an unreadable image by a neighbour, so plain
    # iteration would never end); streamed ones by iteration.
    streamed = isinstance(dataset, torch.utils.data.IterableDataset)
    rows = iter(dataset) if streamed else (dataset[index] for index in range(len(dataset)))
    for index, row in enumerate(rows):
        if max_images is not None and index >= max_images:
            return
        yield row["pixel_values"], row["labels"]


def collate_images(rows: list[dict]) -> dict:
    return {
        "pixel_values": torch.stack([row["pixel_values"] for row in rows]),
        "labels": torch.tensor([row["labels"] for row in rows], dtype=torch.long),
    }


def caption_collator(text_tokenizer):
    """The collator of captioned images: pixels, the captions' open_clip token ids `input_ids` `[B, 77]` (through
    the CLIP tokenizer `text_tokenizer`: `hf_titok.text_encoding.tokenize_prompts`) and `aesthetic_score` `[B]`."""

    def collate(rows: list[dict]) -> dict:
        return {
            "pixel_values": torch.stack([row["pixel_values"] for row in rows]),
            "input_ids": tokenize_prompts(text_tokenizer, [row["caption"] for row in rows]),
            "aesthetic_score": torch.tensor([row["aesthetic_score"] for row in rows], dtype=torch.float32),
        }

    return collate


def pretokenized_caption_collator(text_tokenizer, default_aesthetic_score: float = DEFAULT_AESTHETIC_SCORE):
    """The collator of pre-tokenized captioned data (`hf-titok pretokenize` of a text-aware tokenizer): the image
    tokens - `token_ids` `[B, N]` (VQ) or `latent_moments` `[B, N, 2C]` (VAE: posterior mean and log-variance) -,
    the captions' CLIP features (`prompt_embeds`, `pooled_prompt_embeds`) when pre-computed, else their open_clip
    ids `input_ids`, and `aesthetic_score` (the default where a row has none)."""

    def collate(rows: list[dict]) -> dict:
        batch = {
            "aesthetic_score": torch.tensor(
                [row.get("aesthetic_score", default_aesthetic_score) for row in rows], dtype=torch.float32
            ),
        }
        if "prompt_embeds" in rows[0]:  # the CLIP features, pre-computed
            for name in ("prompt_embeds", "pooled_prompt_embeds"):
                batch[name] = torch.tensor(np.asarray([row[name] for row in rows]), dtype=torch.float32)
        else:
            batch["input_ids"] = tokenize_prompts(text_tokenizer, [row["caption"] for row in rows])
        if "token_ids" in rows[0]:
            batch["token_ids"] = torch.tensor(np.asarray([row["token_ids"] for row in rows]), dtype=torch.long)
        else:
            batch["latent_moments"] = torch.tensor(
                np.asarray([row["latent_moments"] for row in rows]), dtype=torch.float32
            )
        return batch

    return collate


def collate_tokens(rows: list[dict]) -> dict:
    return {
        "token_ids": torch.tensor(np.asarray([row["token_ids"] for row in rows]), dtype=torch.long),
        "labels": torch.tensor([row["labels"] if "labels" in row else row["label"] for row in rows], dtype=torch.long),
    }


__all__ = [
    "IMAGENET_WDS",
    "RECAPTION_PREFIXES",
    "SkippedRow",
    "TextColumns",
    "caption_collator",
    "caption_fields",
    "clean_recaption",
    "pretokenized_caption_collator",
    "ImageTrainingDataset",
    "StreamingImageDataset",
    "collate_images",
    "collate_tokens",
    "evaluation_images",
    "load_image_dataset",
]
