"""What a recipe is made of: its model (new, pretrained, or initialised from an earlier stage), its data and
collator, and the other parts a run needs (teacher, frozen tokenizer, image processor, sampler, class names),
gathered in a `RecipeRun`."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch
import transformers
from torch import nn

from ..data.class_labels import dataset_class_names, default_id2label
from ..data.datasets import (
    ImageTrainingDataset,
    TextColumns,
    caption_collator,
    collate_images,
    collate_tokens,
    load_image_dataset,
    pretokenized_caption_collator,
)
from ..data.images import Augmentation
from ..loaders import ModelNotFoundError, load_text_encoder, load_tokenizer
from ..models.maskgen.pipeline_maskgen import MaskGenPipeline
from ..models.maskgit_vqgan.configuration_maskgit_vqgan import MaskGITVQGANConfig
from ..models.maskgit_vqgan.modeling_maskgit_vqgan import MaskGITVQGAN
from ..models.tatitok.modeling_tatitok import TATiTokTokenizer
from ..models.titok.configuration_titok import TiTokConfig
from ..models.titok.image_processing_titok import TiTokImageProcessor
from ..models.titok.modeling_titok import TiTokTokenizer
from ..models.titok_maskgit.modeling_titok_maskgit import TiTokMaskGIT
from ..models.titok_maskgit.scheduling_titok_maskgit import TiTokMaskGITScheduler
from ..releases import maskgen_preset
from ..text_encoding import OPEN_CLIP_PAD_ID, train_clip_tokenizer
from .config import declared_types
from .trainer import TiTokTrainingArguments


@dataclass(frozen=True)
class RecipeRun:
    """What a recipe's `prepare` made for one run, handed to its wrapper and callback factories."""

    config: dict
    args: TiTokTrainingArguments
    model: nn.Module
    dataset: torch.utils.data.Dataset
    collator: Callable
    image_size: int
    image_processor: TiTokImageProcessor  # saved with the model: the preprocessing it was trained with
    tokenizer: TiTokTokenizer | None = None  # generator: the frozen tokenizer (ids on the fly, sample grids, export)
    teacher: MaskGITVQGAN | None = None  # stage 1: the proxy-code teacher
    text_encoder: nn.Module | None = None  # text-aware recipes: the frozen CLIP text encoder ...
    text_tokenizer: object | None = None  # ... and its tokenizer


def tokenizer_config(section: dict, config_class: type[TiTokConfig] = TiTokConfig, **forced) -> TiTokConfig:
    overrides = {**section.get("config", {}), **forced}
    if section.get("preset"):
        return config_class.from_preset(section["preset"], **overrides)
    return config_class(**overrides)


def init_stage2_tokenizer(section: dict) -> TiTokTokenizer:
    """Stage-2 initialisation as officially done: the stage-1 weights, plus the VQGAN's codebook and decoder
    as the pixel codebook and pixel decoder; commitment cost 0."""
    if not section.get("init_from"):
        raise ValueError("stage 2 needs model.init_from: the stage-1 tokenizer to fine-tune")
    stage1 = load_named("model.init_from", TiTokTokenizer.from_pretrained, section["init_from"])
    if stage1.config.decoder_head != "proxy_codes":
        raise ValueError("stage 2 fine-tunes a two-stage (proxy-code) tokenizer")
    if stage1.pixel_decoder is not None:
        return stage1  # already has its pixel decoder (e.g. a converted two-stage release)
    if not section.get("pixel_decoder_from"):
        raise ValueError(
            "stage 2 needs model.pixel_decoder_from: the MaskGIT-VQGAN whose decoder renders the proxy codes"
        )
    vqgan = load_named(
        "model.pixel_decoder_from", load_vqgan_at, section["pixel_decoder_from"], stage1.config.image_size
    )
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


def new_tokenizer(config: dict, model_class: type[TiTokTokenizer] = TiTokTokenizer, **forced) -> TiTokTokenizer:
    """The tokenizer to train (of `model_class`): `model.pretrained` (fine-tuning: a saved folder, or an official
    release id, converted on load), else new from `model.preset` / `model.config`."""
    section = config["model"]
    if section.get("pretrained"):
        return load_named("model.pretrained", model_class.from_pretrained, section["pretrained"])
    return model_class(tokenizer_config(section, model_class.config_class, **forced))


