"""The TiTok training recipes: yaml config -> models, data, callbacks and a `TiTokTrainer`, then train.

`RECIPES` holds one entry per recipe (`recipe:` in the config) with everything that differs between them:
its default hyper-parameters, how its model and data are made, the training wrapper that computes its loss,
and its callbacks. `build_trainer` is the same for all of them.

- `vqgan`: the MaskGIT-VQGAN proxy-code teacher itself;
- `stage1`: TiTok predicting the proxy codes of a frozen VQGAN;
- `stage2`: decoder fine-tuning in pixel space, encoder and quantizer frozen;
- `single_stage`: a VQ or VAE tokenizer on pixels from scratch;
- `generator`: MaskGIT on token ids.

Defaults are the official hyper-parameters (section 5 of the official implementation notes); a config
overrides them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import json
import logging
import math
import os
import re
import typing
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
import yaml
from huggingface_hub.errors import StrictDataclassError
from torch import nn
from transformers import TrainerCallback, set_seed

from ..configuration_maskgit_vqgan import MaskGITVQGANConfig
from ..configuration_titok import TiTokConfig
from ..configuration_titok_maskgit import TiTokMaskGITConfig
from ..data.class_labels import dataset_class_names, default_id2label
from ..data.datasets import ImageTrainingDataset, collate_images, collate_tokens, load_image_dataset
from ..data.images import Augmentation, decode_image, sample_rng
from ..image_processing_titok import TiTokImageProcessor
from ..loaders import load_tokenizer
from ..loading import damaged_weight_files
from ..modeling_maskgit_vqgan import MaskGITVQGAN
from ..modeling_titok import TiTokTokenizer
from ..modeling_titok_maskgit import TiTokMaskGIT
from ..pipeline_titok import TiTokPipeline
from ..sampling_settings import SAMPLER_SETTINGS, SETTINGS
from ..scheduling_titok_maskgit import TiTokMaskGITScheduler
from ..visualization import image_grid
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
from .discriminator import NLayerDiscriminator
from .losses import PerceptualLoss
from .modules import GeneratorTraining, PixelTokenizerTraining, Stage1Training, TrainingModule, VQGANTraining
from .trainer import TiTokTrainer, TiTokTrainingArguments

logger = logging.getLogger(__name__)

_TOKENIZER_TRAINING = dict(
    learning_rate=1e-4,
    adam_beta1=0.9,
    adam_beta2=0.99,
    weight_decay=1e-4,
    warmup_steps=10_000,
    end_learning_rate=1e-5,
    max_steps=1_000_000,
    per_device_train_batch_size=32,
    max_grad_norm=1.0,
    seed=42,
    use_ema=True,
    ema_decay=0.999,
)
_PIXEL_LOSS = dict(
    perceptual="convnext_s",
    perceptual_weight=0.1,
    gan_weight=0.01,
    lecam_weight=0.001,
    convnext_weights=None,
    lpips_vgg_weights=None,
    lpips_head_weights=None,
)
_PIXEL_TRAINING = dict(_TOKENIZER_TRAINING, adam_beta2=0.999, max_steps=500_000, discriminator_start=20_000)
_GENERATOR_TRAINING = dict(
    learning_rate=2e-4,
    adam_beta1=0.9,
    adam_beta2=0.96,
    weight_decay=0.03,
    warmup_steps=10_000,
    end_learning_rate=1e-5,
    max_steps=500_000,
    per_device_train_batch_size=64,
    max_grad_norm=1.0,
    seed=42,
    use_ema=True,
    ema_decay=0.999,
)
_ALWAYS = dict(
    remove_unused_columns=False,
    report_to="none",
    save_strategy="steps",
    save_steps=5_000,
    save_total_limit=2,
    logging_steps=50,
    dataloader_num_workers=0,
    lr_scheduler_type="constant",
)


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------


def _merge(base: dict, update: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (update or {}).items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


class _ConfigLoader(yaml.SafeLoader):
    """YAML with YAML 1.2 floats: PyYAML (YAML 1.1) reads `3e-4` as the string "3e-4", which would reach the
    optimizer as a string; here it is the float 3e-4 (as is `1.0e-3`, `.5`, `1_000.0`)."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$"
    ),
    list("-+0123456789."),
)


def _load_yaml(text: str):
    return yaml.load(text, Loader=_ConfigLoader)


