"""TiTok: a 1-D image tokenizer (Yu et al., "An Image is Worth 32 Tokens for Reconstruction and
Generation", NeurIPS 2024), as a transformers `PreTrainedModel`.

Encoder: ViT over [class, patches, latent tokens]; the latent-token outputs are projected to
`token_size` channels and vector-quantized (or kept as a Gaussian posterior in the VAE variant).
Decoder: ViT over [class, one mask token per patch, projected tokens]; its head predicts pixels, or the
proxy codes of a MaskGIT-VQGAN whose convolutional decoder renders them.

Tensor layout: tokens are always `[B, N, C]` (token-major). The released checkpoints' layout
(`[B, C, 1, N]`) is handled once, in the converter.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DecoderOutput
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ...fast_path import FastPathGuardMixin, tokenizer_fast_path
from ...utils.input_checks import check_latents, check_pixel_values, check_token_ids
from ...utils.loading import StrictLoadingMixin
from ...utils.remote_code import SavesCodeMixin
from ...utils.torch_utils import GeneratorType, check_generator, randn_tensor
from ...utils.vit import LayerStackOutput, TiTokLayer, init_dense_and_norm, run_layers
from ..maskgit_vqgan.modeling_maskgit_vqgan import (
    MaskGITVectorQuantizer,
    MaskGITVQGANDecoder,
    VQCodebook,
    decoded,
    joined_outputs,
)
from .configuration_titok import TiTokConfig


def _vit_layers(config: TiTokConfig, prefix: str) -> nn.ModuleList:
    width = getattr(config, f"{prefix}_hidden_size")
    return nn.ModuleList(
        TiTokLayer(
            config, width, getattr(config, f"{prefix}_num_heads"), int(width * config.mlp_ratio), config.layer_norm_eps
        )
        for _ in range(getattr(config, f"{prefix}_num_layers"))
    )


# --------------------------------------------------------------------------------------------------
# Encoder, quantizers, decoder
# --------------------------------------------------------------------------------------------------


class TiTokEncoder(nn.Module):
    """pixels [B, 3, H, W] -> token latents [B, N, token_size] (VQ) or [B, N, 2 * token_size] (VAE moments)."""

    def __init__(self, config: TiTokConfig):
        super().__init__()
        width = config.encoder_hidden_size
        self.legacy_layout = config.legacy_encoder_layout
        self.patch_embedding = nn.Conv2d(
            config.num_channels, width, kernel_size=config.encoder_patch_size, stride=config.encoder_patch_size
        )
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.position_embedding = nn.Parameter(torch.empty(config.encoder_grid_size**2 + 1, width))
        self.latent_tokens = nn.Parameter(torch.empty(config.num_latent_tokens, width))
        self.latent_position_embedding = nn.Parameter(torch.empty(config.num_latent_tokens, width))
        self.pre_layernorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.layers = _vit_layers(config, "encoder")
        self.post_layernorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        out_channels = config.token_size * (2 if config.quantize_mode == "vae" else 1)
        self.projection = nn.Linear(width, out_channels)

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> LayerStackOutput:
        """Returns the projected latent-token outputs as `last_hidden_state`."""
        batch_size = pixel_values.shape[0]
        # Images usually arrive in float32; a half-precision model computes in its own dtype.
        pixel_values = pixel_values.to(self.patch_embedding.weight.dtype)
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        image = torch.cat([self.class_embedding.expand(batch_size, 1, -1), patches], dim=1) + self.position_embedding
        latents = (self.latent_tokens + self.latent_position_embedding).expand(batch_size, -1, -1)
        hidden_states = self.pre_layernorm(torch.cat([image, latents], dim=1))
        stack = run_layers(self.layers, hidden_states, output_hidden_states, output_attentions)
        num_tokens = self.latent_tokens.shape[0]
        hidden_states = self.post_layernorm(stack.last_hidden_state[:, -num_tokens:])
        if self.legacy_layout:
            # Released two-stage checkpoints reshape (not transpose) [B, N, W] -> [B, W, N] before the
            # 1x1 output conv; reproduce that scramble exactly (see TiTokConfig.legacy_encoder_layout).
            hidden_states = hidden_states.reshape(batch_size, -1, num_tokens).transpose(1, 2)
        return stack._replace(last_hidden_state=self.projection(hidden_states))


class TiTokVectorQuantizer(nn.Module):
    """Nearest-neighbour codebook lookup, optionally on L2-normalised vectors, computed in float32."""

    def __init__(self, config: TiTokConfig):
        super().__init__()
        self.commitment_cost = config.commitment_cost
        self.embedding = VQCodebook(config.codebook_size, config.token_size, use_l2_norm=config.use_l2_norm)

    def embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """ids [B, N] -> the (normalised) float32 code vectors [B, N, C] the decoder consumes."""
        return self.embedding(token_ids)

    def forward(self, latents: torch.Tensor):
        """latents [B, N, C] -> (ids [B, N], quantized float32 latents with straight-through gradients,
        commitment loss, codebook loss)."""
        # float32 whatever the model's dtype: in half precision the distances to near-equal codes would tie
        # or swap, changing ids.
        latents = latents.float()
        if self.embedding.use_l2_norm:
            latents = F.normalize(latents, dim=-1)
        codebook = self.embedding()
        flat = latents.reshape(-1, latents.shape[-1])
        distances = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.t()
        token_ids = distances.argmin(dim=1).view(latents.shape[:-1])
        quantized = F.embedding(token_ids, codebook)
        commitment_loss = self.commitment_cost * F.mse_loss(latents, quantized.detach())
        codebook_loss = F.mse_loss(quantized, latents.detach())
        # Straight-through estimator: values of `quantized`, gradients to `latents`.
        quantized = latents + (quantized - latents).detach()
        return token_ids, quantized, commitment_loss, codebook_loss


class TiTokProxyCodeHead(nn.Module):
    """Two-stage head: per decoder patch, logits over the MaskGIT-VQGAN codebook (Linear, Tanh, Linear)."""

    def __init__(self, config: TiTokConfig):
        super().__init__()
        width = config.decoder_hidden_size
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, config.num_proxy_codes)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[B, g*g, W] -> proxy-code logits [B, g*g, num_proxy_codes]."""
        return self.fc2(torch.tanh(self.fc1(hidden_states)))


