"""Checks of user-facing tensors, shared by the models so every entry point fails the same clear way.

Types, shapes and dtypes are always checked. Value checks (ranges, finiteness) read the tensor back to the
host: they run in eager mode only when asked (`check_values`), never inside a `torch.compile` or
`torch.export` graph, where Python cannot branch on tensor values, and not inside `trusted_values()`, where the
package's own code made the inputs (training steps).
"""

from __future__ import annotations

import contextvars
import math
from contextlib import contextmanager

import torch

# Images are RGB in [0, 1]; allow float rounding slack (e.g. k/255 computed in another dtype).
RANGE_SLACK = 1e-4


_TRUSTED = contextvars.ContextVar("hf_titok_trusted_values", default=False)


@contextmanager
def trusted_values():
    """Within this block the models skip the value checks of their inputs, each of which reads values back to
    the host (a device sync): for inputs the package's own code produced, such as a training step's batch."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def values_checkable(check_values: bool = True) -> bool:
    """Whether value checks can run here: asked for, not while tracing a compiled or exported graph, and not in
    a `trusted_values()` block."""
    return check_values and not (torch.compiler.is_compiling() or torch.compiler.is_exporting()) and not _TRUSTED.get()


def check_pixel_values(pixel_values, image_size: int, num_channels: int = 3, check_values: bool = True) -> None:
    """Raise a `TypeError`/`ValueError` naming the problem unless `pixel_values` is a float
    `[B, num_channels, image_size, image_size]` tensor with finite values in [0, 1]."""
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(
            f"pixel_values must be a torch.Tensor of shape [B, {num_channels}, {image_size}, {image_size}], "
            f"got {type(pixel_values).__name__}; use TiTokImageProcessor to turn images into tensors"
        )
    if not pixel_values.is_floating_point():
        raise TypeError(
            f"pixel_values must be a floating-point tensor with values in [0, 1], got dtype {pixel_values.dtype} "
            "(uint8 images: divide by 255, or use TiTokImageProcessor)"
        )
    if pixel_values.ndim != 4:
        raise ValueError(f"pixel_values must have 4 dimensions [B, C, H, W], got shape {tuple(pixel_values.shape)}")
    if pixel_values.shape[1] != num_channels:
        raise ValueError(
            f"pixel_values must have {num_channels} channels (RGB) in dimension 1, got shape "
            f"{tuple(pixel_values.shape)}"
        )
    if pixel_values.shape[0] == 0:
        raise ValueError(f"pixel_values is an empty batch (shape {tuple(pixel_values.shape)}): give at least one image")
    if tuple(pixel_values.shape[-2:]) != (image_size, image_size):
        raise ValueError(
            f"this model takes {image_size}x{image_size} images, got "
            f"{pixel_values.shape[-2]}x{pixel_values.shape[-1]}; "
            "resize and center-crop with TiTokImageProcessor"
        )
    if values_checkable(check_values) and pixel_values.numel():
        low, high = (value.item() for value in pixel_values.aminmax())
        # Written so that NaN (which compares false with everything) fails too.
        if not (low >= -RANGE_SLACK and high <= 1 + RANGE_SLACK):
            if not torch.isfinite(pixel_values).all():
                raise ValueError("pixel_values contain NaN or infinite values")
            hint = (
                " (values look like [0, 255]: divide by 255)"
                if high > 2
                else (" (values look like [-1, 1]: map them with (x + 1) / 2)" if low < -0.5 else "")
            )
            raise ValueError(f"pixel_values must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]{hint}")


def check_token_ids(
    token_ids, num_tokens: int, vocab_size: int, what: str = "token_ids", check_values: bool = True
) -> None:
    """Raise unless `token_ids` is an integer `[B, num_tokens]` tensor with values in [0, vocab_size)."""
    if not isinstance(token_ids, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape [B, {num_tokens}], got {type(token_ids).__name__}")
    if token_ids.is_floating_point() or token_ids.is_complex() or token_ids.dtype == torch.bool:
        raise TypeError(f"{what} must be an integer tensor, got dtype {token_ids.dtype}")
    if token_ids.ndim != 2 or token_ids.shape[1] != num_tokens:
        raise ValueError(f"{what} must have shape [B, {num_tokens}], got {tuple(token_ids.shape)}")
    if token_ids.shape[0] == 0:
        raise ValueError(f"{what} is an empty batch (shape {tuple(token_ids.shape)})")
    if values_checkable(check_values) and token_ids.numel():
        low, high = (value.item() for value in token_ids.aminmax())
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"{what} must lie in [0, {vocab_size - 1}] (codebook size {vocab_size}), got values in [{low}, {high}]"
            )


def check_class_labels(class_labels, batch_size: int, num_classes: int, check_values: bool = True) -> None:
    """Raise unless `class_labels` is an integer `[batch_size]` tensor with values in [0, num_classes]
    (`num_classes` being the unconditional class)."""
    if (
        not isinstance(class_labels, torch.Tensor)
        or class_labels.is_floating_point()
        or class_labels.dtype == torch.bool
    ):
        given = getattr(class_labels, "dtype", type(class_labels).__name__)
        raise TypeError(f"class_labels must be an integer tensor of shape [{batch_size}], got {given}")
    if class_labels.ndim != 1 or class_labels.shape[0] != batch_size:
        raise ValueError(
            f"class_labels must have shape [{batch_size}] (one per row of input_ids), got {tuple(class_labels.shape)}"
        )
    if values_checkable(check_values) and class_labels.numel():
        low, high = (value.item() for value in class_labels.aminmax())
        if low < 0 or high > num_classes:
            raise ValueError(
                f"class_labels must lie in [0, {num_classes}] ({num_classes} = unconditional), got values in "
                f"[{low}, {high}]"
            )


def check_latents(latents, num_tokens: int, channels: int, check_values: bool = True) -> None:
    """Raise unless `latents` is a float `[B, num_tokens, channels]` tensor of finite values."""
    if not isinstance(latents, torch.Tensor):
        raise TypeError(
            f"latents must be a torch.Tensor of shape [B, {num_tokens}, {channels}], got {type(latents).__name__}"
        )
    if not latents.is_floating_point():
        raise TypeError(f"latents must be a floating-point tensor, got dtype {latents.dtype}")
    if latents.ndim != 3 or tuple(latents.shape[1:]) != (num_tokens, channels):
        raise ValueError(f"latents must have shape [B, {num_tokens}, {channels}], got {tuple(latents.shape)}")
    if latents.shape[0] == 0:
        raise ValueError(f"latents is an empty batch (shape {tuple(latents.shape)})")
    if values_checkable(check_values) and latents.numel() and not torch.isfinite(latents).all():
        raise ValueError("latents contain NaN or infinite values")


def check_text_embeddings(
    embeddings, batch_size: int, length: int, width: int, what: str = "text_embeddings", check_values: bool = True
) -> None:
    """Raise unless `embeddings` is a float `[batch_size or 1, length, width]` tensor of finite values (text
    encoder outputs: CLIP's are `[B, 77, 768]`)."""
    if not isinstance(embeddings, torch.Tensor):
        raise TypeError(
            f"{what} must be a torch.Tensor of shape [B, {length}, {width}], got {type(embeddings).__name__}"
        )
    if not embeddings.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor, got dtype {embeddings.dtype}")
    if embeddings.ndim != 3 or tuple(embeddings.shape[1:]) != (length, width):
        raise ValueError(
            f"{what} must have shape [B, {length}, {width}] (a text encoder of width {width}, {length} positions), "
            f"got {tuple(embeddings.shape)}"
        )
    if embeddings.shape[0] not in (1, batch_size):
        raise ValueError(
            f"{what} has {embeddings.shape[0]} rows for a batch of {batch_size} (give one per image, or one)"
        )
    if values_checkable(check_values) and not torch.isfinite(embeddings).all():
        raise ValueError(f"{what} contain NaN or infinite values")


def check_config_values(config, positive_ints=(), positive_floats=(), probabilities=(), non_negative_floats=()) -> None:
    """Range checks of config fields (types are checked by `@strict`): raise a `ValueError` naming the field."""
    for name in positive_ints:
        value = getattr(config, name)
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    for name in positive_floats:
        value = getattr(config, name)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value}")
    for name in non_negative_floats:
        value = getattr(config, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    for name in probabilities:
        value = getattr(config, name)
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
