"""hf_titok: TiTok 1-D image tokenizers and MaskGIT generators, and their family (TA-TiTok, MaskGen, RAR), for
transformers and diffusers.

The layers (each builds only on the ones before it; see the README's "Architecture"):

1. `utils` - what the families share: loading, remote code, input checks, the sampler settings, the pipeline base,
   the ViT blocks, the official checkpoint format;
2. `releases` (the one table of released and paper models), `hub` (cards, uploads) and small utilities;
3. `models` - one folder per family: configuration, modeling, scheduling, pipeline, image processing, convert;
4. `families` (the registry of the families), `loaders`;
5. `data` - images, augmentations, datasets, class names, Fashion-MNIST;
6. `conversion`, `evaluation`, `training`;
7. `cli`, `demo` (and the Spaces app in `spaces/`).
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from . import conversion  # noqa: F401 - registers the reader of official checkpoints (direct loading)
from .data.class_labels import imagenet_id2label
from .data.fashion_mnist import (
    FASHION_MNIST_PIPELINE,
    FASHION_MNIST_PREFIX_TOKENIZER,
    FASHION_MNIST_RAR_PIPELINE,
    FASHION_MNIST_TEXT_PIPELINE,
)
from .families import FAMILIES, Family
from .models.maskgen.modeling_maskgen import MaskGenKLTransformer, MaskGenVQTransformer
from .models.maskgen.pipeline_maskgen import MaskGenPipeline
from .models.maskgen.scheduling_maskgen import MaskGenKLScheduler, MaskGenVQScheduler
from .models.maskgit_vqgan.configuration_maskgit_vqgan import MaskGITVQGANConfig
from .models.maskgit_vqgan.modeling_maskgit_vqgan import MaskGITVQGAN, MaskGITVQGANEncoderOutput, MaskGITVQGANOutput
from .models.rar.configuration_rar import RARConfig
from .models.rar.modeling_rar import RAROutput, RARTransformer
from .models.rar.pipeline_rar import RARPipeline
from .models.rar.scheduling_rar import RARScheduler
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

# transformers' Auto classes: each family's config and model, and the image processor of its images (registry).
for _family in FAMILIES.values():
    if _family.config_class is not None:
        AutoConfig.register(_family.model_type, _family.config_class, exist_ok=True)
        AutoModel.register(_family.config_class, _family.model_class, exist_ok=True)
        if _family.role in ("tokenizer", "vqgan"):
            AutoImageProcessor.register(
                _family.config_class, slow_image_processor_class=TiTokImageProcessor, exist_ok=True
            )

__all__ = [
    "FAMILIES",
    "FASHION_MNIST_PIPELINE",
    "FASHION_MNIST_TEXT_PIPELINE",
    "FASHION_MNIST_RAR_PIPELINE",
    "FASHION_MNIST_PREFIX_TOKENIZER",
    "Family",
    "MaskGenKLScheduler",
    "MaskGenKLTransformer",
    "MaskGenPipeline",
    "MaskGenVQScheduler",
    "MaskGenVQTransformer",
    "MaskGITVQGAN",
    "MaskGITVQGANConfig",
    "MaskGITVQGANEncoderOutput",
    "MaskGITVQGANOutput",
    "RARConfig",
    "RAROutput",
    "RARPipeline",
    "RARScheduler",
    "RARTransformer",
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
