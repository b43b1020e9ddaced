"""Official release repos -> ready hf_titok repos (a tokenizer repo with its image processor and card, or a
full `TiTokPipeline` with its tokenizer, scheduler, ImageNet class names and card; for the family, a TA-TiTok
repo or a full `MaskGenPipeline` with its TA-TiTok, CLIP text encoder and tokenizer), optionally pushed."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPTextModelWithProjection, CLIPTokenizer

from ..data.class_labels import imagenet_id2label
from ..families import Family, get_family
from ..hub import push_folder_to_hub
from ..models.titok.image_processing_titok import TiTokImageProcessor
from ..releases import BIN_REPOS, get_release, release_for_repo
from ..text_encoding import CLIP_TEXT_ENCODER
from ..utils.official_format import ConversionError
from .direct import OfficialCheckpoint
from .official import convert_model


def convert_official_repo(
    repo_id: str | None,
    output_dir: str | Path,
    release: str | None = None,
    tokenizer_repo_id: str | None = None,
    config_path: str | None = None,
    card_repo_id: str | None = None,
    text_encoder: str | None = None,
    **hub_kwargs,
) -> Path:
    """Convert an official release into a ready repo folder at `output_dir` (with a model card, where its family has
    one).

    A tokenizer (or the MaskGIT-VQGAN) becomes a model repo with its image processor; a generator becomes a full
    pipeline repo of its family (`hf_titok.families`) together with its tokenizer (`tokenizer_repo_id`, by default
    the release's own) and what it conditions on (the ImageNet class names, or the CLIP text encoder `text_encoder`:
    a Hub id or folder, default the official one). `repo_id` is an official release repo (`yucornetto/*`,
    `turkeyju/*`), any repo in that format, or one of the `.bin` repos (`fun-research/*`) with `release`; with only
    `release`, its own repo is used.
    """
    known = get_release(release) if release else (release_for_repo(repo_id) if repo_id else None)
    if repo_id is None:
        if known is None:
            raise ConversionError("give a Hub repo id or an official release name")
        repo_id = known.repo_id
    output_dir = Path(output_dir)
    card_repo_id = card_repo_id or str(output_dir)
    checkpoint = OfficialCheckpoint(repo_id, known, config_path, **hub_kwargs)
    config, weights, family = checkpoint.config, checkpoint.weights, checkpoint.family
    del checkpoint
    model = convert_model(family.kind, config, weights)
    del weights
    if family.pipeline_class is None:
        model.save_pretrained(output_dir)
        if family.converter.image_processor:
            TiTokImageProcessor.for_image_size(model.config.image_size).save_pretrained(output_dir)
        if family.card is not None:
            family.card(model, card_repo_id, known).save(output_dir / "README.md")
        return output_dir
    vqvae = _tokenizer_of(family, repo_id, known, tokenizer_repo_id, config_path, hub_kwargs)
    conditioning = {}
    if family.class_labels:  # every official class-conditional generator is ImageNet's
        conditioning["id2label"] = imagenet_id2label() if model.config.num_classes == 1000 else None
    if family.takes_text:
        text_source = text_encoder or CLIP_TEXT_ENCODER
        conditioning["text_encoder"] = CLIPTextModelWithProjection.from_pretrained(text_source).eval()
        conditioning["tokenizer"] = CLIPTokenizer.from_pretrained(text_source)
    pipe = family.pipeline_class(vqvae, model, family.converter.scheduler(config), **conditioning)
    pipe.save_pretrained(output_dir)
    family.card(pipe, card_repo_id, known).save(output_dir / "README.md")
    return output_dir


def _tokenizer_of(family: Family, repo_id, known, tokenizer_repo_id, config_path, hub_kwargs):
    """The tokenizer a generator release decodes with: `tokenizer_repo_id`, else the release table's (its `.bin`
    when the generator came from a `.bin` repo), converted."""
    tokenizer_family = get_family(family.tokenizer_family)
    if tokenizer_repo_id is None:
        if known is None or known.tokenizer is None:
            raise ConversionError(
                f"{repo_id} is a {family.title}: pass --tokenizer-repo with the {tokenizer_family.title} it was "
                "trained on"
            )
        tokenizer_release = get_release(known.tokenizer)
        tokenizer_repo_id = tokenizer_release.bin_repo if repo_id in BIN_REPOS else tokenizer_release.repo_id
    else:
        tokenizer_release = release_for_repo(tokenizer_repo_id)
    checkpoint = OfficialCheckpoint(tokenizer_repo_id, tokenizer_release, config_path, **hub_kwargs)
    if checkpoint.family is not tokenizer_family:
        raise ConversionError(
            f"{tokenizer_repo_id} is an official {checkpoint.family.title} checkpoint, not a {tokenizer_family.title}"
        )
    return convert_model(checkpoint.kind, checkpoint.config, checkpoint.weights)


def convert_and_push(
    output_dir: str | Path, push_to_hub: str | None, private: bool | None = None, **convert_kwargs
) -> Path:
    """[`convert_official_repo`], then upload the folder when `push_to_hub` names a repo."""
    folder = convert_official_repo(output_dir=output_dir, card_repo_id=push_to_hub, **convert_kwargs)
    if push_to_hub:
        push_folder_to_hub(folder, push_to_hub, private=private)
    return folder


def describe_folder(folder: str | Path) -> str:
    """One line saying what a converted folder holds."""
    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        index = json.loads((folder / "model_index.json").read_text())
        name = index.get("_class_name")
        name = name[-1] if isinstance(name, list) else name
        return f"{name} ({', '.join(k for k in index if not k.startswith('_') and k != 'id2label')})"
    config = json.loads((folder / "config.json").read_text())
    return config.get("architectures", ["model"])[0]


__all__ = ["convert_and_push", "convert_official_repo", "describe_folder"]
