"""The TiTok training recipes: yaml config -> models, data, callbacks and a `TiTokTrainer`, then train.

Recipes (`recipe:` in the config): `vqgan` (the proxy-code teacher), `stage1` (proxy codes of a frozen
VQGAN), `stage2` (decoder fine-tuning in pixel space, encoder and quantizer frozen), `single_stage`
(VQ or VAE tokenizer on pixels from scratch) and `generator` (MaskGIT on token ids). Defaults are the
official hyper-parameters (section 5 of the official implementation notes); a config overrides them.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from pathlib import Path

import torch
import yaml
from transformers import set_seed

from ..configuration_maskgit_vqgan import MaskGITVQGANConfig
from ..configuration_titok import TiTokConfig
from ..configuration_titok_maskgit import TiTokMaskGITConfig
from ..image_processing_titok import TiTokImageProcessor
from ..modeling_maskgit_vqgan import MaskGITVQGAN
from ..modeling_titok import TiTokTokenizer
from ..modeling_titok_maskgit import TiTokMaskGIT
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
from .data import Augmentation, collate_images, collate_tokens, load_image_dataset
from .discriminator import NLayerDiscriminator
from .modules import GeneratorTraining, PixelTokenizerTraining, Stage1Training, VQGANTraining
from .perceptual import PerceptualLoss
from .trainer import TiTokTrainer, TiTokTrainingArguments

logger = logging.getLogger(__name__)

RECIPES = ("vqgan", "stage1", "stage2", "single_stage", "generator")

_TOKENIZER_TRAINING = dict(learning_rate=1e-4, adam_beta1=0.9, adam_beta2=0.99, weight_decay=1e-4, warmup_steps=10_000,
                           end_learning_rate=1e-5, max_steps=1_000_000, per_device_train_batch_size=32,
                           max_grad_norm=1.0, seed=42, use_ema=True, ema_decay=0.999)
_PIXEL_LOSS = dict(perceptual="convnext_s", perceptual_weight=0.1, gan_weight=0.01, lecam_weight=0.001,
                   convnext_weights=None, lpips_vgg_weights=None, lpips_head_weights=None)
DEFAULTS = {
    "stage1": {"training": _TOKENIZER_TRAINING, "loss": {"quantizer_weight": 1.0}},
    "stage2": {"training": dict(_TOKENIZER_TRAINING, adam_beta2=0.999, warmup_steps=5_000, max_steps=500_000,
                                discriminator_start=20_000),
               "loss": dict(_PIXEL_LOSS, quantizer_weight=0.0)},
    # No official single-stage TiTok training config exists (bytedance/1d-tokenizer issue #100): the stage-2
    # loss weights and optimiser, with the quantizer loss (VQ) or KL (VAE) switched on.
    "single_stage": {"training": dict(_TOKENIZER_TRAINING, adam_beta2=0.999, max_steps=500_000, discriminator_start=20_000),
                     "loss": dict(_PIXEL_LOSS, quantizer_weight=1.0, kl_weight=1e-6)},
    "vqgan": {"training": dict(_TOKENIZER_TRAINING, adam_beta2=0.999, max_steps=500_000, discriminator_start=20_000),
              "loss": dict(_PIXEL_LOSS, quantizer_weight=1.0)},
    "generator": {"training": dict(learning_rate=2e-4, adam_beta1=0.9, adam_beta2=0.96, weight_decay=0.03,
                                   warmup_steps=10_000, end_learning_rate=1e-5, max_steps=500_000,
                                   per_device_train_batch_size=64, max_grad_norm=1.0, seed=42, use_ema=True,
                                   ema_decay=0.999), "loss": {}},
}
_ALWAYS = dict(remove_unused_columns=False, report_to="none", save_strategy="steps", save_steps=5_000,
               save_total_limit=2, logging_steps=50, dataloader_num_workers=0, lr_scheduler_type="constant")


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------


def _merge(base: dict, update: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (update or {}).items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


class _ConfigLoader(yaml.SafeLoader):
    """YAML with YAML 1.2 floats: PyYAML (YAML 1.1) reads `3e-4` as the string "3e-4", which would reach the
    optimizer as a string; here it is the float 3e-4 (as is `1.0e-3`, `.5`, `1_000.0`)."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$"),
    list("-+0123456789."),
)


