"""Official TA-TiTok checkpoints (bytedance/1d-tokenizer `TATiTok`) -> [`TATiTokTokenizer`]: TiTok's conversion
(`models/titok/convert_titok.py`) plus the decoder's text projection and text position table."""

from __future__ import annotations

from collections.abc import Mapping

from ...releases import TATITOK_PRESETS
from ...utils.official_format import ConversionError, Converter, official_vit_sizes, resolve_references
from ..titok.convert_titok import titok_kwargs_from_official, tokenizer_rules
from .configuration_tatitok import TATiTokConfig
from .modeling_tatitok import TATiTokTokenizer


def official_tatitok_config(name: str) -> dict:
    """The official config dict of a TA-TiTok release (configs/infer/TA-TiTok), built from `hf_titok.releases`."""
    if name not in TATITOK_PRESETS:
        raise ValueError(f"no official TA-TiTok config for {name!r}; available: {', '.join(TATITOK_PRESETS)}")
    tokenizer = TATITOK_PRESETS[name]
    ours = tokenizer.config_kwargs()
    vq_model = official_vit_sizes(tokenizer)
    vq_model.update(quantize_mode=ours["quantize_mode"], finetune_decoder=False, is_legacy=False)
    if ours["quantize_mode"] == "vq":
        vq_model.update(
            codebook_size=ours["codebook_size"], use_l2_norm=False, commitment_cost=0.25, clustering_vq=False
        )
    return {"experiment": {}, "model": {"vq_model": vq_model}, "dataset": {"preprocessing": {"crop_size": 256}}}


def tatitok_config_from_official(official: Mapping) -> TATiTokConfig:
    """An official TA-TiTok config (Hub `config.json` or infer yaml) -> [`TATiTokConfig`]."""
    official = resolve_references(official, official)
    kwargs = titok_kwargs_from_official(official)
    if kwargs["decoder_head"] != "pixels":
        raise ConversionError("a TA-TiTok config has is_legacy: false and finetune_decoder: false")
    vq = official["model"]["vq_model"]
    return TATiTokConfig(
        **kwargs,
        text_hidden_size=vq.get("text_embed_dim", 768),
        text_max_length=vq.get("text_context_length", 77),
    )


def prepare_tatitok_checkpoint(official_config, official_weights):
    config = tatitok_config_from_official(official_config)
    rules = tokenizer_rules(config) + [
        (r"^decoder\.text_guidance_proj\.", "decoder.text_projection."),
        (r"^decoder\.text_guidance_positional_embedding$", "decoder.text_position_embedding"),
    ]
    # Training checkpoints (clustering_vq: True) carry the codebook-usage EMA; inference does not use it.
    weights = {key: value for key, value in official_weights.items() if key != "quantize.embed_prob"}
    return TATiTokTokenizer, config, rules, weights


CONVERTER = Converter(
    "TA-TiTok",
    prepare_tatitok_checkpoint,
    official_config=official_tatitok_config,
    signatures=(frozenset({"latent_tokens", "decoder.text_guidance_proj.weight"}),),  # TiTok's keys and the text
)

__all__ = ["CONVERTER", "official_tatitok_config", "tatitok_config_from_official"]