# The recipe configs shipped in the package (`hf-titok train --config titok_l32_stage1`).
CONFIGS_DIR = Path(__file__).parent / "configs"


def shipped_configs() -> list[str]:
    """Names of the shipped recipe configs (`titok_l32_stage1`, `fashion_mnist/stage1`, ...)."""
    return sorted(path.relative_to(CONFIGS_DIR).with_suffix("").as_posix() for path in CONFIGS_DIR.rglob("*.yaml"))


def config_path(name_or_path: str | Path) -> Path:
    """A recipe config file: a path to a yaml, or the name of a shipped config (with or without `.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIGS_DIR / (path.as_posix().removesuffix(".yaml") + ".yaml")
    if not path.is_absolute() and shipped.is_file():
        return shipped
    names = shipped_configs()
    hint = _close_match(str(name_or_path).removesuffix(".yaml"), names)
    raise FileNotFoundError(
        f"training config not found: {name_or_path} is neither a file nor a shipped config{hint} "
        f"(shipped: {', '.join(names)}; `hf-titok train --list`)"
    )


def load_recipe_config(path: str | Path | dict, overrides: list[str] | None = None) -> dict:
    """Read a recipe yaml (a path, or the name of a shipped config), apply `key.sub=value` overrides (values
    parsed as yaml), check every key and value against the recipe's schema (`check_recipe_config`) and add the
    recipe defaults."""
    if isinstance(path, dict):
        config = copy.deepcopy(path)
    else:
        path = config_path(path)
        try:
            config = _load_yaml(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"a training config is a mapping of sections (recipe, training, data, ...), got {type(config).__name__}"
        )
    for override in overrides or []:
        if "=" not in override:
            raise ValueError(f"overrides look like section.key=value, got {override!r}")
        dotted, raw = override.split("=", 1)
        node = config
        *parents, leaf = dotted.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {dotted}: {part} is not a section")
        try:
            node[leaf] = _load_yaml(raw)
        except yaml.YAMLError as error:
            raise ValueError(f"--set {override}: the value is not valid YAML ({error})") from None
    recipe = config.get("recipe")
    if recipe not in RECIPES:
        hint = _close_match(str(recipe), RECIPES)
        raise ValueError(f"the config's recipe must be one of {tuple(RECIPES)}, got {recipe!r}{hint}")
    check_recipe_config(config)
    defaults = RECIPES[recipe]
    return _merge(
        {"data": {}, "model": {}, "training": dict(_ALWAYS, **defaults.training), "loss": dict(defaults.loss)}, config
    )


# The keys of each config section and the type of their values (None, "unset", is always allowed).
_SECTION_SCHEMAS = {
    "data": {
        "source": str,
        "split": str,
        "crop_size": int,
        "random_flip": bool,
        "image_column": str,
        "label_column": str,
        "streaming": bool,
        "pretokenized": str,
        "num_classes": int,
        "id2label": dict,
        "pad_small_images": bool,
    },
    "model": {
        "preset": str,
        "config": dict,
        "pretrained": str,
        "init_from": str,
        "pixel_decoder_from": str,
        "frozen": list,
    },
    "discriminator": {"hidden_channels": int, "channel_mult": list, "num_groups": int, "pool_size": int},
    "sampling": {**{setting.name: setting.type for setting in SAMPLER_SETTINGS}, "match_official_rng": bool},
}
_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def _close_match(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_problem(where: str, value, kind) -> str | None:
    if value is None or kind is None:
        return None
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{where} must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"{where} must be finite, got {value!r}"
        return None
    if kind is int:
        return (
            None
            if isinstance(value, int) and not isinstance(value, bool)
            else f"{where} must be an integer, got {value!r}"
        )
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return None
    return f"{where} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}"


def _training_argument_types() -> dict:
    """TiTokTrainingArguments field -> the plain type it takes (int, float, bool, str), or None (not checked)."""
    hints = typing.get_type_hints(TiTokTrainingArguments)
    types = {}
    for item in dataclasses.fields(TiTokTrainingArguments):
        hint = hints.get(item.name)
        options = [option for option in typing.get_args(hint) if option is not type(None)] or [hint]
        plain = [option for option in options if option in (int, float, bool, str)]
        types[item.name] = float if float in plain else (plain[0] if len(plain) == 1 and len(options) == 1 else None)
    return types


def check_recipe_config(config: dict) -> None:
    """Every section and key of a recipe config is known, and every value has the right type: a misspelt key
    would otherwise be ignored and the run would train with the defaults. Raises one `ValueError` listing every
    problem, with the closest known key for a misspelt one."""
    recipe = RECIPES[config["recipe"]]
    problems = []
    sections = {"recipe", "training", "data", "model", "loss", *recipe.extra_sections}
    for key, value in config.items():
        if key not in sections:
            problems.append(f"unknown section {key!r}{_close_match(key, sections)}")
            continue
        if key in ("teacher", "tokenizer"):
            problems.append(_type_problem(key, value, str))
        elif key != "recipe" and value is not None and not isinstance(value, dict):
            problems.append(f"section {key!r} must be a mapping of keys to values, got {value!r}")
    # A recipe's loss keys are those of its defaults: strings for the perceptual network and its weight files,
    # numbers for the rest.
    loss_schema = {name: str if name == "perceptual" or name.endswith("_weights") else float for name in recipe.loss}
    schemas = {**_SECTION_SCHEMAS, "training": _training_argument_types(), "loss": loss_schema}
    for section, schema in schemas.items():
        values = config.get(section)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if key not in schema:
                problems.append(f"unknown key {section}.{key}{_close_match(key, schema)}")
            else:
                problems.append(_type_problem(f"{section}.{key}", value, schema[key]))
    sampling = config.get("sampling")
    for key, value in sampling.items() if isinstance(sampling, dict) else ():
        if key in SETTINGS and value is not None and not _type_problem(key, value, SETTINGS[key].type):
            try:  # the sampler's own bounds (hf_titok.sampling_settings)
                SETTINGS[key].check(value)
            except (TypeError, ValueError) as error:
                problems.append(f"sampling.{error}")
    model_config = (config.get("model") or {}).get("config")
    if isinstance(model_config, dict):
        fields = {item.name for item in dataclasses.fields(recipe.model_config)}
        for key in model_config:
            if key in SETTINGS:
                problems.append(f"model.config.{key} is a sampler setting: set it in the sampling: section")
            elif key not in fields:
                problems.append(
                    f"unknown key model.config.{key} of {recipe.model_config.__name__}{_close_match(key, fields)}"
                )
    problems = [problem for problem in problems if problem]
    if problems:
        raise ValueError(f"the {recipe.name} config has {len(problems)} problem(s): " + "; ".join(problems))


# --------------------------------------------------------------------------------------------------
# What a recipe builds
# --------------------------------------------------------------------------------------------------


@dataclass
class RecipeRun:
    """What a recipe made for one run, handed to its wrapper and callback factories."""

    config: dict
    args: TiTokTrainingArguments
    model: nn.Module
    dataset: torch.utils.data.Dataset
    collator: Callable
    image_size: int
    image_processor: TiTokImageProcessor  # saved with the model: the preprocessing it was trained with
    tokenizer: TiTokTokenizer | None = None  # generator: the frozen tokenizer (ids on the fly, sample grids, export)
    teacher: MaskGITVQGAN | None = None  # stage 1: the proxy-code teacher
    wrapper: TrainingModule | None = None


def _tokenizer_config(section: dict, **forced) -> TiTokConfig:
    overrides = {**section.get("config", {}), **forced}
    if section.get("preset"):
        return TiTokConfig.from_preset(section["preset"], **overrides)
    return TiTokConfig(**overrides)


def init_stage2_tokenizer(section: dict) -> TiTokTokenizer:
    """Stage-2 initialisation as officially done: the stage-1 weights, plus the VQGAN's codebook and decoder
    as the pixel codebook and pixel decoder; commitment cost 0."""
    if not section.get("init_from"):
        raise ValueError("stage 2 needs model.init_from: the stage-1 tokenizer to fine-tune")
    stage1 = TiTokTokenizer.from_pretrained(section["init_from"])
    if stage1.config.decoder_head != "proxy_codes":
        raise ValueError("stage 2 fine-tunes a two-stage (proxy-code) tokenizer")
    if stage1.pixel_decoder is not None:
        return stage1  # already has its pixel decoder (e.g. a converted two-stage release)
    if not section.get("pixel_decoder_from"):
        raise ValueError(
            "stage 2 needs model.pixel_decoder_from: the MaskGIT-VQGAN whose decoder renders the proxy codes"
        )
    vqgan = load_vqgan_at(section["pixel_decoder_from"], stage1.config.image_size)
    config = TiTokConfig(
        **{
            **stage1.config.to_diff_dict(),
            "include_pixel_decoder": True,
            "commitment_cost": 0.0,
            "pixel_decoder_config": vqgan.config.to_dict(),
        }
    )
    model = TiTokTokenizer(config)
    missing, unexpected = model.load_state_dict(stage1.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pixel_") for key in missing):
        raise ValueError(f"stage-1 weights do not fit: missing {missing}, unexpected {unexpected}")
    model.pixel_decoder.load_state_dict(vqgan.decoder.state_dict())
    model.pixel_quantizer.load_state_dict(vqgan.quantizer.state_dict())
    return model


def _new_tokenizer(config: dict, **forced) -> TiTokTokenizer:
    """The tokenizer to train: `model.pretrained` (fine-tuning), else new from `model.preset` / `model.config`."""
    section = config["model"]
    if section.get("pretrained"):
        return TiTokTokenizer.from_pretrained(section["pretrained"])
    return TiTokTokenizer(_tokenizer_config(section, **forced))


def _stage1_tokenizer(config: dict) -> TiTokTokenizer:
    """Stage 1 trains the proxy-code layout without the pixel decoder (the teacher renders its codes)."""
    return _new_tokenizer(config, decoder_head="proxy_codes", include_pixel_decoder=False)


def _stage2_tokenizer(config: dict) -> TiTokTokenizer:
    if config["model"].get("pretrained"):
        return _new_tokenizer(config)
    return init_stage2_tokenizer(config["model"])


def _new_vqgan(config: dict) -> MaskGITVQGAN:
    section = config["model"]
    if section.get("pretrained"):
        return MaskGITVQGAN.from_pretrained(section["pretrained"])
    return MaskGITVQGAN(MaskGITVQGANConfig(**section.get("config", {})))


def load_vqgan_at(source: str, image_size: int) -> MaskGITVQGAN:
    """The MaskGIT-VQGAN at `source`, run at `image_size`. It is fully convolutional, so the released 256x256
    VQGAN (the only MaskGIT-VQGAN with converted weights) also tokenizes 512x512 images, into a 32x32 grid of
    proxy codes: that is the teacher and pixel decoder of the 512x512 TiTok recipes."""
    return MaskGITVQGAN.from_pretrained(source, image_size=image_size)


def _augmentation(config: dict, image_size: int, random_crop: bool = True) -> Augmentation:
    data = config["data"]
    if data.get("crop_size") not in (None, image_size):
        raise ValueError(
            f"data.crop_size={data['crop_size']} differs from the model's image_size={image_size}: "
            f"set data.crop_size: {image_size} (or a model of that size)"
        )
    return Augmentation(
        data.get("crop_size", image_size),
        random_crop=random_crop,
        random_flip=data.get("random_flip", True),
        pad_small_images=data.get("pad_small_images", False),
    )


def _image_data(config: dict, augmentation: Augmentation, seed: int):
    data = config["data"]
    if not data.get("source"):
        raise ValueError(
            "the config needs data.source: a local image folder or a Hub dataset id (e.g. timm/imagenet-1k-wds)"
        )
    dataset = load_image_dataset(
        data["source"],
        data.get("split", "train"),
        augmentation,
        data.get("image_column"),
        data.get("label_column"),
        data.get("streaming"),
        seed,
    )
    return dataset, collate_images


def _prepare_images(make_model: Callable[[dict], nn.Module], needs_teacher: bool = False):
    """Model + image data (random crops) for the tokenizer and VQGAN recipes; stage 1 also loads its teacher."""

    def prepare(config: dict, args: TiTokTrainingArguments) -> RecipeRun:
        teacher = None
        if needs_teacher and not config.get("teacher"):
            raise ValueError(
                "stage 1 needs `teacher:` the MaskGIT-VQGAN (local dir or Hub id) whose codes are the targets"
            )
        model = make_model(config)
        augmentation = _augmentation(config, model.config.image_size)
        if needs_teacher:
            teacher = load_vqgan_at(config["teacher"], model.config.image_size)
        with args.main_process_first(desc="loading the dataset"):
            dataset, collator = _image_data(config, augmentation, args.seed)
        return RecipeRun(
            config,
            args,
            model,
            dataset,
            collator,
            model.config.image_size,
            augmentation.image_processor(),
            teacher=teacher,
        )

    return prepare


def _dataset_num_classes(dataset, config: dict) -> int | None:
    if config["data"].get("num_classes"):
        return int(config["data"]["num_classes"])
    names = dataset_class_names(dataset)
    return len(names) if names else None


def _prepare_generator(config: dict, args: TiTokTrainingArguments) -> RecipeRun:
    """The frozen tokenizer, the ids (pre-tokenized, or images tokenized on the fly), and the generator over them."""
    tokenizer = processor = None
    if config.get("tokenizer"):
        tokenizer, processor = load_tokenizer(config["tokenizer"])
    data = config["data"]
    with args.main_process_first(desc="loading the dataset"):
        if data.get("pretokenized"):
            dataset = datasets.load_from_disk(data["pretokenized"])
            if isinstance(dataset, datasets.DatasetDict):
                dataset = dataset[data.get("split", "train")]
            collator = collate_tokens
        elif tokenizer is None:
            raise ValueError(
                "generator training needs `tokenizer:` (ids on the fly) or data.pretokenized (ids on disk)"
            )
        else:  # center crops (and flips) of the images, tokenized on the fly, as the tokenizer's processor does them
            augmentation = Augmentation(
                processor.image_size,
                random_crop=False,
                random_flip=data.get("random_flip", True),
                pad_small_images=processor.do_pad,
            )
            dataset, collator = _image_data(config, augmentation, args.seed)
    section = config["model"]
    if section.get("pretrained"):
        model = TiTokMaskGIT.from_pretrained(section["pretrained"])
    else:
        derived = dict(num_classes=_dataset_num_classes(dataset, config))
        if tokenizer is not None:
            derived.update(
                codebook_size=tokenizer.config.codebook_size, num_latent_tokens=tokenizer.config.num_latent_tokens
            )
        overrides = {**{k: v for k, v in derived.items() if v is not None}, **section.get("config", {})}
        preset = section.get("preset")
        model = TiTokMaskGIT(
            TiTokMaskGITConfig.from_preset(preset, **overrides) if preset else TiTokMaskGITConfig(**overrides)
        )
    image_size = tokenizer.config.image_size if tokenizer is not None else 256
    processor = processor or TiTokImageProcessor.for_image_size(image_size)
    return RecipeRun(config, args, model, dataset, collator, image_size, processor, tokenizer=tokenizer)


def _perceptual(loss: dict) -> PerceptualLoss:
    return PerceptualLoss(
        loss.get("perceptual", "convnext_s"),
        loss.get("convnext_weights"),
        loss.get("lpips_vgg_weights"),
        loss.get("lpips_head_weights"),
    )


def _discriminator(config: dict) -> NLayerDiscriminator:
    spec = config.get("discriminator", {})
    return NLayerDiscriminator(
        hidden_channels=spec.get("hidden_channels", 128),
        channel_mult=tuple(spec.get("channel_mult", (1, 2, 4))),
        num_groups=spec.get("num_groups", 32),
        pool_size=spec.get("pool_size", 16),
    )


def _vqgan_wrapper(run: RecipeRun) -> TrainingModule:
    loss = run.config["loss"]
    return VQGANTraining(
        run.model,
        _discriminator(run.config),
        _perceptual(loss),
        loss["perceptual_weight"],
        loss["quantizer_weight"],
        loss["gan_weight"],
        loss["lecam_weight"],
        run.args.use_ema,
    )


def _stage1_wrapper(run: RecipeRun) -> TrainingModule:
    return Stage1Training(run.model, run.teacher, run.config["loss"]["quantizer_weight"], run.args.use_ema)


def _pixel_tokenizer_wrapper(run: RecipeRun) -> TrainingModule:
    loss = run.config["loss"]
    return PixelTokenizerTraining(
        run.model,
        _discriminator(run.config),
        _perceptual(loss),
        loss["perceptual_weight"],
        loss.get("quantizer_weight", 0.0),
        loss.get("kl_weight", 1e-6),
        loss["gan_weight"],
        loss["lecam_weight"],
        run.args.use_ema,
    )


def _generator_wrapper(run: RecipeRun) -> TrainingModule:
    return GeneratorTraining(run.model, run.tokenizer, use_ema=run.args.use_ema)


# ---- callbacks: each factory returns the callback the run needs, or None --------------------------------


def _gan_start(run: RecipeRun) -> TrainerCallback:
    return GANStartCallback(run.args.discriminator_start)


def _freeze(run: RecipeRun) -> TrainerCallback:
    return FreezeCallback(run.config["model"].get("frozen", ["encoder", "quantizer"]))


def _codebook_usage(run: RecipeRun) -> TrainerCallback | None:
    if isinstance(run.model, TiTokTokenizer) and not run.model.is_vq:
        return None
    return CodebookUsageCallback(run.model.config.codebook_size)


def _codebook_restarts(run: RecipeRun) -> TrainerCallback | None:
    if not run.args.codebook_restart_steps:
        return None
    if not run.model.is_vq:
        raise ValueError("codebook_restart_steps applies to VQ tokenizers; this one is a VAE")
    return CodebookRestartCallback(run.model.config.codebook_size, run.args.codebook_restart_steps, run.args.seed)


def _first_images(dataset, count: int, processor: TiTokImageProcessor) -> torch.Tensor:
    """A fixed, unaugmented batch for the reconstruction grids."""
    center = Augmentation(processor.image_size, random_crop=False, random_flip=False, pad_small_images=processor.do_pad)
    images = []
    if isinstance(dataset, ImageTrainingDataset):
        spread = sorted({round(i * (len(dataset) - 1) / max(count - 1, 1)) for i in range(count)})
        for index in spread + [i for i in range(len(dataset)) if i not in spread]:
            try:
                images.append(
                    center(decode_image(dataset.dataset[index][dataset.image_column]), sample_rng(0, 0, index))
                )
            except Exception:  # skip unreadable files here too
                continue
            if len(images) == count:
                break
    else:
        for row in dataset:
            images.append(row["pixel_values"])
            if len(images) == count:
                break
    return torch.stack(images)


def _reconstruction_grids(run: RecipeRun) -> TrainerCallback | None:
    if not run.args.image_log_steps:
        return None
    images, teacher, processor = _first_images(run.dataset, 8, run.image_processor), run.teacher, run.image_processor

    def render(model, wrapper, step):
        device = next(model.parameters()).device
        x = images.to(device)
        out = model(x)
        if getattr(out, "reconstruction", None) is not None:
            reconstruction = out.reconstruction
        else:  # stage-1 layout: render the argmax proxy codes with the teacher's decoder
            reconstruction = teacher.to(device).decode(out.proxy_logits.argmax(-1))
        rows = [processor.postprocess(x, rounding="round"), processor.postprocess(reconstruction)]
        return image_grid(rows, row_labels=["input", "reconstruction"], title=f"step {step}")

    return ImageGridCallback(run.args.image_log_steps, render)


def _scheduler(run: RecipeRun) -> TiTokMaskGITScheduler:
    """The sampler of sample grids and of the exported pipeline: the config's `sampling:` section, over the
    official sampling settings of `model.preset` when there is one."""
    sampling, preset = run.config.get("sampling", {}), run.config["model"].get("preset")
    return TiTokMaskGITScheduler.from_preset(preset, **sampling) if preset else TiTokMaskGITScheduler(**sampling)


def _id2label(run: RecipeRun) -> dict[int, str]:
    if run.config["data"].get("id2label"):
        return {int(k): v for k, v in run.config["data"]["id2label"].items()}
    return default_id2label(run.model.config.num_classes, run.dataset)


def _sample_grids(run: RecipeRun, samples_per_class: int = 4, max_classes: int = 10) -> TrainerCallback | None:
    if not run.args.image_log_steps:
        return None
    if run.tokenizer is None:
        logger.warning("no `tokenizer:` in the config: sample grids are off (pre-tokenized training)")
        return None
    tokenizer, scheduler, id2label = run.tokenizer, _scheduler(run), _id2label(run)

    def render(model, wrapper, step):
        pipe = TiTokPipeline(tokenizer, model, scheduler, id2label=id2label)
        pipe.set_progress_bar_config(disable=True)
        classes = list(range(min(max_classes, model.config.num_classes)))
        images = pipe(
            classes, num_images_per_label=samples_per_class, generator=torch.Generator().manual_seed(0)
        ).images
        rows = [images[i * samples_per_class : (i + 1) * samples_per_class] for i in range(len(classes))]
        return image_grid(rows, row_labels=[id2label[c].split(",")[0] for c in classes], title=f"step {step}")

    return ImageGridCallback(run.args.image_log_steps, render)


# ---- what the run exports at the end ----------------------------------------------------------------------


def _export_model_with_processor(run: RecipeRun) -> TrainerCallback:
    """The model with the image processor that reproduces its training preprocessing."""
    return ExportCallback(_export_dir(run.args), run.args.export_push_to_hub, extras=(run.image_processor,))


def _export_pipeline(run: RecipeRun) -> TrainerCallback:
    """A full TiTokPipeline when the tokenizer is known, else the generator alone."""
    if run.tokenizer is None:
        return ExportCallback(_export_dir(run.args), run.args.export_push_to_hub)
    tokenizer, scheduler, id2label, processor = run.tokenizer, _scheduler(run), _id2label(run), run.image_processor

    def build(model):
        return TiTokPipeline(tokenizer, model, scheduler, processor, id2label=id2label)

    return ExportCallback(_export_dir(run.args), run.args.export_push_to_hub, build=build)


def _export_dir(args: TiTokTrainingArguments) -> str:
    return args.export_dir or os.path.join(args.output_dir, "final")


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """One training recipe: its default `training:`/`loss:` settings, how its model and data are made
    (`prepare`), the wrapper that computes its loss, its callbacks (factories returning a callback or None) and
    what it exports. `entry_point` is the script that trains it."""

    name: str
    entry_point: str  # "tokenizer" (training/train_tokenizer.py) or "generator" (training/train_generator.py)
    training: dict
    loss: dict
    prepare: Callable[[dict, TiTokTrainingArguments], RecipeRun]
    wrapper: Callable[[RecipeRun], TrainingModule]
    callbacks: tuple[Callable[[RecipeRun], TrainerCallback | None], ...] = ()
    export: Callable[[RecipeRun], TrainerCallback] = _export_model_with_processor
    extra_sections: tuple[str, ...] = field(default=())  # config sections beyond training/data/model/loss
    model_config: type = TiTokConfig  # the config class of `model.config`


_PIXEL_CALLBACKS = (_gan_start, _codebook_usage, _reconstruction_grids)

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in [
        Recipe(
            "vqgan",
            "tokenizer",
            dict(_PIXEL_TRAINING),
            dict(_PIXEL_LOSS, quantizer_weight=1.0),
            _prepare_images(_new_vqgan),
            _vqgan_wrapper,
            _PIXEL_CALLBACKS,
            extra_sections=("discriminator",),
            model_config=MaskGITVQGANConfig,
        ),
        Recipe(
            "stage1",
            "tokenizer",
            dict(_TOKENIZER_TRAINING),
            {"quantizer_weight": 1.0},
            _prepare_images(_stage1_tokenizer, needs_teacher=True),
            _stage1_wrapper,
            (_codebook_usage, _codebook_restarts, _reconstruction_grids),
            extra_sections=("teacher",),
        ),
        Recipe(
            "stage2",
            "tokenizer",
            dict(
                _TOKENIZER_TRAINING, adam_beta2=0.999, warmup_steps=5_000, max_steps=500_000, discriminator_start=20_000
            ),
            dict(_PIXEL_LOSS, quantizer_weight=0.0),
            _prepare_images(_stage2_tokenizer),
            _pixel_tokenizer_wrapper,
            (_freeze, *_PIXEL_CALLBACKS),
            extra_sections=("discriminator",),
        ),
        # No official single-stage TiTok training config exists (bytedance/1d-tokenizer issue #100): the stage-2
        # loss weights and optimiser, with the quantizer loss (VQ) or KL (VAE) switched on.
        Recipe(
            "single_stage",
            "tokenizer",
            dict(_PIXEL_TRAINING),
            dict(_PIXEL_LOSS, quantizer_weight=1.0, kl_weight=1e-6),
            _prepare_images(_new_tokenizer),
            _pixel_tokenizer_wrapper,
            (*_PIXEL_CALLBACKS, _codebook_restarts),
            extra_sections=("discriminator",),
        ),
        Recipe(
            "generator",
            "generator",
            dict(_GENERATOR_TRAINING),
            {},
            _prepare_generator,
            _generator_wrapper,
            (_codebook_usage, _sample_grids),
            export=_export_pipeline,
            extra_sections=("tokenizer", "sampling"),
            model_config=TiTokMaskGITConfig,
        ),
    ]
}


# --------------------------------------------------------------------------------------------------
# Build and run
# --------------------------------------------------------------------------------------------------


def build_trainer(config: dict, output_dir: str | None = None) -> TiTokTrainer:
    """Everything a recipe needs, assembled into a `TiTokTrainer` (not yet training)."""
    recipe = RECIPES[config["recipe"]]
    training = dict(config["training"])
    if output_dir:
        training["output_dir"] = output_dir
    training.setdefault("output_dir", f"outputs/{recipe.name}")
    check_output_dir(training["output_dir"])
    args = TiTokTrainingArguments(**training)
    set_seed(args.seed)  # new weights (model, discriminator) are drawn from the seeded RNG
    if args.codebook_restart_steps and _codebook_restarts not in recipe.callbacks:
        raise ValueError(
            f"codebook_restart_steps applies to VQ tokenizers whose quantizer trains (stage1, single_stage), "
            f"not to recipe {recipe.name!r}"
        )
    run = recipe.prepare(config, args)
    run.wrapper = recipe.wrapper(run)
    callbacks = [EMACallback(args.ema_decay)] if args.use_ema else []
    callbacks += [callback for factory in recipe.callbacks if (callback := factory(run)) is not None]
    callbacks += [SkippedImagesCallback(run.dataset), recipe.export(run)]
    return TiTokTrainer(
        model=run.wrapper, args=args, train_dataset=run.dataset, data_collator=run.collator, callbacks=callbacks
    )


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None. The Trainer writes `trainer_state.json` last, so
    a folder without it was being written when the run was killed; a weight, optimizer or RNG file that does not
    read (truncated, say) is damaged. Cheap checks: safetensors headers and the zip directories of torch files."""
    state = path / "trainer_state.json"
    if not state.is_file():
        return "incomplete (no trainer_state.json: the run was stopped while writing it)"
    try:
        json.loads(state.read_text())
    except ValueError as error:
        return f"damaged trainer_state.json ({error})"
    problems = damaged_weight_files(path)
    for file in sorted(path.iterdir()):
        if file.suffix in (".pt", ".pth", ".bin"):
            try:
                with zipfile.ZipFile(file):
                    pass
            except (zipfile.BadZipFile, OSError) as error:
                problems.append(f"{file}: {error}")
    return f"damaged files: {'; '.join(problems)}" if problems else None


