"""The TiTok models of the paper and of the official release (bytedance/1d-tokenizer), in one table.

Every hyper-parameter of a released model is written here once; the rest of the package derives from it:
`TiTokConfig.from_preset`, `TiTokMaskGITConfig.from_preset` and `TiTokMaskGITScheduler.from_preset` (the
official gFID sampling settings), the official infer configs the converter pairs with `.bin` files
(`hf_titok.conversion`), and the model cards (`hf_titok.hub`).

- `TOKENIZER_PRESETS`: the nine released tokenizers (all 256x256, patch 16): a ViT size per side, a token
  count and a family (two-stage VQ, single-stage VQ 8k, single-stage VAE); and the paper's two 512x512
  tokenizers, whose weights were never released (`released=False`: train them with the `*_512` recipes).
- `GENERATOR_PRESETS`: the three released MaskGIT generators and the paper's two 512x512 ones: architecture
  and sampling settings.
- `PAPER_RESULTS_512`: what the paper reports for the 512x512 models.
- `RELEASES`: where each checkpoint lives on the Hub and what its authors report.

This module imports only `sampling_settings` (the declaration of the sampler settings) of the package: they are
the bottom of the dependency graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .utils.sampling_settings import (
    DEFAULT_AESTHETIC_SCORE,
    SAMPLING_SETTINGS,
    GuidanceSchedule,
    MaskGenKLGuidanceSchedule,
    MaskGenVQGuidanceSchedule,
)

FUN_RESEARCH_REPO = "fun-research/TiTok"
PAPER = "arxiv:2406.07550"

# The MaskGIT-VQGAN that official TiTok hard-codes (maskgit-vqgan-imagenet-f16-256): the proxy-code teacher and
# pixel decoder of the two-stage tokenizers; `MaskGITVQGANConfig`'s defaults and the converter read it here.
MASKGIT_VQGAN = dict(
    hidden_channels=128, channel_mult=(1, 1, 2, 2, 4), num_res_blocks=2, z_channels=256, codebook_size=1024
)

# Width / depth / heads behind the official ViT size names.
VIT_SIZES = {
    "small": dict(hidden_size=512, num_layers=8, num_heads=8),
    "base": dict(hidden_size=768, num_layers=12, num_heads=12),
    "large": dict(hidden_size=1024, num_layers=24, num_heads=16),
}

# What a tokenizer family fixes (field names of `TiTokConfig`).
TOKENIZER_FAMILIES = {
    # Two-stage training (proxy codes of the MaskGIT-VQGAN, then pixels): the released L-32, B-64, S-128.
    "two_stage": dict(
        token_size=12,
        quantize_mode="vq",
        codebook_size=4096,
        use_l2_norm=True,
        commitment_cost=0.25,
        decoder_head="proxy_codes",
        legacy_encoder_layout=True,
    ),
    # Single-stage VQ with an 8192-entry codebook.
    "vq8k": dict(
        token_size=64,
        quantize_mode="vq",
        codebook_size=8192,
        use_l2_norm=False,
        commitment_cost=0.25,
        decoder_head="pixels",
        legacy_encoder_layout=False,
    ),
    # Single-stage VAE with 16 channels per token.
    "vae_c16": dict(token_size=16, quantize_mode="vae", decoder_head="pixels", legacy_encoder_layout=False),
}


@dataclass(frozen=True)
class TokenizerPreset:
    """A tokenizer's architecture: ViT sizes of the encoder and decoder, token count and family."""

    encoder: Literal["small", "base", "large"]
    decoder: Literal["small", "base", "large"]
    num_latent_tokens: int
    family: Literal["two_stage", "vq8k", "vae_c16"]
    image_size: int = 256
    patch_size: int = 16
    released: bool = True  # False: a model of the paper whose weights were never published (no official keys)
    prefix_decoding: bool = False  # trained to decode any prefix of its tokens (One-D-Piece's Tail Token Drop)

    def config_kwargs(self) -> dict:
        """The `TiTokConfig` arguments of this preset."""
        kwargs = dict(
            image_size=self.image_size,
            encoder_patch_size=self.patch_size,
            decoder_patch_size=self.patch_size,
            num_latent_tokens=self.num_latent_tokens,
            **TOKENIZER_FAMILIES[self.family],
        )
        if self.prefix_decoding:
            kwargs["prefix_decoding"] = True
        for side, size in (("encoder", self.encoder), ("decoder", self.decoder)):
            kwargs.update({f"{side}_{key}": value for key, value in VIT_SIZES[size].items()})
        return kwargs


