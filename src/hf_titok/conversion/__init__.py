"""Conversion of the official releases (bytedance/1d-tokenizer and its forks): each family's rules live in its folder
(`models/<family>/convert_<family>.py`) and the shared format in `hf_titok.utils.official_format`; here, any
kind of official checkpoint converted by its family (`official`), official checkpoints loaded directly through
the models' `from_pretrained` (`direct`, registered on import), and whole release repos as ready hf_titok repos
(`repos`). The family converters' public functions are re-exported here."""

from ..models.clip_text.convert_clip_text import clip_text_config_from_open_clip
from ..models.maskgen.convert_maskgen import (
    maskgen_kl_config_from_official,
    maskgen_scheduler_from_official,
    maskgen_vq_config_from_official,
)
from ..models.maskgit_vqgan.convert_maskgit_vqgan import vqgan_config_from_official
from ..models.tatitok.convert_tatitok import tatitok_config_from_official
from ..models.titok.convert_titok import titok_config_from_official, titok_kwargs_from_official
from ..models.titok_maskgit.convert_titok_maskgit import (
    maskgit_config_from_official,
    official_config,
    scheduler_from_official,
)
from ..utils.official_format import (
    ConversionError,
    convert_state_dict,
    is_official_config,
    load_official_config,
    load_official_weights,
)
from . import direct, official, repos
from .direct import *  # noqa: F403
from .official import *  # noqa: F403
from .official import release_official_config as family_official_config
from .repos import *  # noqa: F403

__all__ = [
    *direct.__all__,
    *official.__all__,
    *repos.__all__,
    "ConversionError",
    "clip_text_config_from_open_clip",
    "convert_state_dict",
    "family_official_config",
    "is_official_config",
    "load_official_config",
    "load_official_weights",
    "maskgen_kl_config_from_official",
    "maskgen_scheduler_from_official",
    "maskgen_vq_config_from_official",
    "maskgit_config_from_official",
    "official_config",
    "scheduler_from_official",
    "tatitok_config_from_official",
    "titok_config_from_official",
    "titok_kwargs_from_official",
    "vqgan_config_from_official",
]
