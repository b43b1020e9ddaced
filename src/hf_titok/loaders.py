"""Loading what a user names: a local folder or a Hub repo id holding a tokenizer (TiTok or TA-TiTok) or a whole
pipeline (class-conditional `TiTokPipeline` or text-to-image `MaskGenPipeline`), in this package's format or the
official one (release ids such as `yucornetto/generator_titok_l32_imagenet` or `turkeyju/generator_maskgen_vq_l`,
converted in memory: `hf_titok.conversion.direct`), and the CLIP text encoder TA-TiTok decodes with.

The command line, the Spaces demo and the evaluation commands load models through these functions, so each
of them accepts the same names and fails the same clear way.
"""

from __future__ import annotations

import json
from pathlib import Path

import diffusers
import transformers
from huggingface_hub import snapshot_download

from .models.maskgen.pipeline_maskgen import MaskGenPipeline
from .models.tatitok.modeling_tatitok import TATiTokTokenizer
from .models.titok.image_processing_titok import TiTokImageProcessor
from .models.titok.modeling_titok import TiTokTokenizer
from .models.titok_maskgit.pipeline_titok import TiTokPipeline
from .releases import get_release, release_for_repo
from .text_encoding import CLIP_TEXT_ENCODER
from .utils.loading import checkpoint_reader

# The tokenizer class of each official kind and saved model type.
TOKENIZER_CLASSES = {"tokenizer": TiTokTokenizer, "titok": TiTokTokenizer, "tatitok": TATiTokTokenizer}


class ModelNotFoundError(ValueError):
    """The name given is neither a model folder nor a Hub repo that can be fetched."""


def resolve_model_folder(model: str) -> Path:
    """A local directory, or the snapshot of a Hub repo id (from the cache when offline)."""
    path = Path(model)
    if path.is_dir():
        return path
    if path.exists() or model.startswith((".", "/")) or model.count("/") > 1:
        raise ModelNotFoundError(f"model directory not found: {model}")
    try:
        return Path(snapshot_download(model))
    except Exception as error:  # offline without a cached copy, unknown repo, no network
        raise ModelNotFoundError(
            f"cannot load model {model!r}: not a local directory, and the Hub says: {error}"
        ) from None


def load_image_processor(folder: Path, image_size: int) -> TiTokImageProcessor:
    """The preprocessing saved with a tokenizer (its `preprocessor_config.json`) or a pipeline (its
    `image_processor/` component), else the standard one for `image_size`."""
    folder = Path(folder)
    for candidate in (folder, folder / "image_processor"):
        if (candidate / "preprocessor_config.json").is_file():
            return TiTokImageProcessor.from_pretrained(candidate)
    return TiTokImageProcessor.for_image_size(image_size)


def official_kind(model: str) -> str | None:
    """The kind of an official checkpoint (`tokenizer`, `generator`, `vqgan`, `tatitok`, `maskgen-vq`,
    `maskgen-kl`) when `model` is one (a release id, or a folder in the official format), else None. Release ids
    are answered without reaching the Hub."""
    release = release_for_repo(model)
    if release is not None:
        return release.kind
    reader = checkpoint_reader()
    return reader.official_kind(model) if reader is not None and Path(model).is_dir() else None


def _official_tokenizer(model: str, kind: str) -> tuple[TiTokTokenizer, TiTokImageProcessor]:
    if kind == "generator" or kind.startswith("maskgen"):
        release = release_for_repo(model)
        if release is None:
            raise ModelNotFoundError(
                f"{model} is an official generator checkpoint: give its tokenizer's folder or repo"
            )
        model = get_release(release.tokenizer).repo_id
        kind = get_release(release.tokenizer).kind
    elif kind not in TOKENIZER_CLASSES:
        raise ModelNotFoundError(f"{model} is an official {kind} checkpoint, not a TiTok tokenizer")
    tokenizer = TOKENIZER_CLASSES[kind].from_pretrained(model).eval()
    return tokenizer, TiTokImageProcessor.for_image_size(tokenizer.config.image_size)