def new_tatitok(config: dict) -> TATiTokTokenizer:
    return new_tokenizer(config, TATiTokTokenizer)


def stage1_tokenizer(config: dict) -> TiTokTokenizer:
    """Stage 1 trains the proxy-code layout without the pixel decoder (the teacher renders its codes)."""
    return new_tokenizer(config, decoder_head="proxy_codes", include_pixel_decoder=False)


def stage2_tokenizer(config: dict) -> TiTokTokenizer:
    if config["model"].get("pretrained"):
        return new_tokenizer(config)
    return init_stage2_tokenizer(config["model"])


def new_vqgan(config: dict) -> MaskGITVQGAN:
    section = config["model"]
    if section.get("pretrained"):
        return load_named("model.pretrained", MaskGITVQGAN.from_pretrained, section["pretrained"])
    return MaskGITVQGAN(MaskGITVQGANConfig(**section.get("config", {})))


def load_named(field: str, load: Callable, source: str, *args):
    """`load(source, *args)`; a source that does not exist is named by the config field that gave it."""
    try:
        return load(source, *args)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{field}: {error} (train, convert or download it first)") from None
    except ModelNotFoundError as error:
        raise ModelNotFoundError(f"{field}: {error}") from None
    except ValueError as error:  # e.g. a checkpoint of another kind of model
        raise ValueError(f"{field}: {error}") from None


def load_vqgan_at(source: str, image_size: int) -> MaskGITVQGAN:
    """The MaskGIT-VQGAN at `source`, run at `image_size`. It is fully convolutional, so the released 256x256
    VQGAN (the only MaskGIT-VQGAN with converted weights) also tokenizes 512x512 images, into a 32x32 grid of
    proxy codes: that is the teacher and pixel decoder of the 512x512 TiTok recipes."""
    return MaskGITVQGAN.from_pretrained(source, image_size=image_size)


def augmentation_of(config: dict, image_size: int, random_crop: bool = True) -> Augmentation:
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


def text_columns(config: dict) -> TextColumns:
    """The `data:` keys that say where a captioned dataset keeps its text."""
    data = config["data"]
    named = dict(
        caption=data.get("caption_column"),
        aesthetic_score=data.get("aesthetic_score_column"),
        recaption=data.get("recaption_column"),
        recaption_probability=data.get("recaption_probability"),
    )
    return TextColumns(**{key: value for key, value in named.items() if value is not None})


def image_data(config: dict, augmentation: Augmentation, seed: int, text_tokenizer=None):
    """The run's images (random crops) and their collator; with their captions when a `text_tokenizer` is given
    (text-aware recipes: `caption_collator`)."""
    dataset = image_dataset(config, augmentation, seed, captioned=text_tokenizer is not None)
    return dataset, (caption_collator(text_tokenizer) if text_tokenizer is not None else collate_images)


def image_dataset(config: dict, augmentation: Augmentation, seed: int, captioned: bool = False):
    """The images of `data:` (with their captions: `text_columns`)."""
    data = config["data"]
    if not data.get("source"):
        raise ValueError(
            "the config needs data.source: a local image folder or a Hub dataset id (e.g. timm/imagenet-1k-wds)"
        )
    return load_image_dataset(
        data["source"],
        data.get("split", "train"),
        augmentation,
        data.get("image_column"),
        data.get("label_column"),
        data.get("streaming"),
        seed,
        text=text_columns(config) if captioned else None,
    )


def text_encoder_of(config: dict, text_width: int, what: str):
    """The frozen CLIP text encoder and tokenizer of `text_encoder:` (a CLIP folder or Hub id, or a MaskGen
    pipeline folder; default the official one), checked against the width `what` reads."""
    text_encoder, text_tokenizer = load_named("text_encoder", load_text_encoder, config.get("text_encoder"))
    width = text_encoder.config.hidden_size
    if width != text_width:
        raise ValueError(
            f"text_encoder: its hidden states are {width} wide, but {what} reads text {text_width} wide: give the "
            "text encoder the model was (or will be) trained with"
        )
    return text_encoder.requires_grad_(False).eval(), text_tokenizer


