"""Official RAR checkpoints (bytedance/1d-tokenizer `modeling/rar.py` `RAR`, the released `yucornetto/RAR`
`rar_{b,l,xl,xxl}.bin` state dicts) -> [`RARTransformer`].

The released layout's quirks, all handled here:
- the position tables have N + 1024 rows and the condition table N + 100, of which only the first N + 2 are ever
  read (and the target-aware table's first two rows never): the unread rows are dropped (exact: they cannot change
  an output);
- the final adaLN layer's output is (scale, shift), the blocks' (shift, scale, gate): its rows are swapped into
  (shift, scale) so that one `modulate` reads both;
- the MLP width is `int(hidden_size * (intermediate_size / hidden_size))`, which can be one less than
  `intermediate_size` (e.g. 88 and 120 -> 119).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ...releases import MASKGIT_VQGAN, RAR_PRESETS
from ...utils.official_format import ConversionError, Converter, resolve_references
from .configuration_rar import RARConfig
from .modeling_rar import RARTransformer
from .scheduling_rar import RARScheduler


def rar_sections(official: Mapping) -> tuple[dict, dict]:
    official = resolve_references(official, official)
    try:
        generator, vq = official["model"]["generator"], official["model"]["vq_model"]
    except (KeyError, TypeError):
        raise ConversionError("not an official RAR config: it needs model.generator and model.vq_model") from None
    if "image_seq_len" not in generator or "hidden_size" not in generator:
        raise ConversionError("not an official RAR config: model.generator needs image_seq_len and hidden_size")
    return generator, vq


def rar_config_from_official(official: Mapping) -> RARConfig:
    """Map an official RAR config (rar.yaml and its per-size overrides) to a [`RARConfig`]."""
    generator, vq = rar_sections(official)
    hidden_size = generator["hidden_size"]
    return RARConfig(
        codebook_size=vq["codebook_size"],
        num_latent_tokens=int(generator["image_seq_len"]),
        num_classes=generator.get("condition_num_classes", 1000),
        hidden_size=hidden_size,
        num_hidden_layers=generator["num_hidden_layers"],
        num_attention_heads=generator["num_attention_heads"],
        intermediate_size=int(hidden_size * (generator["intermediate_size"] / hidden_size)),
        hidden_dropout_prob=generator.get("dropout", 0.1),
        attention_dropout_prob=generator.get("attn_drop", 0.1),
        class_dropout_prob=generator.get("class_label_dropout", 0.1),
    )


def rar_scheduler_from_official(official: Mapping) -> RARScheduler:
    """The sampler of an official RAR config: its `guidance_scale`, `guidance_scale_pow` and
    `randomize_temperature` (a plain softmax temperature)."""
    generator, _ = rar_sections(official)
    defaults = RARScheduler().config
    return RARScheduler(
        guidance_scale=float(generator.get("guidance_scale", defaults.guidance_scale)),
        guidance_scale_pow=float(generator.get("guidance_scale_pow", defaults.guidance_scale_pow)),
        temperature=float(generator.get("randomize_temperature", defaults.temperature)),
    )


def official_rar_config(name: str) -> dict:
    """The official config of a RAR release as its gFID command builds it: rar.yaml with the size's overrides and
    the README_RAR.md sampling settings (the `.bin` files come without a config)."""
    if name not in RAR_PRESETS:
        raise ValueError(f"no official RAR config for {name!r}; available: {', '.join(RAR_PRESETS)}")
    preset, config = RAR_PRESETS[name], RARConfig.from_preset(name)
    return {
        "model": {
            "vq_model": {
                "codebook_size": MASKGIT_VQGAN["codebook_size"],
                "num_latent_tokens": config.num_latent_tokens,
            },
            "generator": dict(
                hidden_size=config.hidden_size,
                num_hidden_layers=config.num_hidden_layers,
                num_attention_heads=config.num_attention_heads,
                intermediate_size=config.intermediate_size,
                dropout=0.1,
                attn_drop=0.1,
                class_label_dropout=0.1,
                image_seq_len=config.num_latent_tokens,
                condition_num_classes=config.num_classes,
                randomize_temperature=preset.temperature,
                guidance_scale=preset.guidance_scale,
                guidance_scale_pow=preset.guidance_scale_pow,
                randomness_anneal_start=125_000,
                randomness_anneal_end=187_500,
            ),
        }
    }


def prepare_rar_weights(official: Mapping[str, torch.Tensor], config: RARConfig) -> dict[str, torch.Tensor]:
    """The released tables cut to the rows that are read, and the final adaLN rows in (shift, scale) order."""
    weights = dict(official)
    rows = config.num_latent_tokens + 2
    tables = {
        "pos_embed": slice(0, rows),
        "target_aware_pos_embed": slice(2, rows),
        "timesteps_embeddings": slice(0, rows),
    }
    for name, kept in tables.items():
        table = weights.get(name)
        if table is None:
            raise ConversionError(f"not an official RAR checkpoint: it has no {name}")
        if table.ndim != 3 or table.shape[1] < rows or table.shape[2] != config.hidden_size:
            raise ConversionError(
                f"{name} has shape {list(table.shape)}; the config's RAR needs [1, >= {rows}, {config.hidden_size}]"
            )
        weights[name] = table[0, kept]
    for suffix in ("weight", "bias"):
        key = f"adaln_before_head.adaLN_modulation.1.{suffix}"
        if key in weights:
            scale, shift = weights[key].chunk(2, dim=0)
            weights[key] = torch.cat([shift, scale])
    return weights


_BLOCK = r"^blocks\.(\d+)\."
RAR_RULES = [
    (r"^cls_token$", "start_token"),
    (r"^pos_embed$", "position_embedding"),
    (r"^target_aware_pos_embed$", "target_position_embedding"),
    (r"^timesteps_embeddings$", "condition_embedding"),
    (r"^embeddings\.weight$", "embed_tokens.weight"),
    (_BLOCK + r"norm(1|2)\.", r"layers.\1.norm\2."),
    (_BLOCK + r"attn\.qkv\.", r"layers.\1.self_attn.qkv_proj."),
    (_BLOCK + r"attn\.q_norm\.", r"layers.\1.self_attn.query_norm."),
    (_BLOCK + r"attn\.k_norm\.", r"layers.\1.self_attn.key_norm."),
    (_BLOCK + r"attn\.proj\.", r"layers.\1.self_attn.out_proj."),
    (_BLOCK + r"mlp\.fc(1|2)\.", r"layers.\1.mlp.fc\2."),
    (_BLOCK + r"adaLN_modulation\.1\.", r"layers.\1.modulation."),
    (r"^adaln_before_head\.adaLN_modulation\.1\.", "final_modulation."),
    (r"^lm_head\.", "lm_head."),
]


def prepare_rar_checkpoint(official_config, official_weights):
    config = rar_config_from_official(official_config)
    return RARTransformer, config, RAR_RULES, prepare_rar_weights(official_weights, config)


CONVERTER = Converter(
    "RAR checkpoint",
    prepare_rar_checkpoint,
    official_config=official_rar_config,
    scheduler=rar_scheduler_from_official,
    signatures=(
        frozenset({"target_aware_pos_embed", "timesteps_embeddings", "adaln_before_head.adaLN_modulation.1.weight"}),
    ),
    image_processor=False,
)

__all__ = [
    "CONVERTER",
    "RAR_RULES",
    "official_rar_config",
    "prepare_rar_weights",
    "rar_config_from_official",
    "rar_scheduler_from_official",
    "rar_sections",
]
