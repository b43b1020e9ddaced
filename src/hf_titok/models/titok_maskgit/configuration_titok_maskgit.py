"""Configuration of the class-conditional MaskGIT generator over TiTok tokens."""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ...releases import GENERATOR_PRESETS, generator_preset
from ...utils.input_checks import check_config_values
from ...utils.legacy import without_legacy_generator_keys

# The released generators' config arguments, derived from the one table in `hf_titok.releases` (their sampling
# settings are the scheduler's: `TiTokMaskGITScheduler.from_preset`).
TITOK_MASKGIT_PRESETS: dict[str, dict] = {name: preset.config_kwargs() for name, preset in GENERATOR_PRESETS.items()}


@strict
class TiTokMaskGITConfig(PreTrainedConfig):
    r"""
    Configuration of [`TiTokMaskGIT`], the bidirectional transformer of MaskGIT over the `num_latent_tokens`
    ids of a TiTok tokenizer, class-conditional through a class token prepended to the sequence. Defaults are
    the generator of TiTok-L-32; [`TiTokMaskGITConfig.from_preset`] gives the three released ones. How it is
    sampled (steps, guidance, temperature) is the sampler's configuration, [`TiTokMaskGITScheduler`].

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

    @classmethod
    def get_config_dict(cls, *args, **kwargs):
        # Files written by hf_titok 0.1 hold the sampler settings, which belong to the pipeline's scheduler
        # (hf_titok.utils.legacy): they are taken out as the file is read.
        config, unused = super().get_config_dict(*args, **kwargs)
        return without_legacy_generator_keys(config), unused

    def validate_architecture(self):
        """Part of `@strict` validation: sizes that the modules could not be built with."""
        super().validate_architecture()
        check_config_values(
            self,
            positive_ints=(
                "codebook_size",
                "num_latent_tokens",
                "num_classes",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
            ),
            positive_floats=("layer_norm_eps", "initializer_range"),
            probabilities=("hidden_dropout_prob", "attention_dropout_prob", "class_dropout_prob", "label_smoothing"),
            non_negative_floats=("unmasked_token_loss_weight",),
        )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}"
            )
        if self.architecture == "uvit" and self.num_hidden_layers % 2:
            raise ValueError(f"a U-ViT needs an even num_hidden_layers, got {self.num_hidden_layers}")
        if self.tie_word_embeddings:
            # The output head predicts K image ids only; tying it to the K+C+2 embeddings would widen it.
            raise ValueError("TiTokMaskGIT cannot tie its K-wide output head to its input embeddings")

    def check_tokenizer(self, tokenizer_config) -> None:
        """Raise unless a tokenizer with `tokenizer_config` produces the ids this generator models: VQ, with the
        same codebook size and token count."""
        if tokenizer_config.quantize_mode != "vq":
            raise ValueError("a MaskGIT generator models the discrete ids of a VQ tokenizer, not a VAE's latents")
        for field in ("codebook_size", "num_latent_tokens"):
            if getattr(tokenizer_config, field) != getattr(self, field):
                raise ValueError(
                    f"the tokenizer and the generator disagree on {field}: {getattr(tokenizer_config, field)} vs "
                    f"{getattr(self, field)}"
                )

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
    def from_preset(cls, name: str, **overrides) -> "TiTokMaskGITConfig":
        """Config of a released generator (`titok_l32`, `titok_b64`, `titok_s128`) or of the paper's unreleased
        512x512 ones (`titok_l64_512`, `titok_b128_512`), with optional overrides."""
        return cls(**{**generator_preset(name).config_kwargs(), **overrides})


__all__ = ["TiTokMaskGITConfig", "TITOK_MASKGIT_PRESETS"]
