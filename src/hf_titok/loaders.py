"""Loading what a user names: a local folder or a Hub repo id holding a tokenizer (TiTok or TA-TiTok) or a whole
pipeline (class-conditional `TiTokPipeline` or text-to-image `MaskGenPipeline`), in this package's format or the
official one (release ids such as `yucornetto/generator_titok_l32_imagenet` or `turkeyju/generator_maskgen_vq_l`,
converted in memory: `hf_titok.conversion.direct`), and the CLIP text encoder TA-TiTok decodes with.

The command line, the Spaces demo and the evaluation commands load models through these functions, so each
of them accepts the same names and fails the same clear way.
"""

from __future__ import annotations

from pathlib import Path

import diffusers
import transformers
from huggingface_hub import snapshot_download

from .families import FAMILIES, Family, family_of_kind, family_of_saved_folder, get_family
from .models.titok.image_processing_titok import TiTokImageProcessor
from .releases import get_release, release_for_repo
from .text_encoding import CLIP_TEXT_ENCODER
from .utils.loading import checkpoint_reader


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


def family_of(model: str) -> tuple[Family | None, str, bool]:
    """What `model` names, through the registry (`hf_titok.families`): (its family, the source to load it from,
    whether it is an official checkpoint). Release ids are answered without reaching the Hub; anything else is a
    local folder or the snapshot of a Hub repo, official or saved by this package. The family is None for a
    folder that holds no model of the package."""
    kind = official_kind(model)
    if kind is not None:
        return family_of_kind(kind), model, True
    folder = resolve_model_folder(model)
    kind = official_kind(str(folder))
    if kind is not None:
        return family_of_kind(kind), str(folder), True
    return family_of_saved_folder(folder), str(folder), False


def _official_tokenizer(model: str, family: Family) -> tuple:
    if family.role == "generator":
        release = release_for_repo(model)
        if release is None:
            raise ModelNotFoundError(
                f"{model} is an official generator checkpoint: give its tokenizer's folder or repo"
            )
        model = get_release(release.tokenizer).repo_id
        family = get_family(family.tokenizer_family)
    elif family.role != "tokenizer":
        raise ModelNotFoundError(f"{model} is an official {family.kind} checkpoint, not a tokenizer")
    tokenizer = family.model_class.from_pretrained(model).eval()
    return tokenizer, TiTokImageProcessor.for_image_size(tokenizer.config.image_size)


def _saved_tokenizer(folder: Path):
    family = family_of_saved_folder(folder)
    if family is None or family.role not in ("tokenizer", "vqgan"):  # (RAR pipelines decode with the VQGAN)
        family = FAMILIES["titok"]  # its loading names what the folder holds instead
    return family.model_class.from_pretrained(folder).eval()


def load_tokenizer(model: str, fast_path: bool = False) -> tuple:
    """(tokenizer, image processor) from a tokenizer folder or a pipeline folder (its `vqvae`); for an official
    generator, its release's tokenizer. The tokenizer class is the family's (`TATiTokTokenizer` for TA-TiTok).
    `fast_path=True`: on the CPU fast path (`enable_fast_path`)."""
    tokenizer, processor = _load_tokenizer(model)
    return (tokenizer.eval().enable_fast_path() if fast_path else tokenizer), processor


def _load_tokenizer(model: str) -> tuple:
    family, source, official = family_of(model)
    if official:
        return _official_tokenizer(source, family)
    folder = Path(source)
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


def load_pipeline(model: str, release: str | None = None, fast_path: bool = False):
    """The pipeline `model` holds (a pipeline folder or Hub repo, or an official generator), of its family's
    pipeline class (`TiTokPipeline`, `MaskGenPipeline`, ...), its progress bar off (callers show their own).
    `release` names the release of a repo or folder holding the `.bin` files of several (`yucornetto/RAR`,
    `fun-research/TiTok`). `fast_path=True`: every model on the CPU fast path."""
    if release is not None:
        family = family_of_kind(get_release(release).kind)
        if family.pipeline_class is None:
            raise ModelNotFoundError(f"release {release} is a {family.title}; generation needs a generator")
        pipe = family.pipeline_class.from_pretrained(model, release=release, fast_path=fast_path)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    family, source, official = family_of(model)
    if official and family.pipeline_class is None:
        raise ModelNotFoundError(f"{model} is an official {family.kind} checkpoint; generation needs a generator")
    if not official and not (Path(source) / "model_index.json").is_file():
        names = " or ".join(dict.fromkeys(f.pipeline_class.__name__ for f in FAMILIES.values() if f.pipeline_class))
        raise ModelNotFoundError(f"{source} is not a {names} (no model_index.json); generation needs a generator")
    if family is None or family.pipeline_class is None:
        raise ModelNotFoundError(f"{source} holds a pipeline of no model family of this package")
    pipe = family.pipeline_class.from_pretrained(source, fast_path=fast_path)
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
            f"cannot load the CLIP text encoder {source}: {error}. TA-TiTok reads {CLIP_TEXT_ENCODER}; give a "
            "local copy of it or a MaskGen pipeline folder (--text-encoder on the command line, text_encoder: in a "
            "training config)"
        ) from None
    return encoder, tokenizer


def quiet_library_progress_bars() -> None:
    """Per-file loading bars of transformers and diffusers (noise beside a command's own progress bar)."""
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.disable_progress_bar()


__all__ = [
    "ModelNotFoundError",
    "family_of",
    "load_image_processor",
    "load_pipeline",
    "load_text_encoder",
    "load_tokenizer",
    "official_kind",
    "quiet_library_progress_bars",
    "resolve_model_folder",
]
