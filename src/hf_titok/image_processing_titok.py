"""Image processor of TiTok: images -> [0, 1] tensors of the model size, and tensors -> images.

Pillow/NumPy only (no torchvision). Preprocessing matches the official evaluation transform: convert to
RGB, resize the shorter side to the model size (bicubic; Pillow's resampling is antialiased), center
crop, scale to [0, 1]. There is no mean/std normalisation in TiTok.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import PIL.Image
import torch
from transformers import ImageProcessingMixin  # noqa: F401 - see below
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling


# diffusers loads a pipeline component by looking up its library's base class (`ImageProcessingMixin` for an
# image processor) in the module its model_index.json entry names: this one.


class TiTokImageProcessor(PilBackend):
    r"""
    Prepares images for [`TiTokTokenizer`] and turns its outputs back into images.

    `__call__(images, return_tensors="pt")` accepts PIL images (any mode: L, LA, P, RGBA, CMYK, ... are
    converted to RGB), NumPy arrays or tensors, one or a list, and returns `pixel_values`
    `[B, 3, crop, crop]` in [0, 1]. [`~TiTokImageProcessor.postprocess`] turns model outputs into PIL images
    (uint8 the way the official sampler makes them) or clamped float arrays/tensors.

    Args:
        size (`dict`, *optional*, defaults to `{"shortest_edge": 256}`): resize target of the shorter side.
        crop_size (`dict`, *optional*, defaults to `{"height": 256, "width": 256}`): center-crop size.
        resample (`PILImageResampling`, *optional*, defaults to `BICUBIC`): resampling filter.
    """

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    size = {"shortest_edge": 256}
    crop_size = {"height": 256, "width": 256}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = False
    do_convert_rgb = True

    @classmethod
    def for_image_size(cls, image_size: int, **kwargs) -> TiTokImageProcessor:
        """The processor of a model working at `image_size` x `image_size`."""
        return cls(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}, **kwargs)

    def preprocess(self, images, *args, **kwargs):
        if isinstance(images, PIL.Image.Image):
            images = [images]
        if isinstance(images, (list, tuple)):
            # Palette/alpha/CMYK/16-bit images: let Pillow convert them (alpha composited on white).
            images = [to_rgb(image) if isinstance(image, PIL.Image.Image) else image for image in images]
        return super().preprocess(images, *args, **kwargs)

    @staticmethod
    def postprocess(
        pixel_values: torch.Tensor,
        output_type: Literal["pil", "np", "pt"] = "pil",
        rounding: Literal["floor", "round"] = "floor",
    ):
        """Model output `[B, 3, H, W]` (nominally [0, 1]) -> images, with diffusers' meaning of `output_type`:
        `"pil"`: a list of PIL images (uint8 by [`to_uint8`] with `rounding`); `"np"`: a float32 array
        `[B, H, W, 3]` in [0, 1]; `"pt"`: a float32 tensor `[B, 3, H, W]` in [0, 1] (both clamped)."""
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4:
            raise ValueError(
                f"postprocess expects a [B, C, H, W] tensor, got {getattr(pixel_values, 'shape', type(pixel_values))}"
            )
        if output_type == "pil":
            array = to_uint8(pixel_values, rounding).permute(0, 2, 3, 1).cpu().numpy()
            return [PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image) for image in array]
        if output_type not in ("np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        images = pixel_values.detach().float().clamp(0.0, 1.0)
        return images.permute(0, 2, 3, 1).cpu().numpy() if output_type == "np" else images


def to_uint8(images: torch.Tensor, rounding: Literal["floor", "round"] = "floor") -> torch.Tensor:
    """Float images (nominally [0, 1]) -> uint8 tensors of the same layout, clamped: the one float -> uint8
    conversion of the package. `"floor"` truncates, as the official sampler and evaluators do with model
    outputs (the gFID protocol); `"round"` rounds to the nearest level (the rFID evaluator; it recovers input
    images that were uint8 / 255 exactly). uint8 input is returned as it is."""
    if rounding not in ("floor", "round"):
        raise ValueError(f"rounding must be 'floor' or 'round', got {rounding!r}")
    if images.dtype == torch.uint8:
        return images
    scaled = images.detach().float().clamp(0.0, 1.0) * 255.0
    return (scaled.round() if rounding == "round" else scaled).to(torch.uint8)


def to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """Any PIL mode -> RGB: 16/32-bit grey scaled to 8 bits, palette and alpha images composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits before converting (Pillow would clip instead).
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = PIL.Image.fromarray((array / peak * 255.0).round().clip(0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


__all__ = ["TiTokImageProcessor", "to_rgb", "to_uint8"]
