"""TiTok on Hugging Face Spaces: class-conditional generation, reconstruction from 1-D tokens, image variations
(re-mask some of an image's tokens and let the generator re-sample them), and text-to-image with MaskGen.

    python spaces/app.py [--model DIR_OR_HUB_ID] [--text-model DIR_OR_HUB_ID] [--text-encoder DIR_OR_HUB_ID]
        [--host 127.0.0.1] [--port 7860]

The model defaults to the Fashion-MNIST TiTok built into `hf_titok` (works offline); `--model` or the
`TITOK_MODEL` environment variable selects a model of any family (`hf_titok.families`), as a local directory, a Hub
repo id or an official release id: a class-conditional pipeline (generation, reconstruction, variations), a
text-to-image pipeline (the text tab, and reconstruction with a caption), or a tokenizer alone (reconstruction; a
text-aware one reads the caption with `--text-encoder`, default the official CLIP). `--text-model` or
`TITOK_TEXT_MODEL` names the pipeline of the text-to-image tab (e.g. `turkeyju/generator_maskgen_vq_l`, converted on
load); without one it is the built-in Fashion-MNIST MaskGen (offline). The sampler widgets are built from the
samplers' own setting declarations.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import torch

from hf_titok.data.fashion_mnist import FASHION_MNIST_PIPELINE, FASHION_MNIST_TEXT_PIPELINE, to_rgb32
from hf_titok.evaluation.metrics import psnr
from hf_titok.families import Family, family_of_model
from hf_titok.loaders import ModelNotFoundError, family_of, load_pipeline, load_text_encoder, load_tokenizer
from hf_titok.models.titok.image_processing_titok import TiTokImageProcessor, to_float
from hf_titok.text_encoding import clip_text_features, tokenize_prompts
from hf_titok.utils.sampling_settings import AESTHETIC_SCORE_RANGE, DEFAULT_AESTHETIC_SCORE, SamplerSetting
from hf_titok.visualization import image_grid

# Limits of what one request may ask for (a CPU Space serves everyone from 2 cores): the work a request asks for
# is bounded here; the sampler settings otherwise take their declared bounds (hf_titok.utils.sampling_settings).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 6000 * 6000
MAX_IMAGES = 16
MAX_STEPS = 64
MAX_VARIATIONS = 8
MAX_SEED = 2**31 - 1
MAX_PROMPT_CHARACTERS = 1000  # CLIP reads 77 tokens; longer text is cut (and the user told so)
UNCONDITIONAL = -1  # the class picker's value for "no class"
DISPLAY_SIZE = 128  # small images are shown upscaled (nearest neighbour) so their pixels stay visible


@dataclass
class SpaceModel:
    """What the app serves: a tokenizer (always), the pipeline around it when the model is one, the family that
    says what it can do (`hf_titok.families`), and the CLIP text encoder a text-aware tokenizer decodes with."""

    name: str
    tokenizer: torch.nn.Module
    processor: TiTokImageProcessor
    pipeline: object | None = None
    family: Family | None = None
    text_encoder: torch.nn.Module | None = None
    text_tokenizer: object | None = None

    @property
    def is_vq(self) -> bool:
        return self.tokenizer.is_vq

    @property
    def reads_text(self) -> bool:
        """Whether its tokenizer decodes with a caption (TA-TiTok)."""
        return family_of_model(self.tokenizer).takes_text

    @property
    def class_conditional(self) -> bool:
        return self.pipeline is not None and self.family.class_labels

    @property
    def text_to_image(self) -> bool:
        return self.pipeline is not None and self.family.takes_text

    @property
    def class_choices(self) -> list[tuple[str, int]]:
        if not self.class_conditional:
            return []
        names = [
            (f"{index}: {name}" if len(self.pipeline.id2label) > 20 else name, index)
            for index, name in sorted(self.pipeline.id2label.items())
        ]
        return names + [("unconditional (no class)", UNCONDITIONAL)]


def load_model(name: str, text_encoder: str | None = None) -> SpaceModel:
    """The model `name` holds, of any family (`hf_titok.loaders.family_of`): a pipeline (its tokenizer serves the
    reconstructions), or a tokenizer alone; a text-aware tokenizer alone reads captions with `text_encoder` (a CLIP
    folder or Hub id; default the official one)."""
    family, source, _ = family_of(name)
    if family is None:
        raise ModelNotFoundError(f"{name} holds no model of hf_titok (no config.json or model_index.json it knows)")
    if family.pipeline_class is not None:
        pipeline = load_pipeline(source)
        text = (pipeline.text_encoder, pipeline.tokenizer) if family.takes_text else (None, None)
        return SpaceModel(name, pipeline.vqvae, pipeline.processor, pipeline, family, *text)
    tokenizer, processor = load_tokenizer(source)
    model = SpaceModel(name, tokenizer, processor, family=family_of_model(tokenizer))
    if model.reads_text:
        model.text_encoder, model.text_tokenizer = load_text_encoder(text_encoder)
    return model


# --------------------------------------------------------------------------------------------------
# Input checks: each returns the clean value or raises gr.Error with a message for a person
# --------------------------------------------------------------------------------------------------


def _as_float(value) -> float | None:
    """The number a widget sent (numbers or numeric text), or None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if np.isfinite(number) else None