def _saved_tokenizer(folder: Path) -> TiTokTokenizer:
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    return TOKENIZER_CLASSES.get(model_type, TiTokTokenizer).from_pretrained(folder).eval()


def load_tokenizer(model: str) -> tuple[TiTokTokenizer, TiTokImageProcessor]:
    """(tokenizer, image processor) from a tokenizer folder or a pipeline folder (its `vqvae`); for an official
    generator, its release's tokenizer. TA-TiTok folders give a `TATiTokTokenizer`."""
    kind = official_kind(model)
    if kind is not None:
        return _official_tokenizer(model, kind)
    folder = resolve_model_folder(model)
    kind = official_kind(str(folder))
    if kind is not None:
        return _official_tokenizer(str(folder), kind)
    if (folder / "model_index.json").is_file():
        tokenizer_folder = folder / "vqvae"
        if not (tokenizer_folder / "config.json").is_file():
            raise ModelNotFoundError(f"{model} is a pipeline without its tokenizer (no vqvae/config.json)")
        tokenizer = _saved_tokenizer(tokenizer_folder)
        return tokenizer, load_image_processor(folder, tokenizer.config.image_size)
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{model} holds no TiTok tokenizer (no config.json)")
    tokenizer = _saved_tokenizer(folder)
    return tokenizer, load_image_processor(folder, tokenizer.config.image_size)


def load_pipeline(model: str) -> TiTokPipeline | MaskGenPipeline:
    """A `TiTokPipeline` or `MaskGenPipeline` (whichever `model` holds) from a pipeline folder or Hub repo, or an
    official generator, its progress bar off (callers show their own)."""
    kind = official_kind(model)
    if kind is None:
        folder = resolve_model_folder(model)
        kind = official_kind(str(folder))
        model = str(folder)
        if kind is None and not (folder / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{model} is not a TiTokPipeline or MaskGenPipeline (no model_index.json); generation needs a generator"
            )
    if kind not in (None, "generator", "maskgen-vq", "maskgen-kl"):
        raise ModelNotFoundError(f"{model} is an official {kind} checkpoint; generation needs a generator")
    text_to_image = kind is not None and kind.startswith("maskgen")
    if kind is None:
        class_name = json.loads((Path(model) / "model_index.json").read_text()).get("_class_name")
        text_to_image = (class_name[-1] if isinstance(class_name, list) else class_name) == "MaskGenPipeline"
    pipe = (MaskGenPipeline if text_to_image else TiTokPipeline).from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_text_encoder(model: str | None = None):
    """(CLIP text encoder, its tokenizer) for TA-TiTok: a MaskGen pipeline folder's own (`text_encoder/`,
    `tokenizer/`), or a CLIP folder or Hub id (default: the official `openai/clip-vit-large-patch14-336`)."""
    source = model or CLIP_TEXT_ENCODER
    folder = Path(source)
    if (folder / "text_encoder").is_dir() and (folder / "tokenizer").is_dir():
        encoder_source, tokenizer_source = folder / "text_encoder", folder / "tokenizer"
    else:
        encoder_source = tokenizer_source = source
    try:
        encoder = transformers.CLIPTextModelWithProjection.from_pretrained(encoder_source).eval()
        tokenizer = transformers.CLIPTokenizer.from_pretrained(tokenizer_source)
    except OSError as error:
        raise ModelNotFoundError(
            f"cannot load the CLIP text encoder {source}: {error}. TA-TiTok reads {CLIP_TEXT_ENCODER}; give "
            "--text-encoder (a local copy of it, or a MaskGen pipeline folder)"
        ) from None
    return encoder, tokenizer


def quiet_library_progress_bars() -> None:
    """Per-file loading bars of transformers and diffusers (noise beside a command's own progress bar)."""
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.disable_progress_bar()


__all__ = [
    "TOKENIZER_CLASSES",
    "ModelNotFoundError",
    "load_image_processor",
    "load_pipeline",
    "load_text_encoder",
    "load_tokenizer",
    "official_kind",
    "quiet_library_progress_bars",
    "resolve_model_folder",
]
