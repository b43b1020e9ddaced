"""Strict `from_pretrained` for the package's models: what transformers only warns about is an error here.

Checkpoints in another format (the official TiTok releases) are read by a *checkpoint reader* that a higher
layer registers (`hf_titok.conversion` does when the package is imported): the models sit below the converter
and never import it. In a copy of these files loaded as remote code (`trust_remote_code=True`, without
hf_titok installed) no reader is registered, and such checkpoints are refused with a message saying so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

import torch
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from safetensors import SafetensorError, safe_open

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
# diffusers' names for the same (the MaskGen transformers).
DIFFUSERS_WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json")
# Arguments of `from_pretrained` that only say where files come from.
HUB_ARGUMENTS = ("cache_dir", "revision", "token", "local_files_only", "force_download", "proxies", "subfolder")


class CheckpointReader(Protocol):
    """Reads checkpoints of another format (see the module docstring)."""

    def read_model(
        self, model_class: type, source, *, release: str | None, config: dict | None, **hub_kwargs
    ) -> tuple | None:
        """(config, state dict in this package's names) of a checkpoint in the reader's format, else None."""

    def read_pipeline(self, pipeline_class: type, source, *, release: str | None, **kwargs):
        """A whole pipeline from a generator checkpoint in the reader's format, else None."""

    def official_kind(self, folder) -> str | None:
        """ "tokenizer", "generator" or "vqgan" for a folder in the reader's format, else None."""

    def kind_of_weights(self, names) -> str | None:
        """The official checkpoint kind whose key names `names` are (a state dict's keys), else None."""

    def releases_with_bin_files(self, model_class: type) -> dict[str, str]:
        """Release name -> `.bin` file name of the releases `model_class` loads from `.bin` files (with `release=`)."""


_checkpoint_reader: CheckpointReader | None = None


def register_checkpoint_reader(reader: CheckpointReader | None) -> None:
    """Install the reader of checkpoints in another format (None removes it)."""
    global _checkpoint_reader
    _checkpoint_reader = reader


def checkpoint_reader() -> CheckpointReader | None:
    return _checkpoint_reader


def hub_arguments(kwargs: dict) -> dict:
    """The `HUB_ARGUMENTS` given (not None) in `kwargs`."""
    return {key: kwargs[key] for key in HUB_ARGUMENTS if kwargs.get(key) is not None}


def fetch_config(source: str | Path, **hub_kwargs) -> Path | None:
    """`config.json` of a folder or Hub repo (downloaded if needed, from the cache offline), or None when the
    source has none or cannot be reached (transformers then says why)."""
    subfolder = hub_kwargs.get("subfolder") or ""
    folder = Path(source) / subfolder
    if folder.is_dir():
        path = folder / "config.json"
        return path if path.is_file() else None
    if Path(source).exists() or str(source).count("/") > 1:
        return None
    try:
        return Path(hf_hub_download(str(source), "config.json", **hub_kwargs))
    except Exception:  # no such file, unknown repo, offline without a cached copy: transformers' loading says which
        return None


def read_json_config(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a valid JSON config: {error}") from None


def is_local_path(source) -> bool:
    """Whether `source` can only be a local path, never a Hub repo id ("name" or "namespace/name"): absolute,
    starting with "." or "~", or with more than one "/"."""
    text = os.fspath(source)
    return os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1 or "\\" in text


def refuse_missing_folder(source) -> None:
    """A source that can only be a local path must exist. (Asked about such a path, the Hub client answers that
    it is not a valid repo id, which hides the cause.)"""
    if source is not None and is_local_path(source) and not Path(source).expanduser().exists():
        raise FileNotFoundError(f"no such folder: {source} (a local path that does not exist)")


def _local_file(source: str | Path, filename: str, subfolder: str = "", **hub_kwargs) -> Path | None:
    """The local copy of `filename` of a folder or of a Hub repo already in the cache, if there is one."""
    folder = Path(source) / subfolder
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    if is_local_path(source):
        return None
    cached = try_to_load_from_cache(
        str(source),
        f"{subfolder}/{filename}" if subfolder else filename,
        cache_dir=hub_kwargs.get("cache_dir"),
        revision=hub_kwargs.get("revision"),
    )
    return Path(cached) if isinstance(cached, str) else None


def _weight_files(source, subfolder: str = "", **hub_kwargs) -> tuple[list[Path], list[str]]:
    """The local copies of `source`'s safetensors weight files (transformers' or diffusers' names, shards
    through their index), and the problems met finding them."""
    files, problems = [], []
    for single, index_name in (WEIGHT_FILES, DIFFUSERS_WEIGHT_FILES):
        index = _local_file(source, index_name, subfolder, **hub_kwargs)
        names = [single]
        if index is not None:
            try:
                names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError) as error:
                problems.append(f"{index}: not a valid weight index ({error})")
                continue
        files += [path for name in names if (path := _local_file(source, name, subfolder, **hub_kwargs))]
    return files, problems


def damaged_weight_files(source: str | Path, subfolder: str = "", **hub_kwargs) -> list[str]:
    """`"path: problem"` for every weight file of `source` that cannot be read (truncated, empty, not a
    safetensors file)."""
    files, problems = _weight_files(source, subfolder, **hub_kwargs)
    for path in files:
        try:
            with safe_open(str(path), "pt") as weights:
                weights.keys()
        except (SafetensorError, OSError) as error:
            problems.append(f"{path}: {error} ({path.stat().st_size} bytes)")
    return problems


def refuse_bin_folder_without_release(cls, source) -> None:
    """A local folder of official `.bin` files has no config: say that it loads with `release=` (and which
    releases `cls` takes) instead of transformers' "no file named model.safetensors"."""
    folder = Path(source) if source is not None else None
    if _checkpoint_reader is None or folder is None or not folder.is_dir() or (folder / "config.json").is_file():
        return
    bins = sorted(path.name for path in folder.glob("*.bin"))
    if bins and not any((folder / name).is_file() for name in (*WEIGHT_FILES, *DIFFUSERS_WEIGHT_FILES)):
        releases = _checkpoint_reader.releases_with_bin_files(cls)
        example = next((name for name, file in releases.items() if file in bins), next(iter(releases), "NAME"))
        raise ValueError(
            f"{source} holds .bin files ({', '.join(bins)}) and no config.json: an official .bin checkpoint loads "
            f"with release= naming its release, e.g. {cls.__name__}.from_pretrained({str(source)!r}, "
            f"release={example!r}) (releases {cls.__name__} loads from .bin files: {', '.join(releases) or 'none'})"
        )


def refuse_official_weights(cls, source, subfolder: str = "", **hub_kwargs) -> None:
    """Raises when `source` holds this package's config.json beside the weights of an official checkpoint
    (official key names), naming the two ways to load such weights; returns otherwise. Called once loading
    has failed, so it costs nothing on the way that works."""
    if _checkpoint_reader is None or source is None:
        return
    files, _ = _weight_files(source, subfolder, **hub_kwargs)
    names = set()
    for path in files:
        try:
            with safe_open(str(path), "pt") as weights:
                names.update(weights.keys())
        except (SafetensorError, OSError):
            return  # damaged: said elsewhere
    kind = _checkpoint_reader.kind_of_weights(names) if names else None
    if kind is not None:
        shown = ", ".join(str(path) for path in files)
        raise ValueError(
            f"{source} holds a config.json of this package ({cls.__name__}) beside the weights of an official "
            f"{kind} checkpoint ({shown}: official key names), which it cannot load as they are. Load the official "
            "checkpoint as it was released (its official config.json beside these weights: from_pretrained converts "
            f"it in memory), or convert the weights: hf-titok convert --kind {kind} --config <its official config, "
            f"yaml or json> --weights {files[0]} --output-dir <new folder>"
        )


def refuse_missing_or_unexpected(cls, source, info: dict) -> None:
    """Raises when a loading report (transformers' or diffusers' `output_loading_info`) lists missing or
    unexpected weights: both libraries re-initialise missing ones at random, and a half-loaded tokenizer or
    generator silently produces garbage."""
    problems = [
        f"{what}: {', '.join(sorted(info[key]))}"
        for key, what in (("missing_keys", "missing weights"), ("unexpected_keys", "unexpected weights"))
        if info.get(key)
    ]
    if problems:
        raise ValueError(
            f"the checkpoint at {source} does not match {cls.__name__} built from its "
            f"config ({'; '.join(problems)}); pass strict=False to load it anyway"
        )


def refuse_non_finite(source, model: torch.nn.Module) -> None:
    """Raises when a loaded model holds NaN or infinite weights, naming them (a checkpoint saved after a diverged
    step loads without complaint and samples garbage)."""
    not_finite = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and tensor.device.type != "meta" and not bool(torch.isfinite(tensor).all())
    ]
    if not_finite:
        shown = ", ".join(not_finite[:10]) + (f", ... ({len(not_finite)} in all)" if len(not_finite) > 10 else "")
        raise ValueError(f"the checkpoint at {source} has NaN or infinite weights: {shown}")


