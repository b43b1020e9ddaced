"""CLIP's text tower (transformers' `CLIPTextModelWithProjection`), which TA-TiTok and MaskGen read: the converter
of the official open_clip tower."""

from . import convert_clip_text
from .convert_clip_text import *  # noqa: F403

__all__ = [*convert_clip_text.__all__]
