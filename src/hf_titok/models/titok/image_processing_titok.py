"""Image processor of TiTok: images -> [0, 1] tensors of the model size, and tensors -> images.

Pillow/NumPy only (no torchvision). Preprocessing matches the official evaluation transform: convert to
RGB, resize the shorter side to the model size (bicubic; Pillow's resampling is antialiased), center
crop, scale to [0, 1]. There is no mean/std normalisation in TiTok. With `do_pad`, an image no larger
than the model size is padded (centered, black) to it instead, which is how small-image datasets such as
Fashion-MNIST (28x28 -> 32x32) are prepared.

The geometry (`fit_image`) is the one the training augmentation (`hf_titok.data.images.Augmentation`) uses,
so a model's saved processor does exactly what its training data pipeline did.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import PIL.Image
import torch
from transformers import (
    BatchFeature,
    ImageProcessingMixin,  # noqa: F401 - see below
)
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import ChannelDimension, PILImageResampling

from ...utils.input_checks import RANGE_SLACK
from ...utils.remote_code import add_auto_map, carries_code, write_code

# diffusers loads a pipeline component by looking up its library's base class (`ImageProcessingMixin` for an
# image processor) in the module its model_index.json entry names: this one.

# Pixel-count limit of one input image (Pillow's decompression-bomb limit is ~89 MP; images given as arrays
# never pass through it).
MAX_IMAGE_PIXELS = 89_478_485

# The per-call overrides `preprocess` takes, and the flags of transformers' processors that TiTok's input fixes.
_OVERRIDES = ("size", "crop_size", "resample", "do_pad", "do_convert_rgb", "input_data_format")
_FIXED = {
    "do_resize": (True, "images are always brought to the model's size"),
    "do_center_crop": (True, "images are always cropped square to the model's size"),
    "do_rescale": (True, "TiTok takes pixels in [0, 1]"),
    "rescale_factor": (1 / 255, "TiTok takes pixels in [0, 1]"),
    "do_normalize": (False, "TiTok takes pixels in [0, 1], without mean/std normalisation"),
    # The identity normalisation (mean 0, std 1; one value or one per channel) is what TiTok's input has.
    "image_mean": (0.0, "TiTok takes pixels in [0, 1], without mean/std normalisation"),
    "image_std": (1.0, "TiTok takes pixels in [0, 1], without mean/std normalisation"),
    "data_format": ("channels_first", "pixel_values are [B, 3, S, S]"),
}


def _is_fixed_value(value, fixed) -> bool:
    """Whether a per-call value equals a fixed one: numbers (or one per channel) numerically, the rest as is."""
    if isinstance(fixed, float) and not isinstance(value, (bool, str)):
        try:
            values = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return False
        return values.size in (1, 3) and bool(np.allclose(values, fixed, rtol=0, atol=1e-12))
    return value == fixed or (isinstance(value, ChannelDimension) and value.value == fixed)


# --------------------------------------------------------------------------------------------------
# Geometry, shared with the training augmentation
# --------------------------------------------------------------------------------------------------


def pad_to_size(image: PIL.Image.Image, size: int) -> PIL.Image.Image:
    """Center `image` (no side larger than `size`) on a black `size` x `size` canvas of its mode."""
    width, height = image.size
    canvas = PIL.Image.new(image.mode, (size, size), 0)
    canvas.paste(image, ((size - width) // 2, (size - height) // 2))
    return canvas


def fit_image(
    image: PIL.Image.Image,
    size: int,
    pad_small: bool = False,
    resample: int = PIL.Image.BICUBIC,
    crop_offset: Callable[[int, int], tuple[int, int]] | None = None,
) -> PIL.Image.Image:
    """`image` -> `size` x `size`: padded when `pad_small` and no side exceeds `size`; otherwise the shorter side
    resized to `size` and a crop taken at `crop_offset(extra_width, extra_height)` (default: the center)."""
    width, height = image.size
    if pad_small and max(width, height) <= size:
        return image if (width, height) == (size, size) else pad_to_size(image, size)
    scale = size / min(width, height)
    target = (max(size, round(width * scale)), max(size, round(height * scale)))
    if target != image.size:
        image = image.resize(target, resample)
    extra_width, extra_height = image.size[0] - size, image.size[1] - size
    left, top = crop_offset(extra_width, extra_height) if crop_offset else (extra_width // 2, extra_height // 2)
    return image.crop((left, top, left + size, top + size))


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


# --------------------------------------------------------------------------------------------------
# Inputs: PIL images, NumPy arrays, tensors
# --------------------------------------------------------------------------------------------------


def _as_array(image, index: int, data_format: ChannelDimension | None = None) -> np.ndarray | PIL.Image.Image:
    """One input image as a PIL image, or a float32 / uint8 array `[H, W, C]` (C = 1 or 3), checked. Arrays and
    tensors are `[H, W]`, or `[H, W, C]` / `[C, H, W]` as `data_format` says (None: guessed from the shape)."""
    if isinstance(image, PIL.Image.Image):
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise ValueError(
                f"image {index} has {image.width}x{image.height} pixels, more than the {MAX_IMAGE_PIXELS} allowed"
            )
        if image.width == 0 or image.height == 0:
            raise ValueError(f"image {index} is empty ({image.width}x{image.height})")
        return to_rgb(image)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.float().numpy() if image.is_floating_point() else image.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"images must be PIL images, NumPy arrays or torch tensors (one, a list, or a batch array), got "
            f"{type(image).__name__} for image {index}"
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"image {index} must be [H, W], [H, W, C] or [C, H, W], got shape {image.shape}")
    if data_format == ChannelDimension.FIRST or (
        data_format is None and image.shape[-1] not in (1, 3, 4) and image.shape[0] in (1, 3, 4)
    ):
        image = np.moveaxis(image, 0, -1)  # channels first -> last
    if image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image {index} must have 1 (grey), 3 (RGB) or 4 (RGBA) channels, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image {index} is empty (shape {image.shape})")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"image {index} has {image.shape[1]}x{image.shape[0]} pixels, more than the {MAX_IMAGE_PIXELS} allowed"
        )
    if image.shape[-1] == 4:
        image = image[..., :3]  # arrays carry no compositing convention: the alpha channel is dropped
    if image.dtype == np.bool_ or not (
        np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
    ):
        raise TypeError(f"image {index} has dtype {image.dtype}; give uint8 values in [0, 255] or floats in [0, 1]")
    if np.issubdtype(image.dtype, np.floating):
        # Floats are taken as they are: values in [0, 1], never divided by 255 again.
        if not np.isfinite(image).all():
            raise ValueError(f"image {index} contains NaN or infinite values")
        low, high = float(image.min()), float(image.max())
        if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
            hint = " (values look like [0, 255]: give uint8, or divide by 255)" if high > 2 else ""
            raise ValueError(f"float image {index} must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]{hint}")
        image = np.clip(image, 0.0, 1.0).astype(np.float32)
    else:
        low, high = int(image.min()), int(image.max())
        if low < 0 or high > 255:
            raise ValueError(f"integer image {index} must hold 8-bit levels in [0, 255], got values in [{low}, {high}]")
        image = image.astype(np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image


def _fit_array(image: np.ndarray, size: int, pad_small: bool, resample: int) -> np.ndarray:
    """`fit_image` on a float32 `[H, W, 3]` array: Pillow's float mode, channel by channel, clipped to [0, 1] (bicubic
    overshoots at edges; 8-bit images are clipped by Pillow itself)."""
    channels = [PIL.Image.fromarray(np.ascontiguousarray(image[..., c])) for c in range(3)]
    fitted = np.stack(
        [np.asarray(fit_image(channel, size, pad_small, resample), dtype=np.float32) for channel in channels], -1
    )
    return np.clip(fitted, 0.0, 1.0)


def _split_batch(images) -> list:
    if isinstance(images, (PIL.Image.Image, str)) or images is None:
        return [images]
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, Sequence):
        return list(images)
    return [images]


class TiTokImageProcessor(PilBackend):
    r"""
    Prepares images for [`TiTokTokenizer`] and turns its outputs back into images.

    `__call__(images, return_tensors="pt")` accepts PIL images (any mode: L, LA, P, RGBA, CMYK, ... are
    converted to RGB), NumPy arrays or tensors (`[H, W]`, `[H, W, C]` or `[C, H, W]`, C = 1, 3 or 4; uint8 levels
    or floats in [0, 1], taken as they are), one, a list or a batch array, and returns `pixel_values`
    `[B, 3, crop, crop]` in [0, 1]. [`~TiTokImageProcessor.postprocess`] turns model outputs into PIL images
    (uint8 the way the official sampler makes them) or clamped float arrays/tensors.

    Args:
        size (`dict`, *optional*, defaults to `{"shortest_edge": 256}`): resize target of the shorter side.
        crop_size (`dict`, *optional*, defaults to `{"height": 256, "width": 256}`): center-crop size.
        resample (`PILImageResampling`, *optional*, defaults to `BICUBIC`): resampling filter.
        do_pad (`bool`, *optional*, defaults to `False`): pad images no larger than the crop (centered, black)
            instead of resizing them, as datasets of small images are prepared (Fashion-MNIST: 28 -> 32).
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
    do_pad = False

    def __init__(self, do_pad: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(do_pad, bool):
            raise TypeError(f"do_pad must be True or False, got {do_pad!r}")
        self.do_pad = do_pad
        if (
            self.crop_size["height"] != self.crop_size["width"]
            or self.size.get("shortest_edge") != self.crop_size["height"]
        ):
            raise ValueError(
                f"TiTok models take square images: size {self.size} and crop_size {self.crop_size} must both be the "
                "model's image size (use TiTokImageProcessor.for_image_size)"
            )

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """transformers' `save_pretrained`, and the processor's code with an `auto_map`, so the folder also loads
        without hf_titok (`AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)`)."""
        repo_id = kwargs.pop("repo_id", None)
        result = super().save_pretrained(save_directory, **kwargs)
        if carries_code(type(self)):
            write_code(save_directory, type(self))
            add_auto_map(Path(save_directory) / "preprocessor_config.json", {"AutoImageProcessor": type(self)})
        if push_to_hub:  # pushed after the code is written (push_to_hub saves again, code included)
            self.push_to_hub(repo_id or Path(save_directory).name)
        return result

    @classmethod
    def for_image_size(cls, image_size: int, **kwargs) -> TiTokImageProcessor:
        """The processor of a model working at `image_size` x `image_size`."""
        if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral) or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        image_size = int(image_size)
        return cls(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}, **kwargs)

    @property
    def image_size(self) -> int:
        return self.crop_size["height"]

    def preprocess(self, images, return_tensors: str | None = "pt", **overrides) -> BatchFeature:
        """`images` -> `{"pixel_values": [B, 3, S, S]}` float32 in [0, 1] (S = the model's image size).

        Per-call overrides, as transformers' image processors take them, checked as the config's own values:
        `size` / `crop_size` (an int or the dicts of the config; square, the two equal), `resample`, `do_pad`,
        `do_convert_rgb` (False: images must already be RGB), `input_data_format` (`"channels_first"` or
        `"channels_last"` for arrays and tensors; default: guessed from the shape). The steps TiTok's input needs
        are fixed: `do_resize`, `do_center_crop`, `do_rescale` (with `rescale_factor` 1/255) are True,
        `do_normalize` False (`image_mean` 0, `image_std` 1) and the output `data_format` channels first; asking
        for another value is an error that says why."""
        settings = self._call_settings(overrides)
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")
        batch = _split_batch(images)
        if not batch:
            raise ValueError("images is empty: give at least one image")
        size, resample = settings["image_size"], settings["resample"]
        prepared = []
        for index, image in enumerate(batch):
            if not settings["do_convert_rgb"] and isinstance(image, PIL.Image.Image) and image.mode != "RGB":
                raise ValueError(f"image {index} is a {image.mode} image: do_convert_rgb=False needs RGB images")
            image = _as_array(image, index, settings["input_data_format"])
            if isinstance(image, np.ndarray) and image.dtype == np.uint8:
                image = PIL.Image.fromarray(image)
            if isinstance(image, PIL.Image.Image):
                image = to_float(fit_image(image, size, settings["do_pad"], resample))
            else:
                image = _fit_array(image, size, settings["do_pad"], resample)
            prepared.append(image.transpose(2, 0, 1))
        pixel_values = np.stack(prepared).astype(np.float32)
        if return_tensors == "pt":
            pixel_values = torch.from_numpy(pixel_values)
        return BatchFeature({"pixel_values": pixel_values})

    def _call_settings(self, overrides: dict) -> dict:
        """This call's image size, resampling, padding and RGB conversion: the config's, with `overrides`."""
        unknown = sorted(set(overrides) - set(_OVERRIDES) - set(_FIXED))
        if unknown:
            raise TypeError(
                f"TiTokImageProcessor takes images, return_tensors and the overrides {sorted(_OVERRIDES)} (and "
                f"{sorted(_FIXED)} at their fixed values); got {unknown}"
            )
        for name, (fixed, why) in _FIXED.items():
            if name in overrides and not _is_fixed_value(overrides[name], fixed):
                raise ValueError(f"{name}={overrides[name]!r} is not possible: {why} ({name}={fixed!r})")
        sizes = {}
        for name in ("size", "crop_size"):
            if name not in overrides:
                continue
            value = overrides[name]
            if isinstance(value, bool) or not isinstance(value, (int, dict)):
                raise TypeError(f"{name} must be an int or a dict like {{'height': S, 'width': S}}, got {value!r}")
            sides = (
                [value]
                if isinstance(value, int)
                else [v for k, v in value.items() if k in ("shortest_edge", "height", "width")]
            )
            if (
                not sides
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sides)
                or len(set(sides)) > 1
            ):
                raise ValueError(
                    f"{name} must give one positive square side (TiTok models take square images), got {value!r}"
                )
            sizes[name] = sides[0]
        # One given: the other follows it (both are the model's image size); none given: the config's.
        sizes = {
            "size": sizes.get("size", sizes.get("crop_size", self.image_size)),
            "crop_size": sizes.get("crop_size", sizes.get("size", self.image_size)),
        }
        if sizes["size"] != sizes["crop_size"]:
            raise ValueError(
                f"size and crop_size must both be the model's image size, got {sizes['size']} and {sizes['crop_size']}"
            )
        try:
            resample = PILImageResampling(overrides.get("resample", self.resample))
        except ValueError:
            raise ValueError(
                f"resample must be a PIL resampling filter (PILImageResampling), got {overrides['resample']!r}"
            ) from None
        flags = {}
        for name in ("do_pad", "do_convert_rgb"):
            flags[name] = overrides.get(name, getattr(self, name))
            if not isinstance(flags[name], bool):
                raise TypeError(f"{name} must be True or False, got {flags[name]!r}")
        data_format = overrides.get("input_data_format")
        if data_format is not None:
            try:
                data_format = ChannelDimension(data_format)
            except ValueError:
                raise ValueError(
                    f"input_data_format must be 'channels_first', 'channels_last' or None (guessed from the shape), "
                    f"got {data_format!r}"
                ) from None
        return dict(image_size=sizes["size"], resample=resample, input_data_format=data_format, **flags)

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
            if pixel_values.is_floating_point() and not bool(torch.isfinite(pixel_values).all()):
                count = int((~torch.isfinite(pixel_values)).sum())
                raise ValueError(
                    f"postprocess: {count} pixel values are NaN or infinite, so there is no image to make (they would "
                    "turn into black pixels). The model's output is not finite: a float16 overflow (try bfloat16 or "
                    "float32), or NaN weights or inputs upstream"
                )
            array = to_uint8(pixel_values, rounding).permute(0, 2, 3, 1).cpu().numpy()
            return [PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image) for image in array]
        if output_type not in ("np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        images = pixel_values.detach().float().clamp(0.0, 1.0)
        return images.permute(0, 2, 3, 1).cpu().numpy() if output_type == "np" else images


def to_float(images):
    """uint8 levels -> float32 in [0, 1] (a tensor stays a tensor, anything else becomes a NumPy array; any
    layout): the one uint8 -> float conversion of the package, the inverse of `to_uint8(..., "round")`."""
    if isinstance(images, torch.Tensor):
        return images.float() / 255.0
    return np.asarray(images, dtype=np.float32) / 255.0


def to_uint8(images: torch.Tensor, rounding: Literal["floor", "round"] = "floor") -> torch.Tensor:
    """Float images (nominally [0, 1]) -> uint8 tensors of the same layout, clamped: the one float -> uint8
    conversion of the package. `"floor"` truncates, as the official sampler and evaluators do with model
    outputs (the gFID protocol); `"round"` rounds to the nearest level (the rFID evaluator; it recovers input
    images that were uint8 / 255 exactly). uint8 input is returned as it is; NaN becomes 0."""
    if rounding not in ("floor", "round"):
        raise ValueError(f"rounding must be 'floor' or 'round', got {rounding!r}")
    if images.dtype == torch.uint8:
        return images
    scaled = torch.nan_to_num(images.detach().float(), nan=0.0).clamp(0.0, 1.0) * 255.0
    return (scaled.round() if rounding == "round" else scaled).to(torch.uint8)


__all__ = ["MAX_IMAGE_PIXELS", "TiTokImageProcessor", "fit_image", "pad_to_size", "to_float", "to_rgb", "to_uint8"]
