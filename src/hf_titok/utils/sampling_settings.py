"""The sampler's settings, declared once: the name, type, bounds, help and command-line flag of each.

Everything that takes sampling settings is built from or checked against this table: each sampler declares its
settings from it (`sampler_settings`: TiTok's MaskGIT sampler takes all six, MaskGen's a subset with their own
guidance schedules) and checks its config and every call's values with it, the pipelines' per-call arguments
(`sampling_settings()`), the command-line flags of `hf-titok generate` and `hf-titok evaluate generation`
(`add_sampler_arguments`), the training recipes' `sampling:` schema, the Space's widgets, and the release table's
`SamplingPreset` (whose fields are these names, in this order: tested).

This module imports nothing of the package.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import typing
from dataclasses import dataclass

# The classifier-free guidance schedules of official TiTok, and of MaskGen-VQ and MaskGen-KL (their official
# names; `hf_titok.models.maskgen.scheduling_maskgen`), as types (the release table's fields) and as the tuples of
# their names.
GuidanceSchedule = typing.Literal["constant", "linear", "power-cosine"]
MaskGenVQGuidanceSchedule = typing.Literal["cosine", "flippedcosine", "linear", "none"]
MaskGenKLGuidanceSchedule = typing.Literal["linear", "constant"]
GUIDANCE_SCHEDULES = typing.get_args(GuidanceSchedule)
MASKGEN_VQ_GUIDANCE_SCHEDULES = typing.get_args(MaskGenVQGuidanceSchedule)
MASKGEN_KL_GUIDANCE_SCHEDULES = typing.get_args(MaskGenKLGuidanceSchedule)

# Sane bounds: the released models use guidance <= 7 and temperatures <= 11; far larger values only overflow the
# float32 logits (1e30 x a logit is inf), so they are refused.
MAX_GUIDANCE_SCALE = 100.0
MAX_TEMPERATURE = 100.0
MAX_GUIDANCE_SCALE_POW = 100.0

# MaskGen's aesthetic-score condition: LAION aesthetic scores (what the models were trained on) lie in [0, 10];
# the releases sample at 6.5 (the pipelines' default, the release table's and the model cards').
AESTHETIC_SCORE_RANGE = (0.0, 10.0)
DEFAULT_AESTHETIC_SCORE = 6.5


@dataclass(frozen=True)
class SamplerSetting:
    """One sampler setting. Numbers lie in `[low, high]` (`(low, high]` without `low_inclusive`); text is one
    of `choices`."""

    name: str
    type: type
    help: str
    flag: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    choices: tuple[str, ...] | None = None

    def check(self, value):
        """`value` as a plain Python value of this setting's type, or a `TypeError`/`ValueError` naming it."""
        if self.type is bool:
            if not isinstance(value, bool) and type(value).__name__ != "bool_":  # Python or NumPy booleans
                raise TypeError(f"{self.name} must be True or False, got {value!r}")
            return bool(value)
        if self.type is str:
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")
            return value
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{self.name} must be an integer >= {self.low:g}, got {type(value).__name__} {value!r}")
            if value < self.low:
                raise ValueError(f"{self.name} must be an integer >= {self.low:g}, got {value}")
            return int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{self.name} must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{self.name} must be finite, got {value}")
        if value < self.low or (value == self.low and not self.low_inclusive) or value > self.high:
            raise ValueError(f"{self.name} must lie in {self.bounds}, got {value:g}")
        return value

    @property
    def label(self) -> str:
        """What a person sees the setting called (the command-line flag's words: `--guidance-scale` ->
        "Guidance scale")."""
        return self.flag.lstrip("-").replace("-", " ").capitalize()

    @property
    def bounds(self) -> str:
        """The allowed values, as error messages and help texts give them."""
        if self.choices is not None:
            return ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        if self.high is None:
            return f">= {self.low:g}"
        return f"{'[' if self.low_inclusive else '('}{self.low:g}, {self.high:g}]"


SAMPLER_SETTINGS = (
    SamplerSetting("num_inference_steps", int, "sampling steps (at most the number of tokens)", "--steps", low=1),
    SamplerSetting(
        "guidance_scale",
        float,
        "classifier-free guidance scale (0: none)",
        "--guidance-scale",
        0.0,
        MAX_GUIDANCE_SCALE,
    ),
    SamplerSetting(
        "guidance_schedule",
        str,
        "how the guidance scale changes over the steps",
        "--guidance-schedule",
        choices=GUIDANCE_SCHEDULES,
    ),
    SamplerSetting(
        "temperature",
        float,
        "Gumbel-noise temperature, annealed linearly to 0",
        "--temperature",
        0.0,
        MAX_TEMPERATURE,
    ),
    SamplerSetting(
        "guidance_scale_pow",
        float,
        "the power of the power-cosine guidance schedule",
        "--guidance-pow",
        0.0,
        MAX_GUIDANCE_SCALE_POW,
        low_inclusive=False,
    ),
    SamplerSetting(
        "softmax_temperature_annealing",
        bool,
        "divide the logits by 0.5 + 0.8 * (1 - r) (the official gFID protocol)",
        "--softmax-annealing",
    ),
)
SETTINGS = {setting.name: setting for setting in SAMPLER_SETTINGS}
# The names, in the order of `SamplingPreset`'s fields.
SAMPLING_SETTINGS = tuple(SETTINGS)


