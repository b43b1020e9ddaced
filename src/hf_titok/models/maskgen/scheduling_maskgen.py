"""The samplers of MaskGen (bytedance/1d-tokenizer modeling/maskgen.py, modeling/diffusion/) as diffusers
schedulers.

`MaskGenVQScheduler` (MaskGen-VQ `generate`): TiTok's confidence-based unmasking (`unmask_step`, the arccos
schedule, Gumbel annealing, softmax-temperature annealing) with MaskGen's guidance: `cond + s (cond - uncond)`
where, with r = (step + 1) / steps and p = `guidance_scale_pow`, s is `cosine` 1 + (g - 1)(1 - cos(pi r^p)) / 2,
`flippedcosine` 1 + (g - 1) cos(pi r^p) / 2, `linear` 1 + (g - 1) r or `none` g. An image variation
(`num_masked_tokens`) runs the arccos schedule over its masked positions.

`MaskGenKLScheduler` (MaskGen-KL `sample_tokens`): each image's tokens are predicted in a random order drawn
from the pipeline's `generator`; step s keeps the first floor(N cos(pi/2 (s+1)/steps)) positions of the order
masked (clamped to [1, masked - 1]) and samples the others with the diffusion head, through the respaced
IDDPM reverse process (cosine schedule over 1000 steps, learned-range variance, epsilon prediction, no clipping;
the head sees the original timestep indices; `temperature` multiplies the noise). Guidance: `linear` 1 + (g - 1)
(N - masked after the step) / N, or `constant` g, applied to the noise prediction only (N: the tokens, or the
masked ones when an image variation starts partly masked, as in the VQ schedule). Every count is known on
the host in advance, so the loops read nothing back from the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config

# diffusers' pipeline loader finds how to load a component by looking its base class up by name in the component's
# own module, so the module must hold SchedulerMixin.
from diffusers.schedulers.scheduling_utils import SchedulerMixin  # noqa: F401
from diffusers.utils import BaseOutput

from ...releases import maskgen_preset
from ...utils.sampling_settings import (
    MASKGEN_KL_GUIDANCE_SCHEDULES,
    MASKGEN_VQ_GUIDANCE_SCHEDULES,
    sampler_settings,
)
from ...utils.scheduling_utils import SamplerMixin, check_steps, check_steps_fit
from ...utils.torch_utils import GeneratorType, randn_tensor, random_orders
from ..titok_maskgit.scheduling_titok_maskgit import unmask_step
from .diffusion_maskgen import GaussianDiffusion, cosine_betas, respaced_betas

# The defaults of a scheduler built without settings: the released MaskGen-L settings (the release table's).
_VQ_DEFAULTS = maskgen_preset("maskgen_vq_l")
_KL_DEFAULTS = maskgen_preset("maskgen_kl_l")


@dataclass
class MaskGenSchedulerOutput(BaseOutput):
    """`prev_sample`: ids (VQ) or tokens `[B, N, C]` (KL) after the step; `pred_original_sample`: this step's
    prediction for every position (VQ: the candidates; KL: the tokens so far, including this step's)."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class MaskGenVQScheduler(SamplerMixin, ConfigMixin):
    """MaskGen-VQ's sampler (see the module docstring). Defaults: the released MaskGen-VQ-L settings (the official
    README's call: 16 steps, guidance 12 with the cosine schedule, Gumbel temperature 2.0), with noisy confidence
    ranking.

    Args:
        num_inference_steps (`int`, defaults to 16), guidance_scale (`float`, defaults to 12.0; 0: no guidance),
        guidance_schedule (`str`, defaults to `"cosine"`: one of `cosine`, `flippedcosine`, `linear`, `none`),
        guidance_scale_pow (`float`, defaults to 1.0), temperature (`float`, defaults to 2.0: the Gumbel noise
        temperature, annealed linearly to 0), prob_sorting (`bool`, defaults to `True`: rank candidates by their
        logit plus Gumbel noise rather than by the logit).
    """

    order = 1
    settings = sampler_settings(
        "num_inference_steps",
        "guidance_scale",
        "guidance_schedule",
        "guidance_scale_pow",
        "temperature",
        guidance_schedule=MASKGEN_VQ_GUIDANCE_SCHEDULES,
    )

    @register_to_config
    def __init__(
        self,
        num_inference_steps: int = _VQ_DEFAULTS.num_inference_steps,
        guidance_scale: float = _VQ_DEFAULTS.guidance_scale,
        guidance_schedule: str = _VQ_DEFAULTS.guidance_schedule,
        guidance_scale_pow: float = 1.0,  # the official generate()'s
        temperature: float = _VQ_DEFAULTS.temperature,
        prob_sorting: bool = True,
    ):
        arguments = locals()
        self.check_settings({name: arguments[name] for name in self.setting_names()})
        self.num_inference_steps = None
        self.num_masked_tokens = None
        self.timesteps = None
        self.guidance_scales = None

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device=None,
        num_tokens: int | None = None,
        num_masked_tokens: int | None = None,
    ) -> None:
        """Prepare a run of `num_inference_steps` (default: the config's) over `num_tokens` tokens (when given,
        more steps than tokens are refused); `num_masked_tokens`: how many positions the run starts with masked
        when that is not all of them (image variations): the unmasking schedule then runs over those."""
        steps = self.config.num_inference_steps if num_inference_steps is None else check_steps(num_inference_steps)
        self.num_masked_tokens = None
        if num_masked_tokens is not None:
            self.num_masked_tokens = check_steps(num_masked_tokens, "num_masked_tokens")
        if num_masked_tokens or num_tokens:
            check_steps_fit(steps, num_masked_tokens or num_tokens)
        self.num_inference_steps = steps
        self.timesteps = torch.arange(steps)
        unguided = self.config.guidance_scale == 0
        scales = [self._guidance_scale(step) for step in range(steps)]
        self.guidance_scales = [None if unguided or scale == 0 else scale for scale in scales]

    def _guidance_scale(self, step: int) -> float:
        config = self.config
        ratio = (step + 1) / self.num_inference_steps
        scale, power = config.guidance_scale, config.guidance_scale_pow
        if config.guidance_schedule == "cosine":
            return 1 + (scale - 1) * (1 - math.cos(math.pi * ratio**power)) / 2
        if config.guidance_schedule == "flippedcosine":
            return 1 + (scale - 1) * math.cos(math.pi * ratio**power) / 2
        if config.guidance_schedule == "linear":
            return 1 + (scale - 1) * ratio
        return scale

    def apply_guidance(self, cond_logits, uncond_logits, timestep) -> torch.Tensor:
        """MaskGen-VQ's guidance `cond + s (cond - uncond)`, in float32."""
        cond_logits, uncond_logits = cond_logits.float(), uncond_logits.float()
        return cond_logits + (cond_logits - uncond_logits) * self.guidance_scale_at(timestep)

    def step(self, model_output, timestep, sample, generator: GeneratorType = None, return_dict: bool = True):
        """One unmasking step over guided logits `[B, N, K]` and the current ids `[B, N]`; `generator` draws the
        Gumbel noise (torch's global RNG when None, as officially: one uniform `[B, N, K]`, then `[B, N]`)."""
        step, steps = int(timestep), self.num_inference_steps
        ratio = (step + 1) / steps
        prev_sample, candidates = unmask_step(
            model_output,
            sample,
            ratio,
            step == steps - 1,
            self.num_masked_tokens or sample.shape[1],
            self.config.temperature * (1.0 - ratio),
            True,
            generator,
            noisy_confidence=self.config.prob_sorting,
        )
        if not return_dict:
            return (prev_sample, candidates)
        return MaskGenSchedulerOutput(prev_sample=prev_sample, pred_original_sample=candidates)


