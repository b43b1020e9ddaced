"""The PatchGAN discriminator and GAN losses of the official stage-2 / single-stage recipes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BlurDownsample(nn.Module):
    """Blur with the separable (1, 3, 3, 1) kernel, then stride-2 subsampling (anti-aliased downsampling)."""

    def __init__(self, channels: int):
        super().__init__()
        kernel = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = torch.outer(kernel, kernel)
        self.register_buffer("kernel", (kernel / kernel.sum()).expand(channels, 1, 4, 4).clone(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 2, 1, 2), mode="reflect"), self.kernel, stride=2, groups=self.channels)


class NLayerDiscriminator(nn.Module):
    """Conv5x5 -> LeakyReLU(0.1); per stage Conv3x3 -> blur-downsample -> GroupNorm(32) -> LeakyReLU;
    adaptive max-pool to 16x16; 1x1 conv -> LeakyReLU; 5x5 conv to one logit map."""

    def __init__(
        self,
        num_channels: int = 3,
        hidden_channels: int = 128,
        channel_mult: tuple[int, ...] = (1, 2, 4),
        num_groups: int = 32,
        pool_size: int = 16,
    ):
        super().__init__()
        layers = [nn.Conv2d(num_channels, hidden_channels, 5, padding=2), nn.LeakyReLU(0.1)]
        in_channels = hidden_channels
        for mult in channel_mult:
            out_channels = hidden_channels * mult
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1),
                BlurDownsample(out_channels),
                nn.GroupNorm(min(num_groups, out_channels), out_channels),
                nn.LeakyReLU(0.1),
            ]
            in_channels = out_channels
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(pool_size)
        self.to_logits = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 1), nn.LeakyReLU(0.1), nn.Conv2d(in_channels, 1, 5, padding=2)
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.to_logits(self.pool(self.blocks(pixel_values)))


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


class LeCamRegularizer(nn.Module):
    """LeCam regularisation (Tseng et al. 2021) with EMA anchors of the mean real/fake logits; the anchors
    are buffers, so they are checkpointed with the model."""

    def __init__(self, decay: float = 0.999):
        super().__init__()
        self.decay = decay
        self.register_buffer("real_ema", torch.zeros(()))
        self.register_buffer("fake_ema", torch.zeros(()))

    def forward(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                means = torch.stack([real_logits.mean(), fake_logits.mean()]).float()
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    # anchors of the global batch, so every data-parallel process keeps the same buffers
                    torch.distributed.all_reduce(means)
                    means /= torch.distributed.get_world_size()
                self.real_ema.mul_(self.decay).add_(means[0], alpha=1 - self.decay)
                self.fake_ema.mul_(self.decay).add_(means[1], alpha=1 - self.decay)
        return F.relu(real_logits - self.fake_ema).pow(2).mean() + F.relu(self.real_ema - fake_logits).pow(2).mean()


__all__ = ["NLayerDiscriminator", "LeCamRegularizer", "hinge_discriminator_loss"]
