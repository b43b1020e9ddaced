"""Images for training and evaluation: decoding what `datasets` holds, and the official augmentations with
Pillow (no torchvision).

Augmentation randomness is a pure function of (seed, epoch, sample key), never of a global RNG, so a run
resumed from a checkpoint sees exactly the same crops and flips as an uninterrupted one, whatever the data
loader prefetched.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass

import PIL.Image
import torch

from ..models.titok.image_processing_titok import TiTokImageProcessor, fit_image, to_float, to_rgb


@dataclass
class Augmentation:
    """Shorter side resized to `crop_size` (bicubic, antialiased by Pillow), then a random crop (tokenizer
    training) or a center crop (generator training and evaluation), then an optional random horizontal flip.
    With `pad_small_images`, an image no larger than `crop_size` is padded (centered, black) instead of resized.

    The geometry is `hf_titok.models.titok.image_processing_titok.fit_image`, which the image processor uses too:
    `image_processor()` is the processor that reproduces this augmentation's center-crop, no-flip output."""

    crop_size: int = 256
    random_crop: bool = True
    random_flip: bool = True
    pad_small_images: bool = False

    def __call__(self, image: PIL.Image.Image, rng: random.Random) -> torch.Tensor:
        def offset(extra_width: int, extra_height: int) -> tuple[int, int]:
            return rng.randint(0, extra_width), rng.randint(0, extra_height)

        image = fit_image(
            to_rgb(image),
            self.crop_size,
            self.pad_small_images,
            PIL.Image.BICUBIC,
            offset if self.random_crop else None,
        )
        if self.random_flip and rng.random() < 0.5:
            image = image.transpose(PIL.Image.FLIP_LEFT_RIGHT)
        array = to_float(image)
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    def image_processor(self) -> TiTokImageProcessor:
        """The image processor a model trained on this data should be saved with."""
        return TiTokImageProcessor.for_image_size(self.crop_size, do_pad=self.pad_small_images)


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


__all__ = ["Augmentation", "decode_image", "sample_rng"]
