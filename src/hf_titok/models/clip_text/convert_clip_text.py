"""CLIP's text tower as TA-TiTok and MaskGen read it: the official open_clip ViT-L/14-336 tower (open_clip layout)
-> transformers' `CLIPTextModelWithProjection`, which loads with transformers alone."""

from __future__ import annotations

from collections.abc import Mapping

from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from ...utils.official_format import ConversionError, Converter


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


def prepare_clip_text_checkpoint(official_config, official_weights):
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


CONVERTER = Converter("CLIP text tower", prepare_clip_text_checkpoint, image_processor=False, build_on_meta=False)

__all__ = ["CONVERTER", "clip_text_config_from_open_clip"]