class TiTokPixelHead(nn.Module):
    """Single-stage head: per decoder patch, p*p RGB values (depth-to-space), then a 3x3 conv."""

    def __init__(self, config: TiTokConfig):
        super().__init__()
        self.patch_size = config.decoder_patch_size
        self.num_channels = config.num_channels
        self.to_patches = nn.Linear(config.decoder_hidden_size, self.patch_size**2 * config.num_channels)
        self.conv_out = nn.Conv2d(config.num_channels, config.num_channels, kernel_size=3, padding=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[B, g*g, W] -> pixels [B, 3, g*p, g*p]."""
        batch_size, num_patches, _ = hidden_states.shape
        grid, patch = int(num_patches**0.5), self.patch_size
        # Output channel (p1 * p + p2) * 3 + c is pixel (h * p + p1, w * p + p2), colour c.
        patches = self.to_patches(hidden_states).view(batch_size, grid, grid, patch, patch, self.num_channels)
        pixels = patches.permute(0, 5, 1, 3, 2, 4).reshape(batch_size, self.num_channels, grid * patch, grid * patch)
        return self.conv_out(pixels)


class TiTokDecoder(nn.Module):
    """token latents [B, N, token_size] -> proxy-code logits [B, g*g, K] or pixels [B, 3, H, W]."""

    def __init__(self, config: TiTokConfig):
        super().__init__()
        width = config.decoder_hidden_size
        self.num_patches = config.decoder_grid_size**2
        self.latent_projection = nn.Linear(config.token_size, width)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.position_embedding = nn.Parameter(torch.empty(self.num_patches + 1, width))
        self.mask_token = nn.Parameter(torch.empty(width))
        self.latent_position_embedding = nn.Parameter(torch.empty(config.num_latent_tokens, width))
        self.pre_layernorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.layers = _vit_layers(config, "decoder")
        self.post_layernorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.head = TiTokProxyCodeHead(config) if config.decoder_head == "proxy_codes" else TiTokPixelHead(config)

    def condition_tokens(self, batch_size: int) -> list[torch.Tensor]:
        """The tokens `[B, L, W]` the decoder attends to after the latent tokens, from its inputs beyond the tokens:
        none for TiTok; a subclass whose decoder reads more (TA-TiTok: text) overrides this hook, taking those
        inputs as keyword arguments."""
        return []

    def forward(
        self,
        latents: torch.Tensor,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **condition,
    ) -> LayerStackOutput:
        """Returns the head's output (proxy-code logits or pixels) as `last_hidden_state`. `condition`: the
        decoder's inputs beyond the tokens (`condition_tokens`). Fewer than `num_latent_tokens` latents (a prefix)
        take the first rows of the latent position table."""
        batch_size, num_tokens, _ = latents.shape
        # Quantized latents are float32 (see TiTokVectorQuantizer); compute in the model's dtype from here.
        latents = latents.to(self.position_embedding.dtype)
        tokens = self.latent_projection(latents) + self.latent_position_embedding[:num_tokens]
        queries = torch.cat(
            [self.class_embedding.expand(batch_size, 1, -1), self.mask_token.expand(batch_size, self.num_patches, -1)],
            dim=1,
        )
        sequence = [queries + self.position_embedding, tokens, *self.condition_tokens(batch_size, **condition)]
        hidden_states = self.pre_layernorm(torch.cat(sequence, dim=1))
        stack = run_layers(self.layers, hidden_states, output_hidden_states, output_attentions)
        output = self.head(self.post_layernorm(stack.last_hidden_state[:, 1 : 1 + self.num_patches]))
        return stack._replace(last_hidden_state=output)


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------


@dataclass
class TiTokTokens(ModelOutput):
    """
    The tokens of a batch of images and the losses of their quantizer or posterior: the fields
    [`TiTokEncoderOutput`] and [`TiTokOutput`] share.

    Args:
        token_ids (`torch.LongTensor` of shape `(batch_size, num_latent_tokens)`):
            The discrete tokens (VQ models; `None` for VAE models).
        latents (`torch.FloatTensor` of shape `(batch_size, num_latent_tokens, token_size)`):
            What the decoder consumes, in float32 whatever the model's dtype: the quantized latents of VQ
            models (unit vectors when `use_l2_norm`; straight-through gradients), the posterior mean of VAE
            models, or a posterior sample when `sample_posterior=True`.
        unquantized_latents (`torch.FloatTensor` of shape `(batch_size, num_latent_tokens, token_size)`):
            VQ: the encoder output before normalisation and quantization (the model's dtype). VAE: `None`.
        posterior_logvar (`torch.FloatTensor` of shape `(batch_size, num_latent_tokens, token_size)`):
            VAE: log-variance of the posterior, clamped to [-30, 20] (float32). VQ: `None`.
        quantizer_loss, commitment_loss, codebook_loss (`torch.FloatTensor` of shape `()`):
            VQ losses; `quantizer_loss = commitment_loss + codebook_loss` (commitment already weighted by
            `commitment_cost`).
        kl_loss (`torch.FloatTensor` of shape `()`):
            VAE: KL divergence to N(0, I), summed over tokens and channels and averaged over the batch
            (unweighted; the official recipe multiplies it by `kl_weight`).
    """

    token_ids: torch.LongTensor | None = None
    latents: torch.FloatTensor | None = None
    unquantized_latents: torch.FloatTensor | None = None
    posterior_logvar: torch.FloatTensor | None = None
    quantizer_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    kl_loss: torch.FloatTensor | None = None

    @property
    def tokens(self) -> torch.Tensor | None:
        """The tokens, for both kinds of tokenizer: `token_ids` (VQ) or `latents` (VAE), the field named by
        [`TiTokTokenizer.token_name`]; what [`TiTokTokenizer.decode`] takes."""
        return self.token_ids if self.token_ids is not None else self.latents

    def tokens_and_losses(self) -> dict:
        """The [`TiTokTokens`] fields that are set (the tokens and the quantizer or posterior losses) as a dict,
        to carry them into another output."""
        return {field.name: self[field.name] for field in fields(TiTokTokens) if field.name in self}


@dataclass
class TiTokEncoderOutput(TiTokTokens):
    """
    Output of [`TiTokTokenizer.encode`]: the fields of [`TiTokTokens`] plus

    Args:
        hidden_states (`tuple(torch.FloatTensor)`, returned with `output_hidden_states=True`):
            The encoder's hidden states `[B, 1 + patches + num_latent_tokens, width]`: its input and the
            output of each layer.
        attentions (`tuple(torch.FloatTensor)`, returned with `output_attentions=True`):
            The encoder's attention weights `[B, heads, L, L]`, one per layer.
    """

    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class TiTokReconstructionOutput(ModelOutput):
    """
    What [`TiTokTokenizer.forward`] adds to the tokens: the objective and the decoded outputs.

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            The autoencoder objective, so that a plain `Trainer` can train or fine-tune the model: with
            `labels` (proxy codes), the proxy-code cross-entropy (stage 1); otherwise the mean squared error
            of `reconstruction` against the input. Plus `quantizer_loss` (VQ) or `kl_weight * kl_loss` (VAE).
            `None` for the stage-1 layout called without `labels`. The recipes in `hf_titok.training` add
            perceptual and adversarial terms.
        reconstruction (`torch.FloatTensor` of shape `(batch_size, 3, image_size, image_size)`):
            Decoded pixels, nominally in [0, 1], not clamped. `None` for the stage-1 layout.
        proxy_logits (`torch.FloatTensor` of shape `(batch_size, decoder_grid_size**2, num_proxy_codes)`):
            Two-stage models: the decoder's logits over the MaskGIT-VQGAN codebook per decoder patch
            (row-major), the stage-1 training target being the VQGAN's codes of the same image.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    proxy_logits: torch.FloatTensor | None = None


# The base classes' fields come in reverse order of the bases: those of [`TiTokReconstructionOutput`] first, so
# that `output[0]` (and `to_tuple()[0]`) is the loss or the decoded output, which carries gradients, as in every
# transformers model (and its common tests), not the integer VQ ids.
@dataclass
class TiTokOutput(TiTokTokens, TiTokReconstructionOutput):
    """
    Output of [`TiTokTokenizer.forward`]: the fields of [`TiTokReconstructionOutput`] (`loss`, `reconstruction`,
    `proxy_logits`), then those of [`TiTokTokens`], plus

    Args:
        encoder_hidden_states, decoder_hidden_states (`tuple(torch.FloatTensor)`, with `output_hidden_states`):
            Each ViT's input and the output of each of its layers.
        encoder_attentions, decoder_attentions (`tuple(torch.FloatTensor)`, with `output_attentions`):
            Each ViT's attention weights, one per layer.
    """

    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None

    @property
    def hidden_states(self) -> tuple[torch.FloatTensor, ...] | None:
        """transformers' common name: the encoder's hidden states, then the decoder's (`None` without
        `output_hidden_states`)."""
        return joined_outputs(self.encoder_hidden_states, self.decoder_hidden_states)

    @property
    def attentions(self) -> tuple[torch.FloatTensor, ...] | None:
        """transformers' common name: the encoder's attention weights, then the decoder's."""
        return joined_outputs(self.encoder_attentions, self.decoder_attentions)


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


class TiTokPreTrainedModel(SavesCodeMixin, FastPathGuardMixin, StrictLoadingMixin, PreTrainedModel):
    config: TiTokConfig
    config_class = TiTokConfig
    base_model_prefix = "titok"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = False
    _can_compile_fullgraph = True
    _no_split_modules = ["TiTokLayer", "MaskGITResnetBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if init_dense_and_norm(
            module, self.config.initializer_range, (nn.Linear, nn.Conv2d), (nn.LayerNorm, nn.GroupNorm)
        ):
            return
        if isinstance(module, VQCodebook):
            init.uniform_(module.weight, -1.0 / module.num_embeddings, 1.0 / module.num_embeddings)
        elif isinstance(module, (TiTokEncoder, TiTokDecoder)):
            width = module.class_embedding.shape[-1]
            names = ["class_embedding", "position_embedding", "latent_position_embedding"]
            names += ["latent_tokens"] if isinstance(module, TiTokEncoder) else ["mask_token"]
            for name in names:
                init.normal_(getattr(module, name), std=width**-0.5)


class TiTokTokenizer(TiTokPreTrainedModel):
    """The TiTok image tokenizer.

    - `encode(pixel_values)`: RGB `[B, 3, H, W]` in [0, 1] -> `token_ids` `[B, N]` (VQ) or `latents`
      `[B, N, C]` (VAE, the posterior mean unless `sample_posterior=True`).
    - `decode(token_ids)` (VQ) / `decode(latents)` (VAE) -> pixels `[B, 3, H, W]`, nominally in [0, 1],
      not clamped.
    - `forward(pixel_values)`: encode + decode with the training losses.

    Any dtype works (`from_pretrained(..., dtype=torch.bfloat16)` or `.to(dtype)`): inputs are cast to the
    model's dtype, and the codebook search, the VAE posterior and the proxy-code softmax run in float32.
    `encode`/`decode` go through accelerate's hooks like `forward`, so model and sequential CPU offload and
    `device_map` loading with offloaded weights work.

    Example:

    ```python
    >>> import torch
    >>> from hf_titok import TiTokConfig, TiTokTokenizer
    >>> model = TiTokTokenizer(TiTokConfig.from_preset("titok_s128")).eval()
    >>> ids = model.encode(torch.rand(1, 3, 256, 256)).token_ids  # [1, 128]
    >>> images = model.decode(ids)  # [1, 3, 256, 256]
    ```
    """

    decoder_class = TiTokDecoder
    # The decoder's inputs beyond the tokens, by keyword (`decoder_condition`): none; TA-TiTok's decoder reads text.
    decoder_inputs: tuple[str, ...] = ()

    def __init__(self, config: TiTokConfig):
        super().__init__(config)
        self.encoder = TiTokEncoder(config)
        self.quantizer = TiTokVectorQuantizer(config) if config.quantize_mode == "vq" else None
        self.decoder = self.decoder_class(config)
        if config.decoder_head == "proxy_codes" and config.include_pixel_decoder:
            self.pixel_quantizer = MaskGITVectorQuantizer(config.pixel_decoder_config)
            self.pixel_decoder = MaskGITVQGANDecoder(config.pixel_decoder_config)
        else:
            self.pixel_quantizer = self.pixel_decoder = None
        self.post_init()

    @property
    def is_vq(self) -> bool:
        return self.config.quantize_mode == "vq"

    def enable_fast_path(self, bfloat16: bool | None = None) -> "TiTokTokenizer":
        """Switch on the CPU fast path in place (`hf_titok.fast_path`): int8 decoder; on CPUs with fast bfloat16
        (AMX, or measured) the encoder's MLPs/output projections and the pixel decoder in bfloat16, elsewhere the
        pixel decoder through ONNX Runtime when installed; ids are decided in float32. Inference only. `bfloat16`:
        force the bfloat16 parts on or off (default: `fast_bfloat16()`, whether this CPU multiplies bfloat16
        faster)."""
        return tokenizer_fast_path(self, bfloat16)

    @property
    def token_name(self) -> str:
        """The name of the output field that holds this tokenizer's tokens: `"token_ids"` (VQ) or `"latents"`
        (VAE); `encode(...).tokens` is that field, and token files written by `hf-titok encode` use the name."""
        return "token_ids" if self.is_vq else "latents"

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.patch_embedding

    @apply_forward_hook
    def encode(
        self,
        pixel_values: torch.Tensor,
        sample_posterior: bool = False,
        generator: GeneratorType = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> TiTokEncoderOutput:
        """Tokenize images (RGB, `[B, 3, image_size, image_size]`, values in [0, 1]).

        Args:
            sample_posterior: VAE only; draw `mean + std * noise` instead of returning the mean.
            generator: RNG of the VAE sample: a `torch.Generator` or one per image (the noise is drawn in the
                released `[B, C, N]` order, so a seeded generator reproduces the official sample).
            output_hidden_states, output_attentions: also return the encoder's hidden states / attention
                weights (defaults: the config's).
        """
        check_pixel_values(pixel_values, self.config.image_size, self.config.num_channels)
        output_hidden_states, output_attentions = self._output_flags(output_hidden_states, output_attentions)
        stack = self.encoder(pixel_values, output_hidden_states, output_attentions)
        extras = dict(hidden_states=stack.hidden_states, attentions=stack.attentions)
        if self.is_vq:
            token_ids, quantized, commitment_loss, codebook_loss = self.quantizer(stack.last_hidden_state)
            return TiTokEncoderOutput(
                token_ids=token_ids,
                latents=quantized,
                unquantized_latents=stack.last_hidden_state,
                quantizer_loss=commitment_loss + codebook_loss,
                commitment_loss=commitment_loss,
                codebook_loss=codebook_loss,
                **extras,
            )
        # float32 on purpose: exp(logvar) and the KL overflow or lose precision in half precision.
        mean, logvar = stack.last_hidden_state.float().chunk(2, dim=-1)
        logvar = logvar.clamp(-30.0, 20.0)
        latents = mean
        if sample_posterior:
            batch_size, num_tokens, channels = mean.shape
            check_generator(generator, batch_size)
            noise = randn_tensor(
                (batch_size, channels, num_tokens), generator=generator, device=mean.device, dtype=mean.dtype
            ).transpose(1, 2)
            latents = mean + torch.exp(0.5 * logvar) * noise
        kl_per_token = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)
        return TiTokEncoderOutput(
            latents=latents, posterior_logvar=logvar, kl_loss=kl_per_token.sum() / mean.shape[0], **extras
        )

    @apply_forward_hook
    def decode(
        self, tokens: torch.Tensor, batch_size: int | None = None, return_dict: bool = False
    ) -> torch.Tensor | DecoderOutput:
        """Token ids `[B, N]` (VQ models) or latents `[B, N, token_size]` (VAE models) -> pixels `[B, 3, H, W]`
        in the model's dtype. `batch_size`: decode at most this many images at a time (a large batch's
        activations - the pixel decoder's full-resolution feature maps above all - then never all exist at once);
        the result is the same up to float rounding (~1e-8: CPU matrix kernels block their work by batch size).
        `return_dict=True`: diffusers' `DecoderOutput(sample=pixels)` instead of the tensor."""
        return self._decode(tokens, {}, batch_size, return_dict)

    @apply_forward_hook
    def decode_latents(
        self, latents: torch.Tensor, batch_size: int | None = None, return_dict: bool = False
    ) -> torch.Tensor | DecoderOutput:
        """Continuous token latents `[B, N, token_size]` (quantized for VQ models) -> pixels `[B, 3, H, W]`;
        `batch_size` and `return_dict` as in `decode`."""
        return self._decode_latents(latents, {}, batch_size, return_dict)

    # ---- hooks: what a subclass changes (TA-TiTok: text; prefix decoding: the token count) ----

    def decoder_condition(self, batch_size: int, **inputs) -> dict:
        """The decoder's inputs beyond the tokens for a decode or forward call of `batch_size` images, checked:
        none for TiTok. A subclass whose decoder reads more (`decoder_inputs`) overrides this hook."""
        if inputs:
            raise ValueError(
                f"this {type(self).__name__} is not text-aware: it decodes from its tokens alone and takes no "
                f"{', '.join(inputs)} (text is TA-TiTok's: TATiTokTokenizer)"
            )
        return {}

    def check_tokens(self, token_ids: torch.Tensor) -> None:
        """The ids a decode takes: `[B, num_latent_tokens]` in the codebook, or `[B, k]`, a prefix, for a model
        with `prefix_decoding`."""
        num_tokens = self.config.num_latent_tokens
        if isinstance(token_ids, torch.Tensor) and token_ids.ndim == 2:
            num_tokens = self.check_prefix_length(token_ids.shape[1], "token_ids", tuple(token_ids.shape), "[B, {}]")
        check_token_ids(token_ids, num_tokens, self.config.codebook_size)

    def check_token_latents(self, latents: torch.Tensor) -> None:
        """The continuous latents a decode takes: `[B, num_latent_tokens, token_size]`, or `[B, k, token_size]`
        for a model with `prefix_decoding`."""
        num_tokens = self.config.num_latent_tokens
        if isinstance(latents, torch.Tensor) and latents.ndim == 3:
            shape, token_size = tuple(latents.shape), self.config.token_size
            num_tokens = self.check_prefix_length(latents.shape[1], "latents", shape, f"[B, {{}}, {token_size}]")
        check_latents(latents, num_tokens, self.config.token_size)

    def check_prefix_length(
        self, num_tokens: int, what: str = "num_decoded_tokens", shape: tuple | None = None, layout: str = ""
    ) -> int:
        """`num_tokens`, the number of tokens per image a decode gets: all `num_latent_tokens`, or a prefix of
        1 <= k <= N when the config allows prefixes (`prefix_decoding`); raises naming `what` otherwise (a tensor of
        `shape`, whose expected shape is `layout` with the token count in its `{}`)."""
        total = self.config.num_latent_tokens
        if isinstance(num_tokens, bool) or not isinstance(num_tokens, int):
            raise TypeError(f"{what} must be an integer number of tokens, got {num_tokens!r}")
        if num_tokens == total:
            return num_tokens
        if shape is None:
            expected, given = f"{what} must be", f"got {num_tokens}"
        else:
            expected, given = f"{what} must have shape", f"got {shape}"
        if not self.config.prefix_decoding:
            if shape is not None and not 1 <= num_tokens < total:
                return total  # a tensor that is no prefix of the tokens: the shape check names it
            full = layout.format(total) if shape is not None else total
            raise ValueError(
                f"{expected} {full}, {given}: this tokenizer was not trained to decode a prefix of its tokens "
                "(config.prefix_decoding is False; One-D-Piece tokenizers and models trained with Tail Token Drop "
                f"decode any first 1 <= k <= {total})"
            )
        if not 1 <= num_tokens <= total:
            allowed = layout.format("k") + f" with 1 <= k <= {total}" if shape is not None else f"in [1, {total}]"
            raise ValueError(f"{expected} {allowed} (a prefix of the {total} tokens), {given}")
        return num_tokens

    # ---- decoding ----

    def _decode(self, tokens, inputs: dict, batch_size, return_dict):
        if not self.is_vq:
            if isinstance(tokens, torch.Tensor) and not tokens.is_floating_point():
                raise TypeError(
                    "this is a VAE tokenizer: decode() takes continuous latents [B, "
                    f"{self.config.num_latent_tokens}, {self.config.token_size}]; got an integer tensor of dtype "
                    f"{tokens.dtype}"
                )
            return self._decode_latents(tokens, inputs, batch_size, return_dict)
        if isinstance(tokens, torch.Tensor) and tokens.is_floating_point():
            raise TypeError(
                "this is a VQ tokenizer: decode() takes integer token ids [B, "
                f"{self.config.num_latent_tokens}]; got a float tensor (use decode_latents() for continuous "
                "latents)"
            )
        self.check_tokens(tokens)
        condition = self.decoder_condition(tokens.shape[0], **inputs)
        pixels = self._in_chunks(
            lambda chunk, part: self._pixels(self.quantizer.embed(chunk.long()), part), batch_size, tokens, condition
        )
        return decoded(pixels, return_dict)

    def _decode_latents(self, latents, inputs: dict, batch_size, return_dict):
        self.check_token_latents(latents)
        condition = self.decoder_condition(latents.shape[0], **inputs)
        return decoded(self._in_chunks(self._pixels, batch_size, latents, condition), return_dict)

    @staticmethod
    def _in_chunks(function, batch_size: int | None, inputs: torch.Tensor, condition: dict):
        """`function(inputs, condition)` on at most `batch_size` rows at a time (see `decode`)."""
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if batch_size is None or inputs.shape[0] <= batch_size:
            return function(inputs, condition)
        chunks = inputs.split(batch_size)
        split_condition = {name: value.split(batch_size) for name, value in condition.items()}
        parts = [{name: pieces[i] for name, pieces in split_condition.items()} for i in range(len(chunks))]
        return torch.cat([function(chunk, part) for chunk, part in zip(chunks, parts)])

    def _pixels(self, latents: torch.Tensor, condition: dict) -> torch.Tensor:
        decoded_output = self.decoder(latents, **condition).last_hidden_state
        return decoded_output if self.config.decoder_head == "pixels" else self._render_proxy_logits(decoded_output)

    def _render_proxy_logits(self, proxy_logits: torch.Tensor) -> torch.Tensor:
        if self.pixel_decoder is None:
            raise ValueError(
                "this tokenizer has the stage-1 layout (include_pixel_decoder=False): it predicts MaskGIT-VQGAN "
                "proxy codes and has no pixel decoder; render them with MaskGITVQGAN.decode(proxy_logits.argmax(-1))"
            )
        # Soft proxy codes: the softmax mixture of the VQGAN codebook, not the argmax code. The softmax runs in
        # float32: over ~1k codes a half-precision softmax rounds away the small probabilities the mixture sums.
        mixture = self.pixel_quantizer.soft_embed(proxy_logits.float().softmax(dim=-1))
        grid = self.config.decoder_grid_size
        return self.pixel_decoder(mixture.transpose(1, 2).reshape(mixture.shape[0], -1, grid, grid)).last_hidden_state

    def _output_flags(self, output_hidden_states: bool | None, output_attentions: bool | None) -> tuple[bool, bool]:
        config = self.config
        return (
            config.output_hidden_states if output_hidden_states is None else output_hidden_states,
            config.output_attentions if output_attentions is None else output_attentions,
        )

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        sample_posterior: bool | None = None,
        generator: GeneratorType = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        num_decoded_tokens: int | None = None,
        **decoder_inputs,
    ) -> TiTokOutput | tuple:
        """Encode and decode with the training losses (see [`TiTokOutput.loss`]).

        Args:
            num_decoded_tokens: decode from the first k tokens only (a model with `prefix_decoding`): what Tail
                Token Drop trains, one k per batch; the quantizer loss stays over all tokens. Default: all.
            decoder_inputs: the decoder's inputs beyond the tokens, for a subclass whose decoder reads more
                (`decoder_inputs`; TA-TiTok: `text_embeddings`).
            labels: proxy-code models only: the MaskGIT-VQGAN codes of the images `[B, decoder_grid_size**2]`
                (stage 1); `loss` is then their cross-entropy instead of the pixel error.
            sample_posterior: VAE models sample the posterior in training mode (`None`) and use the mean in
                eval mode.
        """
        config = self.config
        return_dict = config.return_dict if return_dict is None else return_dict
        output_hidden_states, output_attentions = self._output_flags(output_hidden_states, output_attentions)
        if sample_posterior is None:
            sample_posterior = self.training
        condition = self.decoder_condition(pixel_values.shape[0], **decoder_inputs)
        if num_decoded_tokens is not None:
            self.check_prefix_length(num_decoded_tokens)
        encoded = self.encode(pixel_values, sample_posterior, generator, output_hidden_states, output_attentions)
        decoded_latents = encoded.latents if num_decoded_tokens is None else encoded.latents[:, :num_decoded_tokens]
        decoder = self.decoder(decoded_latents, output_hidden_states, output_attentions, **condition)
        if config.decoder_head == "pixels":
            reconstruction, proxy_logits = decoder.last_hidden_state, None
        else:
            proxy_logits = decoder.last_hidden_state
            reconstruction = self._render_proxy_logits(proxy_logits) if self.pixel_decoder is not None else None

        loss = None
        if labels is not None:
            if proxy_logits is None:
                raise ValueError("labels are the proxy codes of two-stage training; this tokenizer has a pixel head")
            check_token_ids(labels, config.decoder_grid_size**2, config.num_proxy_codes, what="labels")
            loss = F.cross_entropy(proxy_logits.flatten(0, 1).float(), labels.flatten())
        elif reconstruction is not None:
            loss = F.mse_loss(reconstruction.float(), pixel_values.float())
        if loss is not None:
            loss = loss + (encoded.quantizer_loss if self.is_vq else config.kl_weight * encoded.kl_loss)

        output = TiTokOutput(
            **encoded.tokens_and_losses(),
            loss=loss,
            reconstruction=reconstruction,
            proxy_logits=proxy_logits,
            encoder_hidden_states=encoded.hidden_states,
            encoder_attentions=encoded.attentions,
            decoder_hidden_states=decoder.hidden_states,
            decoder_attentions=decoder.attentions,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["TiTokTokenizer", "TiTokPreTrainedModel", "TiTokTokens", "TiTokEncoderOutput", "TiTokOutput"]
