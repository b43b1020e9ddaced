"""Configuration of TA-TiTok, the text-aware 1-D tokenizer of MaskGen ("Democratizing Text-to-Image Masked
Generative Models with Compact Text-Aware One-Dimensional Tokens", Kim et al., 2025)."""

from typing import Literal

from huggingface_hub.dataclasses import strict

from ...releases import tatitok_preset
from ...utils.input_checks import check_config_values
from ..titok.configuration_titok import TiTokConfig


@strict
class TATiTokConfig(TiTokConfig):
    r"""
    Configuration of [`TATiTokTokenizer`]: a single-stage [`TiTokConfig`] (pixel head, transposed encoder layout)
    whose decoder also attends to text. The decoder's sequence is `[class, g*g mask tokens, N latent tokens,
    text tokens]`: the text encoder's `[B, text_max_length, text_hidden_size]` output (CLIP ViT-L/14-336's
    `last_hidden_state`: all 12 blocks and the final LayerNorm, every position including padding) is projected
    to the decoder width and given its own learned position table; attention is bidirectional over all of it.
    The encoder is TiTok's and sees no text. The defaults are the released TA-TiTok-BL-32 VQ.

    Args:
        text_hidden_size (`int`, *optional*, defaults to 768):
            Width of the text encoder's hidden states (CLIP ViT-L/14: 768).
        text_max_length (`int`, *optional*, defaults to 77):
            Number of text positions (CLIP's context length).
        (the other arguments: see [`TiTokConfig`]; `decoder_head` is `"pixels"` and `legacy_encoder_layout` is
        `False` for every TA-TiTok.)

    Example:

    ```python
    >>> from hf_titok import TATiTokConfig, TATiTokTokenizer
    >>> model = TATiTokTokenizer(TATiTokConfig.from_preset("tatitok_bl32_vae"))  # random weights
    ```
    """

    model_type = "tatitok"

    encoder_hidden_size: int = 768
    encoder_num_layers: int = 12
    encoder_num_heads: int = 12
    token_size: int = 64
    codebook_size: int = 8192
    use_l2_norm: bool = False
    decoder_head: Literal["proxy_codes", "pixels"] = "pixels"
    legacy_encoder_layout: bool = False
    text_hidden_size: int = 768
    text_max_length: int = 77

    def validate_architecture(self):
        """Part of `@strict` validation: sizes that the modules could not be built with."""
        super().validate_architecture()
        check_config_values(self, positive_ints=("text_hidden_size", "text_max_length"))
        if self.decoder_head != "pixels" or self.legacy_encoder_layout:
            raise ValueError(
                "TA-TiTok is a single-stage tokenizer: decoder_head='pixels' and legacy_encoder_layout=False"
            )

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "TATiTokConfig":
        """Config of a released TA-TiTok (`tatitok_bl32_vq`, `tatitok_bl64_vq`, `tatitok_bl128_vq`,
        `tatitok_bl32_vae`, `tatitok_bl64_vae`, `tatitok_sl128_vae`), with optional field overrides."""
        return cls(**{**tatitok_preset(name).config_kwargs(), **overrides})


__all__ = ["TATiTokConfig"]
