"""The model families, in one registry (as transformers' `CONFIG_MAPPING` and auto mappings): each entry names the
family's classes (config, model, pipeline, scheduler), its converter of official checkpoints, its releases, its
model card and what it can do. Everything that has to know which families exist - loading what a user names, the
reader of official checkpoints, the converter, the command line, the Space, the evaluation commands, the model
cards and the `Auto*` registrations - asks this registry; nothing else lists them.

Adding a family is a folder under `hf_titok/models/` (configuration, modeling, scheduling, pipeline, convert) and
an entry here (plus its rows in the release table, `hf_titok.releases`, when it has releases).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from transformers import CLIPTextModelWithProjection

from .hub import maskgen_card, pipeline_card, rar_card, tatitok_card, tokenizer_card
from .models.clip_text.convert_clip_text import CONVERTER as CLIP_TEXT_CONVERTER
from .models.maskgen.convert_maskgen import CONVERTER_KL as MASKGEN_KL_CONVERTER
from .models.maskgen.convert_maskgen import CONVERTER_VQ as MASKGEN_VQ_CONVERTER
from .models.maskgen.modeling_maskgen import MaskGenKLTransformer, MaskGenVQTransformer
from .models.maskgen.pipeline_maskgen import MaskGenPipeline
from .models.maskgen.scheduling_maskgen import MaskGenKLScheduler, MaskGenVQScheduler
from .models.maskgit_vqgan.configuration_maskgit_vqgan import MaskGITVQGANConfig
from .models.maskgit_vqgan.convert_maskgit_vqgan import CONVERTER as MASKGIT_VQGAN_CONVERTER
from .models.maskgit_vqgan.modeling_maskgit_vqgan import MaskGITVQGAN
from .models.rar.configuration_rar import RARConfig
from .models.rar.convert_rar import CONVERTER as RAR_CONVERTER
from .models.rar.modeling_rar import RARTransformer
from .models.rar.pipeline_rar import RARPipeline
from .models.rar.scheduling_rar import RARScheduler
from .models.tatitok.configuration_tatitok import TATiTokConfig
from .models.tatitok.convert_tatitok import CONVERTER as TATITOK_CONVERTER
from .models.tatitok.modeling_tatitok import TATiTokTokenizer
from .models.titok.configuration_titok import TiTokConfig
from .models.titok.convert_titok import CONVERTER as TITOK_CONVERTER
from .models.titok.modeling_titok import TiTokTokenizer
from .models.titok_maskgit.configuration_titok_maskgit import TiTokMaskGITConfig
from .models.titok_maskgit.convert_titok_maskgit import CONVERTER as TITOK_MASKGIT_CONVERTER
from .models.titok_maskgit.modeling_titok_maskgit import TiTokMaskGIT
from .models.titok_maskgit.pipeline_titok import TiTokPipeline
from .models.titok_maskgit.scheduling_titok_maskgit import TiTokMaskGITScheduler
from .releases import RELEASES, OfficialRelease
from .utils.official_format import Converter
from .utils.sampling_settings import merged_settings


@dataclass(frozen=True)
class Family:
    """One model family of the package.

    - `name`: the registry key (and the folder under `hf_titok/models/`); `title`: what messages call it;
    - `role`: `"tokenizer"` (images <-> tokens), `"generator"` (tokens from class labels or text, in a pipeline),
      `"vqgan"` (the proxy-code teacher) or `"text_encoder"`;
    - `kind`: its official checkpoints' kind (`hf-titok convert --kind`, the release table's `kind`);
    - `model_class`, `config_class` (transformers models; None for diffusers models, which keep their config),
      `pipeline_class` and `scheduler_class` (generators);
    - `converter`: how its official checkpoints convert (`hf_titok.utils.official_format.Converter`);
    - `tokenizer_family`: generators: the family whose tokens they generate and decode with;
    - `card`: the model card of a converted repo (`card(model or pipeline, repo_id, release)`), if it has one;
    - capabilities: `takes_text` (decodes or generates from text), `class_labels` (class-conditional),
      `prefix_decoding` (decodes a prefix of its tokens), `quantize_modes` (`"vq"`, `"vae"`).
    """

    name: str
    title: str
    role: Literal["tokenizer", "generator", "vqgan", "text_encoder"]
    kind: str
    model_class: type
    converter: Converter
    config_class: type | None = None
    pipeline_class: type | None = None
    scheduler_class: type | None = None
    tokenizer_family: str | None = None
    card: Callable | None = None
    takes_text: bool = False
    class_labels: bool = False
    prefix_decoding: bool = False
    quantize_modes: tuple[str, ...] = ()

    @property
    def model_type(self) -> str | None:
        """The `model_type` of a saved transformers config of this family."""
        return self.config_class.model_type if self.config_class is not None else None

    @property
    def releases(self) -> list[OfficialRelease]:
        return [release for release in RELEASES.values() if release.kind == self.kind]

    @property
    def loader(self) -> str:
        """The class to load a checkpoint of this family with, as messages name it."""
        if self.pipeline_class is not None:
            return f"{self.pipeline_class.__name__} (or {self.model_class.__name__})"
        return self.model_class.__name__


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "titok",
            "TiTok tokenizer",
            "tokenizer",
            "tokenizer",
            TiTokTokenizer,
            TITOK_CONVERTER,
            config_class=TiTokConfig,
            card=tokenizer_card,
            quantize_modes=("vq", "vae"),
        ),
        Family(
            "maskgit_vqgan",
            "MaskGIT-VQGAN",
            "vqgan",
            "vqgan",
            MaskGITVQGAN,
            MASKGIT_VQGAN_CONVERTER,
            config_class=MaskGITVQGANConfig,
            quantize_modes=("vq",),
        ),
        Family(
            "titok_maskgit",
            "TiTok generator",
            "generator",
            "generator",
            TiTokMaskGIT,
            TITOK_MASKGIT_CONVERTER,
            config_class=TiTokMaskGITConfig,
            pipeline_class=TiTokPipeline,
            scheduler_class=TiTokMaskGITScheduler,
            tokenizer_family="titok",
            card=pipeline_card,
            class_labels=True,
        ),
        Family(
            "tatitok",
            "TA-TiTok tokenizer",
            "tokenizer",
            "tatitok",
            TATiTokTokenizer,
            TATITOK_CONVERTER,
            config_class=TATiTokConfig,
            card=tatitok_card,
            takes_text=True,
            quantize_modes=("vq", "vae"),
        ),
        Family(
            "maskgen_vq",
            "MaskGen-VQ generator",
            "generator",
            "maskgen-vq",
            MaskGenVQTransformer,
            MASKGEN_VQ_CONVERTER,
            pipeline_class=MaskGenPipeline,
            scheduler_class=MaskGenVQScheduler,
            tokenizer_family="tatitok",
            card=maskgen_card,
            takes_text=True,
        ),
        Family(
            "maskgen_kl",
            "MaskGen-KL generator",
            "generator",
            "maskgen-kl",
            MaskGenKLTransformer,
            MASKGEN_KL_CONVERTER,
            pipeline_class=MaskGenPipeline,
            scheduler_class=MaskGenKLScheduler,
            tokenizer_family="tatitok",
            card=maskgen_card,
            takes_text=True,
        ),
        Family(
            "rar",
            "RAR generator",
            "generator",
            "rar",
            RARTransformer,
            RAR_CONVERTER,
            config_class=RARConfig,
            pipeline_class=RARPipeline,
            scheduler_class=RARScheduler,
            tokenizer_family="maskgit_vqgan",
            card=rar_card,
            class_labels=True,
        ),
        Family(
            "clip_text",
            "CLIP text tower",
            "text_encoder",
            "clip-text",
            CLIPTextModelWithProjection,
            CLIP_TEXT_CONVERTER,
        ),
    )
}


class UnknownFamilyError(ValueError):
    """Nothing in the registry answers to what was asked."""


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise UnknownFamilyError(f"unknown model family {name!r}; the families are {', '.join(FAMILIES)}")
    return FAMILIES[name]


def checkpoint_kinds() -> list[str]:
    """The official checkpoint kinds, in the registry's order (`hf-titok convert --kind`)."""
    return [family.kind for family in FAMILIES.values()]