class MaskGenKLScheduler(SamplerMixin, ConfigMixin):
    """MaskGen-KL's sampler: the random-order token schedule and the respaced diffusion process of its head (see
    the module docstring). Defaults: the released MaskGen-KL-L inference config (32 steps, guidance 3.0 linear,
    temperature 1.0, 100 diffusion steps).

    Args:
        num_inference_steps (`int`, defaults to 32): token steps (`num_iter`).
        guidance_scale (`float`, defaults to 3.0; 0 or 1: no guidance), guidance_schedule (`str`, defaults to
        `"linear"`; or `"constant"`), temperature (`float`, defaults to 1.0: multiplies the diffusion noise),
        num_diffusion_steps (`int`, defaults to 100): respaced reverse-diffusion steps per token step,
        num_train_timesteps (`int`, defaults to 1000): the head's training schedule.
    """

    order = 1
    settings = sampler_settings(
        "num_inference_steps",
        "guidance_scale",
        "guidance_schedule",
        "temperature",
        guidance_schedule=MASKGEN_KL_GUIDANCE_SCHEDULES,
    )

    @register_to_config
    def __init__(
        self,
        num_inference_steps: int = _KL_DEFAULTS.num_inference_steps,
        guidance_scale: float = _KL_DEFAULTS.guidance_scale,
        guidance_schedule: str = _KL_DEFAULTS.guidance_schedule,
        temperature: float = _KL_DEFAULTS.temperature,
        num_diffusion_steps: int = _KL_DEFAULTS.num_diffusion_steps,
        num_train_timesteps: int = 1000,
    ):
        arguments = locals()
        self.check_settings({name: arguments[name] for name in self.setting_names()})
        check_steps(num_train_timesteps, "num_train_timesteps")
        check_steps(num_diffusion_steps, "num_diffusion_steps", maximum=num_train_timesteps)
        self._set_diffusion(num_diffusion_steps, num_train_timesteps)
        self.num_inference_steps = None
        self.timesteps = None

    # ---- the diffusion process (`diffusion_maskgen`: float64 tables, coefficients cast to float32 where used) ----

    def _set_diffusion(self, num_diffusion_steps: int, num_train_timesteps: int) -> None:
        self.train_betas = cosine_betas(num_train_timesteps)
        kept, self.betas = respaced_betas(self.train_betas, num_diffusion_steps)
        self.timestep_map = torch.tensor(kept, dtype=torch.long)
        self.diffusion = GaussianDiffusion(self.betas)

    def diffusion_step(
        self, model_output: torch.Tensor, index: int, sample: torch.Tensor, noise: torch.Tensor | None, temperature
    ) -> torch.Tensor:
        """One reverse step of the respaced process at respaced index `index` (S-1 down to 0): the head's output
        `[M, 2C]` (eps | variance values) and x_t `[M, C]` -> x_{t-1}; `noise` `[M, C]` (unused at index 0)."""
        mean, log_variance = self.diffusion.predicted(model_output, sample, index)
        if index == 0:
            return mean
        return mean + torch.exp(0.5 * log_variance) * noise * temperature

    # Rows x steps of the head's modulations computed in one call (each holds 26 x head width floats, ~100 KB at
    # width 1024): bounds `step_modulations`' memory to ~100 MB whatever the batch; one image's guided run (2 rows
    # x 100 steps) takes one call per token step.
    MODULATION_ROWS = 1024

    def sample_tokens(
        self,
        head,
        condition: torch.Tensor,
        guidance_scale,
        noise: torch.Tensor,
        temperature: float,
        generator: GeneratorType = None,
    ) -> torch.Tensor:
        """Sample `M` tokens with the diffusion head from `noise` `[M, C]` (the initial x_T). With guidance
        (`guidance_scale` not None) `condition` is `[2M, D]`, `[conditional; unconditional]`, and the state is
        doubled as officially (each step draws `[2M, C]` noise; the first half is returned). The head's
        modulations of the known timesteps are computed in batched calls ahead of the steps
        (`MaskGenDiffusionHead.step_modulations`), each step runs the head's `denoise` only."""
        guided = guidance_scale is not None
        sample = torch.cat([noise, noise]) if guided else noise
        timesteps = self.timestep_map.flip(0).to(sample.device)  # the reverse order of the steps
        chunk = max(1, self.MODULATION_ROWS // condition.shape[0])
        for first in range(0, len(timesteps), chunk):
            modulations = head.step_modulations(timesteps[first : first + chunk], condition)
            for offset in range(len(modulations[0])):
                step_modulations = [modulation[offset] for modulation in modulations]
                if guided:
                    output = head.guided_denoise(sample, step_modulations, guidance_scale)
                else:
                    output = head.denoise(sample, step_modulations)
                step_noise = self._step_noise(sample, noise.shape[0], generator)
                index = len(timesteps) - 1 - (first + offset)
                sample = self.diffusion_step(output, index, sample, step_noise, temperature)
        return sample[: noise.shape[0]]

    @staticmethod
    def _step_noise(sample: torch.Tensor, num_rows: int, generator: GeneratorType) -> torch.Tensor:
        """The noise of one reverse step, drawn at every step (the last, noise-free one included) in the state's
        shape, as officially. With one generator per image, each image's rows (image-major within the first
        `num_rows`) come from its own generator; the unconditional half's state never reaches the result."""
        if not isinstance(generator, (list, tuple)):
            return randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=torch.float32)
        rows = randn_tensor(
            (len(generator), num_rows // len(generator), sample.shape[-1]),
            generator=generator,
            device=sample.device,
            dtype=torch.float32,
        ).reshape(num_rows, -1)
        return rows.repeat(sample.shape[0] // num_rows, 1)

    # ---- the token schedule ----

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device=None,
        num_tokens: int | None = None,
        num_masked_tokens: int | None = None,
    ):
        """Prepare a run over `num_tokens` tokens: `masked_after[s]` (positions still masked after step s),
        `guidance_scales[s]` (None when the step needs no unconditional pass: guidance 0, or 1 where the official
        formula gives the conditional prediction). `num_masked_tokens`: how many positions (the first of each
        order) the run starts with masked when that is not all of them (image variations); the token schedule and
        the linear guidance then count over those."""
        if num_tokens is None:
            raise ValueError("MaskGen-KL's token schedule needs num_tokens (the generator's num_latent_tokens)")
        num_tokens = check_steps(num_tokens, "num_tokens")
        steps = self.config.num_inference_steps if num_inference_steps is None else check_steps(num_inference_steps)
        scheduled = num_tokens
        if num_masked_tokens is not None:
            scheduled = check_steps(num_masked_tokens, "num_masked_tokens", maximum=num_tokens)
        check_steps_fit(steps, scheduled)
        scale, schedule = self.config.guidance_scale, self.config.guidance_schedule
        self.num_inference_steps, self.num_tokens = steps, num_tokens
        self.timesteps = torch.arange(steps)
        masked, self.masked_before, self.masked_after = scheduled, [], []
        for step in range(steps):
            after = max(1, min(masked - 1, math.floor(scheduled * math.cos(math.pi / 2 * (step + 1) / steps))))
            after = 0 if step == steps - 1 else after
            self.masked_before.append(masked)
            self.masked_after.append(after)
            masked = after
        guided = scale not in (0.0, 1.0)
        self.guidance_scales = [
            (1 + (scale - 1) * (scheduled - max(after, 1)) / scheduled if schedule == "linear" else scale)
            if guided
            else None
            for after in self.masked_after
        ]

    def step(
        self,
        model_output: torch.Tensor,
        timestep,
        sample: torch.Tensor,
        generator: GeneratorType = None,
        return_dict: bool = True,
        *,
        token_orders: torch.LongTensor,
        diffusion_head,
        noise: torch.Tensor | None = None,
    ):
        """One token step: the transformer's conditions `model_output` (`[B, N, D]`, or `[2B, N, D]` with the
        unconditional rows after the conditional ones when the step is guided) and the current scaled tokens
        `sample` `[B, N, C]` -> the tokens with this step's positions (`positions_at`) sampled by `diffusion_head`
        through the reverse diffusion. Each position starts from `noise` `[B, N, C]` (a recorded run) or from
        noise drawn from `generator` for this step, as officially."""
        batch_size, _, channels = sample.shape
        scale = self.guidance_scale_at(timestep)
        positions = self.positions_at(token_orders, timestep)  # [B, k]
        count = positions.shape[1]
        rows = positions.repeat(2, 1) if scale is not None else positions
        selected = model_output.gather(1, rows.unsqueeze(-1).expand(-1, -1, model_output.shape[-1]))
        if noise is None:  # drawn step by step, as officially: a seeded run matches given the same orders
            start = randn_tensor((batch_size, count, channels), generator=generator, device=sample.device)
        else:
            start = noise.gather(1, positions.unsqueeze(-1).expand(-1, -1, channels))
        sampled = self.sample_tokens(
            diffusion_head,
            selected.reshape(-1, model_output.shape[-1]),
            scale,
            start.reshape(-1, channels),
            self.config.temperature,
            generator,
        )
        prev_sample = sample.scatter(
            1,
            positions.unsqueeze(-1).expand(-1, -1, channels),
            sampled.view(batch_size, count, channels).to(sample.dtype),
        )
        if not return_dict:
            return (prev_sample, sampled)
        return MaskGenSchedulerOutput(prev_sample=prev_sample, pred_original_sample=prev_sample)

    def random_orders(self, batch_size: int, generator: GeneratorType = None, device=None) -> torch.LongTensor:
        """One random permutation of the positions per image, from `generator` (one per image, or shared)."""
        return random_orders(batch_size, self.num_tokens, generator, device)

    def mask_at(self, orders: torch.LongTensor, timestep) -> torch.Tensor:
        """Which positions are masked when step `timestep` starts (True = masked): the first
        `masked_before[step]` positions of each order."""
        masked = self.masked_before[int(timestep)]
        mask = torch.zeros(orders.shape, dtype=torch.bool, device=orders.device)
        return mask.scatter(1, orders[:, :masked], True)

    def positions_at(self, orders: torch.LongTensor, timestep) -> torch.LongTensor:
        """The positions step `timestep` samples, `[B, k]`, ascending in each row (the official row order)."""
        step = int(timestep)
        return orders[:, self.masked_after[step] : self.masked_before[step]].sort(dim=-1).values


__all__ = ["MaskGenKLScheduler", "MaskGenSchedulerOutput", "MaskGenVQScheduler"]