TOKENIZER_PRESETS: dict[str, TokenizerPreset] = {
    "titok_l32": TokenizerPreset("large", "large", 32, "two_stage"),
    "titok_b64": TokenizerPreset("base", "base", 64, "two_stage"),
    "titok_s128": TokenizerPreset("small", "small", 128, "two_stage"),
    "titok_bl64_vq8k": TokenizerPreset("base", "large", 64, "vq8k"),
    "titok_bl128_vq8k": TokenizerPreset("base", "large", 128, "vq8k"),
    "titok_sl256_vq8k": TokenizerPreset("small", "large", 256, "vq8k"),
    "titok_ll32_vae_c16": TokenizerPreset("large", "large", 32, "vae_c16"),
    "titok_bl64_vae_c16": TokenizerPreset("base", "large", 64, "vae_c16"),
    "titok_bl128_vae_c16": TokenizerPreset("base", "large", 128, "vae_c16"),
    # ImageNet 512x512 (paper, Table 2): two-stage like the 256 models, patch 16 on both sides, so the decoder
    # predicts the proxy codes of the MaskGIT-VQGAN run at 512 (a 32x32 grid of codes).
    "titok_l64_512": TokenizerPreset("large", "large", 64, "two_stage", image_size=512, released=False),
    "titok_b128_512": TokenizerPreset("base", "base", 128, "two_stage", image_size=512, released=False),
    # One-D-Piece (turingmotors/One-D-Piece, a TiTok fork; configs/one-d-piece_{s,b,l}256.yaml): two-stage TiTok
    # tokenizers with 256 tokens, trained with Tail Token Drop so that any prefix of the tokens decodes.
    "onedpiece_s256": TokenizerPreset("small", "small", 256, "two_stage", prefix_decoding=True),
    "onedpiece_b256": TokenizerPreset("base", "base", 256, "two_stage", prefix_decoding=True),
    "onedpiece_l256": TokenizerPreset("large", "large", 256, "two_stage", prefix_decoding=True),
}

# TA-TiTok (MaskGen's text-aware tokenizers, bytedance/1d-tokenizer README_MaskGen.md): single-stage TiTok
# architectures (the VQ ones are the vq8k family, the VAE ones vae_c16) whose decoder also attends to CLIP text;
# the text fields take `TATiTokConfig`'s defaults (CLIP ViT-L/14: 768 wide, 77 positions).
TATITOK_PRESETS: dict[str, TokenizerPreset] = {
    "tatitok_bl32_vq": TokenizerPreset("base", "large", 32, "vq8k"),
    "tatitok_bl64_vq": TokenizerPreset("base", "large", 64, "vq8k"),
    "tatitok_bl128_vq": TokenizerPreset("base", "large", 128, "vq8k"),
    "tatitok_bl32_vae": TokenizerPreset("base", "large", 32, "vae_c16"),
    "tatitok_bl64_vae": TokenizerPreset("base", "large", 64, "vae_c16"),
    "tatitok_sl128_vae": TokenizerPreset("small", "large", 128, "vae_c16"),
}

# The two released generator architectures (field names of `TiTokMaskGITConfig`).
GENERATOR_ARCHITECTURES = {
    "bert": dict(
        architecture="bert",
        hidden_size=768,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=3072,
        layer_norm_eps=1e-12,
    ),
    "uvit": dict(
        architecture="uvit",
        hidden_size=1024,
        num_hidden_layers=20,
        num_attention_heads=16,
        intermediate_size=4096,
        layer_norm_eps=1e-5,
    ),
}


