"""hf_titok: TiTok 1-D image tokenizers and MaskGIT generators for transformers and diffusers.

The layers (each builds only on the ones before it; see the README's "Architecture"):

1. `releases` - the one table of released and paper models;
2. models - configs (`configuration_*`), models (`modeling_*`), `image_processing_titok`,
   `scheduling_titok_maskgit`, `pipeline_titok`, with `hub` (cards, uploads), `loaders` and small utilities;
3. `data` - images, augmentations, datasets, class names, Fashion-MNIST;
4. `conversion`, `evaluation`, `training`;
5. `cli`, `demo` (and the Spaces app in `spaces/`).
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from . import conversion  # noqa: F401 - registers the reader of official checkpoints (direct loading)
from .data.class_labels import imagenet_id2label
from .data.fashion_mnist import FASHION_MNIST_PIPELINE
from .models.maskgen.modeling_maskgen import MaskGenKLTransformer, MaskGenVQTransformer
from .models.maskgen.pipeline_maskgen import MaskGenPipeline
from .models.maskgen.scheduling_maskgen import MaskGenKLScheduler, MaskGenVQScheduler
from .models.maskgit_vqgan.configuration_maskgit_vqgan import MaskGITVQGANConfig
from .models.maskgit_vqgan.modeling_maskgit_vqgan import MaskGITVQGAN, MaskGITVQGANEncoderOutput, MaskGITVQGANOutput
from .models.tatitok.configuration_tatitok import TATiTokConfig
from .models.tatitok.modeling_tatitok import TATiTokTokenizer
from .models.titok.configuration_titok import TITOK_PRESETS, TiTokConfig
from .models.titok.image_processing_titok import TiTokImageProcessor
from .models.titok.modeling_titok import TiTokEncoderOutput, TiTokOutput, TiTokTokenizer
from .models.titok_maskgit.configuration_titok_maskgit import TITOK_MASKGIT_PRESETS, TiTokMaskGITConfig
from .models.titok_maskgit.modeling_titok_maskgit import (
    TiTokMaskGIT,
    TiTokMaskGITOutput,
    mask_tokens,
    masked_token_loss,
)
from .models.titok_maskgit.pipeline_titok import TiTokPipeline
from .models.titok_maskgit.scheduling_titok_maskgit import TiTokMaskGITScheduler, TiTokMaskGITSchedulerOutput

__version__ = "0.2.0"

AutoConfig.register(TiTokConfig.model_type, TiTokConfig, exist_ok=True)
AutoConfig.register(MaskGITVQGANConfig.model_type, MaskGITVQGANConfig, exist_ok=True)
AutoModel.register(TiTokConfig, TiTokTokenizer, exist_ok=True)
AutoModel.register(MaskGITVQGANConfig, MaskGITVQGAN, exist_ok=True)
AutoConfig.register(TiTokMaskGITConfig.model_type, TiTokMaskGITConfig, exist_ok=True)
AutoModel.register(TiTokMaskGITConfig, TiTokMaskGIT, exist_ok=True)
AutoConfig.register(TATiTokConfig.model_type, TATiTokConfig, exist_ok=True)
AutoModel.register(TATiTokConfig, TATiTokTokenizer, exist_ok=True)
AutoImageProcessor.register(TATiTokConfig, slow_image_processor_class=TiTokImageProcessor, exist_ok=True)
AutoImageProcessor.register(TiTokConfig, slow_image_processor_class=TiTokImageProcessor, exist_ok=True)
AutoImageProcessor.register(MaskGITVQGANConfig, slow_image_processor_class=TiTokImageProcessor, exist_ok=True)

__all__ = [
    "FASHION_MNIST_PIPELINE",
    "MaskGenKLScheduler",
    "MaskGenKLTransformer",
    "MaskGenPipeline",
    "MaskGenVQScheduler",
    "MaskGenVQTransformer",
    "MaskGITVQGAN",
    "MaskGITVQGANConfig",
    "MaskGITVQGANEncoderOutput",
    "MaskGITVQGANOutput",
    "TITOK_MASKGIT_PRESETS",
    "TATiTokConfig",
    "TATiTokTokenizer",
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
