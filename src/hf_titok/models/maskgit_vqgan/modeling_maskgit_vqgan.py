"""The MaskGIT-VQGAN: TiTok's proxy-code teacher (stage 1) and the pixel decoder of two-stage TiTok.

A convolutional VQGAN with no attention layers, as released by MaskGIT (JAX) and ported by open-muse.
Module names follow the released checkpoint (`conv_in`, `down.{i}.block.{j}`, `mid`, `up.{i}`,
`norm_out`, `conv_out`), so weights convert one to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DecoderOutput
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ...fast_path import FastPathGuardMixin, vqgan_fast_path
from ...utils.input_checks import check_pixel_values, check_token_ids
from ...utils.loading import StrictLoadingMixin
from ...utils.remote_code import SavesCodeMixin
from .configuration_maskgit_vqgan import MaskGITVQGANConfig


class MaskGITResnetBlock(nn.Module):
    """GroupNorm -> SiLU -> 3x3 conv, twice, plus a residual.

    When the block changes the channel count, the released model (faithful to the JAX original) does
    *not* project the input: the 1x1 `nin_shortcut` is applied to the block's own output and the input
    is discarded, i.e. `h + nin_shortcut(h)`. The released weights depend on this.
    """

    def __init__(self, config: MaskGITVQGANConfig, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(config.norm_num_groups, in_channels, eps=config.norm_eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(config.norm_num_groups, out_channels, eps=config.norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.nin_shortcut = (
            nn.Conv2d(out_channels, out_channels, 1, bias=False) if in_channels != out_channels else None
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(hidden_states)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.nin_shortcut is not None:
            return h + self.nin_shortcut(h)
        return h + hidden_states


class MaskGITResolutionLevel(nn.Module):
    """`num_res_blocks` residual blocks at one resolution, with an optional upsampling conv."""

    def __init__(self, config: MaskGITVQGANConfig, in_channels: int, out_channels: int, upsample: bool = False):
        super().__init__()
        self.block = nn.ModuleList(
            MaskGITResnetBlock(config, in_channels if i == 0 else out_channels, out_channels)
            for i in range(config.num_res_blocks)
        )
        self.upsample_conv = nn.Conv2d(out_channels, out_channels, 3, padding=1) if upsample else None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            hidden_states = block(hidden_states)
        if self.upsample_conv is not None:
            hidden_states = self.upsample_conv(F.interpolate(hidden_states, scale_factor=2.0, mode="nearest"))
        return hidden_states


class MaskGITVQGANEncoder(nn.Module):
    """Image [B, 3, H, W] -> continuous latent grid [B, z_channels, H/f, W/f]."""

    def __init__(self, config: MaskGITVQGANConfig):
        super().__init__()
        widths = [config.hidden_channels * m for m in config.channel_mult]
        self.conv_in = nn.Conv2d(config.num_channels, config.hidden_channels, 3, padding=1, bias=False)
        in_widths = [config.hidden_channels] + widths[:-1]
        self.down = nn.ModuleList(MaskGITResolutionLevel(config, i, o) for i, o in zip(in_widths, widths))
        self.mid = nn.ModuleList(
            MaskGITResnetBlock(config, widths[-1], widths[-1]) for _ in range(config.num_res_blocks)
        )
        self.norm_out = nn.GroupNorm(config.norm_num_groups, widths[-1], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(widths[-1], config.z_channels, 1)

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = False) -> FeatureMaps:
        """Returns the latent grid as `last_hidden_state` and, on request, the feature maps after `conv_in`,
        each resolution level and the middle blocks."""
        # channels-last activations make the CPU (oneDNN) convolutions faster; inputs take the model's dtype
        pixel_values = pixel_values.to(self.conv_in.weight.dtype).contiguous(memory_format=torch.channels_last)
        hidden_states = self.conv_in(pixel_values)
        features = [hidden_states]
        for i, level in enumerate(self.down):
            hidden_states = level(hidden_states)
            if i < len(self.down) - 1:
                hidden_states = F.avg_pool2d(hidden_states, kernel_size=2, stride=2)
            features.append(hidden_states)
        for block in self.mid:
            hidden_states = block(hidden_states)
        features.append(hidden_states)
        latents = self.conv_out(F.silu(self.norm_out(hidden_states))).contiguous()
        # The feature maps are returned as computed (channels-last strides): a contiguous copy would sit outside the
        # graph, so gradients could not be read from it (`retain_grad`).
        return FeatureMaps(latents, tuple(features) if output_hidden_states else None)


class MaskGITVQGANDecoder(nn.Module):
    """Latent grid [B, z_channels, h, w] -> image [B, 3, h*f, w*f] (not clamped)."""

    def __init__(self, config: MaskGITVQGANConfig):
        super().__init__()
        widths = [config.hidden_channels * m for m in config.channel_mult]
        self.conv_in = nn.Conv2d(config.z_channels, widths[-1], 3, padding=1)
        self.mid = nn.ModuleList(
            MaskGITResnetBlock(config, widths[-1], widths[-1]) for _ in range(config.num_res_blocks)
        )
        # `up[i]` works at the resolution of encoder level i; it is applied deepest level first.
        in_widths = widths[1:] + widths[-1:]
        self.up = nn.ModuleList(
            MaskGITResolutionLevel(config, in_widths[i], widths[i], upsample=i > 0) for i in range(len(widths))
        )
        self.norm_out = nn.GroupNorm(config.norm_num_groups, widths[0], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(widths[0], config.num_channels, 3, padding=1)

    def forward(self, latents: torch.Tensor, output_hidden_states: bool = False) -> FeatureMaps:
        """Returns the image as `last_hidden_state` and, on request, the feature maps after `conv_in`, the
        middle blocks and each resolution level."""
        # channels-last activations make the CPU (oneDNN) convolutions faster; codebook vectors are
        # float32 (VQCodebook), the convolutions run in the model's dtype
        latents = latents.to(self.conv_in.weight.dtype).contiguous(memory_format=torch.channels_last)
        hidden_states = self.conv_in(latents)
        features = [hidden_states]
        for block in self.mid:
            hidden_states = block(hidden_states)
        features.append(hidden_states)
        for level in reversed(self.up):
            hidden_states = level(hidden_states)
            features.append(hidden_states)
        image = self.conv_out(F.silu(self.norm_out(hidden_states))).contiguous()
        return FeatureMaps(image, tuple(features) if output_hidden_states else None)


class VQCodebook(nn.Embedding):
    """The code vectors of a vector quantizer, returned in float32 (nearest-neighbour distances and soft
    mixtures need that precision whatever the model's dtype), L2-normalised when `use_l2_norm`.

    Every read of the weight happens inside `forward`: accelerate's offload hooks wrap `forward`, so with
    sequential CPU offload or offloaded `device_map` weights the codebook is loaded when it is used.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, use_l2_norm: bool = False):
        super().__init__(num_embeddings, embedding_dim)
        self.use_l2_norm = use_l2_norm

    def forward(self, token_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The vectors of `token_ids` (`[..., C]`), or the whole codebook `[K, C]` when `None`."""
        # Not the Parameter itself: module outputs that are leaf parameters break autograd-based hooks (torch's
        # FlopCounterMode, for one) - a view while training, a detached tensor when no gradient is recorded.
        weight = self.weight if torch.is_grad_enabled() else self.weight.detach()
        vectors = weight.view_as(weight) if token_ids is None else F.embedding(token_ids, weight)
        vectors = vectors.float()
        return F.normalize(vectors, dim=-1) if self.use_l2_norm else vectors


class MaskGITVectorQuantizer(nn.Module):
    """Nearest-neighbour (Euclidean, unnormalised) codebook of the VQGAN."""

    def __init__(self, config: MaskGITVQGANConfig):
        super().__init__()
        self.embedding = VQCodebook(config.codebook_size, config.z_channels)

    def nearest_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] -> codes [B, h*w] (row-major over h, w), searched in float32."""
        flat = latents.float().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        codebook = self.embedding()
        distances = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.t()
        return distances.argmin(dim=1).view(latents.shape[0], -1)

    def embed_codes(self, codes: torch.Tensor, grid_size: int) -> torch.Tensor:
        """codes [B, h*w] -> float32 latent grid [B, C, h, w]."""
        return self.embedding(codes).view(codes.shape[0], grid_size, grid_size, -1).permute(0, 3, 1, 2)

    def soft_embed(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Soft codes: probabilities over the codebook `[..., K]` -> the mixtures of code vectors `[..., C]`
        (float32), what two-stage TiTok feeds the VQGAN decoder."""
        return probabilities.float() @ self.embedding()


class FeatureMaps(NamedTuple):
    """A VQGAN encoder's or decoder's output (`last_hidden_state`) and, on request, its feature maps."""

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None


@dataclass
class MaskGITVQGANEncoderOutput(ModelOutput):
    """
    Args:
        codes (`torch.LongTensor` of shape `(batch_size, grid_size**2)`):
            Nearest codebook entry per latent position, row-major over the grid.
        latents (`torch.FloatTensor` of shape `(batch_size, z_channels, grid_size, grid_size)`):
            The continuous encoder output before quantization (the model's dtype).
        quantized_latents (`torch.FloatTensor` of shape `(batch_size, z_channels, grid_size, grid_size)`):
            Codebook vectors of `codes` (float32), with the straight-through gradient to `latents`.
        quantizer_loss (`torch.FloatTensor` of shape `()`):
            `commitment_cost * commitment + codebook` loss, for training the VQGAN.
        hidden_states (`tuple(torch.FloatTensor)`, returned with `output_hidden_states=True`):
            The encoder's feature maps after `conv_in`, each resolution level and the middle blocks.
    """

    codes: torch.LongTensor | None = None
    latents: torch.FloatTensor | None = None
    quantized_latents: torch.FloatTensor | None = None
    quantizer_loss: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None

    @property
    def token_ids(self) -> torch.LongTensor | None:
        """The codes under the name every tokenizer's `encode` output gives its ids (a generator over the VQGAN's
        codes - RAR - trains and pre-tokenizes as over a TiTok tokenizer's)."""
        return self.codes

    @property
    def tokens(self) -> torch.LongTensor | None:
        """What `decode` takes, under `TiTokTokenizer.encode`'s name for it: the codes."""
        return self.codes


@dataclass
class MaskGITVQGANOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`):
            Mean squared error of `reconstruction` against the input plus `quantizer_loss`, so that a plain
            `Trainer` can train or fine-tune the VQGAN (the `vqgan` recipe adds perceptual and GAN terms).
        reconstruction (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
            Decoded pixels, nominally in [0, 1] and not clamped.
        codes (`torch.LongTensor` of shape `(batch_size, grid_size**2)`): the codes of the input.
        quantizer_loss (`torch.FloatTensor` of shape `()`): see [`MaskGITVQGANEncoderOutput`].
        encoder_hidden_states, decoder_hidden_states (`tuple(torch.FloatTensor)`, with `output_hidden_states`):
            The feature maps of the encoder (after `conv_in`, each level, the middle blocks) and of the decoder
            (after `conv_in`, the middle blocks, each level). The VQGAN has no attention layers.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    quantizer_loss: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None

    @property
    def hidden_states(self) -> tuple[torch.FloatTensor, ...] | None:
        """transformers' common name: the encoder's feature maps, then the decoder's."""
        return joined_outputs(self.encoder_hidden_states, self.decoder_hidden_states)


def decoded(pixels: torch.Tensor, return_dict: bool) -> torch.Tensor | DecoderOutput:
    """What the models' `decode` methods return. diffusers' autoencoders return `DecoderOutput` by default; ours
    return the pixel tensor (the official `decode_tokens` API, and every caller since 0.1), and diffusers'
    `DecoderOutput(sample=pixels)` with `return_dict=True`, so code written for `VQModel.decode(...).sample`
    works."""
    return DecoderOutput(sample=pixels) if return_dict else pixels


def joined_outputs(first: tuple | None, second: tuple | None) -> tuple | None:
    """An encoder's per-layer outputs followed by its decoder's (`None` when neither was asked for)."""
    if first is None and second is None:
        return None
    return (first or ()) + (second or ())


class MaskGITVQGANPreTrainedModel(SavesCodeMixin, FastPathGuardMixin, StrictLoadingMixin, PreTrainedModel):
    config: MaskGITVQGANConfig
    config_class = MaskGITVQGANConfig
    base_model_prefix = "maskgit_vqgan"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _can_compile_fullgraph = True
    _no_split_modules = ["MaskGITResnetBlock"]


class MaskGITVQGAN(MaskGITVQGANPreTrainedModel):
    """The MaskGIT-VQGAN: `encode(pixel_values)` -> codes `[B, (H/16)*(W/16)]`, `decode(codes)` -> pixels.

    Inputs are RGB in [0, 1]; outputs are on the same scale and not clamped (clamp when converting to
    images, e.g. with [`TiTokImageProcessor.postprocess`]). Any dtype works; the codebook search runs in
    float32. `encode`/`decode` go through accelerate's hooks like `forward` (CPU offload, `device_map`).
    """

    # As a tokenizer (`TiTokTokenizer`'s interface): discrete ids, decoded from the ids alone.
    is_vq = True
    decoder_inputs: tuple[str, ...] = ()

    def __init__(self, config: MaskGITVQGANConfig):
        super().__init__(config)
        self.encoder = MaskGITVQGANEncoder(config)
        self.quantizer = MaskGITVectorQuantizer(config)
        self.decoder = MaskGITVQGANDecoder(config)
        self.post_init()

    def enable_fast_path(self, bfloat16: bool | None = None) -> "MaskGITVQGAN":
        """Switch on the CPU fast path in place (`hf_titok.fast_path`): the decoder's convolutions in bfloat16 on
        CPUs with fast bfloat16 (`fast_bfloat16()`), elsewhere through ONNX Runtime when installed. Inference only."""
        return vqgan_fast_path(self, bfloat16)

    @apply_forward_hook
    def encode(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None) -> MaskGITVQGANEncoderOutput:
        check_pixel_values(pixel_values, self.config.image_size, self.config.num_channels)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        encoded = self.encoder(pixel_values, output_hidden_states)
        latents = encoded.last_hidden_state
        codes = self.quantizer.nearest_codes(latents)
        quantized = self.quantizer.embed_codes(codes, latents.shape[-1])
        # The losses and the straight-through latents in float32, like the codebook vectors.
        latents_fp32 = latents.float()
        commitment = F.mse_loss(latents_fp32, quantized.detach())
        codebook = F.mse_loss(quantized, latents_fp32.detach())
        return MaskGITVQGANEncoderOutput(
            codes=codes,
            latents=latents,
            quantized_latents=latents_fp32 + (quantized - latents_fp32).detach(),
            quantizer_loss=self.config.commitment_cost * commitment + codebook,
            hidden_states=encoded.hidden_states,
        )

    @apply_forward_hook
    def decode(self, codes: torch.Tensor, return_dict: bool = False) -> torch.Tensor | DecoderOutput:
        """codes `[B, grid_size**2]` (int) -> pixels `[B, 3, H, W]` in the model's dtype (`return_dict=True`:
        as diffusers' `DecoderOutput(sample=pixels)`, see `decoded`)."""
        check_token_ids(codes, self.config.grid_size**2, self.config.codebook_size, what="codes")
        return decoded(
            self.decoder(self.quantizer.embed_codes(codes, self.config.grid_size)).last_hidden_state, return_dict
        )

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, return_dict: bool | None = None
    ) -> MaskGITVQGANOutput | tuple:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        encoded = self.encode(pixel_values, output_hidden_states)
        decoded = self.decoder(encoded.quantized_latents, output_hidden_states)
        reconstruction = decoded.last_hidden_state
        output = MaskGITVQGANOutput(
            loss=F.mse_loss(reconstruction.float(), pixel_values.float()) + encoded.quantizer_loss,
            reconstruction=reconstruction,
            codes=encoded.codes,
            quantizer_loss=encoded.quantizer_loss,
            encoder_hidden_states=encoded.hidden_states,
            decoder_hidden_states=decoded.hidden_states,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "MaskGITVQGAN",
    "MaskGITVQGANPreTrainedModel",
    "MaskGITVQGANEncoderOutput",
    "MaskGITVQGANOutput",
    "decoded",
    "joined_outputs",
]
