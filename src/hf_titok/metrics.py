"""Image-quality and tokenizer metrics: PSNR, SSIM, codebook usage and entropy."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (`[B, C, H, W]` in [0, data_range])."""
    mse = (reconstruction.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp(min=1e-12))


def _gaussian_window(size: int, sigma: float, channels: int, device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = torch.outer(kernel / kernel.sum(), kernel / kernel.sum())
    return kernel.expand(channels, 1, size, size).contiguous()


def ssim(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image: 11x11 Gaussian window (sigma 1.5), valid
    positions only, K1 = 0.01, K2 = 0.03, averaged over channels and positions."""
    x, y = reconstruction.float(), target.float()
    channels = x.shape[1]
    window = _gaussian_window(min(window_size, x.shape[-1], x.shape[-2]), sigma, channels, x.device)

    def blur(t):
        return F.conv2d(t, window, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sigma_x = blur(x * x) - mu_x**2
    sigma_y = blur(y * y) - mu_y**2
    sigma_xy = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2))
    return ssim_map.flatten(1).mean(1)


def codebook_statistics(token_ids: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Fraction of codebook entries used, entropy of their frequencies (bits) and its perplexity."""
    counts = torch.bincount(token_ids.flatten().long(), minlength=codebook_size).double()
    probabilities = counts / counts.sum()
    nonzero = probabilities[probabilities > 0]
    entropy = float(-(nonzero * nonzero.log2()).sum())
    return {
        "codebook_usage": float((counts > 0).double().mean()),
        "codebook_entropy_bits": entropy,
        "codebook_perplexity": 2**entropy,
        "max_entropy_bits": math.log2(codebook_size),
    }


__all__ = ["codebook_statistics", "psnr", "ssim"]
