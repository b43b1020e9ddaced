"""Saved models carry their code, the Hub way, so that converted and trained repos load without hf_titok:
`AutoModel` / `AutoConfig` / `AutoImageProcessor.from_pretrained(repo, trust_remote_code=True)` (transformers) and
`DiffusionPipeline.from_pretrained(repo, trust_remote_code=True)` (diffusers).

Every `save_pretrained` of the package writes it (the models, the image processor, the scheduler, the
pipeline): beside the config, the package's module that defines the class and the sibling modules it imports
(relative imports only, so the copies import each other as the loaders of transformers and diffusers expect),
and the entries that point at them - `auto_map` in the config for transformers, `[module, class]` entries and
the pipeline's own module in `model_index.json` for diffusers. A pipeline's components each hold their code in
their own folder, as diffusers loads a custom component from there.

With hf_titok installed, its own classes load these folders (`TiTokPipeline.from_pretrained` maps the entries
back to the package; transformers uses registered classes over remote code unless told otherwise), so the
copies run only for someone who passes `trust_remote_code=True`, as the Hub's convention requires.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from transformers import PreTrainedModel

# The package root: this module sits in its `utils` folder. (A copy in a saved folder is flat: its root is the
# folder itself.)
_IN_UTILS = __name__.rpartition(".")[0].endswith(".utils")
PACKAGE_DIR = Path(__file__).parent.parent if _IN_UTILS else Path(__file__).parent
PACKAGE = __name__.rsplit(".", 2 if _IN_UTILS else 1)[0]

# `from .module import ...` / `from ..folder.module import ...` anywhere in a file (function bodies included).
_RELATIVE_IMPORT = re.compile(r"^(?P<indent>[ \t]*)from[ \t]+(?P<dots>\.+)(?P<path>[\w.]*)[ \t]+import\b", re.MULTILINE)


def _module_file(module: str) -> Path:
    """The file of a package module named relative to the package (`"models.titok.modeling_titok"`)."""
    return PACKAGE_DIR.joinpath(*module.split(".")).with_suffix(".py")


def _resolve(module: str, dots: str, path: str) -> str:
    """The package module (relative name) that `from <dots><path> import` in `module` refers to."""
    base = module.split(".")[: -len(dots)]
    target = ".".join(base + ([path] if path else []))
    if not path or not _module_file(target).is_file():
        raise ValueError(
            f"remote code: {module} imports {dots}{path}, which is not a module of the package (import modules, "
            "not packages, in code that is copied into saved folders)"
        )
    return target


def _imports(module: str) -> list[str]:
    return [_resolve(module, m["dots"], m["path"]) for m in _RELATIVE_IMPORT.finditer(_module_file(module).read_text())]


def module_closure(*modules: str) -> list[str]:
    """`modules` (named relative to the package, e.g. `"models.titok.modeling_titok"`) and every package module
    they import, directly or not (sorted)."""
    seen, todo = set(), list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if not _module_file(name).is_file():
            raise FileNotFoundError(f"the package module {name} imported for remote code is missing")
        seen.add(name)
        todo.extend(_imports(name))
    return sorted(seen)


def copied_name(module: str) -> str:
    """The file stem a package module has in a saved folder: the folders are flat (the loaders of transformers
    and diffusers follow `from .module import` between files of one folder only), so each module is copied
    under its own name and its imports are rewritten to point at the copies."""
    return module.rpartition(".")[2]


def flattened_source(module: str) -> str:
    """A module's code with every relative import pointing at the flat copy of its target."""
    return _RELATIVE_IMPORT.sub(
        lambda m: f"{m['indent']}from .{copied_name(_resolve(module, m['dots'], m['path']))} import",
        _module_file(module).read_text(),
    )


# The module diffusers loads a folder's code through: diffusers copies only the modules that the module it
# loads imports directly, so this one imports every module the folder holds.
ENTRY_MODULE = "hf_titok_remote"


def package_module(cls: type) -> str:
    """The module defining `cls`, named relative to the package (`"models.titok.modeling_titok"`)."""
    return cls.__module__.removeprefix(PACKAGE + ".")


def module_of(cls: type) -> str:
    """The file stem of the module defining `cls` in a saved folder (`"modeling_titok"`)."""
    return copied_name(package_module(cls))


def carries_code(cls: type) -> bool:
    """Whether `cls` is defined by this package's code (a subclass defined elsewhere has no code here to copy:
    its folders are saved without code, and load with its own package)."""
    return cls.__module__.startswith(PACKAGE + ".") and _module_file(package_module(cls)).is_file()


def write_code(folder: str | Path, *classes: type) -> list[str]:
    """Copy the modules defining `classes` and the package modules they import into `folder` (flat, imports
    rewritten: `flattened_source`), with the folder's entry module; returns the module names the folder holds."""
    folder = Path(folder)
    modules = module_closure(*(package_module(cls) for cls in classes))
    names = {}
    for module in modules:
        other = names.setdefault(copied_name(module), module)
        if other != module:
            raise ValueError(f"remote code: {module} and {other} would be copied under one name")
        (folder / f"{copied_name(module)}.py").write_text(flattened_source(module))
    known = {copied_name(module) for module in _all_modules()}
    held = sorted(path.stem for path in folder.glob("*.py") if path.stem != ENTRY_MODULE and path.stem in known)
    imports = "".join(f"from .{name} import *  # noqa: F401,F403\n" for name in held)
    (folder / f"{ENTRY_MODULE}.py").write_text(
        '"""hf_titok\'s code for loading this folder without the package (written by hf_titok.utils.remote_code):\n'
        "diffusers loads the classes named in model_index.json through this module, which imports every module\n"
        'here."""\n\n' + imports
    )
    return held


