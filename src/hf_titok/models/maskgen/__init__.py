"""MaskGen: the text-to-image generators over TA-TiTok tokens (VQ and KL), their samplers and pipeline."""

from . import modeling_maskgen, pipeline_maskgen, scheduling_maskgen
from .modeling_maskgen import *  # noqa: F403
from .pipeline_maskgen import *  # noqa: F403
from .scheduling_maskgen import *  # noqa: F403

__all__ = [*modeling_maskgen.__all__, *pipeline_maskgen.__all__, *scheduling_maskgen.__all__]
