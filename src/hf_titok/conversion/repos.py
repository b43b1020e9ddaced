"""Official release repos -> ready hf_titok repos (a tokenizer repo with its image processor and card, or a
full `TiTokPipeline` with its tokenizer, scheduler, ImageNet class names and card; for the family, a TA-TiTok
repo or a full `MaskGenPipeline` with its TA-TiTok, CLIP text encoder and tokenizer), optionally pushed."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPTextModelWithProjection, CLIPTokenizer

from ..data.class_labels import imagenet_id2label
from ..hub import maskgen_card, pipeline_card, push_folder_to_hub, tatitok_card, tokenizer_card
from ..models.maskgen.pipeline_maskgen import MaskGenPipeline
from ..models.titok.image_processing_titok import TiTokImageProcessor
from ..models.titok_maskgit.pipeline_titok import TiTokPipeline
from ..releases import FAMILY_BIN_REPO, FUN_RESEARCH_REPO, get_release, release_for_repo
from ..text_encoding import CLIP_TEXT_ENCODER
from .direct import OfficialCheckpoint
from .family import maskgen_scheduler_from_official
from .official import (
    ConversionError,
    convert_generator,
    convert_model,
    convert_tokenizer,
    convert_vqgan,
    scheduler_from_official,
)


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
    """Convert an official release into a ready repo folder at `output_dir` (with a model card).

    A tokenizer becomes a `TiTokTokenizer` repo (+ image processor); a generator becomes a full
    `TiTokPipeline` repo together with its tokenizer (`tokenizer_repo_id`, by default the release's own).
    `repo_id` is a `yucornetto/*` repo, any repo in that format, or `fun-research/TiTok` with `release`;
    with only `release`, its `yucornetto/*` repo is used. The family likewise: a `turkeyju/*` repo or
    `fun-research/TA-TiTok` with `release`; a MaskGen generator becomes a `MaskGenPipeline` with its TA-TiTok and
    the CLIP text encoder `text_encoder` (a Hub id or folder; default the official one).
    """
    known = get_release(release) if release else (release_for_repo(repo_id) if repo_id else None)
    if repo_id is None:
        if known is None:
            raise ConversionError("give a Hub repo id or an official release name")
        repo_id = known.repo_id
    output_dir = Path(output_dir)
    card_repo_id = card_repo_id or str(output_dir)
    checkpoint = OfficialCheckpoint(repo_id, known, config_path, **hub_kwargs)
    config, weights, kind = checkpoint.config, checkpoint.weights, checkpoint.kind
    del checkpoint
    if kind == "vqgan":
        model = convert_vqgan(config, weights)
        model.save_pretrained(output_dir)
        TiTokImageProcessor.for_image_size(model.config.image_size).save_pretrained(output_dir)
        return output_dir
    if kind == "tatitok":
        model = convert_model("tatitok", config, weights)
        model.save_pretrained(output_dir)
        TiTokImageProcessor.for_image_size(model.config.image_size).save_pretrained(output_dir)
        tatitok_card(model, card_repo_id, known).save(output_dir / "README.md")
        return output_dir
    if kind.startswith("maskgen"):
        transformer = convert_model(kind, config, weights)
        del weights
        vqvae = _family_tokenizer(repo_id, known, tokenizer_repo_id, config_path, hub_kwargs)
        text_source = text_encoder or CLIP_TEXT_ENCODER
        pipe = MaskGenPipeline(
            vqvae,
            transformer,
            maskgen_scheduler_from_official(config),
            text_encoder=CLIPTextModelWithProjection.from_pretrained(text_source).eval(),
            tokenizer=CLIPTokenizer.from_pretrained(text_source),
        )
        pipe.save_pretrained(output_dir)
        maskgen_card(pipe, card_repo_id, known).save(output_dir / "README.md")
        return output_dir
    if kind == "tokenizer":
        model = convert_tokenizer(config, weights)
        model.save_pretrained(output_dir)
        TiTokImageProcessor.for_image_size(model.config.image_size).save_pretrained(output_dir)
        tokenizer_card(model, card_repo_id, known).save(output_dir / "README.md")
        return output_dir

    transformer = convert_generator(config, weights)
    scheduler = scheduler_from_official(config)
    del weights
    if tokenizer_repo_id is None:
        if known is None or known.tokenizer is None:
            raise ConversionError(
                f"{repo_id} is a generator: pass --tokenizer-repo with the tokenizer it was trained on"
            )
        tokenizer_release = get_release(known.tokenizer)
        tokenizer_repo_id = FUN_RESEARCH_REPO if repo_id == FUN_RESEARCH_REPO else tokenizer_release.repo_id
    else:
        tokenizer_release = release_for_repo(tokenizer_repo_id)
    tokenizer = OfficialCheckpoint(tokenizer_repo_id, tokenizer_release, config_path, **hub_kwargs)
    vqvae = convert_tokenizer(tokenizer.config, tokenizer.weights)
    del tokenizer
    id2label = imagenet_id2label() if transformer.config.num_classes == 1000 else None  # every release is ImageNet's
    pipe = TiTokPipeline(vqvae, transformer, scheduler, id2label=id2label)
    pipe.save_pretrained(output_dir)
    pipeline_card(pipe, card_repo_id, known).save(output_dir / "README.md")
    return output_dir


def _family_tokenizer(repo_id, known, tokenizer_repo_id, config_path, hub_kwargs):
    """The TA-TiTok of a MaskGen release: `tokenizer_repo_id`, else the release table's (its `.bin` when the
    generator came from `fun-research/TA-TiTok`)."""
    if tokenizer_repo_id is None:
        if known is None or known.tokenizer is None:
            raise ConversionError(f"{repo_id} is a MaskGen generator: pass --tokenizer-repo with its TA-TiTok")
        tokenizer_release = get_release(known.tokenizer)
        tokenizer_repo_id = FAMILY_BIN_REPO if repo_id == FAMILY_BIN_REPO else tokenizer_release.repo_id
    else:
        tokenizer_release = release_for_repo(tokenizer_repo_id)
    checkpoint = OfficialCheckpoint(tokenizer_repo_id, tokenizer_release, None, **hub_kwargs)
    if checkpoint.kind != "tatitok":
        raise ConversionError(f"{tokenizer_repo_id} is an official {checkpoint.kind} checkpoint, not a TA-TiTok")
    return convert_model("tatitok", checkpoint.config, checkpoint.weights)


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
