"""MaskGen-KL's Gaussian diffusion of one token (bytedance/1d-tokenizer modeling/diffusion, after IDDPM): the cosine
noise schedule over 1000 steps, epsilon prediction, a learned-range variance, and the loss the head is trained with.

`GaussianDiffusion(betas)` holds the float64 tables of one schedule - the training one (`cosine_betas`) or a
respaced one (`respaced_betas`, what the sampler runs) - and casts a coefficient to float32 where it is used, as
the official code does, so that results match it to float rounding:

- `add_noise(x0, noise, t)`: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise;
- `predicted(model_output, x_t, t)`: the head's `[eps | v]` -> the mean and log variance of p(x_{t-1} | x_t), with
  x0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps (no clipping) and log sigma^2 = f log beta_t + (1 - f) log
  sigma~_t^2, f = (v + 1) / 2;
- `training_losses(model_output, x0, x_t, t, noise)`: per row, the mean squared epsilon error plus the variational
  bound in bits computed with the epsilon prediction frozen (it trains the variance only): the KL between the true
  and the predicted posterior, or at t = 0 the discretised Gaussian likelihood of x0 (bins of 1/255).

`masked_diffusion_loss` is the official `DiffLoss.forward`: rows tiled `repeats` times, a timestep and noise drawn
for each row, the loss averaged over the masked tokens.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _cosine_alpha_bar(step: float) -> float:
    return math.cos((step + 0.008) / 1.008 * math.pi / 2) ** 2


def cosine_betas(num_train_timesteps: int) -> np.ndarray:
    """The float64 betas of the cosine schedule, beta_i = min(1 - abar((i+1)/T) / abar(i/T), 0.999)."""
    steps = num_train_timesteps
    return np.array(
        [min(1 - _cosine_alpha_bar((i + 1) / steps) / _cosine_alpha_bar(i / steps), 0.999) for i in range(steps)],
        dtype=np.float64,
    )


def respaced_betas(train_betas: np.ndarray, num_steps: int) -> tuple[list[int], np.ndarray]:
    """The training timesteps a respaced schedule of `num_steps` keeps and its betas (from the kept abar's). One
    section, as the official `space_timesteps`: round(x) for x = 0, d, 2d, ... accumulated by repeated addition,
    d = (T - 1) / (S - 1)."""
    num_train_timesteps = len(train_betas)
    alphas_cumprod = np.cumprod(1.0 - train_betas)
    stride = (num_train_timesteps - 1) / (num_steps - 1) if num_steps > 1 else 1
    kept, position = set(), 0.0
    for _ in range(num_steps):
        kept.add(round(position))
        position += stride
    kept = sorted(kept)
    last, betas = 1.0, []
    for index in kept:
        betas.append(1 - alphas_cumprod[index] / last)
        last = alphas_cumprod[index]
    return kept, np.array(betas, dtype=np.float64)


def _approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def _discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log p(x) under N(mean, exp(log_scale)^2) integrated over x's bin of width 2/255 (the edge bins open)."""
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    cdf_plus = _approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = _approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_cdf_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta))


def _normal_kl(mean1, log_variance1, mean2, log_variance2) -> torch.Tensor:
    return 0.5 * (
        -1.0
        + log_variance2
        - log_variance1
        + torch.exp(log_variance1 - log_variance2)
        + (mean1 - mean2) ** 2 * torch.exp(-log_variance2)
    )


