"""Training data: ImageNet webdataset shards from the Hub or any local image folder, with the official
augmentations implemented with Pillow (no torchvision).

Augmentation randomness is a pure function of (seed, epoch, sample key), never of a global RNG, so a run
resumed from a checkpoint sees exactly the same crops and flips as an uninterrupted one, whatever the data
loader prefetched. Images that cannot be decoded are skipped (the next sample is used instead) and counted.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from ..image_processing_titok import _to_rgb

logger = logging.getLogger(__name__)

IMAGENET_WDS = "timm/imagenet-1k-wds"


@dataclass
class Augmentation:
    """Shorter side resized to `crop_size` (bicubic, antialiased by Pillow), then a random crop (tokenizer
    training) or a center crop (generator training and evaluation), then an optional random horizontal flip."""

    crop_size: int = 256
    random_crop: bool = True
    random_flip: bool = True

    def __call__(self, image: PIL.Image.Image, rng: random.Random) -> torch.Tensor:
        image = _to_rgb(image)
        width, height = image.size
        scale = self.crop_size / min(width, height)
        size = (max(self.crop_size, round(width * scale)), max(self.crop_size, round(height * scale)))
        if size != image.size:
            image = image.resize(size, PIL.Image.BICUBIC)
        width, height = image.size
        if self.random_crop:
            left, top = rng.randint(0, width - self.crop_size), rng.randint(0, height - self.crop_size)
        else:
            left, top = (width - self.crop_size) // 2, (height - self.crop_size) // 2
        image = image.crop((left, top, left + self.crop_size, top + self.crop_size))
        if self.random_flip and rng.random() < 0.5:
            image = image.transpose(PIL.Image.FLIP_LEFT_RIGHT)
        array = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def sample_rng(seed: int, epoch: int, key) -> random.Random:
    digest = hashlib.sha256(f"{seed}/{epoch}/{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def decode_image(value) -> PIL.Image.Image:
    """A PIL image from what `datasets` holds for an image column (decoded or not)."""
    if isinstance(value, PIL.Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            image = PIL.Image.open(io.BytesIO(value["bytes"]))
        elif value.get("path"):
            image = PIL.Image.open(value["path"])
        else:
            raise ValueError("image entry holds neither bytes nor a path")
    elif isinstance(value, (bytes, bytearray)):
        image = PIL.Image.open(io.BytesIO(value))
    else:
        raise ValueError(f"unsupported image value of type {type(value).__name__}")
    image.load()
    return image


class ImageTrainingDataset(torch.utils.data.Dataset):
    """Map-style wrapper of a `datasets.Dataset` yielding `{"pixel_values", "labels"}` with the augmentation.

    Undecodable images are replaced by the next decodable sample and counted in `skipped`."""

    def __init__(self, dataset, augmentation: Augmentation, image_column: str = "image",
                 label_column: str | None = "label", seed: int = 0, max_skips: int = 64):
        import datasets

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
        raise RuntimeError(f"{self.max_skips} consecutive unreadable images from index {index}: is the dataset corrupt?")


class StreamingImageDataset(torch.utils.data.IterableDataset):
    """Iterable wrapper of a streaming `datasets.IterableDataset` (e.g. ImageNet webdataset shards);
    augmentation keyed by the sample's `__key__`, unreadable images skipped and counted."""

    def __init__(self, dataset, augmentation: Augmentation, image_column: str = "jpg",
                 label_column: str | None = "cls", seed: int = 0):
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
    import datasets

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
            dataset = datasets.load_dataset("webdataset", data_files={split: [str(t) for t in tars]}, split=split, streaming=bool(streaming))
            image_column, label_column = image_column or "jpg", label_column or "cls"
        else:
            data_dir = path / split if (path / split).is_dir() else path
            dataset = datasets.load_dataset("imagefolder", data_dir=str(data_dir), split="train", streaming=bool(streaming))
            image_column, label_column = image_column or "image", label_column or "label"
    elif path.exists() or source.startswith((".", "/")):
        raise FileNotFoundError(f"dataset folder not found: {source}")
    else:
        is_wds = source == IMAGENET_WDS
        streaming = is_wds if streaming is None else streaming
        dataset = datasets.load_dataset(source, split=split, streaming=streaming)
        image_column = image_column or ("jpg" if is_wds else "image")
        label_column = label_column or ("cls" if is_wds else "label")
    if isinstance(dataset, datasets.IterableDataset):
        return StreamingImageDataset(dataset, augmentation, image_column, label_column, seed)
    return ImageTrainingDataset(dataset, augmentation, image_column, label_column, seed)


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
    "Augmentation",
    "ImageTrainingDataset",
    "StreamingImageDataset",
    "collate_images",
    "collate_tokens",
    "decode_image",
    "load_image_dataset",
]
