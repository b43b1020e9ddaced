"""Training TiTok with the HF Trainer. Builds on the models and data layers.

- `config`: reading recipe configs (yaml, shipped configs, `--set` overrides) and checking them against the
  declarations that hold their defaults;
- `recipes`: the recipe registry, one `Recipe` entry each (defaults, loss declaration, wrapper, callbacks);
- `builders`: what a recipe is made of (models, data, teacher, frozen tokenizer), as a `RecipeRun`;
- `wrappers`: the training wrappers that compute each recipe's loss; `losses`, `discriminator`: their parts;
- `callbacks`: stage callbacks (EMA, GAN start, freezing, codebook usage and restarts, image grids, export);
- `trainer`: `TiTokTrainer` (optimizer groups, schedules) and the checkpoint a run resumes from;
- `command`: `hf-titok train` and `train()`; `pretokenize`: images -> token-id datasets.
"""

from .builders import RecipeRun, init_stage2_tokenizer
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
from .command import train
from .discriminator import LeCamRegularizer, NLayerDiscriminator, hinge_discriminator_loss
from .losses import PerceptualLoss
from .pretokenize import pretokenize
from .recipes import RECIPES, Recipe, build_trainer, load_recipe_config
from .trainer import TiTokTrainer, TiTokTrainingArguments
from .wrappers import GeneratorTraining, PixelTokenizerTraining, Stage1Training, TrainingModule, VQGANTraining

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
    "train",
]
