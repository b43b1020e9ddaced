"""Training TiTok with the HF Trainer: the recipe registry (`recipes`), training wrappers that compute each
recipe's loss (`modules`), losses and the PatchGAN discriminator, stage callbacks, `TiTokTrainer`, and
pre-tokenization. Builds on the models and data layers."""

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
from .discriminator import LeCamRegularizer, NLayerDiscriminator, hinge_discriminator_loss
from .losses import PerceptualLoss
from .modules import GeneratorTraining, PixelTokenizerTraining, Stage1Training, TrainingModule, VQGANTraining
from .pretokenize import pretokenize
from .recipes import RECIPES, Recipe, RecipeRun, build_trainer, init_stage2_tokenizer, load_recipe_config, run
from .trainer import TiTokTrainer, TiTokTrainingArguments

__all__ = [
    "CodebookRestartCallback",
    "CodebookUsageCallback",
    "EMACallback",
    "ExportCallback",
    "FreezeCallback",
    "GANStartCallback",
    "GeneratorTraining",
    "ImageGridCallback",
    "LeCamRegularizer",
    "NLayerDiscriminator",
    "PerceptualLoss",
    "PixelTokenizerTraining",
    "RECIPES",
    "Recipe",
    "RecipeRun",
    "SkippedImagesCallback",
    "Stage1Training",
    "TiTokTrainer",
    "TiTokTrainingArguments",
    "TrainingModule",
    "VQGANTraining",
    "build_trainer",
    "hinge_discriminator_loss",
    "init_stage2_tokenizer",
    "load_recipe_config",
    "pretokenize",
    "run",
]
