"""Recipe configs: reading the yaml (a shipped config by name, or a path), `--set key=value` overrides, and
checking every section and key against the types they are declared with.

A section's schema is read from the declaration that also holds its defaults: the training arguments from
`TiTokTrainingArguments`' fields, a recipe's `loss:` from its loss dataclass (`recipes.py`), `discriminator:`
from `NLayerDiscriminator`'s constructor, `sampling:` from `hf_titok.utils.sampling_settings`, `model.config` from
the recipe's model config class. `data:` and `model:` are declared here (`SECTION_SCHEMAS`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import math
import re
import types
import typing
from pathlib import Path

import yaml

from ..utils.sampling_settings import SAMPLER_SETTINGS, SETTINGS
from .discriminator import NLayerDiscriminator
from .trainer import TiTokTrainingArguments

# The recipe configs shipped in the package (`hf-titok train --config titok_l32_stage1`).
CONFIGS_DIR = Path(__file__).parent / "configs"


class _ConfigLoader(yaml.SafeLoader):
    """YAML with YAML 1.2 floats: PyYAML (YAML 1.1) reads `3e-4` as the string "3e-4", which would reach the
    optimizer as a string; here it is the float 3e-4 (as is `1.0e-3`, `.5`, `1_000.0`)."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$"
    ),
    list("-+0123456789."),
)


def load_yaml(text: str):
    return yaml.load(text, Loader=_ConfigLoader)


