"""The official TiTok releases (bytedance/1d-tokenizer): where they live and what they report.

Each release has a Hub repo in the official format (`config.json` = the nested OmegaConf dict, with
unresolved `${...}` interpolations, + `model.safetensors`), and the two-stage ones also a plain state dict
in `fun-research/TiTok` (`.bin`) that the official scripts pair with an infer yaml of the GitHub
repository. `official_config()` gives that infer config (its `model` section), so `.bin` files convert
without the yaml.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

FUN_RESEARCH_REPO = "fun-research/TiTok"
PAPER = "arxiv:2406.07550"


@dataclass(frozen=True)
class OfficialRelease:
    """One released checkpoint."""

    name: str
    kind: str  # "tokenizer" | "generator" | "vqgan"
    repo_id: str
    title: str
    results: dict = field(default_factory=dict)  # what the official README reports (ImageNet 256x256)
    bin_filename: str | None = None  # plain state dict in fun-research/TiTok
    tokenizer: str | None = None  # generators: the release name of their tokenizer

    @property
    def is_generator(self) -> bool:
        return self.kind == "generator"


def _tokenizer(name, title, rfid, bin_filename=None):
    return OfficialRelease(name, "tokenizer", f"yucornetto/tokenizer_{name}_imagenet", title, {"rFID": rfid}, bin_filename)


RELEASES: dict[str, OfficialRelease] = {
    release.name: release
    for release in [
        _tokenizer("titok_l32", "TiTok-L-32 (VQ, two-stage)", 2.21, "tokenizer_titok_l32.bin"),
        _tokenizer("titok_b64", "TiTok-B-64 (VQ, two-stage)", 1.70, "tokenizer_titok_b64.bin"),
        _tokenizer("titok_s128", "TiTok-S-128 (VQ, two-stage)", 1.71, "tokenizer_titok_s128.bin"),
        _tokenizer("titok_bl64_vq8k", "TiTok-BL-64 VQ 8k (single-stage)", 2.06),
        _tokenizer("titok_bl128_vq8k", "TiTok-BL-128 VQ 8k (single-stage)", 1.49),
        _tokenizer("titok_sl256_vq8k", "TiTok-SL-256 VQ 8k (single-stage)", 1.03),
        _tokenizer("titok_ll32_vae_c16", "TiTok-LL-32 VAE, 16 channels (single-stage)", 1.61),
        _tokenizer("titok_bl64_vae_c16", "TiTok-BL-64 VAE, 16 channels (single-stage)", 1.25),
        _tokenizer("titok_bl128_vae_c16", "TiTok-BL-128 VAE, 16 channels (single-stage)", 0.84),
        OfficialRelease("titok_l32_generator", "generator", "yucornetto/generator_titok_l32_imagenet",
                        "MaskGIT generator for TiTok-L-32", {"gFID": 2.77, "sampling steps": 8},
                        "generator_titok_l32.bin", tokenizer="titok_l32"),
        OfficialRelease("titok_b64_generator", "generator", "yucornetto/generator_titok_b64_imagenet",
                        "MaskGIT generator for TiTok-B-64", {"gFID": 2.48, "sampling steps": 8},
                        "generator_titok_b64.bin", tokenizer="titok_b64"),
        OfficialRelease("titok_s128_generator", "generator", "yucornetto/generator_titok_s128_imagenet",
                        "U-ViT MaskGIT generator for TiTok-S-128", {"gFID": 1.97, "sampling steps": 64},
                        "generator_titok_s128.bin", tokenizer="titok_s128"),
        OfficialRelease("maskgit_vqgan", "vqgan", FUN_RESEARCH_REPO,
                        "MaskGIT-VQGAN ImageNet f16 (TiTok's proxy-code teacher)", {},
                        "maskgit-vqgan-imagenet-f16-256.bin"),
    ]
}


def release_for_repo(repo_id: str) -> OfficialRelease | None:
    """The release published at `repo_id`, if it is one of the official single-release repos
    (`fun-research/TiTok` holds several: name the release)."""
    if repo_id == FUN_RESEARCH_REPO:
        return None
    return next((r for r in RELEASES.values() if r.repo_id == repo_id), None)


def get_release(name: str) -> OfficialRelease:
    if name not in RELEASES:
        raise ValueError(f"unknown official release {name!r}; available: {', '.join(RELEASES)}")
    return RELEASES[name]


# ---- the official infer configs (configs/infer/TiTok/<name>.yaml), `model` and `dataset` sections ----

_TWO_STAGE = dict(vit_enc_patch_size=16, vit_dec_patch_size=16, token_size=12, codebook_size=4096,
                  use_l2_norm=True, commitment_cost=0.25, finetune_decoder=True)  # is_legacy absent -> True
_VQ8K = dict(vit_enc_patch_size=16, vit_dec_patch_size=16, token_size=64, codebook_size=8192, use_l2_norm=False,
             commitment_cost=0.25, finetune_decoder=False, is_legacy=False)
_VAE = dict(vit_enc_patch_size=16, vit_dec_patch_size=16, token_size=16, quantize_mode="vae",
            finetune_decoder=False, is_legacy=False)

_VQ_MODELS = {
    "titok_l32": dict(_TWO_STAGE, vit_enc_model_size="large", vit_dec_model_size="large", num_latent_tokens=32),
    "titok_b64": dict(_TWO_STAGE, vit_enc_model_size="base", vit_dec_model_size="base", num_latent_tokens=64),
    "titok_s128": dict(_TWO_STAGE, vit_enc_model_size="small", vit_dec_model_size="small", num_latent_tokens=128),
    "titok_bl64_vq8k": dict(_VQ8K, vit_enc_model_size="base", vit_dec_model_size="large", num_latent_tokens=64),
    "titok_bl128_vq8k": dict(_VQ8K, vit_enc_model_size="base", vit_dec_model_size="large", num_latent_tokens=128),
    "titok_sl256_vq8k": dict(_VQ8K, vit_enc_model_size="small", vit_dec_model_size="large", num_latent_tokens=256),
    "titok_ll32_vae_c16": dict(_VAE, vit_enc_model_size="large", vit_dec_model_size="large", num_latent_tokens=32),
    "titok_bl64_vae_c16": dict(_VAE, vit_enc_model_size="base", vit_dec_model_size="large", num_latent_tokens=64),
    "titok_bl128_vae_c16": dict(_VAE, vit_enc_model_size="base", vit_dec_model_size="large", num_latent_tokens=128),
}

_BERT = dict(model_type="ViT", hidden_size=768, num_hidden_layers=24, num_attention_heads=16, intermediate_size=3072)
_GENERATOR = dict(condition_num_classes=1000, dropout=0.1, attn_drop=0.1, class_label_dropout=0.1,
                  image_seq_len="${model.vq_model.num_latent_tokens}")
_GENERATORS = {
    "titok_l32": dict(_GENERATOR, **_BERT, num_steps=8, guidance_scale=4.5, guidance_decay="linear",
                      randomize_temperature=9.5),
    "titok_b64": dict(_GENERATOR, **_BERT, num_steps=8, guidance_scale=3.0, guidance_decay="linear",
                      randomize_temperature=11.0),
    "titok_s128": dict(_GENERATOR, model_type="UViT", hidden_size=1024, num_hidden_layers=20, num_attention_heads=16,
                       intermediate_size=4096, num_steps=64, guidance_scale=6.9, guidance_decay="power-cosine",
                       randomize_temperature=2.8),
}


def official_config(name: str) -> dict:
    """The official config dict of a release (as the infer yaml / Hub config.json hold it, unresolved).

    `name` is a release name (`titok_l32`, ..., `titok_l32_generator`) or a stage-1 layout
    (`titok_l32_stage1`: the same tokenizer with `finetune_decoder: False`)."""
    base = name.removesuffix("_generator").removesuffix("_stage1")
    if base not in _VQ_MODELS:
        raise ValueError(f"no official config for {name!r}; available: {', '.join(_VQ_MODELS)}")
    vq_model = copy.deepcopy(_VQ_MODELS[base])
    if name.endswith("_stage1"):
        vq_model["finetune_decoder"] = False
    model = {"vq_model": vq_model}
    if base in _GENERATORS:  # the two-stage repos' configs carry the generator section too
        model["generator"] = copy.deepcopy(_GENERATORS[base])
    return {"experiment": {}, "model": model, "dataset": {"preprocessing": {"crop_size": 256}}}


__all__ = ["OfficialRelease", "RELEASES", "FUN_RESEARCH_REPO", "get_release", "official_config", "release_for_repo"]