class GaussianDiffusion:
    """The tables of one diffusion schedule (see the module docstring). Coefficients are gathered per row (`[M]`
    timesteps) or taken at one host-known index (`at`)."""

    TABLES = (
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod",
        "posterior_mean_coef1",
        "posterior_mean_coef2",
        "posterior_log_variance_clipped",
        "log_betas",
    )

    def __init__(self, betas: np.ndarray):
        betas = np.asarray(betas, dtype=np.float64)
        self.betas = betas
        self.num_timesteps = len(betas)
        cumprod = np.cumprod(1.0 - betas)
        cumprod_prev = np.append(1.0, cumprod[:-1])
        posterior_variance = betas * (1.0 - cumprod_prev) / (1.0 - cumprod)
        tables = {
            "sqrt_alphas_cumprod": np.sqrt(cumprod),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - cumprod),
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / cumprod),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / cumprod - 1),
            "posterior_mean_coef1": betas * np.sqrt(cumprod_prev) / (1.0 - cumprod),
            "posterior_mean_coef2": (1.0 - cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - cumprod),
            # The variance at t = 0 is 0: its log is clipped to the next step's, as officially.
            "posterior_log_variance_clipped": np.log(np.append(posterior_variance[1], posterior_variance[1:])),
            "log_betas": np.log(betas),
        }
        # float32 `[T, tables]`: each float64 coefficient cast once, as the official code casts it where it is used.
        self.coefficients = torch.from_numpy(np.stack([tables[name] for name in self.TABLES], axis=1)).float()
        self._coefficients_on: dict[torch.device, torch.Tensor] = {}

    def at(self, index: int, device=None) -> dict[str, torch.Tensor]:
        """The coefficients of one step (0-d float32 tensors on `device`; the table is copied there once)."""
        return dict(zip(self.TABLES, self._table_on(device)[index]))

    def _table_on(self, device) -> torch.Tensor:
        device = torch.device("cpu") if device is None else torch.device(device)
        if device not in self._coefficients_on:
            self._coefficients_on[device] = self.coefficients.to(device)
        return self._coefficients_on[device]

    def _gather(self, timesteps: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = self._table_on(timesteps.device)[timesteps].unsqueeze(-1)  # [M, tables, 1]
        return {name: rows[:, i] for i, name in enumerate(self.TABLES)}

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """q(x_t | x0) for rows `[M, C]` at timesteps `[M]`."""
        coef = self._gather(timesteps)
        return coef["sqrt_alphas_cumprod"] * x0 + coef["sqrt_one_minus_alphas_cumprod"] * noise

    @staticmethod
    def _posterior_mean(coef: dict, x0: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        return coef["posterior_mean_coef1"] * x0 + coef["posterior_mean_coef2"] * x_t

    @classmethod
    def _predicted(cls, coef: dict, model_output: torch.Tensor, x_t: torch.Tensor):
        channels = x_t.shape[-1]
        eps, variance_values = model_output[:, :channels], model_output[:, channels:]
        fraction = (variance_values + 1) / 2
        log_variance = fraction * coef["log_betas"] + (1 - fraction) * coef["posterior_log_variance_clipped"]
        x0 = coef["sqrt_recip_alphas_cumprod"] * x_t - coef["sqrt_recipm1_alphas_cumprod"] * eps
        return cls._posterior_mean(coef, x0, x_t), log_variance

    def predicted(self, model_output: torch.Tensor, x_t: torch.Tensor, timesteps: torch.Tensor | int):
        """The head's output `[M, 2C]` (eps | variance values) at x_t `[M, C]` -> (mean, log variance) of
        p(x_{t-1} | x_t); `timesteps` per row `[M]` or one index of this schedule."""
        coef = self.at(timesteps, x_t.device) if isinstance(timesteps, int) else self._gather(timesteps)
        return self._predicted(coef, model_output.float(), x_t)

    def training_losses(
        self, model_output: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, timesteps: torch.Tensor, noise
    ) -> dict[str, torch.Tensor]:
        """Per-row losses `[M]` of the head's output at x_t = `add_noise(x0, noise, timesteps)`: `mse` (epsilon),
        `vb` (the variational bound in bits, through the variance alone) and `loss` = mse + vb."""
        coef = self._gather(timesteps)
        channels = x0.shape[-1]
        model_output = model_output.float()
        mse = ((noise - model_output[:, :channels]) ** 2).mean(dim=-1)
        # The bound trains the variance: the epsilon prediction is frozen in it (the mean is the MSE's to learn).
        frozen = torch.cat([model_output[:, :channels].detach(), model_output[:, channels:]], dim=-1)
        mean, log_variance = self._predicted(coef, frozen, x_t)
        true_mean = self._posterior_mean(coef, x0, x_t)
        kl = _normal_kl(true_mean, coef["posterior_log_variance_clipped"], mean, log_variance).mean(dim=-1)
        nll = -_discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_variance).mean(dim=-1)
        vb = torch.where(timesteps == 0, nll, kl) / math.log(2.0)
        return {"loss": mse + vb, "mse": mse, "vb": vb}


def masked_diffusion_loss(
    head,
    diffusion: GaussianDiffusion,
    tokens: torch.Tensor,
    condition: torch.Tensor,
    mask: torch.Tensor,
    repeats: int = 4,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The diffusion loss of MaskGen-KL's training (the official `DiffLoss.forward` after `forward_loss`'s
    tiling): target tokens `[B, N, C]`, the transformer's condition `[B, N, D]` and `mask` `[B, N]` (1 = masked)
    flattened to rows and tiled `repeats` times (`diffusion_batch_mul`); each row draws a timestep in [0, T) and
    then its noise (in that order, from `generator` or torch's global RNG); the mean loss over masked rows."""
    target = tokens.reshape(-1, tokens.shape[-1]).repeat(repeats, 1).float()
    rows_condition = condition.reshape(-1, condition.shape[-1]).repeat(repeats, 1)
    rows_mask = mask.reshape(-1).repeat(repeats).to(target.dtype)
    timesteps = torch.randint(0, diffusion.num_timesteps, (target.shape[0],), generator=generator, device=target.device)
    noise = torch.randn(target.shape, generator=generator, device=target.device, dtype=target.dtype)
    x_t = diffusion.add_noise(target, noise, timesteps)
    losses = diffusion.training_losses(head(x_t, timesteps, rows_condition), target, x_t, timesteps, noise)
    return (losses["loss"] * rows_mask).sum() / rows_mask.sum()


__all__ = ["GaussianDiffusion", "cosine_betas", "masked_diffusion_loss", "respaced_betas"]
