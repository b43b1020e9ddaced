"""Conversion of the official TiTok releases (bytedance/1d-tokenizer) into hf_titok models.

Everything specific to the official checkpoint format lives here: its nested OmegaConf config (with
unresolved `${...}` interpolations in the Hub `config.json`), its defaults (`is_legacy` and
`finetune_decoder` are True when absent), its size names, and its state-dict key names and layouts
(`[C, 1, N]` token tensors, 1x1 convs where we use linears). Every key is mapped strictly: a key that
maps nowhere, a parameter left without a value or a shape mismatch is an error naming the keys.

The official test harness extends two hard-coded tables; configs carrying them are read as well:
`_harness.vit_size_table` (extra ViT size names), `_harness.pixel_decoder` (the channel config of the
MaskGIT-VQGAN pixel decoder) and `pixel_vqgan` (a VQGAN's own channel config).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from ..models.maskgit_vqgan.configuration_maskgit_vqgan import MaskGITVQGANConfig
from ..models.maskgit_vqgan.modeling_maskgit_vqgan import MaskGITVQGAN
from ..models.titok.configuration_titok import TiTokConfig
from ..models.titok.image_processing_titok import TiTokImageProcessor
from ..models.titok.modeling_titok import TiTokTokenizer
from ..models.titok_maskgit.configuration_titok_maskgit import TiTokMaskGITConfig
from ..models.titok_maskgit.modeling_titok_maskgit import TiTokMaskGIT
from ..models.titok_maskgit.scheduling_titok_maskgit import TiTokMaskGITScheduler
from ..releases import GENERATOR_PRESETS, MASKGIT_VQGAN, TOKENIZER_PRESETS, VIT_SIZES

_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")


class ConversionError(ValueError):
    """An official config or checkpoint does not match what the converter expects."""


# --------------------------------------------------------------------------------------------------
# Official configs
# --------------------------------------------------------------------------------------------------


def load_official_config(path: str | Path) -> dict:
    """Read an official config (Hub `config.json` or infer/training yaml) and resolve `${a.b.c}` references."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    try:
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConversionError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from None
    if not isinstance(config, dict):
        raise ConversionError(f"{path} does not hold a config mapping")
    return _resolve(config, config)


def _lookup(root: dict, dotted: str):
    node = root
    for part in dotted.strip().split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConversionError(f"config interpolation ${{{dotted}}} refers to a missing entry")
        node = node[part]
    return node


def _resolve(node, root: dict, depth: int = 0):
    if depth > 32:
        raise ConversionError("config interpolations nest too deeply (a cycle?)")
    if isinstance(node, dict):
        return {key: _resolve(value, root, depth) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, root, depth) for value in node]
    if isinstance(node, str) and "${" in node:
        whole = _INTERPOLATION.fullmatch(node)
        if whole:  # a bare reference keeps the referenced value's type
            return _resolve(_lookup(root, whole.group(1)), root, depth + 1)
        return _INTERPOLATION.sub(lambda m: str(_resolve(_lookup(root, m.group(1)), root, depth + 1)), node)
    return node


def _vit_size(name: str, harness: dict) -> dict:
    table = {**VIT_SIZES}
    for size_name, spec in harness.get("vit_size_table", {}).items():
        table[size_name] = dict(hidden_size=spec["width"], num_layers=spec["num_layers"], num_heads=spec["num_heads"])
    if name not in table:
        raise ConversionError(f"unknown ViT size {name!r}; known sizes: {', '.join(table)}")
    return table[name]


def _vqgan_kwargs(spec: Mapping, image_size: int) -> dict:
    kwargs = {
        key: spec[key]
        for key in ("hidden_channels", "channel_mult", "num_res_blocks", "z_channels", "codebook_size")
        if key in spec
    }
    kwargs["image_size"] = spec.get("resolution", image_size)
    if "dropout" in spec:
        kwargs["dropout"] = spec["dropout"]
    if "num_resolutions" in spec and spec["num_resolutions"] != len(
        kwargs.get("channel_mult", MASKGIT_VQGAN["channel_mult"])
    ):
        raise ConversionError(
            f"num_resolutions={spec['num_resolutions']} disagrees with channel_mult={spec.get('channel_mult')}"
        )
    return kwargs


