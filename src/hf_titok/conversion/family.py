"""Conversion of the rest of the official family (bytedance/1d-tokenizer README_MaskGen.md): TA-TiTok tokenizers,
MaskGen generators, and the open_clip text tower they read CLIP from. Each kind registers in
`official.CHECKPOINT_KINDS`, so `hf-titok convert --kind`, `convert_checkpoint` and direct loading take it."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from ..models.maskgen.modeling_maskgen import MaskGenKLTransformer, MaskGenVQTransformer
from ..models.maskgen.scheduling_maskgen import MaskGenKLScheduler, MaskGenVQScheduler
from ..models.tatitok.configuration_tatitok import TATiTokConfig
from ..models.tatitok.modeling_tatitok import TATiTokTokenizer
from ..releases import FAMILY_RELEASES, MASKGEN_PRESETS, TATITOK_PRESETS
from .official import (
    CHECKPOINT_KINDS,
    CheckpointKind,
    ConversionError,
    _resolve,
    _tokenizer_rules,
    convert_model,
    official_vit_sizes,
    titok_kwargs_from_official,
)

# --------------------------------------------------------------------------------------------------
# Official configs of the releases (what the infer yamls hold; `.bin` files come without one)
# --------------------------------------------------------------------------------------------------


def family_official_config(name: str) -> dict:
    """The official config dict of a TA-TiTok or MaskGen release (configs/infer/TA-TiTok, configs/infer/MaskGen),
    built from `hf_titok.releases`."""
    if name not in FAMILY_RELEASES:
        raise ValueError(f"no official config for {name!r}; available: {', '.join(FAMILY_RELEASES)}")
    maskgen = MASKGEN_PRESETS.get(name)
    tokenizer = TATITOK_PRESETS[maskgen.tokenizer if maskgen else name]
    ours = tokenizer.config_kwargs()
    vq_model = official_vit_sizes(tokenizer)
    vq_model.update(quantize_mode=ours["quantize_mode"], finetune_decoder=False, is_legacy=False)
    if ours["quantize_mode"] == "vq":
        vq_model.update(
            codebook_size=ours["codebook_size"], use_l2_norm=False, commitment_cost=0.25, clustering_vq=False
        )
    config = {"experiment": {}, "model": {"vq_model": vq_model}, "dataset": {"preprocessing": {"crop_size": 256}}}
    if maskgen is None:
        return config
    config["model"]["maskgen"] = dict(
        decoder_embed_dim=maskgen.hidden_size,
        decoder_depth=maskgen.num_layers,
        decoder_num_heads=maskgen.num_attention_heads,
        micro_condition=True,
        micro_condition_embed_dim=256,
        text_drop_prob=0.1,
        cfg=maskgen.guidance_scale,
        num_iter=maskgen.num_inference_steps,
        temperature=maskgen.temperature,
        sample_aesthetic_score=maskgen.aesthetic_score,
    )
    if maskgen.kind == "vq":
        config["model"]["maskgen"]["condition_num_classes"] = 1000
        config["losses"] = {"label_smoothing": 0.1, "loss_weight_unmasked_token": 0.1}
    else:
        vq_model["scale_factor"] = 0.7525
        config["model"]["maskgen"]["cfg_schedule"] = maskgen.guidance_schedule
        config["losses"] = dict(
            diffloss_d=8, diffloss_w=maskgen.head_width, num_sampling_steps=str(maskgen.num_diffusion_steps)
        )
    return config


def maskgen_scheduler_from_official(official: Mapping) -> MaskGenVQScheduler | MaskGenKLScheduler:
    """The sampler of an official MaskGen config: its `cfg`, `num_iter`, `temperature` (and KL's `cfg_schedule`
    and `losses.num_sampling_steps`). The VQ `generate` does not read them (its defaults are the README's call,
    which the released configs repeat), so VQ's schedule stays the README's cosine."""
    maskgen, vq, losses = _maskgen_sections(official)
    settings = dict(
        num_inference_steps=maskgen.get("num_iter", 16),
        guidance_scale=float(maskgen.get("cfg", 12.0)),
        temperature=float(maskgen.get("temperature", 2.0)),
    )
    if vq.get("quantize_mode") == "vae":
        return MaskGenKLScheduler(
            **settings,
            guidance_schedule=maskgen.get("cfg_schedule", "linear"),
            num_diffusion_steps=int(losses.get("num_sampling_steps", "100")),
        )
    return MaskGenVQScheduler(**settings)


# --------------------------------------------------------------------------------------------------
# TA-TiTok
# --------------------------------------------------------------------------------------------------


def tatitok_config_from_official(official: Mapping) -> TATiTokConfig:
    """An official TA-TiTok config (Hub `config.json` or infer yaml) -> [`TATiTokConfig`]."""
    official = _resolve(official, official)
    kwargs = titok_kwargs_from_official(official)
    if kwargs["decoder_head"] != "pixels":
        raise ConversionError("a TA-TiTok config has is_legacy: false and finetune_decoder: false")
    vq = official["model"]["vq_model"]
    return TATiTokConfig(
        **kwargs,
        text_hidden_size=vq.get("text_embed_dim", 768),
        text_max_length=vq.get("text_context_length", 77),
    )


def _tatitok_checkpoint(official_config, official_weights):
    config = tatitok_config_from_official(official_config)
    rules = _tokenizer_rules(config) + [
        (r"^decoder\.text_guidance_proj\.", "decoder.text_projection."),
        (r"^decoder\.text_guidance_positional_embedding$", "decoder.text_position_embedding"),
    ]
    # Training checkpoints (clustering_vq: True) carry the codebook-usage EMA; inference does not use it.
    weights = {key: value for key, value in official_weights.items() if key != "quantize.embed_prob"}
    return TATiTokTokenizer, config, rules, weights


# --------------------------------------------------------------------------------------------------
# MaskGen
# --------------------------------------------------------------------------------------------------


def _maskgen_sections(official: Mapping) -> tuple[dict, dict, dict]:
    official = _resolve(official, official)
    try:
        return official["model"]["maskgen"], official["model"]["vq_model"], official.get("losses", {})
    except (KeyError, TypeError):
        raise ConversionError("not an official MaskGen config: it has no model.maskgen section") from None


def _maskgen_trunk(maskgen: Mapping, vq: Mapping) -> dict:
    text_width = vq.get("text_embed_dim", 768)
    if not maskgen.get("micro_condition", True):
        raise ConversionError("MaskGen configs without the aesthetic micro-condition are not released or supported")
    return dict(
        num_latent_tokens=vq["num_latent_tokens"],
        hidden_size=maskgen["decoder_embed_dim"],
        num_layers=maskgen["decoder_depth"],
        num_attention_heads=maskgen["decoder_num_heads"],
        text_hidden_size=text_width,
        pooled_projection_dim=text_width,  # CLIP ViT-L/14 projects to its own width
        aesthetic_embed_dim=maskgen.get("micro_condition_embed_dim", 256),
    )


def maskgen_vq_config_from_official(official: Mapping) -> dict:
    """An official MaskGen-VQ config -> the arguments of [`MaskGenVQTransformer`]."""
    maskgen, vq, _ = _maskgen_sections(official)
    if vq.get("quantize_mode", "vq") != "vq":
        raise ConversionError("this MaskGen config is over VAE tokens: convert it with --kind maskgen-kl")
    return dict(
        _maskgen_trunk(maskgen, vq),
        codebook_size=vq["codebook_size"],
        unused_embeddings=maskgen.get("condition_num_classes", 1000) + 1,
    )


def maskgen_kl_config_from_official(official: Mapping) -> dict:
    """An official MaskGen-KL config -> the arguments of [`MaskGenKLTransformer`]."""
    maskgen, vq, losses = _maskgen_sections(official)
    if vq.get("quantize_mode") != "vae":
        raise ConversionError("this MaskGen config is over VQ ids: convert it with --kind maskgen-vq")
    return dict(
        _maskgen_trunk(maskgen, vq),
        token_channels=vq["token_size"],
        head_width=losses.get("diffloss_w", 1024),
        head_num_blocks=losses.get("diffloss_d", 8),
        scale_factor=vq.get("scale_factor", 0.7525),
    )


_TRUNK_RULES = [
    (r"^(?:blocks|decoder_blocks)\.(\d+)\.", r"transformer_blocks.\1."),
    (r"^(?:norm|decoder_norm)\.linear\.", "norm_out.linear."),
    (r"^(?:text_embed_proj|text_emb)\.", "context_embedder."),
    (r"^(?:cond_pooled_proj|text_pooled_emb)\.", "pooled_embedder."),
]
_MASKGEN_VQ_RULES = _TRUNK_RULES + [
    (r"^pos_embed$", "position_embedding"),
    (r"^embeddings\.weight$", "embeddings.weight"),
]
_MASKGEN_KL_RULES = _TRUNK_RULES + [
    (r"^decoder_pos_embed_learned$", "position_embedding"),
    (r"^diffusion_pos_embed_learned$", "diffusion_position_embedding"),
    (r"^mask_token$", "mask_token"),
    (r"^z_proj\.", "token_embedder."),
    (r"^z_proj_ln\.", "token_norm."),
    (r"^diffloss\.net\.time_embed\.mlp\.0\.", "diffusion_head.time_embedding.linear_1."),
    (r"^diffloss\.net\.time_embed\.mlp\.2\.", "diffusion_head.time_embedding.linear_2."),
    (r"^diffloss\.net\.cond_embed\.", "diffusion_head.condition_embedding."),
    (r"^diffloss\.net\.input_proj\.", "diffusion_head.input_projection."),
    (r"^diffloss\.net\.res_blocks\.(\d+)\.in_ln\.", r"diffusion_head.blocks.\1.norm."),
    (r"^diffloss\.net\.res_blocks\.(\d+)\.mlp\.0\.", r"diffusion_head.blocks.\1.linear_1."),
    (r"^diffloss\.net\.res_blocks\.(\d+)\.mlp\.2\.", r"diffusion_head.blocks.\1.linear_2."),
    (r"^diffloss\.net\.res_blocks\.(\d+)\.adaLN_modulation\.1\.", r"diffusion_head.blocks.\1.modulation."),
    (r"^diffloss\.net\.final_layer\.linear\.", "diffusion_head.proj_out."),
    (r"^diffloss\.net\.final_layer\.adaLN_modulation\.1\.", "diffusion_head.modulation_out."),
]


def _diffusers_builder(model_class):
    """diffusers models take their config as keyword arguments: the builder `convert_model` calls with it."""
    return lambda config: model_class(**config)


def _maskgen_vq_checkpoint(official_config, official_weights):
    config = maskgen_vq_config_from_official(official_config)
    # lm_head.weight is embeddings.weight (tied; torch.save files store it under both names).
    weights = {key: value for key, value in official_weights.items() if key != "lm_head.weight"}
    return _diffusers_builder(MaskGenVQTransformer), config, _MASKGEN_VQ_RULES, weights


def _maskgen_kl_checkpoint(official_config, official_weights):
    config = maskgen_kl_config_from_official(official_config)
    return _diffusers_builder(MaskGenKLTransformer), config, _MASKGEN_KL_RULES, official_weights


# --------------------------------------------------------------------------------------------------
# The CLIP text tower (open_clip layout -> transformers' CLIPTextModelWithProjection)
# --------------------------------------------------------------------------------------------------


def clip_text_config_from_open_clip(official: Mapping) -> CLIPTextConfig:
    """An open_clip model config (`{"embed_dim", "quick_gelu", "text_cfg": {...}}`, as open_clip's model configs
    and the fixtures write it; or the same under an `open_clip` key) -> `CLIPTextConfig`. `hidden_act` follows
    `quick_gelu` (the OpenAI weights were trained with QuickGELU; open_clip >= 2.29 builds ViT-L-14-336 with
    exact GELU: pass `quick_gelu: false` to match that), and `eos_token_id=2` selects the argmax pooling open_clip
    uses (the end-of-text id is the largest)."""
    official = official.get("open_clip", official)
    text = official.get("text_cfg")
    if not isinstance(text, Mapping) or "width" not in text:
        raise ConversionError("not an open_clip config: it has no text_cfg with a width")
    width = text["width"]
    return CLIPTextConfig(
        vocab_size=text.get("vocab_size", 49408),
        hidden_size=width,
        intermediate_size=int(width * text.get("mlp_ratio", 4.0)),
        num_hidden_layers=text.get("layers", 12),
        num_attention_heads=text.get("heads", 8),
        max_position_embeddings=text.get("context_length", 77),
        hidden_act="quick_gelu" if official.get("quick_gelu", False) else "gelu",
        layer_norm_eps=1e-5,
        projection_dim=official.get("embed_dim", width),
        bos_token_id=text.get("vocab_size", 49408) - 2,
        eos_token_id=2,
        pad_token_id=1,
    )


_CLIP_RULES = [
    (r"^token_embedding\.weight$", "text_model.embeddings.token_embedding.weight"),
    (r"^positional_embedding$", "text_model.embeddings.position_embedding.weight"),
    (r"^transformer\.resblocks\.(\d+)\.ln_1\.", r"text_model.encoder.layers.\1.layer_norm1."),
    (r"^transformer\.resblocks\.(\d+)\.ln_2\.", r"text_model.encoder.layers.\1.layer_norm2."),
    (r"^transformer\.resblocks\.(\d+)\.attn\.(q|k|v)_proj\.", r"text_model.encoder.layers.\1.self_attn.\2_proj."),
    (r"^transformer\.resblocks\.(\d+)\.attn\.out_proj\.", r"text_model.encoder.layers.\1.self_attn.out_proj."),
    (r"^transformer\.resblocks\.(\d+)\.mlp\.c_fc\.", r"text_model.encoder.layers.\1.mlp.fc1."),
    (r"^transformer\.resblocks\.(\d+)\.mlp\.c_proj\.", r"text_model.encoder.layers.\1.mlp.fc2."),
    (r"^ln_final\.", "text_model.final_layer_norm."),
    (r"^text_projection\.weight$", "text_projection.weight"),
]


def _clip_text_checkpoint(official_config, official_weights):
    config = clip_text_config_from_open_clip(official_config or {})
    weights = {}
    for key, value in official_weights.items():
        if key in ("logit_scale", "attn_mask") or key.startswith("visual."):
            continue  # unused by the text tower (the vision tower is deleted by the official code too)
        if key.endswith("attn.in_proj_weight") or key.endswith("attn.in_proj_bias"):
            prefix, kind = key.rsplit(".in_proj_", 1)
            for name, part in zip("qkv", value.chunk(3, dim=0)):
                weights[f"{prefix}.{name}_proj.{kind}"] = part
        elif key == "text_projection":
            weights["text_projection.weight"] = value.t().contiguous()  # open_clip applies it as x @ P
        else:
            weights[key] = value
    return CLIPTextModelWithProjection, config, _CLIP_RULES, weights


def convert_clip_text(official_config: Mapping, official_weights: Mapping[str, torch.Tensor]):
    """An open_clip text tower -> transformers' `CLIPTextModelWithProjection` (loads with transformers alone)."""
    return convert_model("clip-text", official_config, official_weights)


CHECKPOINT_KINDS.update(
    {
        "tatitok": CheckpointKind("TA-TiTok", _tatitok_checkpoint),
        "maskgen-vq": CheckpointKind("MaskGen-VQ", _maskgen_vq_checkpoint, image_processor=False),
        "maskgen-kl": CheckpointKind("MaskGen-KL", _maskgen_kl_checkpoint, image_processor=False),
        "clip-text": CheckpointKind(
            "CLIP text tower", _clip_text_checkpoint, image_processor=False, build_on_meta=False
        ),
    }
)

__all__ = [
    "clip_text_config_from_open_clip",
    "family_official_config",
    "maskgen_scheduler_from_official",
    "convert_clip_text",
    "maskgen_kl_config_from_official",
    "maskgen_vq_config_from_official",
    "tatitok_config_from_official",
]