def explain_failed_load(cls, source, subfolder: str = "", **hub_kwargs) -> None:
    """Once the library's loading has raised: raises the error that names the cause when it is a damaged weight
    file or official weights beside this package's config; returns otherwise (the library's error stands)."""
    if source is None:
        return
    problems = damaged_weight_files(source, subfolder, **hub_kwargs)
    if problems:
        raise ValueError(
            f"cannot load {cls.__name__} from {source}: damaged weight file {'; '.join(problems)}. "
            "Download or save it again."
        )
    refuse_official_weights(cls, source, subfolder, **hub_kwargs)


def check_loaded(cls, source, model, info: dict, report_wanted: bool, strict: bool, subfolder="", **hub_kwargs):
    """What the library's loading let through: missing or unexpected weights (unless `strict=False`, or the caller
    asked for the loading report to act on it), and NaN or infinite weights."""
    if strict and not report_wanted and (info.get("missing_keys") or info.get("unexpected_keys")):
        refuse_official_weights(cls, source, subfolder, **hub_kwargs)
        refuse_missing_or_unexpected(cls, source, info)
    refuse_non_finite(source, model)


def build_with_weights(build, state_dict, on_meta: bool = True) -> torch.nn.Module:
    """The one way converted weights become a model: `build()` on the meta device (no memory, no random
    initialisation), then the tensors assigned as they are, every key checked. `on_meta=False` builds for real,
    for a model with computed non-persistent buffers (which a meta build would leave without values)."""
    with torch.device("meta" if on_meta else "cpu"):
        model = build()
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model


