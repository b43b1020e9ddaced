"""Official TiTok generator checkpoints (bytedance/1d-tokenizer `ImageBert` and `UViTBert`) -> [`TiTokMaskGIT`], and
the official sampler settings of a generator config -> [`TiTokMaskGITScheduler`]."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ...releases import GENERATOR_PRESETS
from ...utils.official_format import ConversionError, Converter, resolve_references
from ..titok.convert_titok import official_tokenizer_config
from .configuration_titok_maskgit import TiTokMaskGITConfig
from .modeling_titok_maskgit import TiTokMaskGIT
from .scheduling_titok_maskgit import TiTokMaskGITScheduler


def generator_section(official: Mapping) -> tuple[dict, dict]:
    official = resolve_references(official, official)
    try:
        return official["model"]["generator"], official["model"]["vq_model"]
    except (KeyError, TypeError):
        raise ConversionError(
            "not an official TiTok generator config: it needs model.generator and model.vq_model"
        ) from None


def maskgit_config_from_official(official: Mapping) -> TiTokMaskGITConfig:
    """Map an official (resolved or not) config with a `model.generator` section to a [`TiTokMaskGITConfig`]."""
    generator, vq = generator_section(official)
    kinds = {"ViT": "bert", "UViT": "uvit"}
    if generator.get("model_type", "ViT") not in kinds:
        raise ConversionError(f"unknown generator model_type {generator.get('model_type')!r}; expected ViT or UViT")
    architecture = kinds[generator.get("model_type", "ViT")]
    return TiTokMaskGITConfig(
        architecture=architecture,
        codebook_size=vq["codebook_size"],
        num_latent_tokens=int(generator.get("image_seq_len", vq["num_latent_tokens"])),
        num_classes=generator.get("condition_num_classes", 1000),
        hidden_size=generator["hidden_size"],
        num_hidden_layers=generator["num_hidden_layers"],
        num_attention_heads=generator["num_attention_heads"],
        intermediate_size=generator["intermediate_size"],
        hidden_dropout_prob=generator.get("dropout", 0.1),
        attention_dropout_prob=generator.get("attn_drop", 0.1),
        layer_norm_eps=1e-12 if architecture == "bert" else 1e-5,
        class_dropout_prob=generator.get("class_label_dropout", 0.1),
    )


def scheduler_from_official(official: Mapping) -> TiTokMaskGITScheduler:
    """The sampler of an official generator config: its steps, guidance and temperature (the official
    `generate()` defaults where absent), with the softmax temperature annealing of the official gFID protocol
    (sample_imagenet_titok.py switches it on)."""
    generator, _ = generator_section(official)
    return TiTokMaskGITScheduler(
        num_inference_steps=generator.get("num_steps", 8),
        guidance_scale=generator.get("guidance_scale", 3.0),
        guidance_schedule=generator.get("guidance_decay", "constant"),
        guidance_scale_pow=generator.get("guidance_scale_pow", 3.0),
        temperature=generator.get("randomize_temperature", 4.5),
        softmax_temperature_annealing=True,
    )


def official_config(name: str) -> dict:
    """The official config dict of a TiTok release (as the infer yaml / Hub config.json hold it, unresolved), built
    from `hf_titok.releases`: its tokenizer's (`official_tokenizer_config`), with the `generator` section the
    configs of the generator releases carry (the two-stage tokenizers' configs too).

    `name` is a release name (`titok_l32`, ..., `titok_l32_generator`) or a stage-1 layout (`titok_l32_stage1`)."""
    base = name.removesuffix("_generator")
    config = official_tokenizer_config(base)
    base = base.removesuffix("_stage1")
    if base not in GENERATOR_PRESETS:
        return config
    generator = GENERATOR_PRESETS[base]
    architecture = TiTokMaskGITConfig.from_preset(base)
    sampling = generator.sampling
    config["model"]["generator"] = dict(
        model_type={"bert": "ViT", "uvit": "UViT"}[generator.architecture],
        hidden_size=architecture.hidden_size,
        num_hidden_layers=architecture.num_hidden_layers,
        num_attention_heads=architecture.num_attention_heads,
        intermediate_size=architecture.intermediate_size,
        condition_num_classes=generator.num_classes,
        dropout=0.1,
        attn_drop=0.1,
        class_label_dropout=0.1,
        image_seq_len="${model.vq_model.num_latent_tokens}",
        num_steps=sampling.num_inference_steps,
        guidance_scale=sampling.guidance_scale,
        guidance_decay=sampling.guidance_schedule,
        randomize_temperature=sampling.temperature,
    )
    return config


_BERT_LAYER = r"^model\.encoder\.layer\.(\d+)\."
BERT_RULES = [
    (r"^model\.embeddings\.word_embeddings\.weight$", "embed_tokens.weight"),
    (r"^model\.embeddings\.position_embeddings\.weight$", "position_embedding"),
    (r"^model\.embeddings\.LayerNorm\.", "encoder.embedding_layernorm."),
    (_BERT_LAYER + r"attention\.qkv\.", r"encoder.layers.\1.self_attn.qkv_proj."),
    (_BERT_LAYER + r"attention\.output\.dense\.", r"encoder.layers.\1.self_attn.out_proj."),
    (_BERT_LAYER + r"attention\.output\.LayerNorm\.", r"encoder.layers.\1.layer_norm1."),
    (_BERT_LAYER + r"intermediate\.dense\.", r"encoder.layers.\1.mlp.fc1."),
    (_BERT_LAYER + r"output\.dense\.", r"encoder.layers.\1.mlp.fc2."),
    (_BERT_LAYER + r"output\.LayerNorm\.", r"encoder.layers.\1.layer_norm2."),
    (r"^model\.lm_head\.", "lm_head."),
]

_UVIT_BLOCK = [
    (r"norm1\.", "layer_norm1."),
    (r"norm2\.", "layer_norm2."),
    (r"attn\.qkv\.", "self_attn.qkv_proj."),
    (r"attn\.proj\.", "self_attn.out_proj."),
    (r"mlp\.fc1\.", "mlp.fc1."),
    (r"mlp\.fc2\.", "mlp.fc2."),
    (r"skip_linear\.", "skip_linear."),
]
UVIT_RULES = [
    (r"^embeddings\.weight$", "embed_tokens.weight"),
    (r"^pos_embed$", "position_embedding"),
    (r"^norm\.", "encoder.final_layernorm."),
    (r"^lm_head\.", "lm_head."),
    *[(r"^(in_blocks|out_blocks)\.(\d+)\." + pattern, r"encoder.\1.\2." + target) for pattern, target in _UVIT_BLOCK],
    *[(r"^mid_block\." + pattern, "encoder.mid_block." + target) for pattern, target in _UVIT_BLOCK],
]


def prepare_bert_weights(official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The BERT layout's two quirks: separate q/k/v projections (fused here, rows q, k, v) and a token-type
    table whose row 0 is added to every position (folded into the position embeddings; row 1 is unused)."""
    # Checkpoints written by older transformers also carry BERT's non-persistent position_ids buffer.
    weights = {k: v for k, v in official.items() if k != "model.embeddings.position_ids"}
    token_type = weights.pop("model.embeddings.token_type_embeddings.weight", None)
    positions = "model.embeddings.position_embeddings.weight"
    if token_type is None or positions not in weights:
        raise ConversionError(
            "not an official BERT (ImageBert) generator checkpoint: it needs model.embeddings.position_embeddings "
            "and model.embeddings.token_type_embeddings"
        )
    weights[positions] = weights[positions] + token_type[0]
    for key in [k for k in weights if re.search(r"attention\.self\.query\.(weight|bias)$", k)]:
        prefix, suffix = key.split(".attention.self.query.")
        parts = [weights.pop(f"{prefix}.attention.self.{name}.{suffix}", None) for name in ("query", "key", "value")]
        if any(part is None for part in parts):
            raise ConversionError(f"{prefix}.attention.self is missing its key or value {suffix}")
        weights[f"{prefix}.attention.qkv.{suffix}"] = torch.cat(parts, dim=0)
    return weights


def prepare_generator_checkpoint(official_config, official_weights):
    config = maskgit_config_from_official(official_config)
    if config.architecture == "bert":
        return TiTokMaskGIT, config, BERT_RULES, prepare_bert_weights(official_weights)
    return TiTokMaskGIT, config, UVIT_RULES, official_weights


CONVERTER = Converter(
    "generator",
    prepare_generator_checkpoint,
    official_config=official_config,
    scheduler=scheduler_from_official,
    # ImageBert's word embeddings; U-ViT's position table with its middle block (MaskGen-VQ has a `pos_embed` too).
    signatures=(
        frozenset({"model.embeddings.word_embeddings.weight"}),
        frozenset({"pos_embed", "mid_block.norm1.weight"}),
    ),
    image_processor=False,
)

__all__ = [
    "BERT_RULES",
    "CONVERTER",
    "UVIT_RULES",
    "maskgit_config_from_official",
    "official_config",
    "prepare_bert_weights",
    "scheduler_from_official",
]
