"""The TiTok training recipes: one `Recipe` entry each, with everything that differs between them.

- `vqgan`: the MaskGIT-VQGAN proxy-code teacher itself;
- `stage1`: TiTok predicting the proxy codes of a frozen VQGAN;
- `stage2`: decoder fine-tuning in pixel space, encoder and quantizer frozen;
- `single_stage`: a VQ or VAE tokenizer on pixels from scratch;
- `generator`: MaskGIT on token ids;
- `rar`: RAR, autoregressive over token ids (the MaskGIT-VQGAN's codes, or a TiTok tokenizer's 1-D tokens), in
  random orders annealed to raster;
- `clip`: a CLIP model (text and image towers, contrastive loss) on captioned images, exported as the text encoder
  (and tokenizer) of text-aware models trained here;
- `tatitok`: TA-TiTok, single stage on captioned images, its decoder reading a frozen CLIP text encoder;
- `maskgen_vq_stage1`, `maskgen_vq_stage2`, `maskgen_kl_stage1`, `maskgen_kl_stage2`: MaskGen text-to-image
  generators over a frozen TA-TiTok's tokens (stage 2 continues from stage 1's weights on other data).

A recipe's defaults are declared here, typed: `training:` as `TiTokTrainingArguments` fields, `loss:` as a
loss dataclass (whose fields are the section's schema). Defaults are the official hyper-parameters (section
5 of the official implementation notes); a config overrides them. `build_trainer` assembles any recipe: what
it is made of (`builders.py`), its training wrapper (`wrappers.py`), its callbacks (`callbacks.py`) and a
`TiTokTrainer` (`trainer.py`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import CLIPConfig, TrainerCallback, set_seed

from ..models.maskgen.modeling_maskgen import MaskGenKLTransformer, MaskGenVQTransformer
from ..models.maskgen.pipeline_maskgen import MaskGenPipeline
from ..models.maskgen.scheduling_maskgen import MaskGenKLScheduler, MaskGenVQScheduler
from ..models.maskgit_vqgan.configuration_maskgit_vqgan import MaskGITVQGANConfig
from ..models.rar.configuration_rar import RARConfig
from ..models.rar.modeling_rar import RARTransformer
from ..models.rar.pipeline_rar import RARPipeline
from ..models.rar.scheduling_rar import RARScheduler
from ..models.tatitok.configuration_tatitok import TATiTokConfig
from ..models.titok.configuration_titok import TiTokConfig
from ..models.titok.modeling_titok import TiTokTokenizer
from ..models.titok_maskgit.configuration_titok_maskgit import TiTokMaskGITConfig
from ..models.titok_maskgit.modeling_titok_maskgit import TiTokMaskGIT
from ..models.titok_maskgit.pipeline_titok import TiTokPipeline
from ..models.titok_maskgit.scheduling_titok_maskgit import TiTokMaskGITScheduler
from ..text_encoding import clip_text_features, tokenize_prompts
from ..visualization import image_grid
from .builders import (
    RecipeRun,
    class_names,
    clip_text_tower,
    first_images,
    new_tatitok,
    new_tokenizer,
    new_vqgan,
    prepare_clip,
    prepare_generator,
    prepare_images,
    prepare_maskgen,
    sampling_scheduler,
    stage1_tokenizer,
    stage2_tokenizer,
)
from .callbacks import (
    CodebookRestartCallback,
    CodebookUsageCallback,
    EMACallback,
    ExportCallback,
    FreezeCallback,
    GANStartCallback,
    ImageGridCallback,
    RandomOrderCallback,
    SkippedImagesCallback,
)
from .config import check_config, close_match, merge, read_config
from .discriminator import NLayerDiscriminator
from .losses import PerceptualLoss
from .trainer import TiTokTrainer, TiTokTrainingArguments, check_output_dir
from .wrappers import (
    ContrastiveTextTraining,
    GeneratorTraining,
    MaskGenKLTraining,
    MaskGenVQTraining,
    PixelTokenizerTraining,
    RARTraining,
    Stage1Training,
    TextAwareTokenizerTraining,
    TrainingModule,
    VQGANTraining,
)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Defaults: `training:` (TiTokTrainingArguments fields) and `loss:` (one dataclass per kind of loss)
# --------------------------------------------------------------------------------------------------

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
_PIXEL_TRAINING = dict(_TOKENIZER_TRAINING, adam_beta2=0.999, max_steps=500_000, discriminator_start=20_000)
# The generator's differ from the tokenizers' in these only.
_GENERATOR_TRAINING = dict(
    _TOKENIZER_TRAINING,
    learning_rate=2e-4,
    adam_beta2=0.96,
    weight_decay=0.03,
    max_steps=500_000,
    per_device_train_batch_size=64,
)
# MaskGen (official configs/training/MaskGen): VQ cosine-decayed, KL constant after a 50k warm-up.
_MASKGEN_VQ_TRAINING = dict(
    _TOKENIZER_TRAINING,
    learning_rate=4e-4,
    adam_beta2=0.96,
    weight_decay=0.03,
    max_steps=500_000,
    per_device_train_batch_size=128,
)
_MASKGEN_KL_TRAINING = dict(
    _TOKENIZER_TRAINING,
    learning_rate=1e-4,
    end_learning_rate=1e-4,
    warmup_steps=50_000,
    adam_beta2=0.95,
    weight_decay=0.02,
    max_steps=1_000_000,
    per_device_train_batch_size=32,
)
# RAR (official configs/training/generator/rar.yaml): cosine from 4e-4 after 62.5k warm-up steps, no EMA.
_RAR_TRAINING = dict(
    _GENERATOR_TRAINING,
    learning_rate=4e-4,
    warmup_steps=62_500,
    max_steps=250_000,
    use_ema=False,
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


@dataclass(frozen=True)
class NoLoss:
    """The `loss:` section of a recipe whose loss has no settings (the generator's masked-token loss)."""


@dataclass(frozen=True)
class Stage1Loss:
    """`loss:` of stage 1: cross-entropy on the teacher's proxy codes plus the weighted quantizer loss;
    `tail_token_drop`: One-D-Piece's Tail Token Drop (each step decodes a random prefix of the tokens)."""

    quantizer_weight: float = 1.0
    tail_token_drop: bool = False


@dataclass(frozen=True)
class PixelLoss:
    """`loss:` of the pixel-space recipes: L2 + perceptual + quantizer + GAN (hinge, LeCam-regularised)."""

    perceptual: str = "convnext_s"  # "convnext_s", "lpips", "lpips-convnext_s" or "lpips-convnext_s-A-B"
    perceptual_weight: float = 0.1
    quantizer_weight: float = 1.0
    gan_weight: float = 0.01
    lecam_weight: float = 0.001
    convnext_weights: str | None = None  # weight files of the perceptual networks (default: from the Hub)
    lpips_vgg_weights: str | None = None
    lpips_head_weights: str | None = None

    def perceptual_loss(self) -> PerceptualLoss:
        return PerceptualLoss(self.perceptual, self.convnext_weights, self.lpips_vgg_weights, self.lpips_head_weights)

    def weights(self) -> dict[str, float]:
        """The loss weights, as the pixel-space wrappers take them."""
        return dict(
            perceptual_weight=self.perceptual_weight,
            quantizer_weight=self.quantizer_weight,
            gan_weight=self.gan_weight,
            lecam_weight=self.lecam_weight,
        )


@dataclass(frozen=True)
class TokenizerPixelLoss(PixelLoss):
    """`loss:` of TiTok in pixel space: `PixelLoss` plus the weight of the KL term of VAE tokenizers, and One-D-Piece's
    Tail Token Drop (`tail_token_drop`: each step decodes a random prefix of the tokens, one length per batch)."""

    kl_weight: float = 1e-6
    tail_token_drop: bool = False

    def weights(self) -> dict:
        return dict(super().weights(), kl_weight=self.kl_weight, tail_token_drop=self.tail_token_drop)


@dataclass(frozen=True)
class MaskGenVQLoss:
    """`loss:` of MaskGen-VQ: the official MLM loss and classifier-free guidance's text dropout."""

    label_smoothing: float = 0.1
    unmasked_weight: float = 0.1
    text_dropout: float = 0.1


@dataclass(frozen=True)
class MaskGenKLLoss:
    """`loss:` of MaskGen-KL: the diffusion loss's row tiling and schedule, and the text dropout."""

    diffusion_batch_mul: int = 4
    num_train_timesteps: int = 1000
    text_dropout: float = 0.1


@dataclass(frozen=True)
class RARLoss:
    """`loss:` of RAR: next-token cross entropy in random orders for all rows until `random_order_start`, then a
    share falling linearly to 0 at `random_order_end` (raster order from then on)."""

    random_order_start: int = 125_000
    random_order_end: int = 187_500


# --------------------------------------------------------------------------------------------------
# Training wrappers: the recipe's loss around its model
# --------------------------------------------------------------------------------------------------


def _discriminator(run: RecipeRun) -> NLayerDiscriminator:
    """The PatchGAN discriminator: `NLayerDiscriminator`'s own defaults, overridden by `discriminator:`."""
    section = dict(run.config.get("discriminator") or {})
    if section.get("channel_mult") is not None:
        section["channel_mult"] = tuple(section["channel_mult"])
    return NLayerDiscriminator(**{key: value for key, value in section.items() if value is not None})


def _stage1_wrapper(run: RecipeRun, loss: Stage1Loss) -> TrainingModule:
    return Stage1Training(
        run.model, run.teacher, loss.quantizer_weight, run.args.use_ema, tail_token_drop=loss.tail_token_drop
    )


def _pixel_wrapper(wrapper_class: type[VQGANTraining] | type[PixelTokenizerTraining]):
    """The factory of a pixel-space wrapper: the model, a discriminator, the loss's perceptual network and weights."""

    def make(run: RecipeRun, loss: PixelLoss) -> TrainingModule:
        return wrapper_class(
            run.model, _discriminator(run), loss.perceptual_loss(), **loss.weights(), use_ema=run.args.use_ema
        )

    return make


def _text_aware_wrapper(run: RecipeRun, loss: PixelLoss) -> TrainingModule:
    return TextAwareTokenizerTraining(
        run.model,
        _discriminator(run),
        run.text_encoder,
        perceptual=loss.perceptual_loss(),
        **loss.weights(),
        use_ema=run.args.use_ema,
    )


def _maskgen_wrapper(run: RecipeRun, loss: MaskGenVQLoss | MaskGenKLLoss) -> TrainingModule:
    wrapper_class = MaskGenKLTraining if isinstance(run.model, MaskGenKLTransformer) else MaskGenVQTraining
    empty_prompt_ids = tokenize_prompts(run.text_tokenizer, [""])
    return wrapper_class(
        run.model,
        run.tokenizer,
        run.text_encoder,
        empty_prompt_ids,
        **dataclasses.asdict(loss),
        use_ema=run.args.use_ema,
    )


def _clip_wrapper(run: RecipeRun, loss: NoLoss) -> TrainingModule:
    return ContrastiveTextTraining(run.model, use_ema=run.args.use_ema)


def _generator_wrapper(run: RecipeRun, loss: NoLoss) -> TrainingModule:
    return GeneratorTraining(run.model, run.tokenizer, use_ema=run.args.use_ema)


def _rar_wrapper(run: RecipeRun, loss: RARLoss) -> TrainingModule:
    return RARTraining(run.model, run.tokenizer, use_ema=run.args.use_ema)


# --------------------------------------------------------------------------------------------------
# Callbacks: each factory returns the callback the run needs, or None
# --------------------------------------------------------------------------------------------------


def _gan_start(run: RecipeRun) -> TrainerCallback:
    return GANStartCallback(run.args.discriminator_start)


def _freeze(run: RecipeRun) -> TrainerCallback:
    return FreezeCallback(run.config["model"].get("frozen", ["encoder", "quantizer"]))


def _random_orders(run: RecipeRun) -> TrainerCallback:
    loss = RECIPES[run.config["recipe"]].loss_settings(run.config)
    return RandomOrderCallback(loss.random_order_start, loss.random_order_end)


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


def _reconstruction_grids(run: RecipeRun) -> TrainerCallback | None:
    if not run.args.image_log_steps:
        return None
    images, captions = first_images(run.dataset, 8, run.image_processor)
    teacher, processor = run.teacher, run.image_processor
    text_ids = tokenize_prompts(run.text_tokenizer, captions) if run.text_tokenizer is not None else None

    def render(model, wrapper, step):
        device = next(model.parameters()).device
        x = images.to(device)
        decoder_inputs = {}
        if text_ids is not None:  # a text-aware tokenizer decodes with each image's caption
            text_encoder = run.text_encoder.to(device)
            decoder_inputs["text_embeddings"] = clip_text_features(text_encoder, text_ids.to(device)).tokenizer_text
        out = model(x, **decoder_inputs)
        if getattr(out, "reconstruction", None) is not None:
            reconstruction = out.reconstruction
        else:  # stage-1 layout: render the argmax proxy codes with the teacher's decoder
            reconstruction = teacher.to(device).decode(out.proxy_logits.argmax(-1))
        rows = [processor.postprocess(x, rounding="round"), processor.postprocess(reconstruction)]
        title = f"step {step}" + (f"; captions: {' | '.join(captions)}" if text_ids is not None else "")
        return image_grid(rows, row_labels=["input", "reconstruction"], title=title)

    return ImageGridCallback(run.args.image_log_steps, render)


def _sample_grids(run: RecipeRun, samples_per_class: int = 4, max_classes: int = 10) -> TrainerCallback | None:
    if not run.args.image_log_steps:
        return None
    if run.tokenizer is None:
        logger.warning("no `tokenizer:` in the config: sample grids are off (pre-tokenized training)")
        return None
    build = _class_pipeline(run)

    def render(model, wrapper, step):
        pipe = build(model)
        pipe.set_progress_bar_config(disable=True)
        classes = list(range(min(max_classes, model.config.num_classes)))
        images = pipe(
            classes, num_images_per_label=samples_per_class, generator=torch.Generator().manual_seed(0)
        ).images
        rows = [images[i * samples_per_class : (i + 1) * samples_per_class] for i in range(len(classes))]
        return image_grid(rows, row_labels=[pipe.label_name(c) for c in classes], title=f"step {step}")

    return ImageGridCallback(run.args.image_log_steps, render)


def _maskgen_pipeline(run: RecipeRun):
    """`model -> MaskGenPipeline` of the run's tokenizer, text encoder and the sampler of `sampling:`; None
    without a tokenizer (pre-tokenized training: the generator is exported alone)."""
    if run.tokenizer is None:
        return None
    scheduler = RECIPES[run.config["recipe"]].sampler(**run.config.get("sampling", {}))
    tokenizer, text_encoder, text_tokenizer, processor = (
        run.tokenizer,
        run.text_encoder,
        run.text_tokenizer,
        run.image_processor,
    )

    def build(model):
        return MaskGenPipeline(tokenizer, model, scheduler, text_encoder, text_tokenizer, processor)

    return build


def _prompt_grids(run: RecipeRun, samples_per_prompt: int = 4, max_prompts: int = 4) -> TrainerCallback | None:
    """Samples of the first captions of the data, one row per prompt (the prompt as its label)."""
    build = _maskgen_pipeline(run)
    if not run.args.image_log_steps:
        return None
    if build is None:
        logger.warning("no `tokenizer:` in the config: sample grids are off (pre-tokenized training)")
        return None
    prompts = list(dict.fromkeys(_first_captions(run.dataset, 4 * max_prompts)))[:max_prompts]

    def render(model, wrapper, step):
        pipe = build(model)
        pipe.set_progress_bar_config(disable=True)
        images = pipe(
            prompts, num_images_per_prompt=samples_per_prompt, generator=torch.Generator().manual_seed(0)
        ).images
        rows = [images[i * samples_per_prompt : (i + 1) * samples_per_prompt] for i in range(len(prompts))]
        return image_grid(rows, row_labels=prompts, title=f"step {step}")

    return ImageGridCallback(run.args.image_log_steps, render)


def _first_captions(dataset, count: int) -> list[str]:
    if hasattr(dataset, "column_names") and "caption" in dataset.column_names:  # pre-tokenized
        return list(dataset[: min(count, len(dataset))]["caption"])
    rows = (dataset[i] for i in range(min(count, len(dataset)))) if hasattr(dataset, "__len__") else iter(dataset)
    return [row["caption"] for _, row in zip(range(count), rows)]


# ---- what the run exports at the end ----------------------------------------------------------------------


def _export_model_with_processor(run: RecipeRun) -> TrainerCallback:
    """The model with the image processor that reproduces its training preprocessing."""
    return ExportCallback(_export_dir(run.args), run.args.export_push_to_hub, extras=(run.image_processor,))


def _class_pipeline(run: RecipeRun):
    """`model -> pipeline` of a class-conditional generator run (a `TiTokPipeline` for MaskGIT, a `RARPipeline` for
    RAR): the run's tokenizer, the sampler of `sampling:` and the class names."""
    rar = isinstance(run.model, RARTransformer)
    pipeline_class = RARPipeline if rar else TiTokPipeline
    tokenizer, scheduler, id2label, processor = (
        run.tokenizer,
        sampling_scheduler(run, RARScheduler if rar else TiTokMaskGITScheduler),
        class_names(run),
        run.image_processor,
    )

    def build(model):
        return pipeline_class(tokenizer, model, scheduler, processor, id2label=id2label)

    return build


def _export_pipeline(run: RecipeRun) -> TrainerCallback:
    """A full pipeline when the tokenizer is known, else the generator alone."""
    if run.tokenizer is None:
        return ExportCallback(_export_dir(run.args), run.args.export_push_to_hub)
    return ExportCallback(_export_dir(run.args), run.args.export_push_to_hub, build=_class_pipeline(run))


def _export_maskgen(run: RecipeRun) -> TrainerCallback:
    """A full MaskGenPipeline when the tokenizer is known, else the generator alone."""
    build = _maskgen_pipeline(run)
    return ExportCallback(_export_dir(run.args), run.args.export_push_to_hub, build=build)


def _export_text_encoder(run: RecipeRun) -> TrainerCallback:
    """The text tower with its projection (`CLIPTextModelWithProjection`) and the tokenizer, in one folder: what
    `text_encoder:` of the text-aware recipes and `MaskGenPipeline`'s components load."""
    return ExportCallback(
        _export_dir(run.args), run.args.export_push_to_hub, extras=(run.text_tokenizer,), build=clip_text_tower
    )


def _export_dir(args: TiTokTrainingArguments) -> str:
    return args.export_dir or os.path.join(args.output_dir, "final")


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """One training recipe: its default `training:` settings and `loss:` declaration, how its model and data
    are made (`prepare`), the wrapper that computes its loss, its callbacks (factories returning a callback or
    None) and what it exports. `entry_point` is the script that trains it."""

    name: str
    entry_point: str  # "tokenizer", "generator" or "maskgen": training/train_<entry_point>.py
    training: dict
    loss: NoLoss | Stage1Loss | PixelLoss | MaskGenVQLoss | MaskGenKLLoss | RARLoss  # this recipe's loss defaults
    prepare: Callable[[dict, TiTokTrainingArguments], RecipeRun]
    wrapper: Callable[[RecipeRun, object], TrainingModule]  # (run, the config's loss settings)
    callbacks: tuple[Callable[[RecipeRun], TrainerCallback | None], ...] = ()
    export: Callable[[RecipeRun], TrainerCallback] = _export_model_with_processor
    extra_sections: tuple[str, ...] = ()  # config sections beyond training/data/model/loss
    model_config: type = TiTokConfig  # the config class of `model.config`
    trains_codebook: bool = False  # a VQ codebook trains: `codebook_restart_steps` applies
    sampler: type | None = None  # the scheduler whose constructor is `sampling:` (default: TiTok's settings)

    def loss_settings(self, config: dict):
        """The config's `loss:` section as this recipe's loss dataclass."""
        return dataclasses.replace(self.loss, **(config.get("loss") or {}))


_PIXEL_CALLBACKS = (_gan_start, _codebook_usage, _reconstruction_grids)

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in [
        Recipe(
            "vqgan",
            "tokenizer",
            dict(_PIXEL_TRAINING),
            PixelLoss(),
            prepare_images(new_vqgan),
            _pixel_wrapper(VQGANTraining),
            _PIXEL_CALLBACKS,
            extra_sections=("discriminator",),
            model_config=MaskGITVQGANConfig,
        ),
        Recipe(
            "stage1",
            "tokenizer",
            dict(_TOKENIZER_TRAINING),
            Stage1Loss(),
            prepare_images(stage1_tokenizer, needs_teacher=True),
            _stage1_wrapper,
            (_codebook_usage, _reconstruction_grids),
            extra_sections=("teacher",),
            trains_codebook=True,
        ),
        Recipe(
            "stage2",
            "tokenizer",
            dict(
                _TOKENIZER_TRAINING, adam_beta2=0.999, warmup_steps=5_000, max_steps=500_000, discriminator_start=20_000
            ),
            TokenizerPixelLoss(quantizer_weight=0.0),
            prepare_images(stage2_tokenizer),
            _pixel_wrapper(PixelTokenizerTraining),
            (_freeze, *_PIXEL_CALLBACKS),
            extra_sections=("discriminator",),
        ),
        # No official single-stage TiTok training config exists (bytedance/1d-tokenizer issue #100): the stage-2
        # loss weights and optimiser, with the quantizer loss (VQ) or KL (VAE) switched on.
        Recipe(
            "single_stage",
            "tokenizer",
            dict(_PIXEL_TRAINING),
            TokenizerPixelLoss(),
            prepare_images(new_tokenizer),
            _pixel_wrapper(PixelTokenizerTraining),
            _PIXEL_CALLBACKS,
            extra_sections=("discriminator",),
            trains_codebook=True,
        ),
        # No official recipe: the text encoder of a text-aware model trained here (the releases read OpenAI's CLIP).
        Recipe(
            "clip",
            "tokenizer",
            dict(_TOKENIZER_TRAINING, learning_rate=5e-4, adam_beta2=0.98, weight_decay=0.2, warmup_steps=500),
            NoLoss(),
            prepare_clip,
            _clip_wrapper,
            export=_export_text_encoder,
            extra_sections=("text_tokenizer",),
            model_config=CLIPConfig,
        ),
        # TA-TiTok (official configs/training/TA-TiTok): single stage on captioned images; perceptual 1.1 x (LPIPS
        # + 0.1 ConvNeXt-S), GAN weight 0.1 from step 200k, 650k steps; VQ codebooks restart (clustering_vq).
        Recipe(
            "tatitok",
            "tokenizer",
            dict(_PIXEL_TRAINING, max_steps=650_000, discriminator_start=200_000),
            TokenizerPixelLoss(perceptual="lpips-convnext_s-1.0-0.1", perceptual_weight=1.1, gan_weight=0.1),
            prepare_images(new_tatitok, captioned=True),
            _text_aware_wrapper,
            _PIXEL_CALLBACKS,
            extra_sections=("discriminator", "text_encoder"),
            model_config=TATiTokConfig,
            trains_codebook=True,
        ),
        *(
            Recipe(
                f"maskgen_{kind}_stage{stage}",
                "maskgen",
                dict(
                    _MASKGEN_VQ_TRAINING if kind == "vq" else _MASKGEN_KL_TRAINING,
                    **({"learning_rate": 1e-4, "max_steps": 250_000} if (kind, stage) == ("vq", 2) else {}),
                    **({"max_steps": 500_000} if (kind, stage) == ("kl", 2) else {}),
                ),
                MaskGenVQLoss() if kind == "vq" else MaskGenKLLoss(),
                prepare_maskgen(MaskGenVQTransformer if kind == "vq" else MaskGenKLTransformer, stage),
                _maskgen_wrapper,
                ((_codebook_usage,) if kind == "vq" else ()) + (_prompt_grids,),
                export=_export_maskgen,
                extra_sections=("tokenizer", "text_encoder", "sampling"),
                model_config=MaskGenVQTransformer if kind == "vq" else MaskGenKLTransformer,
                sampler=MaskGenVQScheduler if kind == "vq" else MaskGenKLScheduler,
            )
            for kind in ("vq", "kl")
            for stage in (1, 2)
        ),
        Recipe(
            "generator",
            "generator",
            dict(_GENERATOR_TRAINING),
            NoLoss(),
            prepare_generator(TiTokMaskGIT),
            _generator_wrapper,
            (_codebook_usage, _sample_grids),
            export=_export_pipeline,
            extra_sections=("tokenizer", "sampling"),
            model_config=TiTokMaskGITConfig,
        ),
        Recipe(
            "rar",
            "generator",
            dict(_RAR_TRAINING),
            RARLoss(),
            prepare_generator(RARTransformer),
            _rar_wrapper,
            (_random_orders, _codebook_usage, _sample_grids),
            export=_export_pipeline,
            extra_sections=("tokenizer", "sampling"),
            model_config=RARConfig,
            sampler=RARScheduler,
        ),
    ]
}