@dataclass(frozen=True)
class SamplingPreset:
    """The sampler settings of a generator's official gFID protocol (sample_imagenet_titok.py: the infer config's
    steps, guidance and temperature, with softmax temperature annealing on)."""

    num_inference_steps: int
    guidance_scale: float
    guidance_schedule: GuidanceSchedule
    temperature: float
    guidance_scale_pow: float = 3.0
    softmax_temperature_annealing: bool = True

    def scheduler_kwargs(self) -> dict:
        """The `TiTokMaskGITScheduler` arguments of these settings."""
        return {name: getattr(self, name) for name in SAMPLING_SETTINGS}


# SamplingPreset's fields are the sampler settings of `hf_titok.utils.sampling_settings`, in its order (tested).


@dataclass(frozen=True)
class GeneratorPreset:
    """A class-conditional MaskGIT over the ids of the tokenizer preset of the same name."""

    architecture: Literal["bert", "uvit"]
    sampling: SamplingPreset
    tokenizer: str
    num_classes: int = 1000
    released: bool = True

    def config_kwargs(self) -> dict:
        """The `TiTokMaskGITConfig` arguments of this preset (its vocabulary follows its tokenizer's)."""
        tokenizer = TOKENIZER_PRESETS[self.tokenizer].config_kwargs()
        return dict(
            GENERATOR_ARCHITECTURES[self.architecture],
            codebook_size=tokenizer["codebook_size"],
            num_latent_tokens=tokenizer["num_latent_tokens"],
            num_classes=self.num_classes,
        )


GENERATOR_PRESETS: dict[str, GeneratorPreset] = {
    "titok_l32": GeneratorPreset("bert", SamplingPreset(8, 4.5, "linear", 9.5), "titok_l32"),
    "titok_b64": GeneratorPreset("bert", SamplingPreset(8, 3.0, "linear", 11.0), "titok_b64"),
    "titok_s128": GeneratorPreset("uvit", SamplingPreset(64, 6.9, "power-cosine", 2.8), "titok_s128"),
    # 512x512 (paper, Table 2): L-64 with the 177M MaskGIT-ViT at 8 steps, B-128 with MaskGIT-UViT-L at 64 steps.
    # The paper gives the architectures and step counts, not the guidance or temperature: these are the released
    # settings of the 256 generator of the same architecture, step count and closest token count (B-64's for
    # L-64, S-128's for B-128); tune them with a gFID sweep once the models are trained.
    "titok_l64_512": GeneratorPreset("bert", SamplingPreset(8, 3.0, "linear", 11.0), "titok_l64_512", released=False),
    "titok_b128_512": GeneratorPreset(
        "uvit", SamplingPreset(64, 6.9, "power-cosine", 2.8), "titok_b128_512", released=False
    ),
    # One-D-Piece's MaskGIT generators (configs/training/generator/maskgit_one-d-piece_*256.yaml): the same 177M
    # BERT for every tokenizer size, over all 256 tokens; the "best" settings the yaml files record (16 steps,
    # power-cosine, guidance_scale_pow not set: 3.0; softmax annealing not recorded: the gFID protocol's, on).
    "onedpiece_s256": GeneratorPreset("bert", SamplingPreset(16, 12.5, "power-cosine", 3.0), "onedpiece_s256"),
    "onedpiece_b256": GeneratorPreset("bert", SamplingPreset(16, 8.5, "power-cosine", 2.5), "onedpiece_b256"),
    "onedpiece_l256": GeneratorPreset("bert", SamplingPreset(16, 5.5, "power-cosine", 3.0), "onedpiece_l256"),
}

# What the paper reports for its 512x512 models (ImageNet 512x512, Table 2; gFID with the generator preset of the
# same name and its step count). Parameter counts in millions, as the paper's tables give them.
PAPER_RESULTS_512 = {
    "titok_l64_512": {
        "rFID": 1.77,
        "gFID": 2.74,
        "sampling steps": 8,
        "tokenizer params (M)": 644,
        "generator params (M)": 177,
    },
    "titok_b128_512": {"rFID": 1.52, "gFID": 2.13, "sampling steps": 64, "tokenizer params (M)": 202},
}