def prepare_images(make_model: Callable[[dict], nn.Module], needs_teacher: bool = False, captioned: bool = False):
    """Model + image data (random crops) for the tokenizer and VQGAN recipes; stage 1 also loads its teacher, a
    text-aware tokenizer (`captioned`) its frozen text encoder and the images' captions."""

    def prepare(config: dict, args: TiTokTrainingArguments) -> RecipeRun:
        teacher = text_encoder = text_tokenizer = None
        if needs_teacher and not config.get("teacher"):
            raise ValueError(
                "stage 1 needs `teacher:` the MaskGIT-VQGAN (local dir or Hub id) whose codes are the targets"
            )
        model = make_model(config)
        augmentation = augmentation_of(config, model.config.image_size)
        if needs_teacher:
            teacher = load_named("teacher", load_vqgan_at, config["teacher"], model.config.image_size)
        if captioned:
            text_encoder, text_tokenizer = text_encoder_of(config, model.config.text_hidden_size, "the tokenizer")
        with args.main_process_first(desc="loading the dataset"):
            dataset, collator = image_data(config, augmentation, args.seed, text_tokenizer)
        return RecipeRun(
            config,
            args,
            model,
            dataset,
            collator,
            model.config.image_size,
            augmentation.image_processor(),
            teacher=teacher,
            text_encoder=text_encoder,
            text_tokenizer=text_tokenizer,
        )

    return prepare


def dataset_num_classes(dataset, config: dict) -> int | None:
    if config["data"].get("num_classes"):
        return int(config["data"]["num_classes"])
    names = dataset_class_names(dataset)
    return len(names) if names else None


def prepare_generator(model_class: type = TiTokMaskGIT) -> Callable[[dict, TiTokTrainingArguments], RecipeRun]:
    """How a class-conditional generator recipe (MaskGIT: `TiTokMaskGIT`; RAR: `RARTransformer`) prepares a run: the
    frozen tokenizer, the ids (pre-tokenized, or images tokenized on the fly), and the generator over them (its
    class count, codebook and token count from the data and tokenizer unless `model.config` says otherwise)."""

    def prepare(config: dict, args: TiTokTrainingArguments) -> RecipeRun:
        tokenizer = processor = None
        if config.get("tokenizer"):
            tokenizer, processor = load_named("tokenizer", load_tokenizer, config["tokenizer"])
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
            else:  # center crops (and flips), tokenized on the fly, as the tokenizer's processor does them
                augmentation = Augmentation(
                    processor.image_size,
                    random_crop=False,
                    random_flip=data.get("random_flip", True),
                    pad_small_images=processor.do_pad,
                )
                dataset, collator = image_data(config, augmentation, args.seed)
        section, config_class = config["model"], model_class.config_class
        if section.get("pretrained"):
            model = load_named("model.pretrained", model_class.from_pretrained, section["pretrained"])
        else:
            derived = dict(num_classes=dataset_num_classes(dataset, config))
            if tokenizer is not None:
                derived.update(
                    codebook_size=tokenizer.config.codebook_size, num_latent_tokens=tokenizer.config.num_latent_tokens
                )
            overrides = {**{k: v for k, v in derived.items() if v is not None}, **section.get("config", {})}
            preset = section.get("preset")
            model = model_class(config_class.from_preset(preset, **overrides) if preset else config_class(**overrides))
        image_size = tokenizer.config.image_size if tokenizer is not None else 256
        processor = processor or TiTokImageProcessor.for_image_size(image_size)
        return RecipeRun(config, args, model, dataset, collator, image_size, processor, tokenizer=tokenizer)

    return prepare


