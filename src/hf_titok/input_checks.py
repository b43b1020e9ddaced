"""Checks of user-facing tensors, shared by the models so every entry point fails the same clear way."""

from __future__ import annotations

import torch

# Images are RGB in [0, 1]; allow float rounding slack (e.g. k/255 computed in another dtype).
_RANGE_SLACK = 1e-4


def check_pixel_values(pixel_values, image_size: int, num_channels: int = 3) -> None:
    """Raise a `TypeError`/`ValueError` naming the problem unless `pixel_values` is a float
    `[B, num_channels, image_size, image_size]` tensor with values in [0, 1]."""
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
        raise ValueError(
            f"pixel_values must have 4 dimensions [B, C, H, W], got shape {tuple(pixel_values.shape)}"
        )
    if pixel_values.shape[1] != num_channels:
        raise ValueError(
            f"pixel_values must have {num_channels} channels (RGB) in dimension 1, got shape "
            f"{tuple(pixel_values.shape)}"
        )
    if tuple(pixel_values.shape[-2:]) != (image_size, image_size):
        raise ValueError(
            f"this model takes {image_size}x{image_size} images, got {pixel_values.shape[-2]}x{pixel_values.shape[-1]}; "
            "resize and center-crop with TiTokImageProcessor"
        )
    if pixel_values.numel():
        low, high = pixel_values.aminmax()
        if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
            hint = " (values look like [0, 255]: divide by 255)" if high > 2 else (
                " (values look like [-1, 1]: map them with (x + 1) / 2)" if low < -0.5 else ""
            )
            raise ValueError(
                f"pixel_values must lie in [0, 1], got values in [{low.item():.4g}, {high.item():.4g}]{hint}"
            )


def check_token_ids(token_ids, num_tokens: int, vocab_size: int, what: str = "token_ids") -> None:
    """Raise unless `token_ids` is an integer `[B, num_tokens]` tensor with values in [0, vocab_size)."""
    if not isinstance(token_ids, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape [B, {num_tokens}], got {type(token_ids).__name__}")
    if token_ids.is_floating_point() or token_ids.is_complex() or token_ids.dtype == torch.bool:
        raise TypeError(f"{what} must be an integer tensor, got dtype {token_ids.dtype}")
    if token_ids.ndim != 2 or token_ids.shape[1] != num_tokens:
        raise ValueError(f"{what} must have shape [B, {num_tokens}], got {tuple(token_ids.shape)}")
    if token_ids.numel():
        low, high = token_ids.aminmax()
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"{what} must lie in [0, {vocab_size - 1}] (codebook size {vocab_size}), "
                f"got values in [{low.item()}, {high.item()}]"
            )


def check_latents(latents, num_tokens: int, channels: int) -> None:
    """Raise unless `latents` is a float `[B, num_tokens, channels]` tensor."""
    if not isinstance(latents, torch.Tensor):
        raise TypeError(f"latents must be a torch.Tensor of shape [B, {num_tokens}, {channels}], got {type(latents).__name__}")
    if not latents.is_floating_point():
        raise TypeError(f"latents must be a floating-point tensor, got dtype {latents.dtype}")
    if latents.ndim != 3 or tuple(latents.shape[1:]) != (num_tokens, channels):
        raise ValueError(f"latents must have shape [B, {num_tokens}, {channels}], got {tuple(latents.shape)}")
