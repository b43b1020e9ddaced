"""TA-TiTok: the text-aware TiTok tokenizer of MaskGen."""

from . import configuration_tatitok, modeling_tatitok
from .configuration_tatitok import *  # noqa: F403
from .modeling_tatitok import *  # noqa: F403

__all__ = [*configuration_tatitok.__all__, *modeling_tatitok.__all__]
