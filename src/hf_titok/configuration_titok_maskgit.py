"""Configuration of the class-conditional MaskGIT generator over TiTok tokens."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

GUIDANCE_SCHEDULES = ("constant", "linear", "power-cosine")

_BERT = dict(architecture="bert", hidden_size=768, num_hidden_layers=24, num_attention_heads=16,
             intermediate_size=3072, layer_norm_eps=1e-12)
_UVIT = dict(architecture="uvit", hidden_size=1024, num_hidden_layers=20, num_attention_heads=16,
             intermediate_size=4096, layer_norm_eps=1e-5)

# The three released generators (configs/infer/TiTok/*.yaml), with the sampling settings of the official
# gFID protocol (sample_imagenet_titok.py: the config's steps/guidance/temperature + softmax annealing).
TITOK_MASKGIT_PRESETS: dict[str, dict] = {
    "titok_l32": dict(_BERT, codebook_size=4096, num_latent_tokens=32, num_inference_steps=8, guidance_scale=4.5,
                      guidance_schedule="linear", temperature=9.5),
    "titok_b64": dict(_BERT, codebook_size=4096, num_latent_tokens=64, num_inference_steps=8, guidance_scale=3.0,
                      guidance_schedule="linear", temperature=11.0),
    "titok_s128": dict(_UVIT, codebook_size=4096, num_latent_tokens=128, num_inference_steps=64, guidance_scale=6.9,
                       guidance_schedule="power-cosine", temperature=2.8),
}


@strict
class TiTokMaskGITConfig(PreTrainedConfig):
    r"""
    Configuration of [`TiTokMaskGIT`], the bidirectional transformer of MaskGIT over the `num_latent_tokens`
    ids of a TiTok tokenizer, class-conditional through a class token prepended to the sequence. Defaults are
    the generator of TiTok-L-32; [`TiTokMaskGITConfig.from_preset`] gives the three released ones.

    Vocabulary (one embedding table, as released): image ids `0 .. K-1`, the mask id `K`, class ids
    `K+1 .. K+C`, and the null class `K+C+1` used for unconditional rows (classifier-free guidance). A class
    label equal to `num_classes` also selects the null class.

    Args:
        architecture (`str`, *optional*, defaults to `"bert"`):
            `"bert"`: post-LayerNorm BERT encoder with learned absolute positions (L-32 and B-64 generators).
            `"uvit"`: U-ViT with pre-norm blocks and long skip connections between the first and last halves
            of the blocks, attention without q/k/v bias (S-128 generator).
        codebook_size (`int`, *optional*, defaults to 4096): the tokenizer's codebook size K.
        num_latent_tokens (`int`, *optional*, defaults to 32): tokens per image N.
        num_classes (`int`, *optional*, defaults to 1000): number of classes C.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size (`int`, *optional*):
            Transformer width, depth (for U-ViT: `num_hidden_layers // 2` blocks on each side of one middle
            block), heads and MLP size. Defaults: 768, 24, 16, 3072.
        hidden_dropout_prob, attention_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout of the BERT architecture in training (the U-ViT blocks have none, as released).
        layer_norm_eps (`float`, *optional*, defaults to 1e-12): LayerNorm epsilon (BERT 1e-12, U-ViT 1e-5).
        class_dropout_prob (`float`, *optional*, defaults to 0.1):
            Probability of replacing the class by the null class in training (for classifier-free guidance).
        label_smoothing (`float`, *optional*, defaults to 0.1): label smoothing of the training loss.
        unmasked_token_loss_weight (`float`, *optional*, defaults to 0.1):
            Weight of the loss at positions that were not masked (masked positions weigh 1).
        initializer_range (`float`, *optional*, defaults to 0.02): std of the weight initialisation.
        num_inference_steps, guidance_scale, guidance_schedule, guidance_scale_pow, temperature,
        softmax_temperature_annealing:
            Default sampling settings used by [`TiTokPipeline`] (the official gFID protocol of the released
            generator): steps, classifier-free guidance scale and its schedule (`"constant"`, `"linear"`,
            `"power-cosine"` with power `guidance_scale_pow`), the Gumbel-noise temperature annealed linearly
            to 0, and whether logits are divided by `0.5 + 0.8 * (1 - t)`.
    """

    model_type = "titok_maskgit"

    architecture: Literal["bert", "uvit"] = "bert"
    codebook_size: int = 4096
    num_latent_tokens: int = 32
    num_classes: int = 1000
    hidden_size: int = 768
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 3072
    hidden_dropout_prob: float | int = 0.1
    attention_dropout_prob: float | int = 0.1
    layer_norm_eps: float = 1e-12
    class_dropout_prob: float | int = 0.1
    label_smoothing: float | int = 0.1
    unmasked_token_loss_weight: float | int = 0.1
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False
    num_inference_steps: int = 8
    guidance_scale: float | int = 4.5
    guidance_schedule: Literal["constant", "linear", "power-cosine"] = "linear"
    guidance_scale_pow: float | int = 3.0
    temperature: float | int = 9.5
    softmax_temperature_annealing: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.architecture not in ("bert", "uvit"):
            raise ValueError(f"architecture must be 'bert' or 'uvit', got {self.architecture!r}")
        if self.guidance_schedule not in GUIDANCE_SCHEDULES:
            raise ValueError(f"guidance_schedule must be one of {GUIDANCE_SCHEDULES}, got {self.guidance_schedule!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}"
            )
        if self.architecture == "uvit" and self.num_hidden_layers % 2:
            raise ValueError(f"a U-ViT needs an even num_hidden_layers, got {self.num_hidden_layers}")
        if self.tie_word_embeddings:
            # The output head predicts K image ids only; tying it to the K+C+2 embeddings would widen it.
            raise ValueError("TiTokMaskGIT cannot tie its K-wide output head to its input embeddings")

    @property
    def mask_token_id(self) -> int:
        return self.codebook_size

    @property
    def class_token_offset(self) -> int:
        """Id of class 0; class c has id `class_token_offset + c`."""
        return self.codebook_size + 1

    @property
    def null_class_id(self) -> int:
        return self.codebook_size + self.num_classes + 1

    @property
    def vocab_size(self) -> int:
        return self.codebook_size + self.num_classes + 2

    @classmethod
    def from_preset(cls, name: str, **overrides) -> TiTokMaskGITConfig:
        """Config of a released generator (`titok_l32`, `titok_b64`, `titok_s128`), with optional overrides."""
        if name not in TITOK_MASKGIT_PRESETS:
            raise ValueError(f"unknown TiTok generator preset {name!r}; available: {', '.join(TITOK_MASKGIT_PRESETS)}")
        return cls(**{**TITOK_MASKGIT_PRESETS[name], **overrides})


__all__ = ["TiTokMaskGITConfig", "TITOK_MASKGIT_PRESETS", "GUIDANCE_SCHEDULES"]
