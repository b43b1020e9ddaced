"""Strict `from_pretrained` for the package's models."""

from __future__ import annotations

import torch


class StrictLoadingMixin:
    """`from_pretrained` that refuses checkpoints with missing or unexpected weights.

    transformers only logs such keys and re-initialises the missing ones at random, which for a
    tokenizer or generator silently produces garbage. Pass `strict=False` to accept them anyway.
    Weights load in fp32 unless a `dtype` is given.
    (Shape mismatches already raise in transformers unless `ignore_mismatched_sizes=True`.)
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool = True, **kwargs):
        # These models compute in fp32 unless asked otherwise, whatever precision the weights are stored in
        # (the built-in model stores its generator in fp16 to stay small).
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:
            kwargs.pop("torch_dtype", None)
            kwargs["dtype"] = torch.float32
        output_loading_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
        )
        problems = [
            f"{what}: {', '.join(sorted(info[key]))}"
            for key, what in (("missing_keys", "missing weights"), ("unexpected_keys", "unexpected weights"))
            if info.get(key)
        ]
        if strict and problems:
            raise ValueError(
                f"the checkpoint at {pretrained_model_name_or_path} does not match {cls.__name__} built from its "
                f"config ({'; '.join(problems)}); pass strict=False to load it anyway"
            )
        return (model, info) if output_loading_info else model
