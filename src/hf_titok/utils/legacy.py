"""Files written by hf_titok 0.1, read by today's classes. Every difference lives here and is applied when a file
is read, so the live configs carry no legacy fields:

- a 0.1 generator `config.json` holds the six sampler settings, which now belong to the pipeline's scheduler:
  reading the config takes them out (`without_legacy_generator_keys`); loading a pipeline moves them to its
  scheduler, for the settings the scheduler config does not set (`legacy_pipeline_scheduler`);
- a 0.1 `scheduler_config.json` holds `mask_token_id`, now derived from the logits: dropped when read;
- a 0.1 `model_index.json` has no `image_processor` entry: the pipeline loader builds the default one;
- `model_index.json` files of 0.1 and 0.2 name the modules the classes lived in before the models moved into
  `hf_titok.models` (one folder per family): `MODULE_ALIASES` maps them to today's (`current_module_entries`).

A file saved again is in today's format.
"""

from __future__ import annotations

import json
from pathlib import Path

from .sampling_settings import SAMPLING_SETTINGS

# Where the classes a saved pipeline names lived in 0.1 and 0.2 -> where they live now.
MODULE_ALIASES = {
    f"hf_titok.{old}": f"hf_titok.{new}"
    for old, new in {
        "configuration_titok": "models.titok.configuration_titok",
        "modeling_titok": "models.titok.modeling_titok",
        "image_processing_titok": "models.titok.image_processing_titok",
        "configuration_maskgit_vqgan": "models.maskgit_vqgan.configuration_maskgit_vqgan",
        "modeling_maskgit_vqgan": "models.maskgit_vqgan.modeling_maskgit_vqgan",
        "configuration_titok_maskgit": "models.titok_maskgit.configuration_titok_maskgit",
        "modeling_titok_maskgit": "models.titok_maskgit.modeling_titok_maskgit",
        "scheduling_titok_maskgit": "models.titok_maskgit.scheduling_titok_maskgit",
        "pipeline_titok": "models.titok_maskgit.pipeline_titok",
        "configuration_tatitok": "models.tatitok.configuration_tatitok",
        "modeling_tatitok": "models.tatitok.modeling_tatitok",
        "modeling_maskgen": "models.maskgen.modeling_maskgen",
        "scheduling_maskgen": "models.maskgen.scheduling_maskgen",
        "pipeline_maskgen": "models.maskgen.pipeline_maskgen",
    }.items()
}


def current_module_entries(index: dict) -> dict:
    """A `model_index.json` mapping with the `[module, class]` entries that name a module of 0.1 or 0.2 pointed at
    today's module of that class."""
    return {
        key: [MODULE_ALIASES[value[0]], value[1]]
        if isinstance(value, list) and len(value) == 2 and value[0] in MODULE_ALIASES
        else value
        for key, value in index.items()
    }


# Keys of 0.1 files that today's configs do not have.
SCHEDULER_KEYS = ("mask_token_id",)


def without_legacy_generator_keys(config: dict) -> dict:
    """A generator config dict without the sampler settings a 0.1 file carries."""
    return {key: value for key, value in config.items() if key not in SAMPLING_SETTINGS}


def without_legacy_scheduler_keys(config: dict) -> dict:
    """A scheduler config dict without the keys a 0.1 file carries."""
    return {key: value for key, value in config.items() if key not in SCHEDULER_KEYS}


def legacy_pipeline_scheduler(folder: str | Path, scheduler_class):
    """The scheduler of a pipeline folder saved by 0.1 (its generator config holds sampler settings), with those
    settings moved in for the ones its own config does not set; None for a folder in today's format."""
    folder = Path(folder)
    generator_file, scheduler_file = (
        folder / "transformer" / "config.json",
        folder / "scheduler" / "scheduler_config.json",
    )
    if not generator_file.is_file():
        return None
    settings = {
        k: v for k, v in json.loads(generator_file.read_text()).items() if k in SAMPLING_SETTINGS and v is not None
    }
    if not settings:
        return None
    saved = without_legacy_scheduler_keys(json.loads(scheduler_file.read_text())) if scheduler_file.is_file() else {}
    given = {key: value for key, value in saved.items() if not key.startswith("_")}
    return scheduler_class(**{**settings, **given})


__all__ = [
    "MODULE_ALIASES",
    "SCHEDULER_KEYS",
    "current_module_entries",
    "legacy_pipeline_scheduler",
    "without_legacy_generator_keys",
    "without_legacy_scheduler_keys",
]
