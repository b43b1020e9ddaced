"""TA-TiTok: the TiTok tokenizer whose decoder attends to text (MaskGen's tokenizer, bytedance/1d-tokenizer
modeling/tatitok.py). Everything but the decoder's text input is TiTok's (`modeling_titok.py`)."""

from __future__ import annotations

import torch
from diffusers.models.autoencoders.vae import DecoderOutput
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn
from transformers import PreTrainedModel  # noqa: F401 - diffusers looks a component's base class up in its module
from transformers import initialization as init

from ...utils.input_checks import check_text_embeddings
from ..titok.modeling_titok import TiTokDecoder, TiTokTokenizer
from .configuration_tatitok import TATiTokConfig


class TATiTokDecoder(TiTokDecoder):
    """TiTok's decoder plus the text it attends to: text encoder states `[B, L, text_hidden_size]` are projected
    to the decoder width, given a learned position table `[L, W]` and appended after the latent tokens."""

    def __init__(self, config: TATiTokConfig):
        super().__init__(config)
        width = config.decoder_hidden_size
        self.text_projection = nn.Linear(config.text_hidden_size, width)
        self.text_position_embedding = nn.Parameter(torch.empty(config.text_max_length, width))

    def condition_tokens(self, batch_size: int, text_embeddings: torch.Tensor) -> list[torch.Tensor]:
        """The text `[B, L, text_hidden_size]`, projected here (inside the decoder's `forward`, so offload hooks
        have the weights in place)."""
        # The model's dtype from a table, not from the projection: on the CPU fast path that is an int8 layer.
        text_embeddings = text_embeddings.to(self.text_position_embedding.dtype)
        return [self.text_projection(text_embeddings) + self.text_position_embedding]


class TATiTokTokenizer(TiTokTokenizer):
    """The TA-TiTok text-aware image tokenizer.

    - `encode(pixel_values)`: as [`TiTokTokenizer`] (the encoder sees no text): `token_ids` `[B, N]` (VQ) or
      `latents` `[B, N, C]` (VAE; the posterior mean unless `sample_posterior=True`, which the official `encode`
      always returns).
    - `decode(tokens, text_embeddings)`: tokens + the text encoder's `[B, 77, 768]` states -> pixels
      `[B, 3, H, W]`, not clamped. The text is CLIP ViT-L/14-336's `last_hidden_state` (all blocks, final
      LayerNorm, every position including padding; `hf_titok.text_encoding.clip_text_features`); the same tokens
      with another caption decode differently.
    - `forward(pixel_values, text_embeddings=...)`: encode + decode with the training losses.

    Example:

    ```python
    >>> import torch
    >>> from hf_titok import TATiTokConfig, TATiTokTokenizer
    >>> model = TATiTokTokenizer(TATiTokConfig.from_preset("tatitok_bl32_vq")).eval()
    >>> ids = model.encode(torch.rand(1, 3, 256, 256)).token_ids  # [1, 32]
    >>> images = model.decode(ids, text_embeddings=torch.randn(1, 77, 768))  # [1, 3, 256, 256]
    ```
    """

    config_class = TATiTokConfig
    decoder_class = TATiTokDecoder
    decoder_inputs = ("text_embeddings",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, TATiTokDecoder):
            init.normal_(module.text_position_embedding, std=module.class_embedding.shape[-1] ** -0.5)

    def decoder_condition(self, batch_size: int, text_embeddings: torch.Tensor | None = None) -> dict:
        """The text the decoder attends to, checked: CLIP's `last_hidden_state` `[B or 1, 77, W]` (one row per
        image, or one for all: expanded)."""
        if text_embeddings is None:
            raise ValueError(
                "TA-TiTok decodes with text: pass text_embeddings [B, "
                f"{self.config.text_max_length}, {self.config.text_hidden_size}] (the CLIP text encoder's "
                "last_hidden_state; hf_titok.text_encoding.clip_text_features)"
            )
        check_text_embeddings(
            text_embeddings, batch_size, self.config.text_max_length, self.config.text_hidden_size, "text_embeddings"
        )
        return {"text_embeddings": text_embeddings.expand(batch_size, -1, -1)}

    @apply_forward_hook
    def decode(
        self,
        tokens: torch.Tensor,
        text_embeddings: torch.Tensor | None = None,
        batch_size: int | None = None,
        return_dict: bool = False,
    ) -> torch.Tensor | DecoderOutput:
        """Token ids `[B, N]` (VQ) or latents `[B, N, C]` (VAE) and text embeddings `[B or 1, 77, W]` -> pixels
        `[B, 3, H, W]`. `batch_size` and `return_dict` as in [`TiTokTokenizer.decode`]."""
        return self._decode(tokens, {"text_embeddings": text_embeddings}, batch_size, return_dict)

    @apply_forward_hook
    def decode_latents(
        self,
        latents: torch.Tensor,
        text_embeddings: torch.Tensor | None = None,
        batch_size: int | None = None,
        return_dict: bool = False,
    ) -> torch.Tensor | DecoderOutput:
        """Continuous latents `[B, N, C]` (quantized for VQ) and text embeddings -> pixels `[B, 3, H, W]`."""
        return self._decode_latents(latents, {"text_embeddings": text_embeddings}, batch_size, return_dict)


__all__ = ["TATiTokDecoder", "TATiTokTokenizer"]
