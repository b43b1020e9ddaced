"""Configuration of the TiTok 1-D image tokenizer, with the presets of every released checkpoint."""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ...releases import TOKENIZER_PRESETS, tokenizer_preset
from ...utils.input_checks import check_config_values
from ..maskgit_vqgan.configuration_maskgit_vqgan import MaskGITVQGANConfig

# The released tokenizers' config arguments, derived from the one table in `hf_titok.releases`.
TITOK_PRESETS: dict[str, dict] = {name: preset.config_kwargs() for name, preset in TOKENIZER_PRESETS.items()}


@strict
class TiTokConfig(PreTrainedConfig):
    r"""
    Configuration of [`TiTokTokenizer`], the 1-D image tokenizer of "An Image is Worth 32 Tokens for
    Reconstruction and Generation" (Yu et al., NeurIPS 2024). The defaults are TiTok-L-32; the released
    tokenizers are available with [`TiTokConfig.from_preset`].

    The encoder is a ViT over `(image_size / encoder_patch_size)**2` patches followed by
    `num_latent_tokens` learned latent tokens; only the latent outputs are kept, projected to
    `token_size` channels and quantized (VQ) or kept as a Gaussian posterior (VAE). The decoder is a ViT
    over one mask token per decoder patch followed by the tokens; its head either predicts pixels or the
    proxy codes of a MaskGIT-VQGAN whose convolutional decoder renders them.

    Args:
        image_size (`int`, *optional*, defaults to 256):
            Side of the square input image.
        num_channels (`int`, *optional*, defaults to 3):
            Image channels (RGB).
        encoder_patch_size (`int`, *optional*, defaults to 16):
            Patch side of the encoder's patch embedding.
        decoder_patch_size (`int`, *optional*, defaults to 16):
            Patch side of the decoder's mask-token grid (and of its pixel head).
        encoder_hidden_size, encoder_num_layers, encoder_num_heads (`int`, *optional*, defaults to 1024, 24, 16):
            Width, depth and attention heads of the encoder ViT ("large").
        decoder_hidden_size, decoder_num_layers, decoder_num_heads (`int`, *optional*, defaults to 1024, 24, 16):
            Width, depth and attention heads of the decoder ViT ("large").
        mlp_ratio (`float`, *optional*, defaults to 4.0):
            Hidden size of the MLPs relative to the width.
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the LayerNorms.
        num_latent_tokens (`int`, *optional*, defaults to 32):
            Number of 1-D tokens an image is encoded into.
        token_size (`int`, *optional*, defaults to 12):
            Channels per token (the codebook vector size for VQ, the latent channels for VAE; the VAE encoder
            emits twice as many for mean and log-variance).
        quantize_mode (`str`, *optional*, defaults to `"vq"`):
            `"vq"` (discrete ids from a codebook) or `"vae"` (continuous Gaussian latents).
        codebook_size (`int`, *optional*, defaults to 4096):
            Number of codebook entries (VQ only).
        use_l2_norm (`bool`, *optional*, defaults to `True`):
            L2-normalise the latents and the codebook before the nearest-neighbour search (VQ only).
        commitment_cost (`float`, *optional*, defaults to 0.25):
            Weight of the commitment term of the quantizer loss (VQ only).
        kl_weight (`float`, *optional*, defaults to 1e-6):
            Weight of the KL term in the `loss` that `forward` returns (VAE only; the official single-stage
            recipe's value).
        decoder_head (`str`, *optional*, defaults to `"proxy_codes"`):
            `"proxy_codes"`: the two-stage recipe, whose decoder predicts logits over the MaskGIT-VQGAN
            codebook per decoder patch; the softmax mixture of the VQGAN codebook is rendered by the VQGAN
            decoder. `"pixels"`: the single-stage recipe, whose decoder predicts RGB patches directly.
        legacy_encoder_layout (`bool`, *optional*, defaults to `True`):
            Quirk of the released two-stage checkpoints (TiTok-L-32/B-64/S-128): the encoder's latent outputs
            `[B, N, W]` are *reshaped* (not transposed) to `[B, W, N]` before the output projection, so each
            projected "token" mixes channels of several tokens. The weights were trained with this layout, so
            it must be kept to reproduce them; new models should use `False`.
        include_pixel_decoder (`bool`, *optional*):
            With `decoder_head="proxy_codes"`: whether the MaskGIT-VQGAN codebook and decoder are part of this
            model (the released two-stage tokenizers and stage-2 training; the default). `False` is the stage-1
            layout, which only predicts proxy-code logits (the teacher VQGAN decodes them). A pixel head has no
            pixel decoder: `True` with `decoder_head="pixels"` is an error.
        pixel_decoder_config (`MaskGITVQGANConfig` or `dict`, *optional*):
            The MaskGIT-VQGAN whose codes the proxy-code head predicts; defaults to the released ImageNet f16
            VQGAN at `image_size`. Only for `decoder_head="proxy_codes"` (an error with a pixel head).
        prefix_decoding (`bool`, *optional*, defaults to `False`):
            Whether `decode` takes a prefix of an image's tokens - its first k of `num_latent_tokens`, 1 <= k <= N -
            and decodes the image from them alone (the decoder gets the k tokens with the first k rows of its latent
            position table; nothing is padded). Only for models trained for it, whose first tokens carry the most:
            One-D-Piece (the official `strict_length_assertion: False`) and models trained here with Tail Token
            Drop. A model trained on full sequences decodes noise from a prefix, so the released TiTok tokenizers
            leave it off and refuse one.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated-normal initialisation of linear layers and embeddings.

    Example:

    ```python
    >>> from hf_titok import TiTokConfig, TiTokTokenizer
    >>> config = TiTokConfig.from_preset("titok_s128")
    >>> model = TiTokTokenizer(config)  # random weights
    ```
    """

    model_type = "titok"
    # transformers' common property names (ViT-style), for code and test suites that read them from any config:
    # they are the encoder's.
    attribute_map = {
        "hidden_size": "encoder_hidden_size",
        "num_hidden_layers": "encoder_num_layers",
        "num_attention_heads": "encoder_num_heads",
    }
    sub_configs_defaults = {"pixel_decoder_config": SubConfigSpec(MaskGITVQGANConfig, optional=True)}

    image_size: int = 256
    num_channels: int = 3
    encoder_patch_size: int = 16
    decoder_patch_size: int = 16
    encoder_hidden_size: int = 1024
    encoder_num_layers: int = 24
    encoder_num_heads: int = 16
    decoder_hidden_size: int = 1024
    decoder_num_layers: int = 24
    decoder_num_heads: int = 16
    mlp_ratio: float | int = 4.0
    layer_norm_eps: float = 1e-5
    num_latent_tokens: int = 32
    token_size: int = 12
    quantize_mode: Literal["vq", "vae"] = "vq"
    codebook_size: int = 4096
    use_l2_norm: bool = True
    commitment_cost: float | int = 0.25
    kl_weight: float | int = 1e-6
    decoder_head: Literal["proxy_codes", "pixels"] = "proxy_codes"
    legacy_encoder_layout: bool = True
    include_pixel_decoder: bool | None = None
    pixel_decoder_config: dict | PreTrainedConfig | None = None
    prefix_decoding: bool = False
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        # Contradictions are errors, not silently overwritten: a pixel head has no pixel decoder.
        if self.decoder_head == "pixels":
            if self.include_pixel_decoder:
                raise ValueError(
                    "include_pixel_decoder=True needs decoder_head='proxy_codes': a pixel head decodes pixels itself"
                )
            if self.pixel_decoder_config is not None:
                raise ValueError(
                    "pixel_decoder_config is the MaskGIT-VQGAN of decoder_head='proxy_codes'; this config has a "
                    "pixel head"
                )
            self.include_pixel_decoder = False
        elif self.decoder_head == "proxy_codes":
            if self.include_pixel_decoder is None:
                self.include_pixel_decoder = True
            if self.pixel_decoder_config is None:
                self.pixel_decoder_config = {"image_size": self.image_size}
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Part of `@strict` validation: sizes that the modules could not be built with."""
        super().validate_architecture()
        check_config_values(
            self,
            positive_ints=(
                "image_size",
                "num_channels",
                "encoder_patch_size",
                "decoder_patch_size",
                "encoder_hidden_size",
                "encoder_num_layers",
                "encoder_num_heads",
                "decoder_hidden_size",
                "decoder_num_layers",
                "decoder_num_heads",
                "num_latent_tokens",
                "token_size",
                "codebook_size",
            ),
            positive_floats=("mlp_ratio", "layer_norm_eps", "initializer_range"),
            non_negative_floats=("commitment_cost", "kl_weight"),
        )
        for field in ("quantize_mode", "decoder_head"):
            allowed = {"quantize_mode": ("vq", "vae"), "decoder_head": ("proxy_codes", "pixels")}[field]
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")
        for name in ("encoder", "decoder"):
            width, heads = getattr(self, f"{name}_hidden_size"), getattr(self, f"{name}_num_heads")
            if width % heads:
                raise ValueError(f"{name}_hidden_size={width} is not divisible by {name}_num_heads={heads}")
            patch = getattr(self, f"{name}_patch_size")
            if self.image_size % patch:
                raise ValueError(f"image_size={self.image_size} is not divisible by {name}_patch_size={patch}")
        if self.decoder_head == "proxy_codes":
            pixel = self.pixel_decoder_config
            if pixel.image_size != self.image_size:
                raise ValueError(
                    f"pixel_decoder_config.image_size={pixel.image_size} differs from image_size={self.image_size}"
                )
            if pixel.grid_size != self.decoder_grid_size:
                raise ValueError(
                    f"the proxy-code head predicts one code per decoder patch ({self.decoder_grid_size}x"
                    f"{self.decoder_grid_size}), but the MaskGIT-VQGAN grid is {pixel.grid_size}x{pixel.grid_size}; "
                    f"set decoder_patch_size={pixel.downsample_factor}"
                )

    @property
    def encoder_grid_size(self) -> int:
        return self.image_size // self.encoder_patch_size

    @property
    def decoder_grid_size(self) -> int:
        return self.image_size // self.decoder_patch_size

    @property
    def num_proxy_codes(self) -> int | None:
        """Size of the MaskGIT-VQGAN codebook the proxy-code head predicts over (`None` for pixel heads)."""
        return self.pixel_decoder_config.codebook_size if self.pixel_decoder_config is not None else None

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "TiTokConfig":
        """Config of a released tokenizer (`titok_l32`, `titok_b64`, `titok_s128`, `titok_bl64_vq8k`,
        `titok_bl128_vq8k`, `titok_sl256_vq8k`, `titok_ll32_vae_c16`, `titok_bl64_vae_c16`,
        `titok_bl128_vae_c16`) or of the paper's unreleased 512x512 ones (`titok_l64_512`, `titok_b128_512`), with
        optional field overrides."""
        return cls(**{**tokenizer_preset(name).config_kwargs(), **overrides})


__all__ = ["TiTokConfig", "TITOK_PRESETS"]
