"""Image-quality and tokenizer metrics: PSNR, SSIM, codebook usage and entropy, and `ImageMetrics`, which
accumulates them with FID, Inception Score and LPIPS over batches (FID/IS through torchmetrics' metric
classes with the FID Inception network injected, see `hf_titok.inception`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from ..models.titok.image_processing_titok import to_float, to_uint8
from .inception import MISSING_WEIGHTS_HELP, InceptionLogits

# The same metrics as a 🤗 Evaluate module: `evaluate.load(EVALUATE_METRIC_PATH)`.
EVALUATE_METRIC_PATH = str(Path(__file__).parent / "evaluate_metric" / "titok_image_metrics.py")


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (`[B, C, H, W]` in [0, data_range])."""
    mse = (reconstruction.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp(min=1e-12))


def _gaussian_window(size: int, sigma: float, channels: int, device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = torch.outer(kernel / kernel.sum(), kernel / kernel.sum())
    return kernel.expand(channels, 1, size, size).contiguous()


def ssim(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
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


def set_reference_statistics(fid, mean, covariance, num_samples: int) -> None:
    """Load precomputed reference statistics (e.g. the `mu`/`sigma` of an ADM reference batch) into a
    torchmetrics `FrechetInceptionDistance` as its real-image state."""
    mean = torch.as_tensor(mean, dtype=torch.float64)
    covariance = torch.as_tensor(covariance, dtype=torch.float64)
    if covariance.shape != (mean.numel(), mean.numel()) or mean.numel() != fid.real_features_sum.numel():
        raise ValueError(
            f"reference statistics of shape {tuple(mean.shape)}/{tuple(covariance.shape)} do not match the "
            f"{fid.real_features_sum.numel()}-d features of the FID network"
        )
    # torchmetrics: mean = sum / n; covariance = (cov_sum - n * mean mean^T) / (n - 1)
    fid.real_features_sum = (mean * num_samples).to(fid.real_features_sum.device)
    fid.real_features_cov_sum = (covariance * (num_samples - 1) + num_samples * torch.outer(mean, mean)).to(
        fid.real_features_sum.device
    )
    fid.real_features_num_samples = torch.tensor(num_samples, device=fid.real_features_sum.device)


def reference_statistics(fid) -> tuple[np.ndarray, np.ndarray, int]:
    """The real-image state of a torchmetrics `FrechetInceptionDistance` as `(mu, sigma, num_images)` - what an
    ADM reference batch stores; the inverse of `set_reference_statistics`."""
    num_samples = int(fid.real_features_num_samples)
    if num_samples < 2:
        raise ValueError(f"reference statistics need at least 2 images, got {num_samples}")
    total, cov_sum = fid.real_features_sum.double().cpu(), fid.real_features_cov_sum.double().cpu()
    mean = total / num_samples
    covariance = (cov_sum - num_samples * torch.outer(mean, mean)) / (num_samples - 1)
    return mean.numpy(), covariance.numpy(), num_samples


class ImageMetrics:
    """Accumulates, over batches of real and generated/reconstructed images (uint8, or float in [0, 1]):

    - `fid` (needs a feature extractor, e.g. `InceptionFeatureExtractor`), `inception_score` (+ `_std`, over
      `inception_splits`; needs an extractor with a classifier),
    - paired metrics when both sides of a pair are given: `psnr`, `ssim` (of the uint8 images), `lpips`
      (when an `lpips` network is given),
    - `codebook_usage`, `codebook_entropy_bits`, `codebook_perplexity` of the token ids seen.
    """

    def __init__(
        self,
        feature_extractor=None,
        compute_fid: bool = True,
        compute_inception_score: bool = False,
        lpips=None,
        codebook_size: int | None = None,
        inception_splits: int = 10,
    ):
        if (compute_fid or compute_inception_score) and feature_extractor is None:
            raise ValueError(f"FID/IS need a feature extractor. {MISSING_WEIGHTS_HELP}")
        self.fid = (
            FrechetInceptionDistance(feature=feature_extractor, reset_real_features=False) if compute_fid else None
        )
        self.inception_score = (
            InceptionScore(feature=InceptionLogits(feature_extractor), splits=inception_splits)
            if compute_inception_score
            else None
        )
        self.lpips, self.codebook_size = lpips, codebook_size
        self.sums: dict[str, float] = {}
        self.count = 0
        self.token_ids: list[torch.Tensor] = []

    @torch.no_grad()
    def update(
        self, real: torch.Tensor | None = None, fake: torch.Tensor | None = None, token_ids: torch.Tensor | None = None
    ) -> None:
        """`real`/`fake`: `[B, 3, H, W]` images (uint8, or float in [0, 1] - quantised like the official
        evaluators); when both are given they are pairs (reconstructions of the real images)."""
        real = to_uint8(real) if real is not None else None
        fake = to_uint8(fake) if fake is not None else None
        if self.fid is not None:
            if real is not None:
                self.fid.update(real, real=True)
            if fake is not None:
                self.fid.update(fake, real=False)
        if self.inception_score is not None and fake is not None:
            self.inception_score.update(fake)
        if real is not None and fake is not None:
            x, y = to_float(fake), to_float(real)
            values = {"psnr": psnr(x, y), "ssim": ssim(x, y)}
            if self.lpips is not None:
                values["lpips"] = self.lpips(x, y)
            for name, value in values.items():
                self.sums[name] = self.sums.get(name, 0.0) + float(value.double().sum())
            self.count += real.shape[0]
        if token_ids is not None:
            self.token_ids.append(token_ids.detach().cpu())

    def compute(self) -> dict[str, float]:
        results = {name: total / self.count for name, total in self.sums.items()} if self.count else {}
        if self.fid is not None:
            results["fid"] = float(self.fid.compute())
        if self.inception_score is not None:
            mean, std = self.inception_score.compute()
            results["inception_score"], results["inception_score_std"] = float(mean), float(std)
        if self.token_ids and self.codebook_size:
            results.update(codebook_statistics(torch.cat(self.token_ids), self.codebook_size))
        return results


def make_compute_metrics(feature_extractor=None, compute_fid: bool = True, lpips=None, batch_size: int = 64):
    """A `compute_metrics` for `Trainer.evaluate` of the pixel-space recipes (VQGAN, stage 2, single stage),
    whose wrappers return `(reconstruction, target)` uint8 images as predictions in evaluation mode:
    PSNR, SSIM, FID (with `feature_extractor`, e.g. `InceptionFeatureExtractor.from_file(...)`), LPIPS."""

    def compute_metrics(eval_prediction) -> dict[str, float]:
        reconstruction, target = (torch.as_tensor(array) for array in eval_prediction.predictions[:2])
        metrics = ImageMetrics(feature_extractor, compute_fid=compute_fid, lpips=lpips)
        for start in range(0, reconstruction.shape[0], batch_size):
            metrics.update(
                real=target[start : start + batch_size].to(torch.uint8),
                fake=reconstruction[start : start + batch_size].to(torch.uint8),
            )
        return metrics.compute()

    return compute_metrics


__all__ = [
    "EVALUATE_METRIC_PATH",
    "ImageMetrics",
    "make_compute_metrics",
    "codebook_statistics",
    "psnr",
    "reference_statistics",
    "set_reference_statistics",
    "ssim",
]