def last_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint in `output_dir` that can be resumed from; newer incomplete or damaged ones are
    skipped with a warning naming them (see `checkpoint_problem`)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    checkpoints = sorted(
        (int(path.name.split("-")[1]), path)
        for path in folder.glob("checkpoint-*")
        if path.name.split("-")[1].isdigit()
    )
    for step, path in reversed(checkpoints):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        logger.warning("skipping checkpoint %s: %s; resuming from an earlier one", path, problem)
    return None


def check_output_dir(output_dir: str) -> None:
    """Fail before any work when the run could not save its checkpoints."""
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test_{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise OSError(f"cannot write to the training output directory {path}: {error.strerror or error}") from None


def resume_and_train(trainer: TiTokTrainer, resume: str | bool = "auto") -> TiTokTrainer:
    """Train, resuming as asked: `"auto"` from the last usable checkpoint in the output dir if there is one (a
    killed run restarts where it stopped), a path from that checkpoint, False from scratch."""
    checkpoint = last_checkpoint(trainer.args.output_dir) if resume == "auto" else (resume or None)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer


def run(config: dict, output_dir: str | None = None, resume: str | bool = "auto") -> TiTokTrainer:
    """Train a recipe (see `resume_and_train` for `resume`)."""
    return resume_and_train(build_trainer(config, output_dir), resume)


def main(argv: list[str] | None = None, entry_point: str | None = None, prog: str | None = None) -> None:
    """Command line of training (`hf-titok train --config ...`, `accelerate launch -m hf_titok.training ...`, or
    the scripts in `training/`); `entry_point` ("tokenizer" or "generator") limits it to those recipes."""
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
            recipe = _load_yaml(config_path(name).read_text()).get("recipe")
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


__all__ = [
    "CONFIGS_DIR",
    "RECIPES",
    "Recipe",
    "RecipeRun",
    "build_trainer",
    "check_recipe_config",
    "checkpoint_problem",
    "config_path",
    "init_stage2_tokenizer",
    "last_checkpoint",
    "load_recipe_config",
    "main",
    "resume_and_train",
    "run",
    "shipped_configs",
]
