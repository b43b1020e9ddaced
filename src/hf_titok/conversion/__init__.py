"""Conversion of the official TiTok releases (bytedance/1d-tokenizer): every quirk of the official format lives
here (`official`: configs, state-dict keys and layouts); official checkpoints load directly through the models'
`from_pretrained` (`direct`, registered on import), and whole release repos become ready hf_titok repos
(`repos`). Builds on the models and data layers."""

from . import direct, family, official, repos
from .direct import *  # noqa: F403
from .family import *  # noqa: F403
from .official import *  # noqa: F403
from .repos import *  # noqa: F403

__all__ = [*direct.__all__, *family.__all__, *official.__all__, *repos.__all__]
