"""The class-conditional MaskGIT generator over TiTok tokens: model, sampler, pipeline."""

from . import configuration_titok_maskgit, modeling_titok_maskgit, pipeline_titok, scheduling_titok_maskgit
from .configuration_titok_maskgit import *  # noqa: F403
from .modeling_titok_maskgit import *  # noqa: F403
from .pipeline_titok import *  # noqa: F403
from .scheduling_titok_maskgit import *  # noqa: F403

__all__ = [
    *configuration_titok_maskgit.__all__,
    *modeling_titok_maskgit.__all__,
    *pipeline_titok.__all__,
    *scheduling_titok_maskgit.__all__,
]