def _load_yaml(text: str):
    return yaml.load(text, Loader=_ConfigLoader)


def load_recipe_config(path: str | Path | dict, overrides: list[str] | None = None) -> dict:
    """Read a recipe yaml, apply `key.sub=value` overrides (values parsed as yaml) and the recipe defaults."""
    if isinstance(path, dict):
        config = copy.deepcopy(path)
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        config = _load_yaml(path.read_text()) or {}
    for override in overrides or []:
        if "=" not in override:
            raise ValueError(f"overrides look like section.key=value, got {override!r}")
        dotted, raw = override.split("=", 1)
        node = config
        *parents, leaf = dotted.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _load_yaml(raw)
    recipe = config.get("recipe")
    if recipe not in RECIPES:
        raise ValueError(f"the config's recipe must be one of {RECIPES}, got {recipe!r}")
    return _merge({"training": _ALWAYS, "data": {}, "model": {}, "loss": {}, **DEFAULTS[recipe]}, config)


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


def _tokenizer_config(section: dict, **forced) -> TiTokConfig:
    overrides = {**section.get("config", {}), **forced}
    if section.get("preset"):
        return TiTokConfig.from_preset(section["preset"], **overrides)
    return TiTokConfig(**overrides)


def build_tokenizer(section: dict, recipe: str) -> TiTokTokenizer:
    """The tokenizer to train: `pretrained` (fine-tuning), stage 2 from a stage-1 model + VQGAN decoder
    (`init_from` + `pixel_decoder_from`), or new from `preset`/`config`."""
    if section.get("pretrained"):
        return TiTokTokenizer.from_pretrained(section["pretrained"])
    if recipe == "stage1":
        return TiTokTokenizer(_tokenizer_config(section, decoder_head="proxy_codes", include_pixel_decoder=False))
    if recipe == "stage2":
        return init_stage2_tokenizer(section)
    return TiTokTokenizer(_tokenizer_config(section))


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
        raise ValueError("stage 2 needs model.pixel_decoder_from: the MaskGIT-VQGAN whose decoder renders the proxy codes")
    vqgan = MaskGITVQGAN.from_pretrained(section["pixel_decoder_from"])
    config = TiTokConfig(**{**stage1.config.to_diff_dict(), "include_pixel_decoder": True, "commitment_cost": 0.0,
                            "pixel_decoder_config": vqgan.config.to_dict()})
    model = TiTokTokenizer(config)
    missing, unexpected = model.load_state_dict(stage1.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pixel_") for key in missing):
        raise ValueError(f"stage-1 weights do not fit: missing {missing}, unexpected {unexpected}")
    model.pixel_decoder.load_state_dict(vqgan.decoder.state_dict())
    model.pixel_quantizer.load_state_dict(vqgan.quantizer.state_dict())
    return model


def build_vqgan(section: dict) -> MaskGITVQGAN:
    if section.get("pretrained"):
        return MaskGITVQGAN.from_pretrained(section["pretrained"])
    return MaskGITVQGAN(MaskGITVQGANConfig(**section.get("config", {})))


def build_generator(section: dict, codebook_size: int | None, num_tokens: int | None, num_classes: int | None) -> TiTokMaskGIT:
    if section.get("pretrained"):
        return TiTokMaskGIT.from_pretrained(section["pretrained"])
    derived = {k: v for k, v in dict(codebook_size=codebook_size, num_latent_tokens=num_tokens, num_classes=num_classes).items() if v is not None}
    overrides = {**derived, **section.get("config", {})}
    if section.get("preset"):
        return TiTokMaskGIT(TiTokMaskGITConfig.from_preset(section["preset"], **overrides))
    return TiTokMaskGIT(TiTokMaskGITConfig(**overrides))


def _perceptual(loss: dict) -> PerceptualLoss:
    return PerceptualLoss(loss.get("perceptual", "convnext_s"), loss.get("convnext_weights"),
                          loss.get("lpips_vgg_weights"), loss.get("lpips_head_weights"))


def _discriminator(config: dict) -> NLayerDiscriminator:
    spec = config.get("discriminator", {})
    return NLayerDiscriminator(hidden_channels=spec.get("hidden_channels", 128),
                               channel_mult=tuple(spec.get("channel_mult", (1, 2, 4))),
                               num_groups=spec.get("num_groups", 32), pool_size=spec.get("pool_size", 16))


# --------------------------------------------------------------------------------------------------
# Data and image grids
# --------------------------------------------------------------------------------------------------


def build_dataset(config: dict, image_size: int, seed: int, generator: bool = False):
    data = config["data"]
    if generator and data.get("pretokenized"):
        import datasets

        dataset = datasets.load_from_disk(data["pretokenized"])
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[data.get("split", "train")]
        return dataset, collate_tokens
    if not data.get("source"):
        raise ValueError("the config needs data.source: a local image folder or a Hub dataset id (e.g. timm/imagenet-1k-wds)")
    augmentation = Augmentation(data.get("crop_size", image_size), random_crop=not generator, random_flip=data.get("random_flip", True))
    dataset = load_image_dataset(data["source"], data.get("split", "train"), augmentation, data.get("image_column"),
                                 data.get("label_column"), data.get("streaming"), seed)
    return dataset, collate_images


def _first_images(dataset, count: int, image_size: int) -> torch.Tensor:
    """A fixed, unaugmented batch for the reconstruction grids."""
    from .data import ImageTrainingDataset, decode_image, sample_rng

    center = Augmentation(image_size, random_crop=False, random_flip=False)
    images = []
    if isinstance(dataset, ImageTrainingDataset):
        spread = sorted({round(i * (len(dataset) - 1) / max(count - 1, 1)) for i in range(count)})
        for index in spread + [i for i in range(len(dataset)) if i not in spread]:
            try:
                images.append(center(decode_image(dataset.dataset[index][dataset.image_column]), sample_rng(0, 0, index)))
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


def reconstruction_renderer(images: torch.Tensor, teacher: MaskGITVQGAN | None = None):
    def render(model, wrapper, step):
        device = next(model.parameters()).device
        x = images.to(device)
        out = model(x)
        if getattr(out, "reconstruction", None) is not None:
            reconstruction = out.reconstruction
        else:  # stage-1 layout: render the argmax proxy codes with the teacher's decoder
            reconstruction = teacher.to(device).decode(out.proxy_logits.argmax(-1))
        originals = TiTokImageProcessor.postprocess(x, rounding="round")
        return image_grid([originals, TiTokImageProcessor.postprocess(reconstruction)], row_labels=["input", "reconstruction"],
                          title=f"step {step}")

    return render


def sample_renderer(tokenizer: TiTokTokenizer, id2label: dict[int, str], samples_per_class: int = 4, max_classes: int = 10):
    from ..pipeline_titok import TiTokPipeline
    from ..scheduling_titok_maskgit import TiTokMaskGITScheduler

    def render(model, wrapper, step):
        pipe = TiTokPipeline(tokenizer, model, TiTokMaskGITScheduler(mask_token_id=model.config.mask_token_id), id2label=id2label)
        pipe.set_progress_bar_config(disable=True)
        classes = list(range(min(max_classes, model.config.num_classes)))
        images = pipe(classes, num_images_per_label=samples_per_class, generator=torch.Generator().manual_seed(0)).images
        rows = [images[i * samples_per_class : (i + 1) * samples_per_class] for i in range(len(classes))]
        return image_grid(rows, row_labels=[id2label[c].split(",")[0] for c in classes], title=f"step {step}")

    return render


def _id2label(dataset, config: dict, num_classes: int) -> dict[int, str]:
    if config["data"].get("id2label"):
        return {int(k): v for k, v in config["data"]["id2label"].items()}
    inner = getattr(dataset, "dataset", dataset)
    features = getattr(inner, "features", None) or {}
    for column in ("label", "labels", "cls"):
        names = getattr(features.get(column), "names", None)
        if names and len(names) == num_classes:
            return dict(enumerate(names))
    if num_classes == 1000:
        from ..pipeline_titok import imagenet_id2label

        return imagenet_id2label()
    return {i: f"class {i}" for i in range(num_classes)}


def _num_classes(dataset, config: dict) -> int | None:
    if config["data"].get("num_classes"):
        return int(config["data"]["num_classes"])
    inner = getattr(dataset, "dataset", dataset)
    features = getattr(inner, "features", None) or {}
    for column in ("label", "labels", "cls"):
        if getattr(features.get(column), "num_classes", None):
            return features[column].num_classes
    return None


# --------------------------------------------------------------------------------------------------
# Build and run
# --------------------------------------------------------------------------------------------------


def build_trainer(config: dict, output_dir: str | None = None) -> TiTokTrainer:
    """Everything a recipe needs, assembled into a `TiTokTrainer` (not yet training)."""
    recipe = config["recipe"]
    training = dict(config["training"])
    if output_dir:
        training["output_dir"] = output_dir
    training.setdefault("output_dir", f"outputs/{recipe}")
    args = TiTokTrainingArguments(**training)
    set_seed(args.seed)  # new weights (model, discriminator) are drawn from the seeded RNG
    loss = config["loss"]
    callbacks, extras = [EMACallback(args.ema_decay)] if args.use_ema else [], ()
    teacher = None

    if recipe == "generator":
        tokenizer = TiTokTokenizer.from_pretrained(config["tokenizer"]) if config.get("tokenizer") else None
        with args.main_process_first(desc="loading the dataset"):
            dataset, collator = build_dataset(config, tokenizer.config.image_size if tokenizer else 256, args.seed, generator=True)
        if tokenizer is None and not config["data"].get("pretokenized"):
            raise ValueError("generator training needs `tokenizer:` (ids on the fly) or data.pretokenized (ids on disk)")
        num_classes = _num_classes(dataset, config)
        model = build_generator(config["model"], tokenizer.config.codebook_size if tokenizer else None,
                                tokenizer.config.num_latent_tokens if tokenizer else None, num_classes)
        wrapper = GeneratorTraining(model, tokenizer, use_ema=args.use_ema)
        callbacks.append(CodebookUsageCallback(model.config.codebook_size))
        if args.image_log_steps and tokenizer is not None:
            callbacks.append(ImageGridCallback(args.image_log_steps, sample_renderer(tokenizer, _id2label(dataset, config, model.config.num_classes))))
        elif args.image_log_steps:
            logger.warning("no `tokenizer:` in the config: sample grids are off (pre-tokenized training)")
        export = _generator_export(tokenizer, dataset, config)
    else:
        if recipe == "vqgan":
            model = build_vqgan(config["model"])
            image_size, codebook_size = model.config.image_size, model.config.codebook_size
        else:
            model = build_tokenizer(config["model"], recipe)
            image_size, codebook_size = model.config.image_size, model.config.codebook_size
        with args.main_process_first(desc="loading the dataset"):
            dataset, collator = build_dataset(config, image_size, args.seed)
        if recipe == "vqgan":
            wrapper = VQGANTraining(model, _discriminator(config), _perceptual(loss), loss["perceptual_weight"],
                                    loss["quantizer_weight"], loss["gan_weight"], loss["lecam_weight"], args.use_ema)
        elif recipe == "stage1":
            if not config.get("teacher"):
                raise ValueError("stage 1 needs `teacher:` the MaskGIT-VQGAN (local dir or Hub id) whose codes are the targets")
            teacher = MaskGITVQGAN.from_pretrained(config["teacher"])
            wrapper = Stage1Training(model, teacher, loss["quantizer_weight"], args.use_ema)
        else:
            wrapper = PixelTokenizerTraining(model, _discriminator(config), _perceptual(loss), loss["perceptual_weight"],
                                             loss.get("quantizer_weight", 0.0), loss.get("kl_weight", 1e-6),
                                             loss["gan_weight"], loss["lecam_weight"], args.use_ema)
        if recipe in ("stage2", "single_stage", "vqgan"):
            callbacks.append(GANStartCallback(args.discriminator_start))
        if recipe == "stage2":
            callbacks.append(FreezeCallback(config["model"].get("frozen", ["encoder", "quantizer"])))
        if recipe == "vqgan" or model.is_vq:
            callbacks.append(CodebookUsageCallback(codebook_size))
        if args.codebook_restart_steps:
            if recipe not in ("stage1", "single_stage") or not model.is_vq:
                raise ValueError(f"codebook_restart_steps applies to VQ tokenizers whose quantizer trains (stage1, single_stage), not to recipe {recipe!r}")
            callbacks.append(CodebookRestartCallback(codebook_size, args.codebook_restart_steps, args.seed))
        if args.image_log_steps:
            callbacks.append(ImageGridCallback(args.image_log_steps, reconstruction_renderer(_first_images(dataset, 8, image_size), teacher)))
        extras = (TiTokImageProcessor.for_image_size(image_size),)
        export = None
    callbacks.append(SkippedImagesCallback(dataset))
    export_dir = args.export_dir or os.path.join(args.output_dir, "final")
    callbacks.append(ExportCallback(export_dir, args.export_push_to_hub, extras, export))
    return TiTokTrainer(model=wrapper, args=args, train_dataset=dataset, data_collator=collator, callbacks=callbacks)


def _generator_export(tokenizer, dataset, config):
    """Export a full TiTokPipeline when the tokenizer is known, else the generator alone."""
    if tokenizer is None:
        return None
    from ..pipeline_titok import TiTokPipeline
    from ..scheduling_titok_maskgit import TiTokMaskGITScheduler

    def build(model):
        return TiTokPipeline(tokenizer, model, TiTokMaskGITScheduler(mask_token_id=model.config.mask_token_id),
                             id2label=_id2label(dataset, config, model.config.num_classes))

    return build


def last_checkpoint(output_dir: str) -> str | None:
    """The newest *complete* checkpoint in `output_dir`. The Trainer writes `trainer_state.json` last, so a
    checkpoint folder without it was being written when the run was killed and is skipped."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    checkpoints = sorted(
        (int(path.name.split("-")[1]), path) for path in folder.glob("checkpoint-*") if path.name.split("-")[1].isdigit()
    )
    for step, path in reversed(checkpoints):
        if (path / "trainer_state.json").is_file():
            return str(path)
        logger.warning("ignoring incomplete checkpoint %s (the run was stopped while writing it)", path)
    return None


def run(config: dict, output_dir: str | None = None, resume: str | bool = "auto") -> TiTokTrainer:
    """Train a recipe. `resume="auto"` continues from the last checkpoint in the output dir if there is one
    (a killed run restarts where it stopped); a path resumes from that checkpoint; False starts over."""
    trainer = build_trainer(config, output_dir)
    checkpoint = None
    if resume == "auto":
        checkpoint = last_checkpoint(trainer.args.output_dir)
        if checkpoint:
            logger.info("resuming from %s", checkpoint)
    elif resume:
        checkpoint = resume
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer


def main(argv: list[str] | None = None, default_recipes: tuple[str, ...] = RECIPES) -> None:
    """Command line of the training entry points (`accelerate launch training/train_*.py --config ...`)."""
    import argparse

    parser = argparse.ArgumentParser(description="Train a TiTok recipe with the HF Trainer (launch with accelerate).")
    parser.add_argument("--config", required=True, help="recipe yaml (see training/configs)")
    parser.add_argument("--output-dir", help="overrides training.output_dir")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry, e.g. --set training.max_steps=1000 (repeatable)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_recipe_config(args.config, args.overrides)
        if config["recipe"] not in default_recipes:
            raise ValueError(f"this entry point trains {', '.join(default_recipes)}; the config's recipe is {config['recipe']!r}")
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"error: {error}\n")
    run(config, args.output_dir, resume=False if args.no_resume else "auto")


__all__ = ["RECIPES", "DEFAULTS", "build_trainer", "init_stage2_tokenizer", "load_recipe_config", "main", "run"]
