"""Official checkpoints loaded directly: `TiTokTokenizer.from_pretrained("yucornetto/tokenizer_titok_l32_imagenet")`,
`TiTokPipeline.from_pretrained("yucornetto/generator_titok_l32_imagenet")`.

The models' `from_pretrained` hands a checkpoint that is not in this package's format to the reader registered
here (`hf_titok.utils.loading.register_checkpoint_reader`; the models sit below the converter and never import it).
The reader converts in memory with the converter's strict key checks (`convert_checkpoint`, the same function
`hf-titok convert` uses) and gives the config and state dict back to transformers' loading, so `dtype=`,
`device_map=`, `fast_path=` and the strict checks apply as for a converted folder.

Sources:
- a `yucornetto/*` release repo, or any folder or repo in that format (`config.json` holding the official nested
  config, `model.safetensors`);
- `fun-research/TiTok` (or a folder holding its `.bin` files) with `release=` naming the release: `.bin` files
  read with `weights_only=True`, their config built from the release table.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download
from safetensors import safe_open
from transformers import CLIPTextModelWithProjection, CLIPTokenizer

from ..data.class_labels import imagenet_id2label
from ..families import Family, family_of_class, family_of_kind, family_of_weights, get_family
from ..releases import BIN_REPOS, RELEASES, OfficialRelease, get_release, release_for_repo
from ..text_encoding import CLIP_TEXT_ENCODER
from ..utils.loading import (
    HUB_ARGUMENTS,
    build_with_weights,
    fetch_config,
    read_json_config,
    register_checkpoint_reader,
)
from ..utils.official_format import ConversionError, is_official_config, load_official_config, load_official_weights
from .official import convert_checkpoint, release_official_config

logger = logging.getLogger(__name__)


def accepted_sources() -> str:
    """What direct loading takes, for error messages."""
    repos = ", ".join(sorted(r.repo_id for r in RELEASES.values() if r.repo_id not in BIN_REPOS))
    bins = ", ".join(r.name for r in RELEASES.values() if r.bin_filename)
    return (
        f"a folder or Hub repo saved by hf_titok (config.json with a model_type), an official release repo ({repos}) "
        f"or a folder in that format (official config.json + model.safetensors), or {' / '.join(BIN_REPOS)} with "
        f"release= one of {bins}"
    )


def detect_family(weight_names) -> Family:
    """The family whose official state dicts have these key names (`hf_titok.families`)."""
    family = family_of_weights(weight_names)
    if family is None:
        raise ConversionError(
            "the weights are not an official TiTok tokenizer, generator, MaskGIT-VQGAN, TA-TiTok, MaskGen or RAR state "
            "dict"
        )
    return family


def detect_kind(weight_names) -> str:
    """The official checkpoint kind (`tokenizer`, `generator`, `vqgan`, `tatitok`, `maskgen-vq`, ...) of a state dict,
    from its key names."""
    return detect_family(weight_names).kind


def _fetch(source, filename: str, what: str, **hub_kwargs) -> Path:
    """`filename` of a folder, or of a Hub repo (downloaded, or from the cache offline)."""
    subfolder = hub_kwargs.pop("subfolder", None) or ""
    folder = Path(source) / subfolder
    if folder.is_dir():
        path = folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"{source} has no {filename}, which its {what} needs")
        return path
    try:
        return Path(hf_hub_download(str(source), filename, subfolder=subfolder or None, **hub_kwargs))
    except Exception as error:  # offline without a cached copy, missing file, unknown or gated repo
        raise OSError(
            f"cannot fetch {filename} from the Hub repo {source} ({what}): {type(error).__name__}: {error}. Check the "
            "repo id, go online once (or `hf download` it) to fill the cache, or pass a local folder"
        ) from None


def _weights(path: Path, source) -> dict:
    try:
        return load_official_weights(path)
    except ConversionError as error:
        raise ConversionError(f"{source}: {error}. Download the file again (hf download --force-download)") from None
    except Exception as error:  # a truncated or corrupt safetensors file
        raise ConversionError(
            f"{source}: cannot read {path.name} ({path}): {error}. The download may be truncated: download it "
            "again (hf download --force-download)"
        ) from None


class OfficialCheckpoint:
    """The official files of one checkpoint: `config` (resolved official config dict, or None for a MaskGIT-VQGAN
    `.bin`), `weights` (official state dict) and `kind` (from the weights' keys).

    `source` is a folder or Hub repo; `release` the release it holds (required for `fun-research/TiTok`, whose
    `.bin` files come without configs); `config_path` an official config file that replaces the source's."""

    def __init__(
        self, source, release: OfficialRelease | None = None, config_path: str | Path | None = None, **hub_kwargs
    ):
        self.source, self.release = str(source), release
        config_file = Path(config_path) if config_path else None
        if (
            release is not None
            and release.bin_filename
            and (self.source in BIN_REPOS or self.source == release.bin_repo or _is_bin_folder(source, release))
        ):
            self.weights = _weights(_fetch(source, release.bin_filename, release.name, **hub_kwargs), source)
            if config_file is not None:
                self.config = load_official_config(config_file)
            else:  # the release table's config, as its infer yaml pairs it
                self.config = release_official_config(release.name)
        else:
            if self.source in BIN_REPOS:
                with_bin = ", ".join(r.name for r in RELEASES.values() if r.bin_filename and r.bin_repo == self.source)
                raise ValueError(
                    f"{self.source} holds the .bin files of several releases: pass --release / release= "
                    f"(one of {with_bin})"
                )
            if config_file is None:
                local = Path(source).is_dir()
                config_file = (
                    fetch_config(source, **hub_kwargs)
                    if local
                    else _fetch(source, "config.json", "its config", **hub_kwargs)
                )
            config = read_json_config(config_file) if config_file is not None else None
            if not is_official_config(config):
                raise ConversionError(_not_official(source, config))
            self.config = load_official_config(config_file)  # with its ${...} interpolations resolved
            self.weights = _weights(_fetch(source, "model.safetensors", "official checkpoint", **hub_kwargs), source)
        self.family = detect_family(self.weights)
        self.kind = self.family.kind


def _is_bin_folder(source, release: OfficialRelease) -> bool:
    return (Path(source) / release.bin_filename).is_file()


def _not_official(source, config) -> str:
    if config is None:
        return (
            f"{source} has no config.json: it is not a TiTok checkpoint this package can read. "
            f"Accepted: {accepted_sources()}"
        )
    if isinstance(config, dict) and "model_type" in config:
        return f"{source} holds an hf_titok {config['model_type']!r} model, not an official checkpoint"
    return (
        f"{source}'s config.json is neither an hf_titok config (it has no model_type) nor an official TiTok config "
        f"(no model.vq_model section). Accepted: {accepted_sources()}"
    )


def release_of(source, release: str | None) -> OfficialRelease | None:
    """The release `source` holds: the one named, else the one published at that repo id (None for others)."""
    if release is not None:
        return get_release(release)
    return release_for_repo(str(source))


def _described(source, known: OfficialRelease | None) -> str:
    return f"{source} ({known.name})" if known is not None and str(source) in BIN_REPOS else str(source)


class OfficialReader:
    """The checkpoint reader of the official releases (registered in `hf_titok.utils.loading`), for every family of
    `hf_titok.families`."""

    def read_model(self, model_class: type, source, *, release: str | None, config: dict | None, **hub_kwargs):
        family = family_of_class(model_class)
        known = release_of(source, release)
        if known is None and str(source) in BIN_REPOS:
            # A family with a single release in that repo needs no release= (the MaskGIT-VQGAN of fun-research/TiTok).
            only = [r for r in family.releases if r.bin_filename and r.bin_repo == str(source)]
            known = only[0] if len(only) == 1 else None
        if config is None and known is None and str(source) not in BIN_REPOS:
            return None  # nothing of ours or theirs: transformers' loading reports the missing files
        if known is not None and known.kind != family.kind:
            raise ValueError(_wrong_class(source, known.kind, model_class))
        started = time.perf_counter()
        checkpoint = OfficialCheckpoint(source, known, **hub_kwargs)
        if checkpoint.family is not family:
            raise ValueError(_wrong_class(source, checkpoint.kind, model_class))
        converted = convert_checkpoint(family.kind, checkpoint.config, checkpoint.weights)
        logger.warning(
            "%s is an official %s checkpoint: converted in memory (%.1f s); `hf-titok convert` saves a converted "
            "copy that loads without converting",
            _described(source, known),
            family.title,
            time.perf_counter() - started,
        )
        return converted

    def read_pipeline(self, pipeline_class: type, source, *, release: str | None, vqvae=None, **kwargs):
        """A pipeline from an official generator: its tokenizer from the release table (or `vqvae=`, a model or a
        folder or repo), its scheduler from the official sampling settings, and what its family conditions on: the
        ImageNet class names, or the CLIP text encoder. None when `source` holds no config at all."""
        known = release_of(source, release)
        if known is not None and family_of_kind(known.kind).pipeline_class is not pipeline_class:
            raise ValueError(_wrong_class(source, known.kind, pipeline_class))
        if family_of_class(pipeline_class).takes_text:
            return self._read_text_to_image_pipeline(pipeline_class, source, known, vqvae=vqvae, **kwargs)
        return self._read_class_conditional_pipeline(pipeline_class, source, known, release, vqvae=vqvae, **kwargs)

    def _read_class_conditional_pipeline(self, pipeline_class, source, known, release, *, vqvae=None, **kwargs):
        hub_kwargs = {key: kwargs.pop(key) for key in HUB_ARGUMENTS if key in kwargs}
        hub_kwargs = {key: value for key, value in hub_kwargs.items() if value is not None}
        from_bins = known is not None and str(source) in BIN_REPOS
        config_file = None if from_bins else fetch_config(source, **hub_kwargs)
        config = read_json_config(config_file) if config_file is not None else None
        if known is None and config is None and str(source) not in BIN_REPOS:
            return None
        if isinstance(config, dict) and "model_type" in config:
            raise FileNotFoundError(
                f"{source} is not a {pipeline_class.__name__} folder: no model_index.json (it holds an hf_titok "
                f"{config['model_type']!r} model alone)"
            )
        family = family_of_class(pipeline_class)
        transformer = family.model_class.from_pretrained(
            source, release=known.name if from_bins else release, **hub_kwargs, **kwargs
        )
        official = load_official_config(config_file) if config_file is not None else release_official_config(known.name)
        vqvae = self._tokenizer_of(source, known, family, vqvae, hub_kwargs, kwargs)
        num_classes = transformer.config.num_classes
        id2label = imagenet_id2label() if num_classes == 1000 else None  # every official generator is ImageNet's
        return pipeline_class(
            vqvae=vqvae, transformer=transformer, scheduler=family.converter.scheduler(official), id2label=id2label
        )

    def _read_text_to_image_pipeline(
        self, pipeline_class, source, known, *, vqvae=None, text_encoder=None, tokenizer=None, **kwargs
    ):
        """A text-to-image pipeline from an official checkpoint: its tokenizer from the release table (or `vqvae=`),
        the CLIP text encoder and tokenizer (`text_encoder=`: a model, folder or repo; default the official
        `openai/clip-vit-large-patch14-336`), the sampler of its official config."""
        hub_kwargs = {key: kwargs.pop(key) for key in HUB_ARGUMENTS if kwargs.get(key) is not None}
        for key in HUB_ARGUMENTS:
            kwargs.pop(key, None)
        from_bins = str(source) in BIN_REPOS
        config_file = None if known is not None and from_bins else fetch_config(source, **hub_kwargs)
        config = read_json_config(config_file) if config_file is not None else None
        if known is None and config is None and not from_bins:
            return None
        if isinstance(config, dict) and ("model_type" in config or "_class_name" in config):
            raise FileNotFoundError(
                f"{source} is not a {pipeline_class.__name__} folder: no model_index.json (it holds one model alone)"
            )
        dtype = kwargs.pop("dtype", None) or kwargs.pop("torch_dtype", None)
        started = time.perf_counter()
        checkpoint = OfficialCheckpoint(source, known, **hub_kwargs)
        family = checkpoint.family
        if family.pipeline_class is not pipeline_class:
            raise ValueError(_wrong_class(source, checkpoint.kind, pipeline_class))
        arguments, state_dict = convert_checkpoint(family.kind, checkpoint.config, checkpoint.weights)
        transformer = build_with_weights(lambda: family.model_class(**arguments), state_dict)
        del state_dict, checkpoint.weights
        scheduler = family.converter.scheduler(checkpoint.config)
        model_kwargs = {"dtype": dtype} if dtype is not None else {}
        vqvae = self._tokenizer_of(source, known, family, vqvae, hub_kwargs, model_kwargs)
        text_source = (
            CLIP_TEXT_ENCODER if text_encoder is None or isinstance(text_encoder, torch.nn.Module) else text_encoder
        )
        if not isinstance(text_encoder, torch.nn.Module):
            text_encoder = _clip_text(text_source, hub_kwargs, model_kwargs)
        if tokenizer is None:
            tokenizer = CLIPTokenizer.from_pretrained(text_source, **_without_revision(hub_kwargs))
        logger.warning(
            "%s is an official %s checkpoint: converted in memory (%.1f s); `hf-titok convert` saves a converted "
            "pipeline that loads without converting",
            _described(source, known),
            family.title,
            time.perf_counter() - started,
        )
        return pipeline_class(
            vqvae,
            transformer.to(dtype) if dtype is not None else transformer.eval(),
            scheduler,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
        )

    def kind_of_weights(self, names) -> str | None:
        family = family_of_weights(set(names))
        return family.kind if family is not None else None

    def releases_with_bin_files(self, model_class: type) -> dict[str, str]:
        family = family_of_class(model_class)
        releases = family.releases if family is not None else []
        return {release.name: release.bin_filename for release in releases if release.bin_filename}

    def official_kind(self, folder) -> str | None:
        folder = Path(folder)
        config_file, weights_file = folder / "config.json", folder / "model.safetensors"
        if (folder / "model_index.json").is_file() or not (config_file.is_file() and weights_file.is_file()):
            return None
        config = read_json_config(config_file)
        if not is_official_config(config):
            return None
        try:
            with safe_open(str(weights_file), "pt") as weights:
                names = set(weights.keys())
        except Exception as error:  # a truncated or corrupt file: say so rather than guess the kind
            raise ConversionError(
                f"{folder}: cannot read model.safetensors ({error}); the file may be truncated: copy or download it "
                "again"
            ) from None
        return detect_kind(names)

    @staticmethod
    def _tokenizer_of(source, known: OfficialRelease | None, family: Family, vqvae, hub_kwargs: dict, kwargs: dict):
        """The tokenizer a generator's pipeline decodes with: `vqvae=` as given (a model, or a folder or repo of
        one), else its release's tokenizer from the release table. (A model is taken as it is: the pipeline checks
        it - a RAR pipeline decodes with the MaskGIT-VQGAN of the releases or a TiTok tokenizer.)"""
        tokenizer_class = get_family(family.tokenizer_family).model_class
        if isinstance(vqvae, torch.nn.Module):
            return vqvae
        if vqvae is not None:
            return tokenizer_class.from_pretrained(vqvae, **_without_revision(hub_kwargs), **kwargs)
        if known is None or known.tokenizer is None:
            raise ValueError(
                f"{source} is an official {family.title} checkpoint that is not one of the releases, so its "
                f"tokenizer is unknown: pass vqvae= (a {tokenizer_class.__name__}, or the folder or repo of the "
                "tokenizer it was trained on)"
            )
        tokenizer = get_release(known.tokenizer)
        from_bins = str(source) in BIN_REPOS
        tokenizer_source = tokenizer.bin_repo if from_bins else tokenizer.repo_id
        try:
            return tokenizer_class.from_pretrained(
                tokenizer_source,
                release=tokenizer.name if from_bins else None,
                **_without_revision(hub_kwargs),
                **kwargs,
            )
        except (OSError, ValueError) as error:
            raise type(error)(
                f"cannot load the tokenizer of {_described(source, known)} ({tokenizer_source}, release "
                f"{tokenizer.name}): {error}. Or pass vqvae= (a {tokenizer_class.__name__}, or a local copy of the "
                "tokenizer)"
            ) from error


def _clip_text(source, hub_kwargs: dict, model_kwargs: dict) -> CLIPTextModelWithProjection:
    try:
        return CLIPTextModelWithProjection.from_pretrained(
            source, **_without_revision(hub_kwargs), **model_kwargs
        ).eval()
    except OSError as error:
        raise OSError(
            f"cannot load the CLIP text encoder {source}: {error}. MaskGen reads {CLIP_TEXT_ENCODER}; pass "
            "text_encoder= (a CLIPTextModelWithProjection, or a local copy of it)"
        ) from error


def _without_revision(hub_kwargs: dict) -> dict:
    """The Hub arguments for another repo than the one named: `revision` and `subfolder` were the source's."""
    return {key: value for key, value in hub_kwargs.items() if key not in ("revision", "subfolder")}


def _wrong_class(source, kind: str, wanted: type) -> str:
    family = family_of_kind(kind)
    return (
        f"{source} is an official {family.title} checkpoint, not a {wanted.__name__}'s: load it with "
        f"{family.loader}.from_pretrained"
    )


register_checkpoint_reader(OfficialReader())

__all__ = ["OfficialCheckpoint", "OfficialReader", "accepted_sources", "detect_family", "detect_kind", "release_of"]
