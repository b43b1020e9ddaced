"""Loading what a user names: a local folder or a Hub repo id holding a tokenizer or a whole pipeline, in this
package's format or the official one (release ids such as `yucornetto/generator_titok_l32_imagenet`, converted
in memory: `hf_titok.conversion.direct`).

The command line, the Spaces demo and the evaluation commands load models through these functions, so each
of them accepts the same names and fails the same clear way.
"""

from __future__ import annotations

from pathlib import Path

import diffusers
import transformers
from huggingface_hub import snapshot_download

from .image_processing_titok import TiTokImageProcessor
from .loading import checkpoint_reader
from .modeling_titok import TiTokTokenizer
from .pipeline_titok import TiTokPipeline
from .releases import get_release, release_for_repo


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
    """ "tokenizer", "generator" or "vqgan" when `model` is an official checkpoint (a release id, or a folder in
    the official format), else None. Release ids are answered without reaching the Hub."""
    release = release_for_repo(model)
    if release is not None:
        return release.kind
    reader = checkpoint_reader()
    return reader.official_kind(model) if reader is not None and Path(model).is_dir() else None


def _official_tokenizer(model: str, kind: str) -> tuple[TiTokTokenizer, TiTokImageProcessor]:
    if kind == "generator":
        release = release_for_repo(model)
        if release is None:
            raise ModelNotFoundError(
                f"{model} is an official generator checkpoint: give its tokenizer's folder or repo"
            )
        model = get_release(release.tokenizer).repo_id
    elif kind != "tokenizer":
        raise ModelNotFoundError(f"{model} is an official {kind} checkpoint, not a TiTok tokenizer")
    tokenizer = TiTokTokenizer.from_pretrained(model).eval()
    return tokenizer, TiTokImageProcessor.for_image_size(tokenizer.config.image_size)


def load_tokenizer(model: str) -> tuple[TiTokTokenizer, TiTokImageProcessor]:
    """(tokenizer, image processor) from a tokenizer folder or a pipeline folder (its `vqvae`); for an official
    generator, its release's tokenizer."""
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
        tokenizer = TiTokTokenizer.from_pretrained(tokenizer_folder).eval()
        return tokenizer, load_image_processor(folder, tokenizer.config.image_size)
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{model} holds no TiTok tokenizer (no config.json)")
    tokenizer = TiTokTokenizer.from_pretrained(folder).eval()
    return tokenizer, load_image_processor(folder, tokenizer.config.image_size)


def load_pipeline(model: str) -> TiTokPipeline:
    """A `TiTokPipeline` from a pipeline folder or Hub repo, or an official generator, its progress bar off
    (callers show their own)."""
    kind = official_kind(model)
    if kind is None:
        folder = resolve_model_folder(model)
        kind = official_kind(str(folder))
        model = str(folder)
        if kind is None and not (folder / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{model} is not a TiTokPipeline (no model_index.json); generation needs a generator"
            )
    if kind not in (None, "generator"):
        raise ModelNotFoundError(f"{model} is an official {kind} checkpoint; generation needs a generator")
    pipe = TiTokPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def quiet_library_progress_bars() -> None:
    """Per-file loading bars of transformers and diffusers (noise beside a command's own progress bar)."""
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.disable_progress_bar()


__all__ = [
    "ModelNotFoundError",
    "load_image_processor",
    "load_pipeline",
    "load_tokenizer",
    "official_kind",
    "quiet_library_progress_bars",
    "resolve_model_folder",
]