def prepare_clip(config: dict, args: TiTokTrainingArguments) -> RecipeRun:
    """A CLIP model (text and image towers, `model.config` as `CLIPConfig`'s fields) and its tokenizer -
    `text_tokenizer:` (a folder or Hub id), else learnt from the training captions with at most the text tower's
    `vocab_size` entries - over captioned images (random crops)."""
    section = config["model"]
    if section.get("pretrained"):
        model = load_named("model.pretrained", transformers.CLIPModel.from_pretrained, section["pretrained"])
        image_size = model.config.vision_config.image_size
    else:
        image_size = (section.get("config", {}).get("vision_config") or {}).get("image_size", 224)
    augmentation = augmentation_of(config, image_size)
    with args.main_process_first(desc="loading the dataset"):
        dataset = image_dataset(config, augmentation, args.seed, captioned=True)
    if config.get("text_tokenizer"):
        load = transformers.AutoTokenizer.from_pretrained
        text_tokenizer = load_named("text_tokenizer", load, config["text_tokenizer"])
    elif isinstance(dataset, ImageTrainingDataset):
        captions = dataset.dataset[dataset.text.caption]
        vocab_size = (section.get("config", {}).get("text_config") or {}).get("vocab_size", 49408)
        text_tokenizer = train_clip_tokenizer([c for c in captions if isinstance(c, str)], vocab_size)
    else:
        raise ValueError("a streamed dataset cannot teach a tokenizer: give text_tokenizer: (a CLIP tokenizer folder)")
    if not section.get("pretrained"):
        model_config = dict(section.get("config", {}))
        model_config["text_config"] = {
            **(model_config.get("text_config") or {}),
            "vocab_size": len(text_tokenizer),
            "bos_token_id": text_tokenizer.bos_token_id,
            "eos_token_id": text_tokenizer.eos_token_id,
            "pad_token_id": OPEN_CLIP_PAD_ID,
        }
        model = transformers.CLIPModel(transformers.CLIPConfig(**model_config))
    return RecipeRun(
        config,
        args,
        model,
        dataset,
        caption_collator(text_tokenizer),
        image_size,
        augmentation.image_processor(),
        text_tokenizer=text_tokenizer,
    )


def clip_text_tower(model: transformers.CLIPModel) -> transformers.CLIPTextModelWithProjection:
    """The text tower of a CLIP model and its projection, as the text encoder the text-aware models read."""
    config = transformers.CLIPTextConfig(
        **{**model.config.text_config.to_dict(), "projection_dim": model.config.projection_dim}
    )
    tower = transformers.CLIPTextModelWithProjection(config)
    weights = {k: v for k, v in model.state_dict().items() if k.startswith(("text_model.", "text_projection."))}
    tower.load_state_dict(weights)
    return tower.eval()


def new_maskgen(config: dict, model_class: type, derived: dict, stage: int):
    """The MaskGen transformer to train: `model.pretrained` (fine-tuning: a saved folder or an official release),
    at stage 2 the stage-1 weights of `model.init_from`, else new from `model.preset` (a MaskGen release's sizes)
    and `model.config`, with the sizes the tokenizer and text encoder fix (`derived`) where not given."""
    section = config["model"]
    if section.get("pretrained"):
        return load_named("model.pretrained", model_class.from_pretrained, section["pretrained"])
    if stage == 2:
        if not section.get("init_from"):
            raise ValueError(
                f"stage 2 needs model.init_from: the stage-1 {model_class.__name__} to continue from (the output of "
                "the stage-1 recipe)"
            )
        source = Path(section["init_from"])
        if (source / "model_index.json").is_file():  # stage 1's exported pipeline: its transformer
            source = source / "transformer"
        return load_named("model.init_from", model_class.from_pretrained, str(source))
    preset = maskgen_preset(section["preset"]).transformer_kwargs() if section.get("preset") else {}
    return model_class(**{**preset, **derived, **section.get("config", {})})


