"""Training TiTok with the HF Trainer: data, losses, discriminator, callbacks, recipes."""

from .callbacks import (
    CodebookRestartCallback,
    CodebookUsageCallback,
    EMACallback,
    ExportCallback,
    FreezeCallback,
    GANStartCallback,
    ImageGridCallback,
    SkippedImagesCallback,
)
from .data import Augmentation, ImageTrainingDataset, StreamingImageDataset, load_image_dataset
from .discriminator import LeCamRegularizer, NLayerDiscriminator, hinge_discriminator_loss
from .modules import GeneratorTraining, PixelTokenizerTraining, Stage1Training, TrainingModule, VQGANTraining
from .perceptual import LPIPS, ConvNeXtSmall, PerceptualLoss
from .recipes import RECIPES, build_trainer, init_stage2_tokenizer, load_recipe_config, run
from .trainer import TiTokTrainer, TiTokTrainingArguments

__all__ = [
    "Augmentation",
    "CodebookRestartCallback",
    "CodebookUsageCallback",
    "ConvNeXtSmall",
    "EMACallback",
    "ExportCallback",
    "FreezeCallback",
    "GANStartCallback",
    "GeneratorTraining",
    "ImageGridCallback",
    "ImageTrainingDataset",
    "LPIPS",
    "LeCamRegularizer",
    "NLayerDiscriminator",
    "PerceptualLoss",
    "PixelTokenizerTraining",
    "RECIPES",
    "SkippedImagesCallback",
    "Stage1Training",
    "StreamingImageDataset",
    "TiTokTrainer",
    "TiTokTrainingArguments",
    "TrainingModule",
    "VQGANTraining",
    "build_trainer",
    "hinge_discriminator_loss",
    "init_stage2_tokenizer",
    "load_image_dataset",
    "load_recipe_config",
    "run",
]
