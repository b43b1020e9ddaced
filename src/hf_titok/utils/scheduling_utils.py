"""What the package's samplers share: one scheduler API for every family.

Every sampler (`TiTokMaskGITScheduler`, `MaskGenVQScheduler`, `MaskGenKLScheduler`, ...) declares its settings from
`hf_titok.utils.sampling_settings` (`settings`) and is used the same way by its pipeline:

1. `scheduler.for_call(**settings)`: a copy with this call's settings (each checked against the declaration); the
   pipeline's own scheduler never changes, so concurrent calls do not interfere;
2. `set_timesteps(num_inference_steps=None, device=None, num_tokens=None, num_masked_tokens=None)`: prepares a run
   over `num_tokens` tokens (or the `num_masked_tokens` a variation re-samples), refusing more steps than tokens;
3. per step `t` of `timesteps`: `guidance_scale_at(t)` - None when the step needs no unconditional pass (a
   `guidance_scale` of 0 means no guidance, for every sampler) - then `step(model_output, t, sample, generator=...)`
   -> `prev_sample`.
"""

from __future__ import annotations

from diffusers.schedulers.scheduling_utils import SchedulerMixin

from .remote_code import SavesCodeMixin
from .sampling_settings import SamplerSetting, check_sampling_settings


def check_steps(value, name: str = "num_inference_steps", maximum: int | None = None) -> int:
    """An integer number of steps >= 1 (and <= `maximum`), as a Python int; NumPy integers are fine."""
    value = SamplerSetting(name, int, "", "", low=1).check(value)
    if maximum is not None:
        check_steps_fit(value, maximum, name)
    return value


def check_steps_fit(steps: int, num_tokens: int, name: str = "num_inference_steps") -> None:
    """A (checked) step count against the tokens to sample: each step unmasks at least one token."""
    if steps > num_tokens:
        raise ValueError(
            f"{name}={steps} exceeds the {num_tokens} tokens to sample: each step unmasks at least one token, so at "
            f"most {num_tokens} steps are meaningful"
        )


class SamplerMixin(SavesCodeMixin, SchedulerMixin):
    """The scheduler API every sampler of the package follows (see the module docstring), with diffusers' scheduler
    behaviour, saving with the code, and `compatibles` (diffusers looks compatible schedulers up in its own package
    only; each sampler here is compatible with itself, the one class that reads its config)."""

    # The settings this sampler takes (`hf_titok.utils.sampling_settings.sampler_settings`); its config holds their
    # defaults.
    settings: tuple[SamplerSetting, ...] = ()
    num_inference_steps: int | None = None
    guidance_scales: list[float | None] | None = None

    @classmethod
    def _get_compatibles(cls) -> list[type]:
        return [cls]

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return tuple(setting.name for setting in cls.settings)

    def check_settings(self, values: dict) -> dict:
        """`values` (any of this sampler's settings) checked: an unknown name or a bad value raises, naming it."""
        self._refuse_unknown(values)
        return check_sampling_settings(values, self.settings)

    def _refuse_unknown(self, values: dict) -> None:
        unknown = [name for name in values if name not in self.setting_names()]
        if unknown:
            raise TypeError(
                f"unknown sampling settings {unknown}: {type(self).__name__} takes {list(self.setting_names())}"
            )

    def sampling_settings(self, **overrides) -> dict:
        """The settings a run uses: each given (not None) value of `overrides`, else the config's; checked, as plain
        Python values - e.g. to record exactly how a set of samples was made."""
        given = {name: value for name, value in overrides.items() if value is not None}
        return self.check_settings({**{name: self.config[name] for name in self.setting_names()}, **given})

    def for_call(self, **settings):
        """A copy of this scheduler for one call, with the given (not None) settings (checked once, as the copy is
        built)."""
        given = {name: value for name, value in settings.items() if value is not None}
        self._refuse_unknown(given)
        return self.from_config(self.config, **given)

    def guidance_scale_at(self, timestep) -> float | None:
        """The guidance scale of step `timestep`; None when the step needs no unconditional pass."""
        if self.num_inference_steps is None:
            raise RuntimeError("call set_timesteps(...) before sampling")
        return self.guidance_scales[int(timestep)]


__all__ = ["SamplerMixin", "check_steps", "check_steps_fit"]
