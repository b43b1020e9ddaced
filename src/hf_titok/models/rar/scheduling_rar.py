"""RAR's sampler (bytedance/1d-tokenizer modeling/rar.py `generate`) as a diffusers scheduler.

One token per step, in raster order, N steps for N tokens. Step t: classifier-free guidance
`uncond + (cond - uncond) s_t` with s_t = (g - 1)(1 - cos(pi (t / N)^p)) / 2 + 1 (computed in float32 as the
official code does: s_0 = 1 unless p = 0, which keeps g at every step, and s never quite reaches g; g = 0 switches
guidance off), then a softmax at temperature T and one multinomial draw per row. With one `torch.Generator` the
draws are the official ones after `torch.manual_seed`: the pipeline first draws the `rand(B)` the official
`generate` spends on its (zero) label dropout, then each step's `multinomial` draws an Exp(1) tensor `[B, K]`.
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

from ...releases import RAR_PRESETS, rar_preset
from ...utils.sampling_settings import MAX_GUIDANCE_SCALE_POW, MAX_TEMPERATURE, sampler_settings
from ...utils.scheduling_utils import SamplerMixin
from ...utils.torch_utils import GeneratorType, exponential_tensor

# The defaults of a scheduler built without settings: RAR-B's (the release table's).
_DEFAULTS = RAR_PRESETS["rar_b"]

RAR_SETTINGS = sampler_settings(
    "guidance_scale",
    "guidance_scale_pow",
    "temperature",
    changes=dict(
        guidance_scale_pow=dict(
            help="the power p of RAR's guidance schedule (1 - cos(pi (t/N)^p)) / 2; 0: constant guidance",
            low=0.0,
            high=MAX_GUIDANCE_SCALE_POW,
            low_inclusive=True,
        ),
        temperature=dict(
            help="softmax temperature of each token's draw", low=0.0, high=MAX_TEMPERATURE, low_inclusive=False
        ),
    ),
)


@dataclass
class RARSchedulerOutput(BaseOutput):
    """`prev_sample`: the ids `[B, t + 1]` after step t; `pred_original_sample`: this step's distribution over the
    codebook `[B, K]` (what the draw used)."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class RARScheduler(SamplerMixin, ConfigMixin):
    """RAR's sampler (see the module docstring). Defaults: RAR-B's released settings (guidance 16.0 with power 2.75,
    temperature 1.0); `RARScheduler.from_preset(name)` gives each release's.

    Args:
        guidance_scale (`float`, defaults to 16.0; 0: no guidance), guidance_scale_pow (`float`, defaults to 2.75;
        0: constant guidance), temperature (`float`, defaults to 1.0: the softmax temperature, > 0).
    """

    order = 1
    settings = RAR_SETTINGS

    @register_to_config
    def __init__(
        self,
        guidance_scale: float = _DEFAULTS.guidance_scale,
        guidance_scale_pow: float = _DEFAULTS.guidance_scale_pow,
        temperature: float = _DEFAULTS.temperature,
    ):
        arguments = locals()
        self.check_settings({name: arguments[name] for name in self.setting_names()})
        self.num_inference_steps = None
        self.timesteps = None
        self.guidance_scales = None

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "RARScheduler":
        """The official sampling settings of a RAR release (`rar_b`, `rar_l`, `rar_xl`, `rar_xxl`)."""
        return cls(**{**rar_preset(name).scheduler_kwargs(), **overrides})

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device=None,
        num_tokens: int | None = None,
        num_masked_tokens: int | None = None,
    ) -> None:
        """Prepare a run over `num_tokens` tokens: one step per token (`num_inference_steps`, when given, must be
        that count; `num_masked_tokens`, image variations, is not a RAR run)."""
        if num_tokens is None:
            raise ValueError("RARScheduler.set_timesteps needs num_tokens: RAR samples one token per step")
        if num_inference_steps is not None and num_inference_steps != num_tokens:
            raise ValueError(
                f"num_inference_steps={num_inference_steps}: RAR samples one token per step, {num_tokens} steps for "
                f"{num_tokens} tokens"
            )
        if num_masked_tokens is not None:
            raise ValueError("RAR generates tokens left to right; it has no masked-token variations")
        self.num_inference_steps = num_tokens
        self.timesteps = torch.arange(num_tokens)
        guidance_scale, power = self.config.guidance_scale, self.config.guidance_scale_pow
        if guidance_scale == 0:
            self.guidance_scales = [None] * num_tokens
            return
        # float32 as the official code computes it (the power a float32 tensor, t / N a Python float), so the
        # guided logits equal the official ones.
        ratios = torch.tensor([step / num_tokens for step in range(num_tokens)], dtype=torch.float64)
        curve = (1 - torch.cos(math.pi * ratios.float() ** torch.tensor(power, dtype=torch.float32))) / 2
        self.guidance_scales = ((guidance_scale - 1) * curve + 1).tolist()

    def apply_guidance(self, cond_logits, uncond_logits, timestep) -> torch.Tensor:
        """RAR's guidance `uncond + (cond - uncond) s_t`, in float32."""
        cond_logits, uncond_logits = cond_logits.float(), uncond_logits.float()
        return uncond_logits + (cond_logits - uncond_logits) * self.guidance_scale_at(timestep)

    def step(self, model_output, timestep, sample, generator: GeneratorType = None, return_dict: bool = True):
        """Draw the next id of every row from the guided logits `[B, K]` at the temperature and append it to the ids
        so far `[B, t]`. The draw is `torch.multinomial`'s, `argmax(p / E)` with E ~ Exp(1) `[B, K]`, its noise from
        `generator` as `exponential_tensor` draws it (one generator: the official stream, on any device; one per
        row; or None: torch's global RNG)."""
        probabilities = torch.softmax(model_output.float() / self.config.temperature, dim=-1)
        noise = exponential_tensor(probabilities.shape, generator, probabilities.device)
        drawn = (probabilities / noise).argmax(dim=-1, keepdim=True)
        prev_sample = torch.cat([sample, drawn.to(sample.dtype)], dim=1)
        if not return_dict:
            return (prev_sample, probabilities)
        return RARSchedulerOutput(prev_sample=prev_sample, pred_original_sample=probabilities)


__all__ = ["RARScheduler", "RARSchedulerOutput", "RAR_SETTINGS"]