def whole_number(value, what: str, low: int, high: int) -> int:
    number = _as_float(value)
    if number is None or number != int(number):
        raise gr.Error(f"{what} must be a whole number between {low} and {high}, got {value}.")
    if not low <= int(number) <= high:
        raise gr.Error(f"{what} must be between {low} and {high}, got {int(number)}.")
    return int(number)


def number_in_range(value, what: str, low: float, high: float) -> float:
    number = _as_float(value)
    if number is None or not low <= number <= high:
        raise gr.Error(f"{what} must be between {low:g} and {high:g}, got {value}.")
    return number


def choice_of(value, what: str, choices) -> str:
    if value not in choices:
        raise gr.Error(f"{what} must be one of {', '.join(map(str, choices))}, got {value}.")
    return value


def sampler_setting(pipeline, name: str) -> SamplerSetting:
    """The declaration of one setting of `pipeline`'s sampler (its bounds, choices and label)."""
    return next(setting for setting in pipeline._sampler().settings if setting.name == name)


def setting_value(pipeline, name: str, value, high: float | None = None):
    """A widget's value for one of `pipeline`'s sampler settings, checked against the setting's declaration (and a
    tighter `high` the Space sets on the work a request asks for), or a gr.Error saying what is allowed."""
    setting = sampler_setting(pipeline, name)
    if setting.type is str:
        return choice_of(value, setting.label, setting.choices)
    if setting.type is bool:
        return bool(value)
    top = setting.high if high is None else high
    if setting.type is int:
        return whole_number(value, setting.label, int(setting.low), int(top))
    number = number_in_range(value, setting.label, setting.low, top)
    if number == setting.low and not setting.low_inclusive:
        raise gr.Error(f"{setting.label} must be above {setting.low:g}, got {value}.")
    return number


def setting_widget(pipeline, name: str, high: float | None = None, **kwargs):
    """The widget of one of `pipeline`'s sampler settings, built from its declaration and showing its default (the
    pipeline's sampler config)."""
    setting, value = sampler_setting(pipeline, name), pipeline.sampling_settings()[name]
    top = setting.high if high is None else high
    if setting.type is str:
        return gr.Radio(list(setting.choices), value=value, label=setting.label, **kwargs)
    if setting.type is bool:
        return gr.Checkbox(value, label=setting.label, **kwargs)
    if setting.type is int:
        return gr.Number(value, label=f"{setting.label} ({setting.low:g}-{top:g})", precision=0, **kwargs)
    return gr.Slider(setting.low, top, value=value, step=0.1, label=setting.label, **kwargs)


def resolve_seed(seed, use_random: bool) -> int:
    return random.randint(0, MAX_SEED) if use_random else whole_number(seed, "Seed", 0, MAX_SEED)