def merge(base: dict, update: dict) -> dict:
    """`base` updated by `update`, nested mappings merged key by key (neither is modified)."""
    merged = copy.deepcopy(base)
    for key, value in (update or {}).items():
        merged[key] = (
            merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def close_match(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def shipped_configs() -> list[str]:
    """Names of the shipped recipe configs (`titok_l32_stage1`, `fashion_mnist/stage1`, ...)."""
    return sorted(path.relative_to(CONFIGS_DIR).with_suffix("").as_posix() for path in CONFIGS_DIR.rglob("*.yaml"))


def config_path(name_or_path: str | Path) -> Path:
    """A recipe config file: a path to a yaml, or the name of a shipped config (with or without `.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIGS_DIR / (path.as_posix().removesuffix(".yaml") + ".yaml")
    if not path.is_absolute() and shipped.is_file():
        return shipped
    names = shipped_configs()
    hint = close_match(str(name_or_path).removesuffix(".yaml"), names)
    raise FileNotFoundError(
        f"training config not found: {name_or_path} is neither a file nor a shipped config{hint} "
        f"(shipped: {', '.join(names)}; `hf-titok train --list`)"
    )


def read_config(source: str | Path | dict, overrides: list[str] | None = None) -> dict:
    """The config as written (a path, the name of a shipped config, or a mapping, which is copied), with
    `section.key=value` overrides applied (values parsed as yaml). Not yet checked."""
    if isinstance(source, dict):
        config = copy.deepcopy(source)
    else:
        path = config_path(source)
        try:
            config = load_yaml(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"a training config is a mapping of sections (recipe, training, data, ...), got {type(config).__name__}"
        )
    for override in overrides or []:
        if "=" not in override:
            raise ValueError(f"overrides look like section.key=value, got {override!r}")
        dotted, raw = override.split("=", 1)
        node = config
        *parents, leaf = dotted.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {dotted}: {part} is not a section")
        try:
            node[leaf] = load_yaml(raw)
        except yaml.YAMLError as error:
            raise ValueError(f"--set {override}: the value is not valid YAML ({error})") from None
    return config


# --------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------

# The sections declared here: their keys and the type of their values (None, "unset", is always allowed).
SECTION_SCHEMAS = {
    "data": {
        "source": str,
        "split": str,
        "crop_size": int,
        "random_flip": bool,
        "image_column": str,
        "label_column": str,
        "streaming": bool,
        "pretokenized": str,
        "num_classes": int,
        "id2label": dict,
        "pad_small_images": bool,
        # captioned data (text-aware recipes): `hf_titok.data.datasets.TextColumns`
        "caption_column": str,
        "aesthetic_score_column": str,
        "recaption_column": str,
        "recaption_probability": float,
    },
    "model": {
        "preset": str,
        "config": dict,
        "pretrained": str,
        "init_from": str,
        "pixel_decoder_from": str,
        "frozen": list,
    },
    "sampling": {**{setting.name: setting.type for setting in SAMPLER_SETTINGS}, "match_official_rng": bool},
}
_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}
_PLAIN = {int: int, float: float, bool: bool, str: str, list: list, tuple: list, dict: dict}


def _plain_type(hint) -> type | None:
    """The yaml type a type hint takes: `int | None` -> int, `tuple[int, ...]` -> list, a union with float ->
    float (integers are numbers too); None when the hint allows several kinds of value (not checked)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        if float in options:
            return float
        return _plain_type(options[0]) if len(options) == 1 else None
    return _PLAIN.get(typing.get_origin(hint) or hint)


def declared_types(declaration) -> dict[str, type | None]:
    """Name -> yaml type of each field of a dataclass, or of each keyword of a class's constructor."""
    if dataclasses.is_dataclass(declaration):
        hints = typing.get_type_hints(declaration)
        return {item.name: _plain_type(hints.get(item.name)) for item in dataclasses.fields(declaration)}
    hints = typing.get_type_hints(declaration.__init__)
    parameters = list(inspect.signature(declaration).parameters)
    return {name: _plain_type(hints.get(name)) for name in parameters}


def nullable_fields(declaration) -> set[str]:
    """The fields of a dataclass (or keywords of a class's constructor) that may be None: those whose type hint
    admits None or whose default is None. A YAML null (`--set training.max_steps=`) anywhere else is refused."""
    if dataclasses.is_dataclass(declaration):
        hints = typing.get_type_hints(declaration)
        defaults = {item.name: item.default for item in dataclasses.fields(declaration)}
    else:
        hints = typing.get_type_hints(declaration.__init__)
        defaults = {name: item.default for name, item in inspect.signature(declaration).parameters.items()}
    return {
        name
        for name, default in defaults.items()
        if default is None
        or name not in hints
        or hints[name] is typing.Any
        or type(None) in typing.get_args(hints[name])
    }


def type_problem(where: str, value, kind, nullable: bool = True) -> str | None:
    if value is None:
        if nullable:
            return None
        expected = _TYPE_NAMES.get(kind, "a value") if kind is not None else "a value"
        return f"{where} cannot be null (an empty value): it must be {expected}; leave it out for the default"
    if kind is None:
        return None
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{where} must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"{where} must be finite, got {value!r}"
        return None
    if kind is int:
        return (
            None
            if isinstance(value, int) and not isinstance(value, bool)
            else f"{where} must be an integer, got {value!r}"
        )
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return None
    return f"{where} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}"


# The discriminator's own channel count follows the images; the rest of its constructor is the section.
DISCRIMINATOR_SCHEMA = {
    name: kind for name, kind in declared_types(NLayerDiscriminator).items() if name != "num_channels"
}


def check_config(config: dict, recipe) -> None:
    """Every section and key of a recipe config is known, and every value has the right type: a misspelt key
    would otherwise be ignored and the run would train with the defaults. Raises one `ValueError` listing every
    problem, with the closest known key for a misspelt one. `recipe`: the config's `recipes.Recipe` (its
    name, extra sections, loss declaration and model config class)."""
    problems = []
    sections = {"recipe", "training", "data", "model", "loss", *recipe.extra_sections}
    for key, value in config.items():
        if key not in sections:
            problems.append(f"unknown section {key!r}{close_match(key, sections)}")
            continue
        if key in ("teacher", "tokenizer", "text_encoder", "text_tokenizer"):
            problems.append(type_problem(key, value, str))
        elif key != "recipe" and value is not None and not isinstance(value, dict):
            problems.append(f"section {key!r} must be a mapping of keys to values, got {value!r}")
    schemas = {
        **SECTION_SCHEMAS,
        "discriminator": DISCRIMINATOR_SCHEMA,
        "training": declared_types(TiTokTrainingArguments),
        "loss": declared_types(type(recipe.loss)),
    }
    if recipe.sampler is not None:  # `sampling:` is the recipe's sampler's constructor (TiTok's settings by default)
        schemas["sampling"] = declared_types(recipe.sampler)
    # The sections declared here take null as "unset"; a declaration says for itself which fields may be None.
    nullable = {
        "discriminator": nullable_fields(NLayerDiscriminator),
        "training": nullable_fields(TiTokTrainingArguments),
        "loss": nullable_fields(type(recipe.loss)),
    }
    for section, schema in schemas.items():
        values = config.get(section)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if key not in schema:
                problems.append(f"unknown key {section}.{key}{close_match(key, schema)}")
            else:
                may_be_null = section not in nullable or key in nullable[section]
                problems.append(type_problem(f"{section}.{key}", value, schema[key], may_be_null))
    sampling = config.get("sampling")
    settings = {setting.name: setting for setting in recipe.sampler.settings} if recipe.sampler else SETTINGS
    for key, value in sampling.items() if isinstance(sampling, dict) else ():
        if key in settings and value is not None and not type_problem(key, value, settings[key].type):
            try:  # the sampler's own bounds and choices (hf_titok.utils.sampling_settings)
                settings[key].check(value)
            except (TypeError, ValueError) as error:
                problems.append(f"sampling.{error}")
    model_config = (config.get("model") or {}).get("config")
    if isinstance(model_config, dict):
        declaration = recipe.model_config  # a config dataclass, or a diffusers model's constructor
        if dataclasses.is_dataclass(declaration):
            fields = {item.name for item in dataclasses.fields(declaration)}
        else:
            fields = set(inspect.signature(declaration).parameters)
        for key in model_config:
            if key in SETTINGS:
                problems.append(f"model.config.{key} is a sampler setting: set it in the sampling: section")
            elif key not in fields:
                problems.append(
                    f"unknown key model.config.{key} of {recipe.model_config.__name__}{close_match(key, fields)}"
                )
    problems = [problem for problem in problems if problem]
    if problems:
        raise ValueError(f"the {recipe.name} config has {len(problems)} problem(s): " + "; ".join(problems))


__all__ = [
    "CONFIGS_DIR",
    "DISCRIMINATOR_SCHEMA",
    "SECTION_SCHEMAS",
    "check_config",
    "config_path",
    "declared_types",
    "load_yaml",
    "merge",
    "nullable_fields",
    "read_config",
    "shipped_configs",
]