def sampler_settings(
    *names: str, changes: dict[str, dict] | None = None, **choices: tuple[str, ...]
) -> tuple[SamplerSetting, ...]:
    """The settings a sampler declares: the named entries of this table, in order, with the choices `choices`
    names for them (each sampler has its own guidance schedules) and the fields `changes` gives for a setting
    that means something else to this sampler (its help, its bounds)."""
    changes = changes or {}
    return tuple(
        dataclasses.replace(SETTINGS[name], choices=choices.get(name, SETTINGS[name].choices), **changes.get(name, {}))
        for name in names
    )


def merged_settings(*groups: tuple[SamplerSetting, ...]) -> tuple[SamplerSetting, ...]:
    """Several samplers' settings as one: each name once (in first-seen order), a choice setting taking the choices
    of all and a number the union of their bounds (for a command that serves several samplers; each sampler checks
    its own)."""
    merged: dict[str, SamplerSetting] = {}
    for setting in (setting for group in groups for setting in group):
        seen = merged.setdefault(setting.name, setting)
        if seen is setting:
            continue
        if setting.choices is not None:
            merged[setting.name] = dataclasses.replace(
                seen, choices=tuple(dict.fromkeys(seen.choices + setting.choices))
            )
        elif setting.low is not None and seen.low is not None:
            low = min(seen.low, setting.low)
            inclusive = any(s.low_inclusive for s in (seen, setting) if s.low == low)
            high = None if None in (seen.high, setting.high) else max(seen.high, setting.high)
            merged[setting.name] = dataclasses.replace(seen, low=low, low_inclusive=inclusive, high=high)
    return tuple(merged.values())


def check_sampling_settings(values: dict, settings: tuple[SamplerSetting, ...] = SAMPLER_SETTINGS) -> dict:
    """`values` (settings by name, any subset of `settings`, default TiTok's) as plain Python values, or a
    `TypeError` for an unknown name / a `TypeError`/`ValueError` naming the first bad value."""
    table = {setting.name: setting for setting in settings}
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise TypeError(f"unknown sampling settings {unknown}; the settings are {list(table)}")
    return {name: table[name].check(value) for name, value in values.items()}


def add_sampler_arguments(parser, settings: tuple[SamplerSetting, ...] = SAMPLER_SETTINGS) -> None:
    """One command-line flag per setting on an `argparse` parser, each defaulting to None (the model's value) and
    checked as it is parsed (a bad value is an argparse error naming the flag): `args.<name>` holds it. A command
    that serves several samplers passes their `merged_settings` (the pipeline then checks a value against its own
    sampler)."""
    for setting in settings:
        help = f"{setting.help}; {setting.bounds} (default: the model's)"
        if setting.type is bool:
            parser.add_argument(setting.flag, dest=setting.name, action=argparse.BooleanOptionalAction, help=help)
        else:
            parser.add_argument(setting.flag, dest=setting.name, type=_parser_of(setting), help=help)


def _parser_of(setting: SamplerSetting):
    def parse(text: str):
        try:
            return setting.check(setting.type(text))
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = setting.type.__name__  # what argparse names in its "invalid ... value" message
    return parse


def given_settings(namespace) -> dict:
    """The settings given on a command line parsed with `add_sampler_arguments` (those not None)."""
    return {name: getattr(namespace, name) for name in SETTINGS if getattr(namespace, name, None) is not None}


__all__ = [
    "GUIDANCE_SCHEDULES",
    "GuidanceSchedule",
    "MASKGEN_KL_GUIDANCE_SCHEDULES",
    "MASKGEN_VQ_GUIDANCE_SCHEDULES",
    "MaskGenKLGuidanceSchedule",
    "MaskGenVQGuidanceSchedule",
    "MAX_GUIDANCE_SCALE",
    "MAX_GUIDANCE_SCALE_POW",
    "MAX_TEMPERATURE",
    "SAMPLER_SETTINGS",
    "SAMPLING_SETTINGS",
    "SETTINGS",
    "SamplerSetting",
    "add_sampler_arguments",
    "check_sampling_settings",
    "given_settings",
    "merged_settings",
    "sampler_settings",
]
