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
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling


class TiTokImageProcessor(PilBackend):
    r"""
    Prepares images for [`TiTokTokenizer`] and turns its outputs back into images.

    `__call__(images, return_tensors="pt")` accepts PIL images (any mode: L, LA, P, RGBA, CMYK, ... are
    converted to RGB), NumPy arrays or tensors, one or a list, and returns `pixel_values`
    `[B, 3, crop, crop]` in [0, 1]. [`~TiTokImageProcessor.postprocess`] clamps model outputs to [0, 1] and
    converts them to uint8 the way the official sampler does.

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
            images = [_to_rgb(image) if isinstance(image, PIL.Image.Image) else image for image in images]
        return super().preprocess(images, *args, **kwargs)

    @staticmethod
    def postprocess(
        pixel_values: torch.Tensor,
        output_type: Literal["pil", "np", "pt"] = "pil",
        rounding: Literal["floor", "round"] = "floor",
    ):
        """Model output `[B, 3, H, W]` (nominally [0, 1]) -> images.

        Values are clamped to [0, 1] and scaled by 255; `rounding="floor"` truncates to uint8 as the official
        sampler does (the gFID protocol), `"round"` rounds to the nearest level (the official rFID evaluator).
        Returns a list of PIL images, a uint8 array `[B, H, W, 3]` (`"np"`) or a uint8 tensor
        `[B, 3, H, W]` (`"pt"`).
        """
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4:
            raise ValueError(
                f"postprocess expects a [B, C, H, W] tensor, got {getattr(pixel_values, 'shape', type(pixel_values))}"
            )
        if rounding not in ("floor", "round"):
            raise ValueError(f"rounding must be 'floor' or 'round', got {rounding!r}")
        scaled = pixel_values.detach().float().clamp(0.0, 1.0) * 255.0
        images = (scaled.round() if rounding == "round" else scaled).to(torch.uint8).cpu()
        if output_type == "pt":
            return images
        array = images.permute(0, 2, 3, 1).numpy()
        if output_type == "np":
            return array
        if output_type == "pil":
            return [PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image) for image in array]
        raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")


def _to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
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


__all__ = ["TiTokImageProcessor"]
