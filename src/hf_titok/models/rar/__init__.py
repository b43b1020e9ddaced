"""RAR: the class-conditional autoregressive generator of the official repository (model, sampler, pipeline)."""

from . import configuration_rar, modeling_rar, pipeline_rar, scheduling_rar
from .configuration_rar import *  # noqa: F403
from .modeling_rar import *  # noqa: F403
from .pipeline_rar import *  # noqa: F403
from .scheduling_rar import *  # noqa: F403

__all__ = [*configuration_rar.__all__, *modeling_rar.__all__, *pipeline_rar.__all__, *scheduling_rar.__all__]