def _choose(table: dict, name: str, what: str):
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; available: {', '.join(table)}")
    return table[name]


def tokenizer_preset(name: str) -> TokenizerPreset:
    return _choose(TOKENIZER_PRESETS, name, "TiTok preset")


def tatitok_preset(name: str) -> TokenizerPreset:
    return _choose(TATITOK_PRESETS, name, "TA-TiTok preset")


def generator_preset(name: str) -> GeneratorPreset:
    return _choose(GENERATOR_PRESETS, name, "TiTok generator preset")


# --------------------------------------------------------------------------------------------------
# Where the released checkpoints live
# --------------------------------------------------------------------------------------------------


FAMILY_BIN_REPO = "fun-research/TA-TiTok"
# The repos that hold the plain `.bin` state dicts of several releases (`release=` names one).
RAR_REPO = "yucornetto/RAR"
BIN_REPOS = (FUN_RESEARCH_REPO, FAMILY_BIN_REPO, RAR_REPO)


@dataclass(frozen=True)
class OfficialRelease:
    """One released checkpoint: a tokenizer or generator preset (of the same name, without `_generator`), the
    MaskGIT-VQGAN, or a TA-TiTok / MaskGen preset. `kind` is its official checkpoint kind, that of its family in
    `hf_titok.families`."""

    name: str
    kind: Literal["tokenizer", "generator", "vqgan", "tatitok", "maskgen-vq", "maskgen-kl", "rar"]
    repo_id: str
    title: str
    results: dict = field(default_factory=dict)  # what the authors report, measured as `results_measure` says
    bin_filename: str | None = None  # its plain state dict in `bin_repo`
    tokenizer: str | None = None  # generators: the release name of their tokenizer
    bin_repo: str = FUN_RESEARCH_REPO  # the repo holding the `.bin` files of its family
    results_measure: str = ""  # what the results are
    results_readme: str = "README"  # the official repository's README file that reports them
    official_repo: str = "bytedance/1d-tokenizer"  # the GitHub repository of its code and results
    paper: str = PAPER

    @property
    def preset(self) -> str:
        return self.name.removesuffix("_generator")


def _tokenizer(name, title, rfid, bin_filename=None):
    return OfficialRelease(
        name,
        "tokenizer",
        f"yucornetto/tokenizer_{name}_imagenet",
        title,
        {"rFID": rfid},
        bin_filename,
        results_measure="rFID on ImageNet-1k val (50k), 256x256",
    )


def _generator(name, title, gfid, bin_filename):
    steps = GENERATOR_PRESETS[name].sampling.num_inference_steps
    return OfficialRelease(
        f"{name}_generator",
        "generator",
        f"yucornetto/generator_{name}_imagenet",
        title,
        {"gFID": gfid, "sampling steps": steps},
        bin_filename,
        tokenizer=name,
        results_measure="gFID on 50k samples, ImageNet 256x256",
    )


_TITOK_RELEASES = [
    _tokenizer("titok_l32", "TiTok-L-32 (VQ, two-stage)", 2.21, "tokenizer_titok_l32.bin"),
    _tokenizer("titok_b64", "TiTok-B-64 (VQ, two-stage)", 1.70, "tokenizer_titok_b64.bin"),
    _tokenizer("titok_s128", "TiTok-S-128 (VQ, two-stage)", 1.71, "tokenizer_titok_s128.bin"),
    _tokenizer("titok_bl64_vq8k", "TiTok-BL-64 VQ 8k (single-stage)", 2.06),
    _tokenizer("titok_bl128_vq8k", "TiTok-BL-128 VQ 8k (single-stage)", 1.49),
    _tokenizer("titok_sl256_vq8k", "TiTok-SL-256 VQ 8k (single-stage)", 1.03),
    _tokenizer("titok_ll32_vae_c16", "TiTok-LL-32 VAE, 16 channels (single-stage)", 1.61),
    _tokenizer("titok_bl64_vae_c16", "TiTok-BL-64 VAE, 16 channels (single-stage)", 1.25),
    _tokenizer("titok_bl128_vae_c16", "TiTok-BL-128 VAE, 16 channels (single-stage)", 0.84),
    _generator("titok_l32", "MaskGIT generator for TiTok-L-32", 2.77, "generator_titok_l32.bin"),
    _generator("titok_b64", "MaskGIT generator for TiTok-B-64", 2.48, "generator_titok_b64.bin"),
    _generator("titok_s128", "U-ViT MaskGIT generator for TiTok-S-128", 1.97, "generator_titok_s128.bin"),
    OfficialRelease(
        "maskgit_vqgan",
        "vqgan",
        FUN_RESEARCH_REPO,
        "MaskGIT-VQGAN ImageNet f16 (TiTok's proxy-code teacher)",
        {},
        "maskgit-vqgan-imagenet-f16-256.bin",
    ),
]


