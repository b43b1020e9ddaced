"""hf_titok: TiTok 1-D image tokenizers and MaskGIT generators for transformers and diffusers."""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from .configuration_maskgit_vqgan import MaskGITVQGANConfig
from .configuration_titok import TITOK_PRESETS, TiTokConfig
from .configuration_titok_maskgit import TITOK_MASKGIT_PRESETS, TiTokMaskGITConfig
from .fashion_mnist import FASHION_MNIST_PIPELINE
from .image_processing_titok import TiTokImageProcessor
from .modeling_maskgit_vqgan import MaskGITVQGAN, MaskGITVQGANEncoderOutput, MaskGITVQGANOutput
from .modeling_titok import TiTokEncoderOutput, TiTokOutput, TiTokTokenizer
from .modeling_titok_maskgit import TiTokMaskGIT, TiTokMaskGITOutput, mask_tokens, masked_token_loss
from .pipeline_titok import TiTokPipeline, imagenet_id2label
from .scheduling_titok_maskgit import TiTokMaskGITScheduler, TiTokMaskGITSchedulerOutput

__version__ = "0.1.0"

AutoConfig.register(TiTokConfig.model_type, TiTokConfig, exist_ok=True)
AutoConfig.register(MaskGITVQGANConfig.model_type, MaskGITVQGANConfig, exist_ok=True)
AutoModel.register(TiTokConfig, TiTokTokenizer, exist_ok=True)
AutoModel.register(MaskGITVQGANConfig, MaskGITVQGAN, exist_ok=True)
AutoConfig.register(TiTokMaskGITConfig.model_type, TiTokMaskGITConfig, exist_ok=True)
AutoModel.register(TiTokMaskGITConfig, TiTokMaskGIT, exist_ok=True)
AutoImageProcessor.register(TiTokConfig, slow_image_processor_class=TiTokImageProcessor, exist_ok=True)
AutoImageProcessor.register(MaskGITVQGANConfig, slow_image_processor_class=TiTokImageProcessor, exist_ok=True)

__all__ = [
    "FASHION_MNIST_PIPELINE",
    "MaskGITVQGAN",
    "MaskGITVQGANConfig",
    "MaskGITVQGANEncoderOutput",
    "MaskGITVQGANOutput",
    "TITOK_MASKGIT_PRESETS",
    "TITOK_PRESETS",
    "TiTokConfig",
    "TiTokEncoderOutput",
    "TiTokImageProcessor",
    "TiTokMaskGIT",
    "TiTokMaskGITConfig",
    "TiTokMaskGITOutput",
    "TiTokMaskGITScheduler",
    "TiTokMaskGITSchedulerOutput",
    "TiTokOutput",
    "TiTokPipeline",
    "TiTokTokenizer",
    "imagenet_id2label",
    "mask_tokens",
    "masked_token_loss",
]
