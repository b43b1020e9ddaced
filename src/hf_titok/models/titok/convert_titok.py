"""Official TiTok tokenizer checkpoints (bytedance/1d-tokenizer `TiTok`) -> [`TiTokTokenizer`]: the official config's
`model.vq_model` section (its defaults: `is_legacy` and `finetune_decoder` are True when absent), its ViT size names,
and its state-dict keys and layouts (`[C, 1, N]` token tensors, 1x1 convs where we use linears).

The official test harness extends the hard-coded ViT size table: configs carrying `_harness.vit_size_table` (extra
size names) and `_harness.pixel_decoder` (the channel config of the MaskGIT-VQGAN pixel decoder) are read as well.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...releases import MASKGIT_VQGAN, TOKENIZER_PRESETS, VIT_SIZES
from ...utils.official_format import ConversionError, Converter, official_vit_sizes, resolve_references
from ..maskgit_vqgan.convert_maskgit_vqgan import vqgan_kwargs
from .configuration_titok import TiTokConfig
from .modeling_titok import TiTokTokenizer


def vit_size(name: str, harness: dict) -> dict:
    """Width / depth / heads of an official ViT size name (or of one the test harness adds)."""
    table = {**VIT_SIZES}
    for size_name, spec in harness.get("vit_size_table", {}).items():
        table[size_name] = dict(hidden_size=spec["width"], num_layers=spec["num_layers"], num_heads=spec["num_heads"])
    if name not in table:
        raise ConversionError(f"unknown ViT size {name!r}; known sizes: {', '.join(table)}")
    return table[name]


def titok_config_from_official(official: Mapping) -> TiTokConfig:
    """Map an official config dict (interpolations resolved or not) to a [`TiTokConfig`]."""
    return TiTokConfig(**titok_kwargs_from_official(official))


def titok_kwargs_from_official(official: Mapping) -> dict:
    """The [`TiTokConfig`] arguments an official config sets (TA-TiTok's config adds its text fields to them)."""
    official = resolve_references(official, official)
    try:
        vq = official["model"]["vq_model"]
    except (KeyError, TypeError):
        raise ConversionError("not an official TiTok config: it has no model.vq_model section") from None
    harness = official.get("_harness", {})
    image_size = official.get("dataset", {}).get("preprocessing", {}).get("crop_size", 256)
    quantize_mode = vq.get("quantize_mode", "vq")
    # Official defaults when absent (the two-stage Hub configs omit both).
    is_legacy = vq.get("is_legacy", True)
    finetune_decoder = vq.get("finetune_decoder", True)
    if quantize_mode == "vae" and finetune_decoder:
        raise ConversionError(
            "official VAE tokenizers cannot have finetune_decoder=True (the official code rejects it)"
        )
    if finetune_decoder and not is_legacy:
        raise ConversionError("finetune_decoder=True needs the legacy proxy-code decoder head (is_legacy=True)")
    encoder, decoder = vit_size(vq["vit_enc_model_size"], harness), vit_size(vq["vit_dec_model_size"], harness)
    kwargs = dict(
        image_size=image_size,
        encoder_patch_size=vq.get("vit_enc_patch_size", 16),
        decoder_patch_size=vq.get("vit_dec_patch_size", 16),
        **{f"encoder_{key}": value for key, value in encoder.items()},
        **{f"decoder_{key}": value for key, value in decoder.items()},
        num_latent_tokens=vq["num_latent_tokens"],
        token_size=vq["token_size"],
        quantize_mode=quantize_mode,
        legacy_encoder_layout=is_legacy,
        decoder_head="proxy_codes" if is_legacy else "pixels",
        # One-D-Piece (a TiTok fork): `strict_length_assertion: False` lets its decoder take any prefix of the
        # tokens; absent (every TiTok release), the official decoder takes exactly num_latent_tokens.
        prefix_decoding=not vq.get("strict_length_assertion", True),
    )
    if quantize_mode == "vq":
        kwargs.update(
            codebook_size=vq["codebook_size"],
            use_l2_norm=vq.get("use_l2_norm", False),
            commitment_cost=vq.get("commitment_cost", 0.25),
        )
    if is_legacy:
        kwargs["include_pixel_decoder"] = finetune_decoder
        spec = harness.get("pixel_decoder") or proxy_target_spec(
            official, finetune_decoder, kwargs["decoder_patch_size"]
        )
        kwargs["pixel_decoder_config"] = vqgan_kwargs(spec, image_size)
    return kwargs


def proxy_target_spec(official: Mapping, finetune_decoder: bool, decoder_patch_size: int) -> dict:
    """The MaskGIT-VQGAN of a proxy-code tokenizer whose config names none: the released f16 one. A stage-1 layout
    (`finetune_decoder: False`) holds no VQGAN; its config only records what the head predicts over - the
    codebook (`losses.target_codebook_size`, One-D-Piece's key; 1024 otherwise) on the decoder's patch grid - so
    its channels are the released VQGAN's, with as many levels as the decoder patch needs."""
    if finetune_decoder:
        return MASKGIT_VQGAN
    levels = decoder_patch_size.bit_length() - 1
    if 2**levels != decoder_patch_size or levels >= len(MASKGIT_VQGAN["channel_mult"]):
        raise ConversionError(
            f"a stage-1 config without a pixel decoder needs a power-of-two decoder patch of at most 16, got "
            f"{decoder_patch_size}"
        )
    codebook_size = (official.get("losses") or {}).get("target_codebook_size", MASKGIT_VQGAN["codebook_size"])
    return {
        **MASKGIT_VQGAN,
        "channel_mult": MASKGIT_VQGAN["channel_mult"][: levels + 1],
        "codebook_size": codebook_size,
    }


def official_tokenizer_config(name: str) -> dict:
    """The official config dict of a TiTok tokenizer release (as the infer yaml / Hub config.json hold it), built
    from `hf_titok.releases`: `name` is a tokenizer preset (`titok_l32`, ...) or a stage-1 layout
    (`titok_l32_stage1`: the same tokenizer with `finetune_decoder: False`)."""
    base = name.removesuffix("_stage1")
    if base not in TOKENIZER_PRESETS:
        raise ValueError(f"no official config for {name!r}; available: {', '.join(TOKENIZER_PRESETS)}")
    preset = TOKENIZER_PRESETS[base]
    ours = preset.config_kwargs()
    vq_model = official_vit_sizes(preset)
    if ours["quantize_mode"] == "vae":
        vq_model.update(quantize_mode="vae", finetune_decoder=False, is_legacy=False)
    else:
        vq_model.update(
            codebook_size=ours["codebook_size"],
            use_l2_norm=ours["use_l2_norm"],
            commitment_cost=ours["commitment_cost"],
        )
        if ours["legacy_encoder_layout"]:
            vq_model["finetune_decoder"] = not name.endswith("_stage1")  # is_legacy absent -> True, as released
        else:
            vq_model.update(finetune_decoder=False, is_legacy=False)
    if preset.prefix_decoding:  # One-D-Piece's yaml files
        vq_model["strict_length_assertion"] = False
    return {
        "experiment": {},
        "model": {"vq_model": vq_model},
        "dataset": {"preprocessing": {"crop_size": preset.image_size}},
    }


VIT_RULES = [
    (r"transformer\.(\d+)\.ln_1\.", r"layers.\1.layer_norm1."),
    (r"transformer\.(\d+)\.ln_2\.", r"layers.\1.layer_norm2."),
    (r"transformer\.(\d+)\.attn\.in_proj_(weight|bias)$", r"layers.\1.self_attn.qkv_proj.\2"),
    (r"transformer\.(\d+)\.attn\.out_proj\.", r"layers.\1.self_attn.out_proj."),
    (r"transformer\.(\d+)\.mlp\.c_fc\.", r"layers.\1.mlp.fc1."),
    (r"transformer\.(\d+)\.mlp\.c_proj\.", r"layers.\1.mlp.fc2."),
    (r"ln_pre\.", "pre_layernorm."),
    (r"ln_post\.", "post_layernorm."),
    (r"class_embedding$", "class_embedding"),
    (r"positional_embedding$", "position_embedding"),
    (r"latent_token_positional_embedding$", "latent_position_embedding"),
]


def tokenizer_rules(config: TiTokConfig) -> list[tuple[str, str]]:
    """The renaming of an official TiTok tokenizer state dict (TA-TiTok's adds its text projection to it)."""
    rules = [
        (r"^latent_tokens$", "encoder.latent_tokens"),
        (r"^encoder\.patch_embed\.", "encoder.patch_embedding."),
        (r"^encoder\.conv_out\.", "encoder.projection."),
        (r"^decoder\.mask_token$", "decoder.mask_token"),
        (r"^decoder\.decoder_embed\.", "decoder.latent_projection."),
        # ffn.0 is the first 1x1 conv of the proxy-code head, or the patch conv of the pixel head.
        (
            r"^decoder\.ffn\.0\.",
            "decoder.head.fc1." if config.decoder_head == "proxy_codes" else "decoder.head.to_patches.",
        ),
        (r"^decoder\.ffn\.2\.", "decoder.head.fc2."),
        (r"^decoder\.conv_out\.", "decoder.head.conv_out."),
        (r"^quantize\.embedding\.weight$", "quantizer.embedding.weight"),
        (r"^pixel_quantize\.embedding\.weight$", "pixel_quantizer.embedding.weight"),
        (r"^pixel_decoder\.", "pixel_decoder."),
    ]
    for part in ("encoder", "decoder"):
        rules += [(rf"^{part}\.{pattern}", f"{part}." + target) for pattern, target in VIT_RULES]
    return rules


def prepare_tokenizer_checkpoint(official_config, official_weights):
    config = titok_config_from_official(official_config)
    return TiTokTokenizer, config, tokenizer_rules(config), official_weights


CONVERTER = Converter(
    "tokenizer",
    prepare_tokenizer_checkpoint,
    official_config=official_tokenizer_config,
    signatures=(frozenset({"latent_tokens"}),),
)

__all__ = [
    "CONVERTER",
    "VIT_RULES",
    "official_tokenizer_config",
    "titok_config_from_official",
    "titok_kwargs_from_official",
    "tokenizer_rules",
    "vit_size",
]
