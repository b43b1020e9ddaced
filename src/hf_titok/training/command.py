"""Training from the command line (`hf-titok train --config ...`, `accelerate launch -m hf_titok.training ...`,
or the scripts in `training/`), and `train`, the same from Python."""

from __future__ import annotations

import argparse
import logging

from huggingface_hub.errors import StrictDataclassError

from .config import config_path, load_yaml, shipped_configs
from .recipes import RECIPES, build_trainer, load_recipe_config
from .trainer import TiTokTrainer, resume_and_train


def train(config: dict, output_dir: str | None = None, resume: str | bool = "auto") -> TiTokTrainer:
    """Train a recipe config (as `load_recipe_config` returns it); see `resume_and_train` for `resume`."""
    return resume_and_train(build_trainer(config, output_dir), resume)


def main(argv: list[str] | None = None, entry_point: str | None = None, prog: str | None = None) -> None:
    """Command line of training; `entry_point` ("tokenizer", "generator" or "maskgen") limits it to those recipes."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a TiTok recipe with the HF Trainer (launch with accelerate for several GPUs or processes).",
    )
    parser.add_argument(
        "--config",
        help="a shipped recipe config by name (e.g. titok_l32_stage1; see --list) or a path to a recipe yaml",
    )
    parser.add_argument("--list", action="store_true", help="list the shipped recipe configs and exit")
    parser.add_argument("--output-dir", help="overrides training.output_dir")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config entry, e.g. --set training.max_steps=1000 (repeatable)",
    )
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    args = parser.parse_args(argv)
    if args.list:
        for name in shipped_configs():
            recipe = load_yaml(config_path(name).read_text()).get("recipe")
            print(f"{name:40s} recipe: {recipe}")
        return
    if not args.config:
        parser.error("--config is required (a shipped config name, see --list, or a path)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_recipe_config(args.config, args.overrides)
        if entry_point is not None and RECIPES[config["recipe"]].entry_point != entry_point:
            mine = [name for name, recipe in RECIPES.items() if recipe.entry_point == entry_point]
            raise ValueError(f"this entry point trains {', '.join(mine)}; the config's recipe is {config['recipe']!r}")
        trainer = build_trainer(config, args.output_dir)
    except (ValueError, TypeError, OSError, StrictDataclassError) as error:
        parser.exit(2, f"error: {error}\n")
    resume_and_train(trainer, resume=False if args.no_resume else "auto")


__all__ = ["main", "train"]