def _all_modules() -> list[str]:
    return [
        ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        for path in PACKAGE_DIR.rglob("*.py")
        if path.name != "__init__.py"
    ]


def class_reference(cls: type) -> str:
    """`module.Class` of a package class, as `auto_map` and `model_index.json` name it."""
    return f"{module_of(cls)}.{cls.__qualname__}"


def add_auto_map(config_file: str | Path, auto_map: dict[str, type]) -> None:
    """Write `auto_map` (auto class name -> package class) into a saved JSON config."""
    config_file = Path(config_file)
    config = json.loads(config_file.read_text())
    config["auto_map"] = {auto: class_reference(cls) for auto, cls in auto_map.items()}
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_model_code(folder: str | Path, model_class: type, config_class: type) -> None:
    """A saved transformers model: its code and the config's `auto_map` (AutoConfig, AutoModel)."""
    if not (carries_code(model_class) and carries_code(config_class)):
        return
    write_code(folder, model_class, config_class)
    add_auto_map(Path(folder) / "config.json", {"AutoConfig": config_class, "AutoModel": model_class})


def write_pipeline_code(folder: str | Path, pipeline_class: type, components: dict[str, object]) -> None:
    """A saved diffusers pipeline: its code at the root and `model_index.json` entries `[ENTRY_MODULE, class]`
    for the pipeline and every component saved with its code (`components`: name -> component)."""
    folder = Path(folder)
    if not carries_code(pipeline_class):
        return
    write_code(folder, pipeline_class)
    index_file = folder / "model_index.json"
    index = json.loads(index_file.read_text())
    index["_class_name"] = [ENTRY_MODULE, pipeline_class.__name__]
    for name, component in components.items():
        if component is not None and (folder / name / f"{ENTRY_MODULE}.py").is_file():
            index[name] = [ENTRY_MODULE, type(component).__name__]
    index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


class SavesCodeMixin:
    """For the package's classes (transformers models, diffusers models and schedulers): the library's
    `save_pretrained`, then the class's code beside the config (`write_code`; for a transformers model also the
    config's `auto_map`, `write_model_code`), so the folder loads without hf_titok (`AutoModel.from_pretrained(
    folder, trust_remote_code=True)`, or as a custom component of a pipeline); a push to the Hub happens after the
    code is written."""

    def save_pretrained(
        self,
        save_directory,
        *args,
        is_main_process: bool = True,
        push_to_hub: bool = False,
        safe_serialization: bool | None = None,
        variant: str | None = None,
        max_shard_size: int | str | None = None,
        **kwargs,
    ):
        # `safe_serialization`, `variant` and `max_shard_size` are named because diffusers' pipeline saving passes a
        # component only the arguments its save_pretrained's signature names (so this class comes first in the
        # bases); given ones go on (schedulers take none; transformers 5 always writes safetensors and names no
        # `safe_serialization`).
        named = dict(safe_serialization=safe_serialization, variant=variant, max_shard_size=max_shard_size)
        if isinstance(self, PreTrainedModel):
            named.pop("safe_serialization")
        kwargs.update({key: value for key, value in named.items() if value is not None})
        repo_id = kwargs.pop("repo_id", None)
        result = super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if is_main_process:
            if isinstance(self, PreTrainedModel):
                write_model_code(save_directory, type(self), type(self.config))
            elif carries_code(type(self)):
                write_code(save_directory, type(self))
            if push_to_hub:
                self.push_to_hub(repo_id or Path(save_directory).name)
        return result


def installed_entries(index: dict, package) -> dict:
    """`model_index.json` entries written by `write_pipeline_code` pointed back at `package`'s own classes
    (`["hf_titok_remote", "TiTokTokenizer"]` -> `["hf_titok.models.titok.modeling_titok", "TiTokTokenizer"]`), for
    loading with the installed package rather than the copies (which need `trust_remote_code=True`)."""
    index = dict(index)
    for key, value in list(index.items()):
        if not (isinstance(value, list) and len(value) == 2 and value[0] == ENTRY_MODULE):
            continue
        cls = getattr(package, value[1], None)
        if cls is None:
            continue  # not a class of this package: diffusers loads it as the folder says
        index[key] = cls.__name__ if key == "_class_name" else [cls.__module__, cls.__name__]
    return index


__all__ = [
    "ENTRY_MODULE",
    "PACKAGE",
    "copied_name",
    "flattened_source",
    "package_module",
    "SavesCodeMixin",
    "add_auto_map",
    "carries_code",
    "class_reference",
    "installed_entries",
    "module_closure",
    "module_of",
    "write_code",
    "write_model_code",
    "write_pipeline_code",
]
