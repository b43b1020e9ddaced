"""Official checkpoints of any family -> hf_titok models: the family a checkpoint kind names (`hf_titok.families`)
prepares its config and renaming rules (`models/<family>/convert_<family>.py`), and every key is mapped strictly
(`hf_titok.utils.official_format.convert_state_dict`): a key that maps nowhere, a parameter left without a value or
a shape mismatch is an error naming the keys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..families import FAMILIES, Family, checkpoint_kinds, family_of_kind
from ..models.titok.image_processing_titok import TiTokImageProcessor
from ..releases import get_release
from ..utils.loading import build_with_weights
from ..utils.official_format import ConversionError, convert_state_dict, load_official_config, load_official_weights


def _family(kind: str) -> Family:
    if kind not in checkpoint_kinds():
        raise ConversionError(f"unknown kind {kind!r}; choose one of {', '.join(checkpoint_kinds())}")
    return family_of_kind(kind)


def _prepared(kind: str, official_config, official_weights):
    converter = _family(kind).converter
    model_class, config, rules, weights = converter.prepare(official_config, official_weights)
    with torch.device("meta"):
        expected = model_class(config).state_dict()
    return model_class, config, convert_state_dict(weights, rules, expected, what=f"{converter.name} checkpoint")


def convert_checkpoint(kind: str, official_config: Mapping | None, official_weights: Mapping[str, torch.Tensor]):
    """An official config + state dict of `kind` (a family's checkpoint kind) -> (our config, our state dict),
    every key mapped strictly. The one conversion behind `hf-titok convert` and direct loading."""
    _, config, state_dict = _prepared(kind, official_config, official_weights)
    return config, state_dict


def convert_model(kind: str, official_config: Mapping | None, official_weights: Mapping[str, torch.Tensor]):
    """An official config + state dict of `kind` -> our model, in eval mode."""
    model_class, config, state_dict = _prepared(kind, official_config, official_weights)
    model = build_with_weights(lambda: model_class(config), state_dict, on_meta=_family(kind).converter.build_on_meta)
    return model.eval()


def convert_tokenizer(official_config: Mapping, official_weights: Mapping[str, torch.Tensor]):
    """An official TiTok config + state dict -> [`TiTokTokenizer`] (in eval mode)."""
    return convert_model(FAMILIES["titok"].kind, official_config, official_weights)


def convert_generator(official_config: Mapping, official_weights: Mapping[str, torch.Tensor]):
    """An official generator config + state dict (ImageBert or UViTBert) -> [`TiTokMaskGIT`]."""
    return convert_model(FAMILIES["titok_maskgit"].kind, official_config, official_weights)


def convert_vqgan(official_config: Mapping | None, official_weights: Mapping[str, torch.Tensor]):
    """An official MaskGIT-VQGAN state dict (PretrainedTokenizer layout) -> [`MaskGITVQGAN`]."""
    return convert_model(FAMILIES["maskgit_vqgan"].kind, official_config, official_weights)


def convert_clip_text(official_config: Mapping, official_weights: Mapping[str, torch.Tensor]):
    """An open_clip text tower -> transformers' `CLIPTextModelWithProjection` (loads with transformers alone)."""
    return convert_model(FAMILIES["clip_text"].kind, official_config, official_weights)


def release_official_config(name: str) -> dict | None:
    """The official config dict of a release whose files come without one (its `.bin`), as its infer yaml holds it
    (unresolved), built from the release table by its family's converter; None for a kind that needs none."""
    release = get_release(name)
    converter = family_of_kind(release.kind).converter
    return converter.official_config(name) if converter.official_config is not None else None


def convert(kind: str, config_path: str | Path | None, weights_path: str | Path, output_dir: str | Path):
    """Convert official files and write the model (safetensors) and, for image models, its image processor to
    `output_dir`."""
    family = _family(kind)
    if config_path is None and family.converter.needs_config:
        raise ConversionError(f"--config is required for --kind {kind}")
    loaded_config = load_official_config(config_path) if config_path is not None else None
    model = convert_model(kind, loaded_config, load_official_weights(weights_path))
    model.save_pretrained(output_dir)
    if family.converter.image_processor:
        TiTokImageProcessor.for_image_size(model.config.image_size).save_pretrained(output_dir)
    return model


__all__ = [
    "convert",
    "convert_checkpoint",
    "convert_clip_text",
    "convert_generator",
    "convert_model",
    "convert_tokenizer",
    "convert_vqgan",
    "release_official_config",
]