def _refuse_other_model_type(cls, config_file: Path | None, config) -> None:
    """The config of a folder `cls` loads names `cls`'s model type: transformers' `model_type` for the
    package's transformers models, diffusers' `_class_name` (the class or one of its bases) for its diffusers
    models. A config of the other library's format is refused the same way."""
    if not isinstance(config, dict):
        return
    expected = getattr(getattr(cls, "config_class", None), "model_type", None)
    if expected is not None:
        found = config.get("model_type") or config.get("_class_name")
        if found is not None and found != expected:
            raise ValueError(
                f"{config_file} is the config of a {found!r} model, not of a {cls.__name__} ({expected!r}); "
                "load it with the class of its model type"
            )
        return
    found = config.get("_class_name") or config.get("model_type")
    classes = {base.__name__ for base in cls.__mro__}
    package_classes = {sub.__name__ for sub in _all_subclasses(OfficialFormatMixin)}
    if found is not None and found not in classes and (found in package_classes or "model_type" in config):
        raise ValueError(
            f"{config_file} is the config of a {found!r} model, not of a {cls.__name__}; load it with its own class"
        )


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


class OfficialFormatMixin:
    """For the package's diffusers models (MaskGen): `from_pretrained` of a folder or repo in the official format
    (or `release=` of a `.bin` repo) goes through the registered checkpoint reader - converted in memory with the
    converter's strict key checks - and everything else through diffusers' own loading, with the checks of
    `StrictLoadingMixin`: missing or unexpected weights raise (diffusers only warns) unless `strict=False`, or
    `output_loading_info=True` (the caller asked for the report, and gets it to act on); a config of another model,
    a damaged weight file and NaN or infinite weights raise, naming them. `dtype=` (or diffusers' `torch_dtype=`)
    applies to both ways."""

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path, *args, release: str | None = None, strict: bool = True, **kwargs
    ):
        source = pretrained_model_name_or_path
        refuse_missing_folder(source)
        hub_kwargs = hub_arguments(kwargs)
        config_file = fetch_config(source, **hub_kwargs)
        config = read_json_config(config_file) if config_file is not None else None
        _refuse_other_model_type(cls, config_file, config)
        ours = isinstance(config, dict) and "_class_name" in config
        subfolder = hub_kwargs.get("subfolder") or ""
        file_kwargs = {key: value for key, value in hub_kwargs.items() if key != "subfolder"}
        dtype = kwargs.pop("dtype", None) or kwargs.pop("torch_dtype", None)
        if ours or (release is None and config is None):
            if not ours:
                refuse_bin_folder_without_release(cls, source)
            report_wanted = kwargs.pop("output_loading_info", False)
            try:
                model, info = super().from_pretrained(
                    source, *args, output_loading_info=True, **kwargs, **({"torch_dtype": dtype} if dtype else {})
                )
            except (SafetensorError, OSError, RuntimeError, ValueError) as error:
                try:
                    explain_failed_load(cls, source, subfolder, **file_kwargs)
                except ValueError as explained:
                    raise explained from error
                raise
            check_loaded(cls, source, model, info, report_wanted, strict, subfolder, **file_kwargs)
            return (model, info) if report_wanted else model
        if _checkpoint_reader is None:
            raise ValueError(
                f"{source} is not a checkpoint of this package's format (it may be an official release): converting "
                "it needs the hf_titok package (pip install hf_titok), or convert it first with `hf-titok convert`"
            )
        converted = _checkpoint_reader.read_model(cls, source, release=release, config=config, **hub_kwargs)
        if converted is None:
            return super().from_pretrained(source, *args, **kwargs)
        arguments, state_dict = converted
        model = build_with_weights(lambda: cls(**arguments), state_dict)
        return (model.to(dtype) if dtype is not None else model).eval()


