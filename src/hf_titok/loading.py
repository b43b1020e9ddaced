"""Strict `from_pretrained` for the package's models: what transformers only warns about is an error here."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from safetensors import SafetensorError, safe_open

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def _local_file(source: str | Path, filename: str, subfolder: str = "", **hub_kwargs) -> Path | None:
    """The local copy of `filename` of a folder or of a Hub repo already in the cache, if there is one."""
    folder = Path(source) / subfolder
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    cached = try_to_load_from_cache(str(source), f"{subfolder}/{filename}" if subfolder else filename,
                                    cache_dir=hub_kwargs.get("cache_dir"), revision=hub_kwargs.get("revision"))
    return Path(cached) if isinstance(cached, str) else None


def damaged_weight_files(source: str | Path, subfolder: str = "", **hub_kwargs) -> list[str]:
    """`"path: problem"` for every weight file of `source` that cannot be read (truncated, empty, not a
    safetensors file)."""
    problems = []
    index = _local_file(source, WEIGHT_FILES[1], subfolder, **hub_kwargs)
    names = [WEIGHT_FILES[0]]
    if index is not None:
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError) as error:
            return [f"{index}: not a valid weight index ({error})"]
    for name in names:
        path = _local_file(source, name, subfolder, **hub_kwargs)
        if path is None:
            continue
        try:
            with safe_open(str(path), "pt") as weights:
                weights.keys()
        except (SafetensorError, OSError) as error:
            problems.append(f"{path}: {error} ({path.stat().st_size} bytes)")
    return problems


class StrictLoadingMixin:
    """`from_pretrained` that refuses what transformers lets through with a warning or a bare error:

    - missing or unexpected weights (transformers re-initialises missing ones at random, which for a tokenizer
      or generator silently produces garbage; pass `strict=False` to accept them anyway);
    - a config of another model type (e.g. a generator's config loaded as a tokenizer);
    - a damaged weight file (truncated, empty, not safetensors): the error names the file;
    - weights that are NaN or infinite: the error names them.

    (Shape mismatches already raise in transformers unless `ignore_mismatched_sizes=True`.)

    Without a `dtype`, weights load in the dtype the checkpoint's `config.json` records (transformers 5's
    `dtype="auto"`; diffusers' own models would load float32), so a half-precision checkpoint is not silently
    doubled in memory on a GPU. `dtype=torch.float32` / `torch.bfloat16` / ... casts on load.
    """

    # True once `enable_fast_path()` has run (hf_titok.fast_path): int8/bfloat16 modules, inference only.
    fast_path: bool = False

    def save_pretrained(self, *args, **kwargs):
        if self.fast_path:
            raise ValueError(
                f"this {type(self).__name__} is on the CPU fast path (int8/bfloat16 modules), which is not saved: save "
                "the exact model and load it with from_pretrained(..., fast_path=True)"
            )
        return super().save_pretrained(*args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool = True, fast_path: bool = False,
                        **kwargs):
        """transformers' `from_pretrained`, strict (see the class docstring); `fast_path=True` then switches on the
        CPU fast path (`enable_fast_path`, `hf_titok.fast_path`)."""
        source = pretrained_model_name_or_path
        hub_kwargs = {key: kwargs.get(key) for key in ("cache_dir", "revision") if kwargs.get(key) is not None}
        subfolder = kwargs.get("subfolder") or ""
        config_file = _local_file(source, "config.json", subfolder, **hub_kwargs)
        if config_file is not None and kwargs.get("config") is None:
            cls._check_model_type(config_file)
        output_loading_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(source, *model_args, output_loading_info=True, **kwargs)
        except (SafetensorError, OSError, RuntimeError) as error:
            problems = damaged_weight_files(source, subfolder, **hub_kwargs)
            if problems:
                raise ValueError(
                    f"cannot load {cls.__name__} from {source}: damaged weight file {'; '.join(problems)}. "
                    "Download or save it again."
                ) from error
            raise
        problems = [
            f"{what}: {', '.join(sorted(info[key]))}"
            for key, what in (("missing_keys", "missing weights"), ("unexpected_keys", "unexpected weights"))
            if info.get(key)
        ]
        if strict and problems:
            raise ValueError(
                f"the checkpoint at {source} does not match {cls.__name__} built from its "
                f"config ({'; '.join(problems)}); pass strict=False to load it anyway"
            )
        not_finite = [
            name for name, tensor in model.state_dict().items()
            if tensor.is_floating_point() and tensor.device.type != "meta" and not bool(torch.isfinite(tensor).all())
        ]
        if not_finite:
            shown = ", ".join(not_finite[:10]) + (f", ... ({len(not_finite)} in all)" if len(not_finite) > 10 else "")
            raise ValueError(f"the checkpoint at {source} has NaN or infinite weights: {shown}")
        if fast_path:
            model.eval().enable_fast_path()
        return (model, info) if output_loading_info else model

    @classmethod
    def _check_model_type(cls, config_file: Path) -> None:
        try:
            config = json.loads(config_file.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{config_file} is not a valid JSON config: {error}") from None
        expected = cls.config_class.model_type
        found = config.get("model_type") if isinstance(config, dict) else None
        if found != expected:
            raise ValueError(
                f"{config_file} is the config of a {found!r} model, not of a {cls.__name__} ({expected!r}); "
                "load it with the class of its model type"
            )
