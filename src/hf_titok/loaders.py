"""Loading what a user names: a local folder or a Hub repo id holding a tokenizer or a whole pipeline.

The command line, the Spaces demo and the evaluation commands load models through these functions, so each
of them accepts the same names and fails the same clear way.
"""

from __future__ import annotations

from pathlib import Path

import diffusers
import transformers
from huggingface_hub import snapshot_download

from .image_processing_titok import TiTokImageProcessor
from .modeling_titok import TiTokTokenizer
from .pipeline_titok import TiTokPipeline


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
        raise ModelNotFoundError(f"cannot load model {model!r}: not a local directory, and the Hub says: {error}") from None


def load_image_processor(folder: Path, image_size: int) -> TiTokImageProcessor:
    """The preprocessing saved with a tokenizer (its `preprocessor_config.json`) or a pipeline (its
    `image_processor/` component), else the standard one for `image_size`."""
    folder = Path(folder)
    for candidate in (folder, folder / "image_processor"):
        if (candidate / "preprocessor_config.json").is_file():
            return TiTokImageProcessor.from_pretrained(candidate)
    return TiTokImageProcessor.for_image_size(image_size)


def load_tokenizer(model: str) -> tuple[TiTokTokenizer, TiTokImageProcessor]:
    """(tokenizer, image processor) from a tokenizer folder or a pipeline folder (its `vqvae`)."""
    folder = resolve_model_folder(model)
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
    """A `TiTokPipeline` from a pipeline folder or Hub repo, its progress bar off (callers show their own)."""
    folder = resolve_model_folder(model)
    if not (folder / "model_index.json").is_file():
        raise ModelNotFoundError(f"{model} is not a TiTokPipeline (no model_index.json); generation needs a generator")
    pipe = TiTokPipeline.from_pretrained(folder)
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
    "quiet_library_progress_bars",
    "resolve_model_folder",
]
