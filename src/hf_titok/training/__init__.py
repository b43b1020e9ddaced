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

from . import callbacks, discriminator, losses, recipes, trainer, wrappers
from .builders import RecipeRun, init_stage2_tokenizer
from .callbacks import *  # noqa: F403
from .command import train
from .discriminator import *  # noqa: F403
from .losses import *  # noqa: F403
from .pretokenize import pretokenize
from .recipes import *  # noqa: F403
from .trainer import *  # noqa: F403
from .wrappers import *  # noqa: F403

__all__ = [
    *callbacks.__all__,
    *discriminator.__all__,
    *losses.__all__,
    *recipes.__all__,
    *trainer.__all__,
    *wrappers.__all__,
    "RecipeRun",
    "init_stage2_tokenizer",
    "pretokenize",
    "train",
]