def family_of_kind(kind: str) -> Family:
    for family in FAMILIES.values():
        if family.kind == kind:
            return family
    raise UnknownFamilyError(f"unknown kind {kind!r}; choose one of {', '.join(checkpoint_kinds())}")


def family_of_class(cls: type) -> Family | None:
    """The family a model, config, pipeline or scheduler class (or a subclass of one) belongs to: the one whose class
    is the most derived (a TATiTokTokenizer is also a TiTokTokenizer); for a pipeline class several families share
    (MaskGen's), the first. None for a class of no family."""
    matches = [
        (c, family)
        for family in FAMILIES.values()
        for c in (family.model_class, family.config_class, family.scheduler_class, family.pipeline_class)
        if c is not None and issubclass(cls, c)
    ]
    if not matches:
        return None
    # The most derived class is a subclass of every other match; max() keeps the first of equals.
    return max(matches, key=lambda match: len(match[0].__mro__))[1]


def family_of_model(model) -> Family | None:
    """The family of a model, or of a pipeline (by its generator: MaskGen-VQ and -KL share a pipeline class)."""
    transformer = getattr(model, "transformer", None)
    return family_of_class(type(transformer if transformer is not None else model))


def family_of_model_type(model_type: str | None) -> Family | None:
    return next((family for family in FAMILIES.values() if model_type and family.model_type == model_type), None)