class StrictLoadingMixin:
    """`from_pretrained` that refuses what transformers lets through with a warning or a bare error:

    - missing or unexpected weights (transformers re-initialises missing ones at random, which for a tokenizer
      or generator silently produces garbage; pass `strict=False` to accept them anyway, or
      `output_loading_info=True` to get the loading report with the model, as transformers returns it, and act
      on it yourself);
    - a config of another model type (e.g. a generator's config loaded as a tokenizer);
    - a damaged weight file (truncated, empty, not safetensors): the error names the file;
    - weights that are NaN or infinite: the error names them.

    (Shape mismatches already raise in transformers unless `ignore_mismatched_sizes=True`.)

    Without a `dtype`, weights load in the dtype the checkpoint's `config.json` records (transformers 5's
    `dtype="auto"`; diffusers' own models would load float32), so a half-precision checkpoint is not silently
    doubled in memory on a GPU. `dtype=torch.float32` / `torch.bfloat16` / ... casts on load.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool = True, release=None, **kwargs):
        """transformers' `from_pretrained`, strict (see the class docstring).

        Official TiTok checkpoints load directly, converted in memory by the registered checkpoint reader: a
        `yucornetto/*` release id or a folder in that format, or `fun-research/TiTok` with `release=` (the
        release name, e.g. `"titok_l32"`)."""
        source = pretrained_model_name_or_path
        refuse_missing_folder(source)
        hub_kwargs = {key: kwargs.get(key) for key in ("cache_dir", "revision") if kwargs.get(key) is not None}
        subfolder = kwargs.get("subfolder") or ""
        report_wanted = kwargs.pop("output_loading_info", False)
        if source is not None and kwargs.get("config") is None and kwargs.get("state_dict") is None:
            converted = cls._read_other_format(source, release, kwargs)
            if converted is not None:
                config, state_dict = converted
                kwargs = {key: value for key, value in kwargs.items() if key not in HUB_ARGUMENTS}
                kwargs.update(config=config, state_dict=state_dict)
                source = None
        elif release is not None:
            raise ValueError(
                "release= names an official release to load; it cannot be combined with config= or state_dict="
            )
        try:
            model, info = super().from_pretrained(source, *model_args, output_loading_info=True, **kwargs)
        except (SafetensorError, OSError, RuntimeError) as error:
            try:
                explain_failed_load(cls, source, subfolder, **hub_kwargs)
            except ValueError as explained:
                raise explained from error
            raise
        source = pretrained_model_name_or_path
        check_loaded(cls, source, model, info, report_wanted, strict, subfolder, **hub_kwargs)
        return (model, info) if report_wanted else model

    @classmethod
    def _read_other_format(cls, source, release: str | None, kwargs: dict) -> tuple | None:
        """(config, state dict) of a checkpoint that is not in this package's format, through the registered
        reader; None for one of ours (after checking its model type)."""
        hub_kwargs = hub_arguments(kwargs)
        config_file = fetch_config(source, **hub_kwargs)
        config = read_json_config(config_file) if config_file is not None else None
        _refuse_other_model_type(cls, config_file, config)
        ours = isinstance(config, dict) and "model_type" in config
        if ours and release is None:
            return None
        if config is None and release is None:
            refuse_bin_folder_without_release(cls, source)
        if _checkpoint_reader is None:
            if release is not None or config is not None:
                raise ValueError(
                    f"{source} is not a checkpoint of this package's format (it may be an official TiTok release): "
                    "converting it needs the hf_titok package (pip install hf_titok), or convert it first with "
                    "`hf-titok convert`"
                )
            return None
        return _checkpoint_reader.read_model(cls, source, release=release, config=config, **hub_kwargs)