# --------------------------------------------------------------------------------------------------
# TA-TiTok and MaskGen (README_MaskGen.md of the official repository)
# --------------------------------------------------------------------------------------------------

MASKGEN_PAPER = "arxiv:2501.07730"


@dataclass(frozen=True)
class MaskGenPreset:
    """A released MaskGen generator: its MM-DiT size, its TA-TiTok and the official sampling settings (VQ: the
    README's `generate` call; KL: the infer config and README)."""

    kind: Literal["vq", "kl"]
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    tokenizer: str
    num_inference_steps: int
    guidance_scale: float
    guidance_schedule: MaskGenVQGuidanceSchedule | MaskGenKLGuidanceSchedule
    temperature: float
    head_width: int | None = None  # KL: the diffusion head MLP (8 blocks)
    num_diffusion_steps: int = 100  # KL: respaced reverse-diffusion steps
    aesthetic_score: float = DEFAULT_AESTHETIC_SCORE

    def transformer_kwargs(self) -> dict:
        tokenizer = TATITOK_PRESETS[self.tokenizer].config_kwargs()
        kwargs = dict(
            num_latent_tokens=tokenizer["num_latent_tokens"],
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            num_attention_heads=self.num_attention_heads,
        )
        if self.kind == "vq":
            return dict(kwargs, codebook_size=tokenizer["codebook_size"])
        return dict(kwargs, token_channels=tokenizer["token_size"], head_width=self.head_width, head_num_blocks=8)

    def scheduler_kwargs(self) -> dict:
        kwargs = dict(
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            guidance_schedule=self.guidance_schedule,
            temperature=self.temperature,
        )
        return kwargs if self.kind == "vq" else dict(kwargs, num_diffusion_steps=self.num_diffusion_steps)


MASKGEN_PRESETS: dict[str, MaskGenPreset] = {
    "maskgen_vq_l": MaskGenPreset("vq", 1024, 16, 16, "tatitok_bl128_vq", 16, 12.0, "cosine", 2.0),
    "maskgen_vq_xl": MaskGenPreset("vq", 1280, 20, 16, "tatitok_bl128_vq", 16, 12.0, "cosine", 2.0),
    "maskgen_kl_l": MaskGenPreset("kl", 1024, 16, 16, "tatitok_bl32_vae", 32, 3.0, "linear", 1.0, head_width=1024),
    "maskgen_kl_xl": MaskGenPreset("kl", 1280, 20, 16, "tatitok_bl32_vae", 32, 3.0, "linear", 1.0, head_width=1280),
}


def _tatitok(name, title, rfid, inception):
    return OfficialRelease(
        name,
        "tatitok",
        f"turkeyju/tokenizer_{name}",
        title,
        {"rFID": rfid, "IS": inception},
        f"{name}.bin",
        bin_repo=FAMILY_BIN_REPO,
        results_measure="ImageNet-1k val, 256x256 (reconstruction)",
        results_readme="README_MaskGen.md",
    )


