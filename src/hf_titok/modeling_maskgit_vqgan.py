"""The MaskGIT-VQGAN: TiTok's proxy-code teacher (stage 1) and the pixel decoder of two-stage TiTok.

A convolutional VQGAN with no attention layers, as released by MaskGIT (JAX) and ported by open-muse.
Module names follow the released checkpoint (`conv_in`, `down.{i}.block.{j}`, `mid`, `up.{i}`,
`norm_out`, `conv_out`), so weights convert one to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_maskgit_vqgan import MaskGITVQGANConfig
from .loading import StrictLoadingMixin
from .input_checks import check_pixel_values, check_token_ids


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
        self.mid = nn.ModuleList(MaskGITResnetBlock(config, widths[-1], widths[-1]) for _ in range(config.num_res_blocks))
        self.norm_out = nn.GroupNorm(config.norm_num_groups, widths[-1], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(widths[-1], config.z_channels, 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # channels-last activations make the CPU (oneDNN) convolutions ~1.2x faster
        hidden_states = self.conv_in(pixel_values.contiguous(memory_format=torch.channels_last))
        for i, level in enumerate(self.down):
            hidden_states = level(hidden_states)
            if i < len(self.down) - 1:
                hidden_states = F.avg_pool2d(hidden_states, kernel_size=2, stride=2)
        for block in self.mid:
            hidden_states = block(hidden_states)
        return self.conv_out(F.silu(self.norm_out(hidden_states))).contiguous()


class MaskGITVQGANDecoder(nn.Module):
    """Latent grid [B, z_channels, h, w] -> image [B, 3, h*f, w*f] (not clamped)."""

    def __init__(self, config: MaskGITVQGANConfig):
        super().__init__()
        widths = [config.hidden_channels * m for m in config.channel_mult]
        self.conv_in = nn.Conv2d(config.z_channels, widths[-1], 3, padding=1)
        self.mid = nn.ModuleList(MaskGITResnetBlock(config, widths[-1], widths[-1]) for _ in range(config.num_res_blocks))
        # `up[i]` works at the resolution of encoder level i; it is applied deepest level first.
        in_widths = widths[1:] + widths[-1:]
        self.up = nn.ModuleList(
            MaskGITResolutionLevel(config, in_widths[i], widths[i], upsample=i > 0) for i in range(len(widths))
        )
        self.norm_out = nn.GroupNorm(config.norm_num_groups, widths[0], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(widths[0], config.num_channels, 3, padding=1)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        # channels-last activations make the CPU (oneDNN) convolutions ~1.2x faster
        hidden_states = self.conv_in(latents.contiguous(memory_format=torch.channels_last))
        for block in self.mid:
            hidden_states = block(hidden_states)
        for level in reversed(self.up):
            hidden_states = level(hidden_states)
        return self.conv_out(F.silu(self.norm_out(hidden_states))).contiguous()


class MaskGITVectorQuantizer(nn.Module):
    """Nearest-neighbour (Euclidean, unnormalised) codebook of the VQGAN."""

    def __init__(self, config: MaskGITVQGANConfig):
        super().__init__()
        self.embedding = nn.Embedding(config.codebook_size, config.z_channels)

    def nearest_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] -> codes [B, h*w] (row-major over h, w)."""
        flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        codebook = self.embedding.weight
        distances = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.t()
        return distances.argmin(dim=1).view(latents.shape[0], -1)

    def embed_codes(self, codes: torch.Tensor, grid_size: int) -> torch.Tensor:
        """codes [B, h*w] -> latent grid [B, C, h, w]."""
        return self.embedding(codes).view(codes.shape[0], grid_size, grid_size, -1).permute(0, 3, 1, 2)

    def embed_soft(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Soft mixture of code vectors: probabilities [B, K, h, w] -> latent grid [B, C, h, w]."""
        return torch.einsum("bkhw,kc->bchw", probabilities, self.embedding.weight)


@dataclass
class MaskGITVQGANEncoderOutput(ModelOutput):
    """
    Args:
        codes (`torch.LongTensor` of shape `(batch_size, grid_size**2)`):
            Nearest codebook entry per latent position, row-major over the grid.
        latents (`torch.FloatTensor` of shape `(batch_size, z_channels, grid_size, grid_size)`):
            The continuous encoder output before quantization.
        quantized_latents (`torch.FloatTensor` of shape `(batch_size, z_channels, grid_size, grid_size)`):
            Codebook vectors of `codes`, with the straight-through gradient to `latents`.
        quantizer_loss (`torch.FloatTensor` of shape `()`):
            `commitment_cost * commitment + codebook` loss, for training the VQGAN.
    """

    codes: torch.LongTensor | None = None
    latents: torch.FloatTensor | None = None
    quantized_latents: torch.FloatTensor | None = None
    quantizer_loss: torch.FloatTensor | None = None


@dataclass
class MaskGITVQGANOutput(ModelOutput):
    """
    Args:
        reconstruction (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
            Decoded pixels, nominally in [0, 1] and not clamped.
        codes (`torch.LongTensor` of shape `(batch_size, grid_size**2)`): the codes of the input.
        quantizer_loss (`torch.FloatTensor` of shape `()`): see [`MaskGITVQGANEncoderOutput`].
    """

    reconstruction: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    quantizer_loss: torch.FloatTensor | None = None


class MaskGITVQGANPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config: MaskGITVQGANConfig
    config_class = MaskGITVQGANConfig
    base_model_prefix = "maskgit_vqgan"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["MaskGITResnetBlock"]


class MaskGITVQGAN(MaskGITVQGANPreTrainedModel):
    """The MaskGIT-VQGAN: `encode(pixel_values)` -> codes `[B, (H/16)*(W/16)]`, `decode(codes)` -> pixels.

    Inputs are RGB in [0, 1]; outputs are on the same scale and not clamped (clamp when converting to
    images, e.g. with [`TiTokImageProcessor.postprocess`]).
    """

    def __init__(self, config: MaskGITVQGANConfig):
        super().__init__(config)
        self.encoder = MaskGITVQGANEncoder(config)
        self.quantizer = MaskGITVectorQuantizer(config)
        self.decoder = MaskGITVQGANDecoder(config)
        self.post_init()

    def encode(self, pixel_values: torch.Tensor) -> MaskGITVQGANEncoderOutput:
        check_pixel_values(pixel_values, self.config.image_size, self.config.num_channels)
        latents = self.encoder(pixel_values)
        codes = self.quantizer.nearest_codes(latents)
        quantized = self.quantizer.embed_codes(codes, latents.shape[-1])
        commitment = F.mse_loss(latents, quantized.detach())
        codebook = F.mse_loss(quantized, latents.detach())
        return MaskGITVQGANEncoderOutput(
            codes=codes,
            latents=latents,
            quantized_latents=latents + (quantized - latents).detach(),
            quantizer_loss=self.config.commitment_cost * commitment + codebook,
        )

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[B, grid_size**2]` (int) -> pixels `[B, 3, H, W]`."""
        check_token_ids(codes, self.config.grid_size**2, self.config.codebook_size, what="codes")
        return self.decoder(self.quantizer.embed_codes(codes, self.config.grid_size))

    def forward(self, pixel_values: torch.Tensor, return_dict: bool = True) -> MaskGITVQGANOutput | tuple:
        encoded = self.encode(pixel_values)
        reconstruction = self.decoder(encoded.quantized_latents)
        output = MaskGITVQGANOutput(
            reconstruction=reconstruction, codes=encoded.codes, quantizer_loss=encoded.quantizer_loss
        )
        return output if return_dict else output.to_tuple()


__all__ = ["MaskGITVQGAN", "MaskGITVQGANPreTrainedModel", "MaskGITVQGANEncoderOutput", "MaskGITVQGANOutput"]
