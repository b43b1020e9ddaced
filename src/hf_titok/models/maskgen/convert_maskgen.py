"""Official MaskGen checkpoints (bytedance/1d-tokenizer `MaskGen_VQ`, `MaskGen_KL`) -> [`MaskGenVQTransformer`],
[`MaskGenKLTransformer`], and the official sampler settings of a MaskGen config -> their schedulers."""

from __future__ import annotations

from collections.abc import Mapping

from ...releases import MASKGEN_PRESETS
from ...utils.official_format import ConversionError, Converter, resolve_references
from ..tatitok.convert_tatitok import official_tatitok_config
from .modeling_maskgen import MaskGenKLTransformer, MaskGenVQTransformer
from .scheduling_maskgen import MaskGenKLScheduler, MaskGenVQScheduler


def official_maskgen_config(name: str) -> dict:
    """The official config dict of a MaskGen release (configs/infer/MaskGen): its TA-TiTok's
    (`official_tatitok_config`) with the `maskgen` and `losses` sections, built from `hf_titok.releases`."""
    if name not in MASKGEN_PRESETS:
        raise ValueError(f"no official MaskGen config for {name!r}; available: {', '.join(MASKGEN_PRESETS)}")
    maskgen = MASKGEN_PRESETS[name]
    config = official_tatitok_config(maskgen.tokenizer)
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
        config["model"]["vq_model"]["scale_factor"] = 0.7525
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


def _maskgen_sections(official: Mapping) -> tuple[dict, dict, dict]:
    official = resolve_references(official, official)
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


def prepare_maskgen_vq_checkpoint(official_config, official_weights):
    config = maskgen_vq_config_from_official(official_config)
    # lm_head.weight is embeddings.weight (tied; torch.save files store it under both names).
    weights = {key: value for key, value in official_weights.items() if key != "lm_head.weight"}
    return _diffusers_builder(MaskGenVQTransformer), config, _MASKGEN_VQ_RULES, weights


def prepare_maskgen_kl_checkpoint(official_config, official_weights):
    config = maskgen_kl_config_from_official(official_config)
    return _diffusers_builder(MaskGenKLTransformer), config, _MASKGEN_KL_RULES, official_weights


CONVERTER_VQ = Converter(
    "MaskGen-VQ",
    prepare_maskgen_vq_checkpoint,
    official_config=official_maskgen_config,
    scheduler=maskgen_scheduler_from_official,
    signatures=(frozenset({"text_embed_proj.weight"}),),
    image_processor=False,
)
CONVERTER_KL = Converter(
    "MaskGen-KL",
    prepare_maskgen_kl_checkpoint,
    official_config=official_maskgen_config,
    scheduler=maskgen_scheduler_from_official,
    signatures=(frozenset({"diffloss.net.input_proj.weight"}),),
    image_processor=False,
)

__all__ = [
    "CONVERTER_KL",
    "CONVERTER_VQ",
    "maskgen_kl_config_from_official",
    "maskgen_scheduler_from_official",
    "maskgen_vq_config_from_official",
    "official_maskgen_config",
]