def _maskgen(name, title, fid, geneval):
    preset = MASKGEN_PRESETS[name]
    return OfficialRelease(
        name,
        f"maskgen-{preset.kind}",
        f"turkeyju/generator_{name}",
        title,
        {"MJHQ-30K FID": fid, "GenEval": geneval},
        f"{name}.bin",
        tokenizer=preset.tokenizer,
        bin_repo=FAMILY_BIN_REPO,
        results_measure="MJHQ-30K FID and GenEval overall score",
        results_readme="README_MaskGen.md",
    )


# ImageNet 256x256 rFID / IS of the tokenizers; MJHQ-30K FID and GenEval (overall) of the generators.
_FAMILY_RELEASES = [
    _tatitok("tatitok_bl32_vq", "TA-TiTok-BL-32 VQ", 3.95, 219.6),
    _tatitok("tatitok_bl64_vq", "TA-TiTok-BL-64 VQ", 2.43, 218.8),
    _tatitok("tatitok_bl128_vq", "TA-TiTok-BL-128 VQ", 1.53, 222.8),
    _tatitok("tatitok_bl32_vae", "TA-TiTok-BL-32 VAE", 1.53, 222.0),
    _tatitok("tatitok_bl64_vae", "TA-TiTok-BL-64 VAE", 1.47, 220.7),
    _tatitok("tatitok_sl128_vae", "TA-TiTok-SL-128 VAE", 0.90, 227.7),
    _maskgen("maskgen_vq_l", "MaskGen-L (discrete tokens)", 7.74, 0.53),
    _maskgen("maskgen_vq_xl", "MaskGen-XL (discrete tokens)", 7.51, 0.57),
    _maskgen("maskgen_kl_l", "MaskGen-L (continuous tokens)", 7.24, 0.52),
    _maskgen("maskgen_kl_xl", "MaskGen-XL (continuous tokens)", 6.53, 0.55),
]


# --------------------------------------------------------------------------------------------------
# RAR (README_RAR.md of the official repository)
# --------------------------------------------------------------------------------------------------

RAR_PAPER = "arxiv:2411.00776"


@dataclass(frozen=True)
class RARPreset:
    """A released RAR generator: its transformer size (all: 16 heads, 256 tokens of the MaskGIT-VQGAN, 1024 codes,
    1000 classes) and its official sampling settings (README_RAR.md's gFID commands)."""

    hidden_size: int
    num_hidden_layers: int
    intermediate_size: int
    temperature: float
    guidance_scale: float
    guidance_scale_pow: float
    num_attention_heads: int = 16

    def config_kwargs(self) -> dict:
        return dict(
            codebook_size=MASKGIT_VQGAN["codebook_size"],
            num_latent_tokens=256,
            num_classes=1000,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
        )

    def scheduler_kwargs(self) -> dict:
        return dict(
            guidance_scale=self.guidance_scale, guidance_scale_pow=self.guidance_scale_pow, temperature=self.temperature
        )


RAR_PRESETS: dict[str, RARPreset] = {
    "rar_b": RARPreset(768, 24, 3072, 1.0, 16.0, 2.75),
    "rar_l": RARPreset(1024, 24, 4096, 1.02, 15.5, 2.5),
    "rar_xl": RARPreset(1280, 32, 5120, 1.02, 6.9, 1.5),
    "rar_xxl": RARPreset(1408, 40, 6144, 1.02, 8.0, 1.2),
}


def rar_preset(name: str) -> RARPreset:
    return _choose(RAR_PRESETS, name, "RAR preset")


def _rar(name, title, gfid, parameters):
    return OfficialRelease(
        name,
        "rar",
        RAR_REPO,
        title,
        {"gFID": gfid, "parameters": parameters},
        f"{name}.bin",
        tokenizer="maskgit_vqgan",
        bin_repo=RAR_REPO,
        results_measure="gFID on 50k samples, ImageNet 256x256 (ADM suite)",
        results_readme="README_RAR.md",
    )


_RAR_RELEASES = [
    _rar("rar_b", "RAR-B", 1.95, "261M"),
    _rar("rar_l", "RAR-L", 1.70, "462M"),
    _rar("rar_xl", "RAR-XL", 1.50, "955M"),
    _rar("rar_xxl", "RAR-XXL", 1.48, "1.5B"),
]

