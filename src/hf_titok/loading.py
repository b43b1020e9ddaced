"""Strict `from_pretrained` for the package's models."""

from __future__ import annotations


class StrictLoadingMixin:
    """`from_pretrained` that refuses checkpoints with missing or unexpected weights.

    transformers only logs such keys and re-initialises the missing ones at random, which for a
    tokenizer or generator silently produces garbage. Pass `strict=False` to accept them anyway.
    (Shape mismatches already raise in transformers unless `ignore_mismatched_sizes=True`.)

    Without a `dtype`, weights load in the dtype the checkpoint's `config.json` records (transformers 5's
    `dtype="auto"`; diffusers' own models would load float32), so a half-precision checkpoint is not silently
    doubled in memory on a GPU. `dtype=torch.float32` / `torch.bfloat16` / ... casts on load.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool = True, **kwargs):
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
