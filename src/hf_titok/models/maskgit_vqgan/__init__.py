"""The MaskGIT-VQGAN: TiTok's proxy-code teacher and pixel decoder."""

from . import configuration_maskgit_vqgan, modeling_maskgit_vqgan
from .configuration_maskgit_vqgan import *  # noqa: F403
from .modeling_maskgit_vqgan import *  # noqa: F403

__all__ = [*configuration_maskgit_vqgan.__all__, *modeling_maskgit_vqgan.__all__]