# --------------------------------------------------------------------------------------------------
# Config -> trainer
# --------------------------------------------------------------------------------------------------


def load_recipe_config(source, overrides: list[str] | None = None) -> dict:
    """Read a recipe config (a yaml path, the name of a shipped config, or a mapping), apply `key.sub=value`
    overrides (values parsed as yaml), check every key and value against the recipe's declarations
    (`config.check_config`) and add the recipe's defaults."""
    config = read_config(source, overrides)
    name = config.get("recipe")
    if name not in RECIPES:
        raise ValueError(
            f"the config's recipe must be one of {tuple(RECIPES)}, got {name!r}{close_match(str(name), RECIPES)}"
        )
    recipe = RECIPES[name]
    check_config(config, recipe)
    defaults = {
        "data": {},
        "model": {},
        "training": dict(_ALWAYS, **recipe.training),
        "loss": dataclasses.asdict(recipe.loss),
    }
    return merge(defaults, config)


def build_trainer(config: dict, output_dir: str | None = None) -> TiTokTrainer:
    """Everything a recipe needs, assembled into a `TiTokTrainer` (not yet training)."""
    recipe = RECIPES[config["recipe"]]
    training = dict(config["training"])
    if output_dir:
        training["output_dir"] = output_dir
    training.setdefault("output_dir", f"outputs/{recipe.name}")
    check_output_dir(training["output_dir"])
    args = TiTokTrainingArguments(**training)
    if args.codebook_restart_steps and not recipe.trains_codebook:
        trained = [name for name, other in RECIPES.items() if other.trains_codebook]
        raise ValueError(
            f"codebook_restart_steps applies to VQ tokenizers whose quantizer trains ({', '.join(trained)}), "
            f"not to recipe {recipe.name!r}"
        )
    set_seed(args.seed)  # new weights (model, discriminator) are drawn from the seeded RNG
    run = recipe.prepare(config, args)
    wrapper = recipe.wrapper(run, recipe.loss_settings(config))
    factories = recipe.callbacks + ((_codebook_restarts,) if recipe.trains_codebook else ())
    callbacks = [EMACallback(args.ema_decay)] if args.use_ema else []
    callbacks += [callback for factory in factories if (callback := factory(run)) is not None]
    callbacks += [SkippedImagesCallback(run.dataset), recipe.export(run)]
    return TiTokTrainer(
        model=wrapper, args=args, train_dataset=run.dataset, data_collator=run.collator, callbacks=callbacks
    )


__all__ = [
    "MaskGenKLLoss",
    "MaskGenVQLoss",
    "NoLoss",
    "PixelLoss",
    "RARLoss",
    "RECIPES",
    "Recipe",
    "Stage1Loss",
    "TokenizerPixelLoss",
    "build_trainer",
    "load_recipe_config",
]