# --------------------------------------------------------------------------------------------------
# One-D-Piece (turingmotors/One-D-Piece, Apache-2.0): variable-length TiTok tokenizers and their MaskGIT generators
# --------------------------------------------------------------------------------------------------

ONEDPIECE_PAPER = "arxiv:2501.10064"
ONEDPIECE_REPO = "turingmotors/One-D-Piece"
# Each Hub repo holds one release as a bare state dict (the EMA weights the training code saves), no config.
ONEDPIECE_BIN = "pytorch_model.bin"


def _onedpiece(size: str, rfid: float, gfid: float) -> list[OfficialRelease]:
    name, letter = f"onedpiece_{size.lower()}256", size.upper()
    common = dict(bin_filename=ONEDPIECE_BIN, official_repo=ONEDPIECE_REPO, paper=ONEDPIECE_PAPER)
    tokenizer_repo, generator_repo = (
        f"turing-motors/One-D-Piece-{letter}-256",
        f"turing-motors/MaskGIT_One-D-Piece-{letter}-256",
    )
    return [
        OfficialRelease(
            name,
            "tokenizer",
            tokenizer_repo,
            f"One-D-Piece-{letter}-256 (VQ, two-stage, decodes any prefix of its 256 tokens)",
            {"rFID": rfid},
            bin_repo=tokenizer_repo,
            results_measure="rFID on ImageNet-1k val, 256x256, all 256 tokens",
            **common,
        ),
        OfficialRelease(
            f"{name}_generator",
            "generator",
            generator_repo,
            f"MaskGIT generator for One-D-Piece-{letter}-256",
            {"gFID": gfid, "sampling steps": GENERATOR_PRESETS[name].sampling.num_inference_steps},
            tokenizer=name,
            bin_repo=generator_repo,
            results_measure="gFID on ImageNet 256x256",
            **common,
        ),
    ]


_ONEDPIECE_RELEASES = _onedpiece("S", 1.48, 2.67) + _onedpiece("B", 1.11, 2.70) + _onedpiece("L", 1.08, 2.35)

# Every released checkpoint, by release name.
RELEASES: dict[str, OfficialRelease] = {
    release.name: release for release in _TITOK_RELEASES + _FAMILY_RELEASES + _RAR_RELEASES + _ONEDPIECE_RELEASES
}


def maskgen_preset(name: str) -> MaskGenPreset:
    return _choose(MASKGEN_PRESETS, name, "MaskGen preset")


def release_for_repo(repo_id: str) -> OfficialRelease | None:
    """The release published at `repo_id`, if it is one of the official single-release repos (the `BIN_REPOS`
    hold several: name the release)."""
    if repo_id in BIN_REPOS:
        return None
    return next((r for r in RELEASES.values() if r.repo_id == repo_id), None)


def get_release(name: str) -> OfficialRelease:
    """A release by name (`RELEASES`)."""
    return _choose(RELEASES, name, "official release")


__all__ = [
    "BIN_REPOS",
    "FAMILY_BIN_REPO",
    "FUN_RESEARCH_REPO",
    "MASKGEN_PAPER",
    "MASKGEN_PRESETS",
    "MaskGenPreset",
    "GENERATOR_ARCHITECTURES",
    "GENERATOR_PRESETS",
    "GeneratorPreset",
    "MASKGIT_VQGAN",
    "ONEDPIECE_PAPER",
    "ONEDPIECE_REPO",
    "OfficialRelease",
    "PAPER",
    "PAPER_RESULTS_512",
    "RAR_PAPER",
    "RAR_PRESETS",
    "RAR_REPO",
    "RARPreset",
    "RELEASES",
    "SAMPLING_SETTINGS",
    "SamplingPreset",
    "TATITOK_PRESETS",
    "TOKENIZER_FAMILIES",
    "TOKENIZER_PRESETS",
    "TokenizerPreset",
    "VIT_SIZES",
    "generator_preset",
    "maskgen_preset",
    "rar_preset",
    "get_release",
    "release_for_repo",
    "tatitok_preset",
    "tokenizer_preset",
]