def open_upload(path: str | None) -> PIL.Image.Image:
    """The uploaded file as an RGB image, or a readable gr.Error (no file, too many bytes or pixels, not an
    image). Grey, alpha (composited on white), palette and CMYK images are converted."""
    if not path:
        raise gr.Error("Upload an image or pick an example first.")
    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise gr.Error(f"The file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MB.")
    try:
        with PIL.Image.open(path) as image:
            width, height = image.size  # read from the header, before decoding any pixels
            if width * height > MAX_UPLOAD_PIXELS:
                raise gr.Error(
                    f"The image is {width}x{height} ({width * height / 1e6:.1f} megapixels); the limit is "
                    f"{MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels."
                )
            image.load()
            return image.copy()  # any mode: the image processor converts to RGB
    except gr.Error:
        raise
    except (PIL.UnidentifiedImageError, PIL.Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise gr.Error(
            f"{Path(path).name} is not an image this app can read (PNG, JPEG, WebP, BMP, GIF, TIFF...)."
        ) from None


def for_display(image: PIL.Image.Image) -> PIL.Image.Image:
    if image.width >= DISPLAY_SIZE:
        return image
    return image.resize((DISPLAY_SIZE, DISPLAY_SIZE * image.height // image.width), PIL.Image.NEAREST)


def save_grid(images: list[PIL.Image.Image], title: str) -> str:
    """A PNG of all results, for one-click download."""
    grid = image_grid(
        [images[i : i + 8] for i in range(0, len(images), 8)], title=title, cell_size=max(images[0].width, 64)
    )
    file = tempfile.NamedTemporaryFile(prefix="titok_", suffix=".png", delete=False)
    grid.save(file.name)
    return file.name


def class_label(model: SpaceModel, choice) -> int | None:
    if choice is None or choice == "":
        raise gr.Error("Pick a class (or 'unconditional').")
    number = _as_float(choice)
    if number is None or number != int(number):
        raise gr.Error(f"Unknown class {choice}.")
    choice = int(number)
    if choice != UNCONDITIONAL and choice not in model.pipeline.id2label:
        raise gr.Error(f"Unknown class id {choice}.")
    return None if choice == UNCONDITIONAL else choice


# --------------------------------------------------------------------------------------------------
# The three actions
# --------------------------------------------------------------------------------------------------


def progress_callback(progress: gr.Progress, steps: int, what: str):
    def callback(pipeline, step, timestep, kwargs):
        progress((step + 1) / steps, desc=f"{what}: step {step + 1}/{steps}")
        return kwargs

    return callback


# The settings the Generate tab shows, where the pipeline's sampler has them (RAR: no steps or schedule, a power).
GENERATE_SETTINGS = ("num_inference_steps", "guidance_scale", "guidance_schedule", "temperature", "guidance_scale_pow")


def sampler_has(pipeline, name: str) -> bool:
    return name in pipeline._sampler().setting_names()


def generate(
    model: SpaceModel,
    class_choice,
    num_images,
    steps,
    guidance_scale,
    guidance_schedule,
    temperature,
    seed,
    random_seed,
    guidance_scale_pow=None,
    progress=gr.Progress(),
):
    """Class-conditional samples. Each setting the pipeline's sampler takes is checked and passed (None, or a
    setting it does not have - its widget is not shown -, keeps the sampler's default)."""
    if model.pipeline is None:
        raise gr.Error("This model is a tokenizer without a generator: generation needs a TiTokPipeline.")
    if not model.class_conditional:
        raise gr.Error(f"This {model.family.title} generates from text: use the Text to image tab.")
    label = class_label(model, class_choice)
    num_images = whole_number(num_images, "Number of images", 1, MAX_IMAGES)
    pipe = model.pipeline
    given = dict(zip(GENERATE_SETTINGS, (steps, guidance_scale, guidance_schedule, temperature, guidance_scale_pow)))
    settings = {
        name: setting_value(pipe, name, value, MAX_STEPS if name == "num_inference_steps" else None)
        for name, value in given.items()
        if value is not None and sampler_has(pipe, name)
    }
    seed = resolve_seed(seed, random_seed)
    used = pipe.sampling_settings(**settings)
    steps = used.get("num_inference_steps", pipe.transformer.config.num_latent_tokens)  # RAR: one per token
    images = model.pipeline(
        label,
        num_images_per_label=num_images,
        generator=torch.Generator().manual_seed(seed),
        callback_on_step_end=progress_callback(progress, steps, "sampling"),
        **settings,
    ).images
    name = model.pipeline.label_name(label)
    gallery = [(for_display(image), f"{name} #{i + 1}") for i, image in enumerate(images)]
    schedule = f" ({used['guidance_schedule']})" if "guidance_schedule" in used else ""
    download = save_grid(images, f"{name}, {steps} steps, guidance {used['guidance_scale']:g}{schedule}, seed {seed}")
    return gallery, f"Seed used: {seed}", download


def load_text_model(name: str):
    """The pipeline of the text-to-image tab: a text-to-image family's (a folder, a Hub repo or an official
    `turkeyju/*` id)."""
    pipe = load_pipeline(name)
    if not family_of_model(pipe).takes_text:
        raise ModelNotFoundError(f"{name} is not a text-to-image pipeline (MaskGen): it takes no prompt")
    return pipe


def text_to_image(
    pipe,
    prompt,
    negative_prompt,
    num_images,
    steps,
    guidance_scale,
    guidance_schedule,
    temperature,
    aesthetic_score,
    seed,
    random_seed,
    progress=gr.Progress(),
):
    if not isinstance(prompt, str) or not prompt.strip():
        raise gr.Error("Describe the image you want: the prompt is empty.")
    if len(prompt) > MAX_PROMPT_CHARACTERS:
        raise gr.Error(f"The prompt is {len(prompt)} characters long; CLIP reads about 77 words: shorten it.")
    negative_prompt = negative_prompt.strip() if isinstance(negative_prompt, str) and negative_prompt.strip() else None
    num_images = whole_number(num_images, "Number of images", 1, MAX_IMAGES)
    steps = setting_value(pipe, "num_inference_steps", steps, min(MAX_STEPS, pipe.transformer.config.num_latent_tokens))
    guidance_scale = setting_value(pipe, "guidance_scale", guidance_scale)
    guidance_schedule = setting_value(pipe, "guidance_schedule", guidance_schedule)
    temperature = setting_value(pipe, "temperature", temperature)
    aesthetic_score = number_in_range(aesthetic_score, "Aesthetic score", *AESTHETIC_SCORE_RANGE)
    seed = resolve_seed(seed, random_seed)
    ids = pipe.tokenizer(prompt)["input_ids"]
    if len(ids) > pipe.vqvae.config.text_max_length:
        gr.Warning(f"CLIP reads {pipe.vqvae.config.text_max_length} tokens: the end of the prompt has no effect.")
    images = pipe(
        prompt,
        negative_prompt=negative_prompt,
        num_images_per_prompt=num_images,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        guidance_schedule=guidance_schedule,
        temperature=temperature,
        aesthetic_score=aesthetic_score,
        generator=torch.Generator().manual_seed(seed),
        callback_on_step_end=progress_callback(progress, steps, "sampling"),
    ).images
    gallery = [(for_display(image), f"#{i + 1}") for i, image in enumerate(images)]
    download = save_grid(images, f"{prompt[:60]}, {steps} steps, guidance {guidance_scale:g}, seed {seed}")
    return gallery, f"Seed used: {seed}", download


def add_text_to_image_tab(pipe) -> None:
    num_tokens = pipe.transformer.config.num_latent_tokens
    kind = "continuous" if pipe.vqvae.config.quantize_mode == "vae" else "discrete"
    with gr.Tab("Text to image", id="text-to-image"):
        gr.Markdown(
            f"{family_of_model(pipe).title} over {num_tokens} {kind} tokens of its "
            f"{family_of_model(pipe.vqvae).title}, conditioned on CLIP text and an aesthetic score. "
            "[Paper](https://arxiv.org/abs/2501.07730)"
        )
        with gr.Row():
            with gr.Column(scale=1):
                prompt = gr.Textbox(label="Prompt", lines=2, elem_id="prompt")
                negative_prompt = gr.Textbox(label="Negative prompt (optional)", elem_id="negative-prompt")
                num_images = gr.Number(2, label=f"Number of images (1-{MAX_IMAGES})", precision=0, elem_id="t2i-num")
                steps = setting_widget(pipe, "num_inference_steps", min(MAX_STEPS, num_tokens), elem_id="t2i-steps")
                guidance_scale = setting_widget(pipe, "guidance_scale")
                guidance_schedule = setting_widget(pipe, "guidance_schedule")
                temperature = setting_widget(pipe, "temperature")
                aesthetic_score = gr.Number(
                    DEFAULT_AESTHETIC_SCORE,
                    label=f"Aesthetic score ({AESTHETIC_SCORE_RANGE[0]:g}-{AESTHETIC_SCORE_RANGE[1]:g})",
                    elem_id="aesthetic-score",
                )
                with gr.Row():
                    seed = gr.Number(0, label="Seed", precision=0, elem_id="t2i-seed")
                    random_seed = gr.Checkbox(False, label="Random seed")
                button = gr.Button("Generate from text", variant="primary", elem_id="t2i-button")
            with gr.Column(scale=2):
                gallery = gr.Gallery(label="Images", columns=4, object_fit="contain", elem_id="t2i-images")
                seed_used = gr.Markdown(elem_id="t2i-seed-used")
                download = gr.File(label="Download all (PNG grid)", elem_id="t2i-download")
        button.click(
            lambda *args, progress=gr.Progress(): text_to_image(pipe, *args, progress=progress),
            [
                prompt,
                negative_prompt,
                num_images,
                steps,
                guidance_scale,
                guidance_schedule,
                temperature,
                aesthetic_score,
                seed,
                random_seed,
            ],
            [gallery, seed_used, download],
            api_name="text_to_image",
        )


def model_input(model: SpaceModel, path) -> torch.Tensor:
    """The upload as the tokenizer's input: RGB, shorter side resized (bicubic) and center-cropped, [1, 3, S, S]."""
    return model.processor(open_upload(path), return_tensors="pt").pixel_values


def preview(model: SpaceModel, path):
    """Shown as soon as a file is chosen, so a bad upload is reported before anything runs."""
    if not path:
        return None
    return for_display(model.processor.postprocess(model_input(model, path), rounding="round")[0])


def caption_text(model: SpaceModel, caption) -> torch.Tensor:
    """The CLIP text a text-aware tokenizer decodes with, from the caption box."""
    if not isinstance(caption, str) or not caption.strip():
        raise gr.Error(f"This {model.family.title} decodes with text: write a caption of the image.")
    if len(caption) > MAX_PROMPT_CHARACTERS:
        raise gr.Error(f"The caption is {len(caption)} characters long; CLIP reads about 77 words: shorten it.")
    ids = tokenize_prompts(model.text_tokenizer, [caption.strip()], model.tokenizer.config.text_max_length)
    return clip_text_features(model.text_encoder, ids).tokenizer_text


def decodes_prefixes(model: SpaceModel) -> bool:
    """Whether the model's tokenizer decodes any prefix of its tokens (One-D-Piece, Tail Token Drop training)."""
    return bool(getattr(model.tokenizer.config, "prefix_decoding", False))


@torch.no_grad()
def reconstruct(model: SpaceModel, path, caption=None, tokens_kept=None):
    """The image through the tokenizer; `tokens_kept`: decode from that many first tokens (a tokenizer that
    decodes prefixes; default all)."""
    num_tokens = model.tokenizer.config.num_latent_tokens
    kept = num_tokens
    if tokens_kept is not None and decodes_prefixes(model):
        kept = whole_number(tokens_kept, "Tokens kept", 1, num_tokens)
    pixel_values = model_input(model, path)
    text = caption_text(model, caption) if model.reads_text else None
    encoded = model.tokenizer.encode(pixel_values)
    reconstruction = model.tokenizer.decode(
        encoded.tokens[:, :kept], **({"text_embeddings": text} if model.reads_text else {})
    )
    original = model.processor.postprocess(pixel_values, rounding="round")[0]
    reconstructed = model.processor.postprocess(reconstruction)[0]
    shown = [to_float(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]) for image in (reconstructed, original)]
    value = float(psnr(*shown)[0])  # of the uint8 images shown
    if model.is_vq:
        ids = encoded.token_ids[0, :kept].tolist()
        columns = 8 if num_tokens <= 64 else 16
        rows = [ids[i : i + columns] for i in range(0, len(ids), columns)]
        table = [[f"{i * columns}"] + [str(v) for v in row] + [""] * (columns - len(row)) for i, row in enumerate(rows)]
        headers = ["token"] + [f"+{j}" for j in range(columns)]
        used = f"the first {kept} of {num_tokens} tokens" if kept < num_tokens else f"{num_tokens} tokens"
        summary = f"**PSNR {value:.2f} dB** — {used} from a codebook of {model.tokenizer.config.codebook_size}"
    else:
        latents = encoded.latents[0]
        table = [[str(i)] + [f"{v:.2f}" for v in row.tolist()] for i, row in enumerate(latents)]
        headers = ["token"] + [f"c{j}" for j in range(latents.shape[1])]
        summary = f"**PSNR {value:.2f} dB** — {num_tokens} continuous tokens of {latents.shape[1]} channels (VAE)"
    return for_display(original), for_display(reconstructed), summary, {"headers": headers, "data": table}


@torch.no_grad()
def variations(
    model: SpaceModel, path, num_remasked, num_variations, class_choice, seed, random_seed, progress=gr.Progress()
):
    if model.pipeline is None:
        raise gr.Error("Variations need a generator: this model is a tokenizer alone.")
    image = open_upload(path)
    num_tokens = model.tokenizer.config.num_latent_tokens
    num_remasked = whole_number(num_remasked, "Tokens to re-sample", 1, num_tokens)
    num_variations = whole_number(num_variations, "Number of variations", 1, MAX_VARIATIONS)
    label = class_label(model, class_choice)
    seed = resolve_seed(seed, random_seed)
    steps = min(model.pipeline.sampling_settings()["num_inference_steps"], num_remasked)
    images = model.pipeline(
        label,
        image=image,
        strength=num_remasked / num_tokens,
        num_images_per_label=num_variations,
        generator=torch.Generator().manual_seed(seed),
        callback_on_step_end=progress_callback(progress, steps, "re-sampling"),
    ).images
    gallery = [(for_display(im), f"variation {i + 1}") for i, im in enumerate(images)]
    return gallery, f"Seed used: {seed} — {num_remasked} of {num_tokens} tokens re-sampled"


# --------------------------------------------------------------------------------------------------
# The UI
# --------------------------------------------------------------------------------------------------


def example_images() -> list[str]:
    """One Fashion-MNIST test image per class (shipped with hf_titok), written as PNG files; also a good
    test of out-of-domain inputs for ImageNet models."""
    with resources.files("hf_titok").joinpath("data/fashion_mnist_test_samples.npz").open("rb") as file:
        data = np.load(file)
        images, labels = to_rgb32(data["images"]), data["labels"]
    folder = Path(tempfile.mkdtemp(prefix="titok_examples_"))
    paths = []
    for label in sorted(set(labels.tolist())):
        path = folder / f"fashion_mnist_{label}.png"
        PIL.Image.fromarray(images[labels.tolist().index(label)]).save(path)
        paths.append(str(path))
    return paths


def build_demo(model: SpaceModel, text_model=None) -> gr.Blocks:
    """The app: class-conditional generation (a class-conditional model), reconstruction (every model; with a
    caption for a text-aware tokenizer), variations (class-conditional VQ models), and text to image (`text_model`,
    or the model itself when it generates from text)."""
    if text_model is None and model.text_to_image:
        text_model = model.pipeline
    num_tokens = model.tokenizer.config.num_latent_tokens
    with gr.Blocks(title=f"TiTok: an image is worth {num_tokens} tokens") as demo:
        gr.Markdown(
            f"# TiTok — an image is worth {num_tokens} tokens\n"
            f"Model: `{Path(model.name).name if os.path.isdir(model.name) else model.name}` — "
            f"{model.tokenizer.config.image_size}x{model.tokenizer.config.image_size} images as {num_tokens} "
            "1-D tokens. [Paper](https://arxiv.org/abs/2406.07550) · requests are queued: one runs at a time."
        )
        with gr.Tab("Generate", id="generate"):
            if model.pipeline is None:
                gr.Markdown(
                    "This model is a tokenizer alone: generation needs a TiTokPipeline (tokenizer + generator)."
                )
            elif not model.class_conditional:
                gr.Markdown(f"This {model.family.title} generates from text: see the Text to image tab.")
            else:
                with gr.Row():
                    with gr.Column(scale=1):
                        class_choice = gr.Dropdown(
                            model.class_choices,
                            value=model.class_choices[0][1],
                            label="Class",
                            filterable=True,
                            elem_id="class-picker",
                        )
                        num_images = gr.Number(
                            4, label=f"Number of images (1-{MAX_IMAGES})", precision=0, elem_id="num-images"
                        )
                        # One widget per setting the sampler has (in GENERATE_SETTINGS order); None for the others.
                        widgets = {
                            name: setting_widget(
                                model.pipeline,
                                name,
                                MAX_STEPS if name == "num_inference_steps" else None,
                                **({"elem_id": "steps"} if name == "num_inference_steps" else {}),
                            )
                            if sampler_has(model.pipeline, name)
                            else gr.State(None)
                            for name in GENERATE_SETTINGS
                        }
                        with gr.Row():
                            seed = gr.Number(0, label="Seed", precision=0, elem_id="seed")
                            random_seed = gr.Checkbox(False, label="Random seed", elem_id="random-seed")
                        generate_button = gr.Button("Generate", variant="primary", elem_id="generate-button")
                    with gr.Column(scale=2):
                        gallery = gr.Gallery(
                            label="Samples",
                            columns=4,
                            object_fit="contain",
                            elem_id="samples",
                            buttons=["download", "fullscreen"],
                        )
                        seed_used = gr.Markdown(elem_id="seed-used")
                        download = gr.File(label="Download all (PNG grid)", elem_id="samples-download")
                generate_button.click(
                    lambda *args, progress=gr.Progress(): generate(model, *args, progress=progress),
                    [
                        class_choice,
                        num_images,
                        *(widgets[name] for name in GENERATE_SETTINGS[:4]),
                        seed,
                        random_seed,
                        widgets["guidance_scale_pow"],
                    ],
                    [gallery, seed_used, download],
                    api_name="generate",
                )
        with gr.Tab("Reconstruct", id="reconstruct"):
            with gr.Row():
                with gr.Column(scale=1):
                    # A file input, not gr.Image: gr.Image fails inside Gradio on a file it cannot decode, before
                    # our handler could explain the problem.
                    upload = gr.File(
                        label=f"Image file (PNG, JPEG, WebP...; up to {MAX_UPLOAD_BYTES // 2**20} MB)",
                        file_types=["image"],
                        type="filepath",
                        elem_id="upload",
                    )
                    examples = example_images()
                    example_gallery = gr.Gallery(
                        examples,
                        label="Or click an example (Fashion-MNIST test images)",
                        columns=4,
                        object_fit="contain",
                        allow_preview=False,
                        elem_id="examples",
                    )
                    caption = gr.Textbox(
                        label="Caption (this tokenizer decodes with text)",
                        visible=model.reads_text,
                        elem_id="caption",
                    )
                    tokens_kept = gr.Slider(
                        1,
                        num_tokens,
                        value=num_tokens,
                        step=1,
                        label="Tokens kept (decode from the first k: this tokenizer decodes any prefix)",
                        visible=decodes_prefixes(model),
                        elem_id="tokens-kept",
                    )
                    reconstruct_button = gr.Button(
                        "Tokenize and reconstruct", variant="primary", elem_id="reconstruct-button"
                    )
                with gr.Column(scale=2):
                    with gr.Row():
                        model_input = gr.Image(
                            label="Input (as the model sees it)", interactive=False, elem_id="model-input"
                        )
                        reconstruction = gr.Image(
                            label=f"Reconstruction from {num_tokens} tokens",
                            interactive=False,
                            elem_id="reconstruction",
                        )
                    summary = gr.Markdown(elem_id="psnr")
                    tokens = gr.Dataframe(
                        value=[[""]],
                        headers=["token"],
                        label="Token ids" if model.is_vq else "Latent tokens",
                        interactive=False,
                        elem_id="token-ids",
                        max_height=260,
                    )

            def pick_example(event: gr.SelectData) -> str:
                return examples[event.index]

            example_gallery.select(pick_example, None, upload, api_name=False)
            upload.change(lambda path: preview(model, path), upload, model_input, api_name=False)
            reconstruct_button.click(
                lambda path, text, kept: reconstruct(model, path, text, kept),
                [upload, caption, tokens_kept],
                [model_input, reconstruction, summary, tokens],
                api_name="reconstruct",
            )
            if model.class_conditional and model.is_vq:
                with gr.Accordion("Variations: re-mask some tokens and let the generator re-sample them", open=True):
                    with gr.Row():
                        with gr.Column(scale=1):
                            num_remasked = gr.Slider(
                                1,
                                num_tokens,
                                value=max(1, num_tokens // 4),
                                step=1,
                                label="Tokens to re-sample",
                                elem_id="num-remasked",
                            )
                            num_variations = gr.Number(
                                4, label=f"Variations (1-{MAX_VARIATIONS})", precision=0, elem_id="num-variations"
                            )
                            variation_class = gr.Dropdown(
                                model.class_choices,
                                value=UNCONDITIONAL,
                                label="Condition on class",
                                filterable=True,
                                elem_id="variation-class",
                            )
                            with gr.Row():
                                variation_seed = gr.Number(0, label="Seed", precision=0)
                                variation_random = gr.Checkbox(False, label="Random seed")
                            variations_button = gr.Button("Make variations", elem_id="variations-button")
                        with gr.Column(scale=2):
                            variation_gallery = gr.Gallery(
                                label="Variations",
                                columns=4,
                                object_fit="contain",
                                elem_id="variations",
                                buttons=["download", "fullscreen"],
                            )
                            variation_info = gr.Markdown(elem_id="variation-info")
                    variations_button.click(
                        lambda *args, progress=gr.Progress(): variations(model, *args, progress=progress),
                        [upload, num_remasked, num_variations, variation_class, variation_seed, variation_random],
                        [variation_gallery, variation_info],
                        api_name="variations",
                    )
        if text_model is not None:
            add_text_to_image_tab(text_model)
    # One request at a time: the CPU is shared by everyone; the rest wait in the queue (with their position shown).
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default=os.environ.get("TITOK_MODEL", FASHION_MNIST_PIPELINE),
        help="a pipeline or tokenizer of any family: local directory, Hub repo id or official release id "
        "(default: $TITOK_MODEL, else the built-in Fashion-MNIST pipeline)",
    )
    parser.add_argument(
        "--text-encoder",
        default=os.environ.get("TITOK_TEXT_ENCODER"),
        help="the CLIP text encoder a text-aware tokenizer given alone decodes with (default: the official one)",
    )
    parser.add_argument(
        "--text-model",
        default=os.environ.get("TITOK_TEXT_MODEL"),
        help="a text-to-image pipeline for the text tab (default: $TITOK_TEXT_MODEL, else the built-in Fashion-MNIST "
        "one; a text-to-image --model serves the tab itself)",
    )
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model, args.text_encoder)
        text_model_name = args.text_model or (None if model.text_to_image else FASHION_MNIST_TEXT_PIPELINE)
        text_model = load_text_model(text_model_name) if text_model_name else None
    except ModelNotFoundError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    # Gradio refuses bigger uploads outright; open_upload() applies the tighter, explained limit.
    build_demo(model, text_model).launch(
        server_name=args.host, server_port=args.port, max_file_size=5 * MAX_UPLOAD_BYTES
    )


if __name__ == "__main__":
    main()
