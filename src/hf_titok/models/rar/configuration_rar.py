"""Configuration of RAR, the class-conditional autoregressive generator of the official repository."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ...releases import RAR_PRESETS, rar_preset
from ...utils.input_checks import check_config_values

# The defaults of a config built without arguments: RAR-B (the release table's).
_DEFAULTS = RAR_PRESETS["rar_b"].config_kwargs()


@strict
class RARConfig(PreTrainedConfig):
    r"""
    Configuration of [`RARTransformer`]: RAR ("Randomized Autoregressive Visual Generation", Yu et al., 2024), a
    decoder-only transformer that generates the `num_latent_tokens` ids of an image tokenizer one by one,
    conditioned on a class through adaLN modulation. Defaults are RAR-B; [`RARConfig.from_preset`] gives the four
    released sizes. How it is sampled (guidance, temperature) is the sampler's configuration, [`RARScheduler`].

    The sequence is `[start token, class token, image tokens in generation order]`. Each position gets a learned
    position embedding of its image position, plus a *target-aware* embedding of the image position the next token
    will take (which is what lets RAR train in random orders and sample in raster order), and every block is
    modulated by the class embedding plus a learned embedding of the sequence position.

    Vocabulary (one embedding table, as released): image ids `0 .. K-1`, one unused id `K` (the released layout
    keeps MaskGIT's mask id), class ids `K+1 .. K+C`, and the null class `K+C+1` of classifier-free guidance. A class
    label equal to `num_classes` selects the null class.

    Args:
        codebook_size (`int`, *optional*, defaults to 1024): the tokenizer's codebook size K (the MaskGIT-VQGAN's for
            the releases).
        num_latent_tokens (`int`, *optional*, defaults to 256): tokens per image N (the VQGAN's 16 x 16 codes for the
            releases; a TiTok tokenizer's token count for RAR over 1-D tokens).
        num_classes (`int`, *optional*, defaults to 1000): number of classes C.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size (`int`, *optional*):
            Transformer width, depth, heads and MLP width. Defaults: 768, 24, 16, 3072 (RAR-B).
        hidden_dropout_prob, attention_dropout_prob (`float`, *optional*, defaults to 0.1): dropout in training.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6): epsilon of every LayerNorm (the blocks', the per-head
            query/key norms' and the final one).
        class_dropout_prob (`float`, *optional*, defaults to 0.1):
            Probability of replacing the class by the null class in training (for classifier-free guidance).
        initializer_range (`float`, *optional*, defaults to 0.02): std of the weight initialisation.
    """

    model_type = "rar"

    codebook_size: int = _DEFAULTS["codebook_size"]
    num_latent_tokens: int = _DEFAULTS["num_latent_tokens"]
    num_classes: int = _DEFAULTS["num_classes"]
    hidden_size: int = _DEFAULTS["hidden_size"]
    num_hidden_layers: int = _DEFAULTS["num_hidden_layers"]
    num_attention_heads: int = _DEFAULTS["num_attention_heads"]
    intermediate_size: int = _DEFAULTS["intermediate_size"]
    hidden_dropout_prob: float | int = 0.1
    attention_dropout_prob: float | int = 0.1
    layer_norm_eps: float = 1e-6
    class_dropout_prob: float | int = 0.1
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False

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
            probabilities=("hidden_dropout_prob", "attention_dropout_prob", "class_dropout_prob"),
        )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}"
            )
        if self.tie_word_embeddings:
            raise ValueError("RARTransformer cannot tie its K-wide output head to its input embeddings")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

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

    @property
    def max_sequence_length(self) -> int:
        """Positions of a whole sequence: the start token, the class token and the image tokens (what a static
        cache holds)."""
        return self.num_latent_tokens + 2

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "RARConfig":
        """Config of a released RAR (`rar_b`, `rar_l`, `rar_xl`, `rar_xxl`), with optional overrides."""
        return cls(**{**rar_preset(name).config_kwargs(), **overrides})

    def check_tokenizer(self, tokenizer_config) -> None:
        """Raise unless a tokenizer with `tokenizer_config` decodes the ids this generator makes: a VQ tokenizer with
        at least `codebook_size` entries and `num_latent_tokens` tokens per image (a MaskGIT-VQGAN's tokens are its
        grid of codes, a TiTok's its latent tokens)."""
        if getattr(tokenizer_config, "quantize_mode", "vq") != "vq":
            raise ValueError("RAR generates the discrete ids of a VQ tokenizer, not a VAE's latents")
        num_tokens = tokenizer_config.num_latent_tokens
        if tokenizer_config.codebook_size < self.codebook_size:
            raise ValueError(
                f"the tokenizer has {tokenizer_config.codebook_size} codebook entries, fewer than the "
                f"{self.codebook_size} ids the generator predicts"
            )
        if num_tokens != self.num_latent_tokens:
            raise ValueError(
                f"the tokenizer has {num_tokens} tokens per image and the generator makes {self.num_latent_tokens}"
            )


__all__ = ["RARConfig"]