def titok_config_from_official(official: Mapping) -> TiTokConfig:
    """Map an official config dict (interpolations resolved or not) to a [`TiTokConfig`]."""
    return TiTokConfig(**titok_kwargs_from_official(official))


def titok_kwargs_from_official(official: Mapping) -> dict:
    """The [`TiTokConfig`] arguments an official config sets (TA-TiTok's config adds its text fields to them)."""
    official = _resolve(official, official)
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
    encoder, decoder = _vit_size(vq["vit_enc_model_size"], harness), _vit_size(vq["vit_dec_model_size"], harness)
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
    )
    if quantize_mode == "vq":
        kwargs.update(
            codebook_size=vq["codebook_size"],
            use_l2_norm=vq.get("use_l2_norm", False),
            commitment_cost=vq.get("commitment_cost", 0.25),
        )
    if is_legacy:
        kwargs["include_pixel_decoder"] = finetune_decoder
        kwargs["pixel_decoder_config"] = _vqgan_kwargs(harness.get("pixel_decoder", MASKGIT_VQGAN), image_size)
    return kwargs


def _generator_section(official: Mapping) -> tuple[dict, dict]:
    official = _resolve(official, official)
    try:
        return official["model"]["generator"], official["model"]["vq_model"]
    except (KeyError, TypeError):
        raise ConversionError(
            "not an official TiTok generator config: it needs model.generator and model.vq_model"
        ) from None


def maskgit_config_from_official(official: Mapping) -> TiTokMaskGITConfig:
    """Map an official (resolved or not) config with a `model.generator` section to a [`TiTokMaskGITConfig`]."""
    generator, vq = _generator_section(official)
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
    generator, _ = _generator_section(official)
    return TiTokMaskGITScheduler(
        num_inference_steps=generator.get("num_steps", 8),
        guidance_scale=generator.get("guidance_scale", 3.0),
        guidance_schedule=generator.get("guidance_decay", "constant"),
        guidance_scale_pow=generator.get("guidance_scale_pow", 3.0),
        temperature=generator.get("randomize_temperature", 4.5),
        softmax_temperature_annealing=True,
    )


# --------------------------------------------------------------------------------------------------
# The official configs of the releases, from the release table (`.bin` files come without one)
# --------------------------------------------------------------------------------------------------


def official_vit_sizes(preset) -> dict:
    """The `vq_model` keys every official TiTok and TA-TiTok config starts with: the ViT sizes, one patch size
    for both, the token count and the token width."""
    return dict(
        vit_enc_model_size=preset.encoder,
        vit_dec_model_size=preset.decoder,
        vit_enc_patch_size=preset.patch_size,
        vit_dec_patch_size=preset.patch_size,
        num_latent_tokens=preset.num_latent_tokens,
        token_size=preset.config_kwargs()["token_size"],
    )


