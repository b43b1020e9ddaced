"""Image datasets: ImageNet webdataset shards from the Hub, any local image folder, `save_to_disk` datasets,
as augmented `{"pixel_values", "labels"}` rows for training (`hf_titok.training`) and evaluation
(`hf_titok.evaluation`). Images that cannot be decoded are skipped (the next sample is used instead) and
counted.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import torch

from .images import Augmentation, decode_image, sample_rng

logger = logging.getLogger(__name__)

IMAGENET_WDS = "timm/imagenet-1k-wds"


class ImageTrainingDataset(torch.utils.data.Dataset):
    """Map-style wrapper of a `datasets.Dataset` yielding `{"pixel_values", "labels"}` with the augmentation.

    Undecodable images are replaced by the next decodable sample and counted in `skipped`."""

    def __init__(
        self,
        dataset,
        augmentation: Augmentation,
        image_column: str = "image",
        label_column: str | None = "label",
        seed: int = 0,
        max_skips: int = 64,
    ):
        if image_column not in dataset.column_names:
            raise ValueError(f"the dataset has no image column {image_column!r}; columns: {dataset.column_names}")
        if label_column is not None and label_column not in dataset.column_names:
            label_column = None
        # Decode ourselves so a corrupt file is a skipped sample, not a crash inside `datasets`.
        if isinstance(dataset.features.get(image_column), datasets.Image):
            dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
        self.dataset, self.augmentation = dataset, augmentation
        self.image_column, self.label_column = image_column, label_column
        self.seed, self.epoch, self.max_skips = seed, 0, max_skips
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        for attempt in range(self.max_skips):
            position = (index + attempt) % len(self.dataset)
            row = self.dataset[position]
            try:
                image = decode_image(row[self.image_column])
            except (OSError, ValueError, SyntaxError, PIL.UnidentifiedImageError) as error:
                self.skipped += 1
                logger.warning("skipping unreadable image at index %d: %s", position, error)
                continue
            pixel_values = self.augmentation(image, sample_rng(self.seed, self.epoch, position))
            label = int(row[self.label_column]) if self.label_column is not None else 0
            return {"pixel_values": pixel_values, "labels": label}
        raise RuntimeError(
            f"{self.max_skips} consecutive unreadable images from index {index}: is the dataset corrupt?"
        )


class StreamingImageDataset(torch.utils.data.IterableDataset):
    """Iterable wrapper of a streaming `datasets.IterableDataset` (e.g. ImageNet webdataset shards);
    augmentation keyed by the sample's `__key__`, unreadable images skipped and counted."""

    def __init__(
        self,
        dataset,
        augmentation: Augmentation,
        image_column: str = "jpg",
        label_column: str | None = "cls",
        seed: int = 0,
    ):
        self.dataset, self.augmentation = dataset, augmentation
        self.image_column, self.label_column = image_column, label_column
        self.seed, self.epoch, self.skipped = seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        for position, row in enumerate(self.dataset):
            try:
                image = decode_image(row[self.image_column])
            except (OSError, ValueError, SyntaxError, PIL.UnidentifiedImageError) as error:
                self.skipped += 1
                logger.warning("skipping unreadable image %s: %s", row.get("__key__", position), error)
                continue
            key = row.get("__key__", position)
            label = int(row[self.label_column]) if self.label_column and self.label_column in row else 0
            yield {"pixel_values": self.augmentation(image, sample_rng(self.seed, self.epoch, key)), "labels": label}


def load_image_dataset(
    source: str,
    split: str = "train",
    augmentation: Augmentation | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    streaming: bool | None = None,
    seed: int = 0,
):
    """A training dataset of augmented images.

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
    if isinstance(dataset, datasets.IterableDataset):
        return StreamingImageDataset(dataset, augmentation, image_column, label_column, seed)
    return ImageTrainingDataset(dataset, augmentation, image_column, label_column, seed)


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


def collate_tokens(rows: list[dict]) -> dict:
    return {
        "token_ids": torch.tensor(np.asarray([row["token_ids"] for row in rows]), dtype=torch.long),
        "labels": torch.tensor([row["labels"] if "labels" in row else row["label"] for row in rows], dtype=torch.long),
    }


__all__ = [
    "IMAGENET_WDS",
    "ImageTrainingDataset",
    "StreamingImageDataset",
    "collate_images",
    "collate_tokens",
    "evaluation_images",
    "load_image_dataset",
]