def family_of_weights(weight_names) -> Family | None:
    """The family whose official state dicts have these key names: of the families whose signature the keys hold,
    the one with the largest signature (a TA-TiTok state dict holds a TiTok tokenizer's keys too)."""
    names = set(weight_names)
    matches = [
        (len(signature), family)
        for family in FAMILIES.values()
        for signature in family.converter.signatures
        if signature <= names
    ]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def family_of_saved_folder(folder: str | Path) -> Family | None:
    """The family of a folder saved by this package: a model's (`config.json` with a `model_type`, or a diffusers
    model's `_class_name`) or a pipeline's (`model_index.json`: the family of its generator). None otherwise."""
    folder = Path(folder)
    index_file, config_file = folder / "model_index.json", folder / "config.json"
    if index_file.is_file():
        transformer = folder / "transformer" / "config.json"
        return family_of_saved_folder(transformer.parent) if transformer.is_file() else None
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text())
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(config, dict):
        return None
    if "_class_name" in config:
        name = config["_class_name"]
        return next((f for f in FAMILIES.values() if f.model_class.__name__ == name), None)
    return family_of_model_type(config.get("model_type"))


def sampler_settings_of(where: Callable[[Family], bool] = lambda family: True) -> tuple:
    """The sampler settings of the families `where` selects, merged (`merged_settings`): what a command serving
    their pipelines takes (`hf-titok generate`: every generator; `evaluate generation`: class-conditional ones)."""
    return merged_settings(
        *(family.scheduler_class.settings for family in FAMILIES.values() if family.scheduler_class and where(family))
    )


def pipeline_classes() -> list[type]:
    """The pipeline classes of the families, each once."""
    return list(dict.fromkeys(f.pipeline_class for f in FAMILIES.values() if f.pipeline_class is not None))


__all__ = [
    "FAMILIES",
    "Family",
    "UnknownFamilyError",
    "checkpoint_kinds",
    "family_of_class",
    "family_of_kind",
    "family_of_model",
    "family_of_model_type",
    "family_of_saved_folder",
    "family_of_weights",
    "get_family",
    "pipeline_classes",
    "sampler_settings_of",
]
