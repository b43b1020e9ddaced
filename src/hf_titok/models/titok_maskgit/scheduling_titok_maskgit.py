"""The MaskGIT sampler of official TiTok as a diffusers scheduler.

Sampling starts from all-mask ids and, over T steps, predicts every masked position, keeps the most
confident predictions and re-masks the rest, following an arccos schedule. Per step s (r = (s + 1) / T):

1. guidance scale: `constant` -> g; `linear` -> g * s / T; `power-cosine` -> (g - 1) * (1 - cos(pi * (s/T)^p)) / 2 + 1;
   the pipeline combines conditional and unconditional logits with [`~TiTokMaskGITScheduler.apply_guidance`]:
   `cond + g_s * (cond - uncond)` for `constant`/`linear`, `uncond + g_s * (cond - uncond)` for `power-cosine`
   (the official formulas), and skips the unconditional pass when g_s = 0;
2. optional softmax-temperature annealing: logits / (0.5 + 0.8 * (1 - r));
3. candidates: argmax(logits + t_s * Gumbel) with t_s = temperature * (1 - r); confidence = the candidate's
   logit + t_s * fresh Gumbel noise; already decoded positions are kept with infinite confidence;
4. floor(N * arccos(r) / (pi / 2)) positions (clamped to [1, masked - 1], each row counting its own masked
   positions on the device, so no value is read back to the host) with the lowest confidence are re-masked;
   the last step accepts every candidate. Rows start with the same number of masked positions and unmask
   the scheduled number each step, so this is the official count (which reads the first row's). N is the
   sequence length, or `num_masked_tokens` when sampling starts from a partly masked sequence (image
   variations): the same schedule then runs over the masked positions only.

The mask id is the number of image ids K, which is the size of the logits' last dimension (ids `0..K-1` are
image ids, `K` the mask, in every TiTok generator), so the scheduler needs no copy of it.

The sampling recipe (steps, guidance, temperatures) is this scheduler's configuration, saved as
`scheduler/scheduler_config.json` in every pipeline repo; [`TiTokMaskGITScheduler.from_preset`] gives the
official gFID settings of the released generators.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config

# diffusers' pipeline loader finds how to load a component by looking its base class up by name in the component's
# own module, so the module must hold SchedulerMixin.
from diffusers.schedulers.scheduling_utils import SchedulerMixin  # noqa: F401
from diffusers.utils import BaseOutput

from ...releases import generator_preset
from ...utils.legacy import without_legacy_scheduler_keys
from ...utils.sampling_settings import SAMPLER_SETTINGS
from ...utils.scheduling_utils import SamplerMixin, check_steps, check_steps_fit
from ...utils.torch_utils import GeneratorType, rand_tensor

# The defaults of a scheduler built without settings: TiTok-L-32's official gFID sampling (the release table's).
_DEFAULTS = generator_preset("titok_l32").sampling


@dataclass
class TiTokMaskGITSchedulerOutput(BaseOutput):
    """
    Args:
        prev_sample (`torch.LongTensor` of shape `(batch_size, num_tokens)`):
            Ids after this step: decoded ids, and the mask id where positions stay or become masked.
        pred_original_sample (`torch.LongTensor` of shape `(batch_size, num_tokens)`):
            This step's prediction for every position (the candidates, before re-masking).
    """

    prev_sample: torch.LongTensor
    pred_original_sample: torch.LongTensor


def _gumbel(shape, generator: GeneratorType, device) -> torch.Tensor:
    """Gumbel noise in float32, drawn from uniforms as officially (logs clamped at 1e-20)."""
    uniform = rand_tensor(shape, generator=generator, device=device)
    return -torch.log((-torch.log(uniform.clamp(min=1e-20))).clamp(min=1e-20))


def unmask_step(
    model_output: torch.Tensor,
    sample: torch.LongTensor,
    ratio: float,
    last_step: bool,
    scheduled_tokens: int,
    gumbel_temperature: float,
    softmax_temperature_annealing: bool,
    generator: GeneratorType,
    noisy_confidence: bool = True,
) -> tuple[torch.LongTensor, torch.LongTensor]:
    """The confidence-based unmasking step of MaskGIT as TiTok and MaskGen-VQ release it (see the module
    docstring, steps 2-4): guided logits `[B, N, K]` and the current ids -> (ids after the step, candidates).
    `ratio` = (step + 1) / steps; `scheduled_tokens`: the N of the arccos schedule; `noisy_confidence`: rank by
    the candidate's logit plus Gumbel noise (False: by the logit alone, MaskGen's `prob_sorting=False`)."""
    device = model_output.device
    # float32: the Gumbel-max choice and the confidence ranking compare logits to ~1e-3
    logits = model_output.float()
    if softmax_temperature_annealing:
        logits = logits / (0.5 + 0.8 * (1 - ratio))
    mask_token_id = logits.shape[-1]  # ids 0..K-1 are image ids, K is the mask
    is_masked = sample == mask_token_id
    candidates = (logits + gumbel_temperature * _gumbel(logits.shape, generator, device)).argmax(dim=-1)
    candidate_logits = logits.gather(-1, candidates.unsqueeze(-1)).squeeze(-1)
    candidates = torch.where(is_masked, candidates, sample)
    confidence = torch.where(is_masked, candidate_logits, torch.full_like(candidate_logits, math.inf))
    if noisy_confidence:
        confidence = confidence + gumbel_temperature * _gumbel(confidence.shape, generator, device)
    if last_step:
        return candidates, candidates
    num_to_mask = math.floor(scheduled_tokens * (math.acos(ratio) / (math.pi * 0.5)))
    # Clamped to [1, masked - 1] per row, on the device.
    num_to_mask = (is_masked.sum(dim=-1, keepdim=True) - 1).clamp(max=num_to_mask).clamp(min=1)
    cut_off = confidence.sort(dim=-1).values.gather(-1, num_to_mask - 1)
    prev_sample = torch.where(confidence <= cut_off, torch.full_like(candidates, mask_token_id), candidates)
    return prev_sample, candidates


class TiTokMaskGITScheduler(SamplerMixin, ConfigMixin):
    """Confidence-based iterative unmasking with the arccos schedule, Gumbel temperature annealing and the
    three classifier-free guidance schedules of official TiTok (see the module docstring).

    The configuration is the sampling recipe; the defaults are TiTok-L-32's official gFID settings.

    Args:
        num_inference_steps (`int`, defaults to 8): sampling steps.
        guidance_scale (`float`, defaults to 4.5): classifier-free guidance scale (0: no guidance).
        guidance_schedule (`str`, defaults to `"linear"`): `"constant"`, `"linear"` or `"power-cosine"`.
        guidance_scale_pow (`float`, defaults to 3.0): the power of the `"power-cosine"` schedule.
        temperature (`float`, defaults to 9.5): Gumbel-noise temperature, annealed linearly to 0.
        softmax_temperature_annealing (`bool`, defaults to `True`): divide the logits by `0.5 + 0.8 * (1 - r)`.
        match_official_rng (`bool`, defaults to `True`): also draw (and discard) the `B` uniform numbers per
            model pass that the official model spends on class dropout, so that a generator seeded like the
            official `torch.manual_seed` reproduces official samples token for token.
    """

    order = 1
    settings = SAMPLER_SETTINGS

    @register_to_config
    def __init__(
        self,
        num_inference_steps: int = _DEFAULTS.num_inference_steps,
        guidance_scale: float = _DEFAULTS.guidance_scale,
        guidance_schedule: str = _DEFAULTS.guidance_schedule,
        guidance_scale_pow: float = _DEFAULTS.guidance_scale_pow,
        temperature: float = _DEFAULTS.temperature,
        softmax_temperature_annealing: bool = _DEFAULTS.softmax_temperature_annealing,
        match_official_rng: bool = True,
    ):
        arguments = locals()
        self.check_settings({name: arguments[name] for name in self.setting_names()})
        self.timesteps = None
        self.num_inference_steps = None
        self.num_masked_tokens = None
        self.guidance_scales = None

    @classmethod
    def extract_init_dict(cls, config_dict, **kwargs):
        # Files written by hf_titok 0.1 hold keys this config no longer has (hf_titok.utils.legacy).
        return super().extract_init_dict(without_legacy_scheduler_keys(config_dict), **kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> TiTokMaskGITScheduler:
        """The official gFID sampling settings of a released generator (`titok_l32`, `titok_b64`, `titok_s128`),
        or the settings chosen for the paper's 512x512 ones (`titok_l64_512`, `titok_b128_512`; see
        `hf_titok.releases`)."""
        return cls(**{**generator_preset(name).sampling.scheduler_kwargs(), **overrides})

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        num_tokens: int | None = None,
        num_masked_tokens: int | None = None,
    ) -> None:
        """Prepare a sampling run: `timesteps` are the step indices 0..T-1 (T = `num_inference_steps`, default
        the config's), kept on the CPU whatever `device` is (they only feed host-side arithmetic, so reading
        them never syncs a GPU). `num_tokens`: the sequence length, when known (more steps than tokens to sample
        are refused); `num_masked_tokens`: how many positions the first step starts with masked (default: all)."""
        # The config's value was checked when the scheduler was built; a value given here is checked now.
        if num_inference_steps is None:
            num_inference_steps = self.config.num_inference_steps
        else:
            num_inference_steps = check_steps(num_inference_steps)
        if num_masked_tokens is not None:
            num_masked_tokens = check_steps(num_masked_tokens, "num_masked_tokens")
        if num_masked_tokens or num_tokens:
            check_steps_fit(num_inference_steps, num_masked_tokens or num_tokens)
        self.num_inference_steps = num_inference_steps
        self.num_masked_tokens = num_masked_tokens
        # The official sampler skips the unconditional pass where a step's scale is 0; a guidance_scale of 0 means
        # no guidance at all (for every sampler of the package).
        scales = [self._guidance_scale(step) for step in range(num_inference_steps)]
        unguided = self.config.guidance_scale == 0
        self.guidance_scales = [None if unguided or scale == 0 else scale for scale in scales]
        self.timesteps = torch.arange(num_inference_steps)

    def _guidance_scale(self, step: int) -> float:
        steps, config = self.num_inference_steps, self.config
        if config.guidance_schedule == "constant":
            return config.guidance_scale
        if config.guidance_schedule == "linear":
            return step / steps * config.guidance_scale
        # power-cosine, computed in float32 as officially
        progress = torch.tensor(step / steps, dtype=torch.float32) ** torch.tensor(config.guidance_scale_pow)
        scale_step = (1 - torch.cos(progress * torch.pi)) * 0.5
        return float((config.guidance_scale - 1) * scale_step + 1)

    def _check_ready(self) -> None:
        if self.num_inference_steps is None:
            raise RuntimeError("call set_timesteps(...) before sampling")

    def apply_guidance(
        self, cond_logits: torch.Tensor, uncond_logits: torch.Tensor, timestep: int | torch.Tensor
    ) -> torch.Tensor:
        """Classifier-free guidance with the official formula of the schedule, in float32 (the difference of
        two nearly equal half-precision logits times a scale of ~5-10 would amplify their rounding error)."""
        scale = self.guidance_scale_at(timestep)
        cond_logits, uncond_logits = cond_logits.float(), uncond_logits.float()
        if self.config.guidance_schedule == "power-cosine":
            return uncond_logits + (cond_logits - uncond_logits) * scale
        return cond_logits + (cond_logits - uncond_logits) * scale

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.LongTensor,
        generator: GeneratorType = None,
        return_dict: bool = True,
    ) -> TiTokMaskGITSchedulerOutput | tuple:
        """One unmasking step. Compiles with `torch.compile(fullgraph=True)` for a Python-int `timestep` and
        `generator=None` (Dynamo cannot trace a `torch.Generator`).

        Args:
            model_output: guided logits `[B, N, K]` over the image ids (any float dtype; used in float32).
            timestep: the step index (an element of `self.timesteps`).
            sample: current ids `[B, N]` (mask id at masked positions).
            generator: RNG of the Gumbel noise: a `torch.Generator`, one per row (each row then depends on its
                own generator only), or `None` for torch's global RNG, as the official sampler.
        """
        self._check_ready()
        self._check_step_inputs(model_output, timestep, sample)
        step, steps = int(timestep), self.num_inference_steps
        ratio = (step + 1) / steps
        batch_size, num_tokens = sample.shape
        device = model_output.device
        if self.config.match_official_rng:
            # The official model draws rand(B) for class dropout in each of its (1 or 2) forward passes.
            for _ in range(2 if self.guidance_scales[step] is not None else 1):
                rand_tensor((batch_size,), generator=generator, device=device)

        prev_sample, candidates = unmask_step(
            model_output,
            sample,
            ratio,
            step == steps - 1,
            self.num_masked_tokens or num_tokens,
            self.config.temperature * (1.0 - ratio),
            self.config.softmax_temperature_annealing,
            generator,
        )
        if not return_dict:
            return (prev_sample, candidates)
        return TiTokMaskGITSchedulerOutput(prev_sample=prev_sample, pred_original_sample=candidates)

    def _check_step_inputs(self, model_output, timestep, sample) -> None:
        """Types, shapes and the step index: static checks (no tensor values are read, so `step` compiles)."""
        if not isinstance(model_output, torch.Tensor) or not model_output.is_floating_point() or model_output.ndim != 3:
            raise TypeError(
                "model_output must be float logits [B, N, K], got "
                f"{getattr(model_output, 'shape', type(model_output).__name__)}"
            )
        if (
            not isinstance(sample, torch.Tensor)
            or sample.is_floating_point()
            or sample.dtype == torch.bool
            or sample.ndim != 2
        ):
            raise TypeError(
                f"sample must be integer ids [B, N], got {getattr(sample, 'dtype', type(sample).__name__)} "
                f"{tuple(getattr(sample, 'shape', ()))}"
            )
        if tuple(model_output.shape[:2]) != tuple(sample.shape):
            raise ValueError(
                f"model_output {tuple(model_output.shape)} and sample {tuple(sample.shape)} disagree on [B, N]"
            )
        if isinstance(timestep, torch.Tensor):
            if timestep.numel() != 1 or timestep.is_floating_point():
                raise TypeError(
                    f"timestep must be an integer step index, got a tensor of shape {tuple(timestep.shape)}"
                )
        elif isinstance(timestep, bool) or not isinstance(timestep, numbers.Integral):
            raise TypeError(f"timestep must be an integer step index, got {type(timestep).__name__} {timestep!r}")
        if not torch.compiler.is_compiling() and not 0 <= int(timestep) < self.num_inference_steps:
            raise ValueError(f"timestep must lie in [0, {self.num_inference_steps - 1}], got {int(timestep)}")


__all__ = [
    "TiTokMaskGITScheduler",
    "TiTokMaskGITSchedulerOutput",
    "unmask_step",
]
