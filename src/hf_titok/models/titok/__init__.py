"""TiTok: the 1-D image tokenizer (configuration, model, image processor)."""

from . import configuration_titok, image_processing_titok, modeling_titok
from .configuration_titok import *  # noqa: F403
from .image_processing_titok import *  # noqa: F403
from .modeling_titok import *  # noqa: F403

__all__ = [*configuration_titok.__all__, *image_processing_titok.__all__, *modeling_titok.__all__]