def official_config(name: str) -> dict:
    """The official config dict of a release (as the infer yaml / Hub config.json hold it, unresolved), built
    from `hf_titok.releases`.

    `name` is a release name (`titok_l32`, ..., `titok_l32_generator`) or a stage-1 layout
    (`titok_l32_stage1`: the same tokenizer with `finetune_decoder: False`)."""
    base = name.removesuffix("_generator").removesuffix("_stage1")
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
    model = {"vq_model": vq_model}
    if base in GENERATOR_PRESETS:  # the two-stage repos' configs carry the generator section too
        generator = GENERATOR_PRESETS[base]
        architecture = TiTokMaskGITConfig.from_preset(base)
        sampling = generator.sampling
        model["generator"] = dict(
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
    return {"experiment": {}, "model": model, "dataset": {"preprocessing": {"crop_size": preset.image_size}}}


def vqgan_config_from_official(official: Mapping | None) -> MaskGITVQGANConfig:
    """The MaskGIT-VQGAN config: the `pixel_vqgan` (or `_harness.pixel_decoder`) channel config when the
    given config has one, the released f16-256 model otherwise."""
    official = official or {}
    spec = official.get("pixel_vqgan") or official.get("_harness", {}).get("pixel_decoder") or MASKGIT_VQGAN
    image_size = official.get("dataset", {}).get("preprocessing", {}).get("crop_size", 256)
    return MaskGITVQGANConfig(**_vqgan_kwargs(spec, image_size))


# --------------------------------------------------------------------------------------------------
# State dicts
# --------------------------------------------------------------------------------------------------

_VIT_RULES = [
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


def _tokenizer_rules(config: TiTokConfig) -> list[tuple[str, str]]:
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
        rules += [(rf"^{part}\.{pattern}", f"{part}." + target) for pattern, target in _VIT_RULES]
    return rules


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


def _prepare_bert_weights(official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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


VQGAN_RULES = [
    (r"^quantize\.embedding\.weight$", "quantizer.embedding.weight"),
    (r"^(encoder|decoder)\.", r"\1."),
]


def _fit(tensor: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """The tensor in `shape` if the two differ only by singleton dims (1x1 conv -> linear, [1, W] -> [W])."""
    if tensor.shape == shape:
        return tensor
    if [d for d in tensor.shape if d != 1] == [d for d in shape if d != 1]:
        return tensor.reshape(shape)
    return None


def convert_state_dict(
    official: Mapping[str, torch.Tensor],
    rules: list[tuple[str, str]],
    expected: Mapping[str, torch.Tensor],
    what: str = "checkpoint",
) -> dict[str, torch.Tensor]:
    """Rename `official` keys with the first matching `(pattern, replacement)` rule and fit them to the
    shapes of `expected` (our model's state dict). Raises [`ConversionError`] listing every unmapped,
    missing, unexpected or mis-shaped key."""
    converted, unmapped, unexpected, mismatched, seen = {}, [], [], [], set()
    for key, tensor in official.items():
        for pattern, replacement in rules:
            if re.search(pattern, key):
                new_key = re.sub(pattern, replacement, key, count=1)
                break
        else:
            unmapped.append(key)
            continue
        if new_key not in expected:
            unexpected.append(f"{key} -> {new_key}")
            continue
        seen.add(new_key)
        fitted = _fit(tensor, expected[new_key].shape)
        if fitted is None:
            mismatched.append(f"{key}: {list(tensor.shape)} vs expected {list(expected[new_key].shape)} ({new_key})")
            continue
        converted[new_key] = fitted
    missing = [key for key in expected if key not in seen]
    problems = []
    for title, keys in (
        ("keys with no mapping", unmapped),
        ("keys the model does not have", unexpected),
        ("shape mismatches", mismatched),
        ("parameters missing from the checkpoint", missing),
    ):
        if keys:
            shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
            problems.append(f"{title}: {shown}")
    if problems:
        raise ConversionError(f"the {what} does not match the model built from its config; " + "; ".join(problems))
    return converted


def load_official_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official state dict: `.safetensors`, or a `.bin`/`.pt`/`.pth` pickle loaded with
    `weights_only=True` (no code from the file is run)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state_dict = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # corrupted files or pickles with non-tensor objects
        raise ConversionError(f"could not read {path} as a weights-only torch state dict: {error}") from None
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ConversionError(f"{path} does not hold a flat state dict of tensors")
    return dict(state_dict)


def _tokenizer_checkpoint(official_config, official_weights):
    config = titok_config_from_official(official_config)
    return TiTokTokenizer, config, _tokenizer_rules(config), official_weights


def _generator_checkpoint(official_config, official_weights):
    config = maskgit_config_from_official(official_config)
    if config.architecture == "bert":
        return TiTokMaskGIT, config, BERT_RULES, _prepare_bert_weights(official_weights)
    return TiTokMaskGIT, config, UVIT_RULES, official_weights


def _vqgan_checkpoint(official_config, official_weights):
    return MaskGITVQGAN, vqgan_config_from_official(official_config), VQGAN_RULES, official_weights


@dataclass(frozen=True)
class CheckpointKind:
    """How to convert one kind of official checkpoint: `prepare(official config, official weights)` returns (our
    model class - or any callable building the model from our config -, our config, renaming rules, the weights
    to rename); `name` is what errors call it;
    `image_processor`: `hf-titok convert` also writes the image processor of the model's image size."""

    name: str
    prepare: Callable
    image_processor: bool = True
    # Models are built on the meta device and take the converted tensors as they are; a model with computed
    # non-persistent buffers (transformers' CLIP: its position ids) is built for real instead.
    build_on_meta: bool = True


# Every kind `hf-titok convert --kind` takes; `hf_titok.conversion.family` adds TA-TiTok, MaskGen and the CLIP
# text tower.
CHECKPOINT_KINDS: dict[str, CheckpointKind] = {
    "tokenizer": CheckpointKind("tokenizer", _tokenizer_checkpoint),
    "generator": CheckpointKind("generator", _generator_checkpoint, image_processor=False),
    "vqgan": CheckpointKind("MaskGIT-VQGAN", _vqgan_checkpoint),
}


def _prepared(kind: str, official_config, official_weights):
    if kind not in CHECKPOINT_KINDS:
        raise ConversionError(f"unknown kind {kind!r}; choose one of {', '.join(CHECKPOINT_KINDS)}")
    model_class, config, rules, weights = CHECKPOINT_KINDS[kind].prepare(official_config, official_weights)
    with torch.device("meta"):
        expected = model_class(config).state_dict()
    what = f"{CHECKPOINT_KINDS[kind].name} checkpoint"
    return model_class, config, convert_state_dict(weights, rules, expected, what=what)


def convert_checkpoint(kind: str, official_config: Mapping | None, official_weights: Mapping[str, torch.Tensor]):
    """An official config + state dict of `kind` (one of `CHECKPOINT_KINDS`) -> (our config, our state dict),
    every key mapped strictly. The one conversion behind `hf-titok convert` and direct loading."""
    _, config, state_dict = _prepared(kind, official_config, official_weights)
    return config, state_dict


def convert_model(kind: str, official_config: Mapping | None, official_weights: Mapping[str, torch.Tensor]):
    """An official config + state dict of `kind` -> our model, in eval mode."""
    model_class, config, state_dict = _prepared(kind, official_config, official_weights)
    with torch.device("meta" if CHECKPOINT_KINDS[kind].build_on_meta else "cpu"):
        model = model_class(config)
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.eval()


def convert_tokenizer(official_config: Mapping, official_weights: Mapping[str, torch.Tensor]) -> TiTokTokenizer:
    """An official TiTok config + state dict -> [`TiTokTokenizer`] (in eval mode)."""
    return convert_model("tokenizer", official_config, official_weights)


def convert_generator(official_config: Mapping, official_weights: Mapping[str, torch.Tensor]) -> TiTokMaskGIT:
    """An official generator config + state dict (ImageBert or UViTBert) -> [`TiTokMaskGIT`]."""
    return convert_model("generator", official_config, official_weights)


def convert_vqgan(official_config: Mapping | None, official_weights: Mapping[str, torch.Tensor]) -> MaskGITVQGAN:
    """An official MaskGIT-VQGAN state dict (PretrainedTokenizer layout) -> [`MaskGITVQGAN`]."""
    return convert_model("vqgan", official_config, official_weights)


def convert(kind: str, config_path: str | Path | None, weights_path: str | Path, output_dir: str | Path):
    """Convert official files and write the model (safetensors) and, for image models, its image processor to
    `output_dir`."""
    if kind not in CHECKPOINT_KINDS:
        raise ConversionError(f"unknown kind {kind!r}; choose one of {', '.join(CHECKPOINT_KINDS)}")
    if config_path is None and kind != "vqgan":
        raise ConversionError(f"--config is required for --kind {kind}")
    official_config = load_official_config(config_path) if config_path is not None else None
    model = convert_model(kind, official_config, load_official_weights(weights_path))
    model.save_pretrained(output_dir)
    if CHECKPOINT_KINDS[kind].image_processor:
        TiTokImageProcessor.for_image_size(model.config.image_size).save_pretrained(output_dir)
    return model


__all__ = [
    "CHECKPOINT_KINDS",
    "CheckpointKind",
    "ConversionError",
    "convert",
    "convert_checkpoint",
    "convert_model",
    "convert_generator",
    "convert_state_dict",
    "convert_tokenizer",
    "convert_vqgan",
    "load_official_config",
    "load_official_weights",
    "maskgit_config_from_official",
    "official_config",
    "scheduler_from_official",
    "titok_config_from_official",
    "titok_kwargs_from_official",
    "vqgan_config_from_official",
]