def prepare_maskgen(model_class: type, stage: int):
    """The frozen TA-TiTok tokenizer (`tokenizer:`) and CLIP text encoder (`text_encoder:`), captioned images
    (center crops as the tokenizer's processor makes them, tokenized on the fly) or pre-tokenized data, and the
    MaskGen transformer over them; the three are checked to fit as a `MaskGenPipeline` checks its components."""

    def prepare(config: dict, args: TiTokTrainingArguments) -> RecipeRun:
        tokenizer = processor = None
        if config.get("tokenizer"):
            tokenizer, processor = load_named("tokenizer", load_tokenizer, config["tokenizer"])
        text_encoder, text_tokenizer = load_named("text_encoder", load_text_encoder, config.get("text_encoder"))
        derived = dict(
            text_hidden_size=text_encoder.config.hidden_size, pooled_projection_dim=text_encoder.config.projection_dim
        )
        if tokenizer is not None:
            derived["num_latent_tokens"] = tokenizer.config.num_latent_tokens
            sizes = {"codebook_size": tokenizer.config.codebook_size, "token_channels": tokenizer.config.token_size}
            derived.update({key: value for key, value in sizes.items() if key in declared_types(model_class)})
        model = new_maskgen(config, model_class, derived, stage)
        try:
            MaskGenPipeline._check_components(tokenizer, model, None, text_encoder)
        except (TypeError, ValueError) as error:
            raise ValueError(f"tokenizer:, text_encoder: and model: do not fit together: {error}") from None
        data = config["data"]
        with args.main_process_first(desc="loading the dataset"):
            if data.get("pretokenized"):
                dataset = datasets.load_from_disk(data["pretokenized"])
                if isinstance(dataset, datasets.DatasetDict):
                    dataset = dataset[data.get("split", "train")]
                collator = pretokenized_caption_collator(text_tokenizer)
            elif tokenizer is None:
                raise ValueError(
                    "MaskGen training needs `tokenizer:` (tokens on the fly) or data.pretokenized (tokens on disk)"
                )
            else:
                augmentation = Augmentation(
                    processor.image_size,
                    random_crop=False,
                    random_flip=data.get("random_flip", True),
                    pad_small_images=processor.do_pad,
                )
                dataset, collator = image_data(config, augmentation, args.seed, text_tokenizer)
        image_size = tokenizer.config.image_size if tokenizer is not None else 256
        processor = processor or TiTokImageProcessor.for_image_size(image_size)
        return RecipeRun(
            config,
            args,
            model.requires_grad_(True),
            dataset,
            collator,
            image_size,
            processor,
            tokenizer=tokenizer,
            text_encoder=text_encoder.requires_grad_(False).eval(),
            text_tokenizer=text_tokenizer,
        )

    return prepare


def first_images(dataset, count: int, processor: TiTokImageProcessor) -> tuple[torch.Tensor, list[str]]:
    """A fixed, unaugmented batch for the reconstruction grids: images spread over the dataset, and their captions
    (empty for data without text). Bad rows are passed over here too."""
    center = Augmentation(processor.image_size, random_crop=False, random_flip=False, pad_small_images=processor.do_pad)
    images, captions = [], []
    if isinstance(dataset, ImageTrainingDataset):
        spread = sorted({round(i * (len(dataset) - 1) / max(count - 1, 1)) for i in range(count)})
        order = itertools.chain(spread, (index for index in range(len(dataset)) if index not in spread))
        rows = (dataset.preview(dataset.dataset[index], index, center) for index in order)
    else:
        rows = iter(dataset)
    for row in rows:
        if row is None:
            continue
        images.append(row["pixel_values"])
        if "caption" in row:
            captions.append(row["caption"])
        if len(images) == count:
            break
    return torch.stack(images), captions


def sampling_scheduler(run: RecipeRun, scheduler_class: type = TiTokMaskGITScheduler):
    """The sampler of sample grids and of the exported pipeline: the config's `sampling:` section, over the
    official sampling settings of `model.preset` when there is one."""
    sampling, preset = run.config.get("sampling", {}), run.config["model"].get("preset")
    return scheduler_class.from_preset(preset, **sampling) if preset else scheduler_class(**sampling)


def class_names(run: RecipeRun) -> dict[int, str]:
    if run.config["data"].get("id2label"):
        return {int(k): v for k, v in run.config["data"]["id2label"].items()}
    return default_id2label(run.model.config.num_classes, run.dataset)


__all__ = [
    "RecipeRun",
    "clip_text_tower",
    "prepare_clip",
    "class_names",
    "first_images",
    "init_stage2_tokenizer",
    "load_named",
    "load_vqgan_at",
    "new_tokenizer",
    "new_vqgan",
    "prepare_generator",
    "prepare_images",
    "sampling_scheduler",
    "stage1_tokenizer",
    "stage2_tokenizer",
]
