"""Conversion of the official TiTok releases (bytedance/1d-tokenizer): every quirk of the official format lives
here (`official`: configs, state-dict keys and layouts); official checkpoints load directly through the models'
`from_pretrained` (`direct`, registered on import), and whole release repos become ready hf_titok repos
(`repos`). Builds on the models and data layers."""

from .direct import OfficialCheckpoint, OfficialReader, accepted_sources, detect_kind
from .official import (
    CONVERTERS,
    ConversionError,
    convert,
    convert_checkpoint,
    convert_generator,
    convert_state_dict,
    convert_tokenizer,
    convert_vqgan,
    load_official_config,
    load_official_weights,
    maskgit_config_from_official,
    official_config,
    scheduler_from_official,
    titok_config_from_official,
    vqgan_config_from_official,
)
from .repos import convert_and_push, convert_official_repo, describe_folder

__all__ = [
    "CONVERTERS",
    "ConversionError",
    "OfficialCheckpoint",
    "OfficialReader",
    "accepted_sources",
    "convert",
    "convert_checkpoint",
    "convert_and_push",
    "convert_generator",
    "convert_official_repo",
    "convert_state_dict",
    "convert_tokenizer",
    "convert_vqgan",
    "describe_folder",
    "detect_kind",
    "load_official_config",
    "load_official_weights",
    "maskgit_config_from_official",
    "official_config",
    "scheduler_from_official",
    "titok_config_from_official",
    "vqgan_config_from_official",
]
