"""The official checkpoint format (bytedance/1d-tokenizer and its forks), what every family's converter shares:
reading official configs (nested OmegaConf dicts, with `${...}` references left unresolved in the Hub
`config.json` files) and state dicts (safetensors, or `.bin` pickles read with `weights_only=True`), the size keys
every official tokenizer config starts with, and the strict renaming of state-dict keys. Each family's own rules
live in its folder (`models/<family>/convert_<family>.py`), named by its entry in `hf_titok.families`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")


class ConversionError(ValueError):
    """An official config or checkpoint does not match what the converter expects."""


@dataclass(frozen=True)
class Converter:
    """How one kind of official checkpoint converts.

    - `name`: what errors call it ("TA-TiTok checkpoint");
    - `prepare(official config, official weights)` -> (what builds our model from our config - the model class
      or a callable -, our config, renaming rules `[(pattern, replacement)]`, the weights to rename);
    - `official_config(release name)`: the official config of a release whose files come without one (the `.bin`
      files), built from the release table; None where the kind needs none;
    - `scheduler(official config)`: generators: the sampler with the config's official sampling settings;
    - `signatures`: sets of official key names that identify a state dict of this kind (any one set, whole);
    - `needs_config`: its official config is needed to convert it (`hf-titok convert --config`);
    - `image_processor`: `hf-titok convert` also writes the image processor of the model's image size;
    - `build_on_meta`: models are built on the meta device and take the converted tensors as they are; a model
      with computed non-persistent buffers (transformers' CLIP: its position ids) is built for real instead.
    """

    name: str
    prepare: Callable
    official_config: Callable[[str], dict] | None = None
    scheduler: Callable[[Mapping], object] | None = None
    signatures: tuple[frozenset[str], ...] = ()
    needs_config: bool = True
    image_processor: bool = True
    build_on_meta: bool = True

    def identifies(self, weight_names) -> bool:
        return any(signature <= set(weight_names) for signature in self.signatures)


# --------------------------------------------------------------------------------------------------
# Official configs
# --------------------------------------------------------------------------------------------------


def load_official_config(path: str | Path) -> dict:
    """Read an official config (Hub `config.json` or infer/training yaml) and resolve `${a.b.c}` references."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    try:
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConversionError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from None
    if not isinstance(config, dict):
        raise ConversionError(f"{path} does not hold a config mapping")
    return resolve_references(config, config)


def _lookup(root: dict, dotted: str):
    node = root
    for part in dotted.strip().split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConversionError(f"config interpolation ${{{dotted}}} refers to a missing entry")
        node = node[part]
    return node


def resolve_references(node, root: dict, depth: int = 0):
    """`node` with every `${a.b.c}` reference to `root` resolved (a bare reference keeps the value's type)."""
    if depth > 32:
        raise ConversionError("config interpolations nest too deeply (a cycle?)")
    if isinstance(node, dict):
        return {key: resolve_references(value, root, depth) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_references(value, root, depth) for value in node]
    if isinstance(node, str) and "${" in node:
        whole = _INTERPOLATION.fullmatch(node)
        if whole:  # a bare reference keeps the referenced value's type
            return resolve_references(_lookup(root, whole.group(1)), root, depth + 1)
        return _INTERPOLATION.sub(lambda m: str(resolve_references(_lookup(root, m.group(1)), root, depth + 1)), node)
    return node


def is_official_config(config) -> bool:
    """Whether a parsed `config.json` is an official config (the nested OmegaConf dict with `model.vq_model`)."""
    return isinstance(config, dict) and isinstance(config.get("model"), dict) and "vq_model" in config["model"]


def official_vit_sizes(preset) -> dict:
    """The `vq_model` keys every official TiTok and TA-TiTok config starts with: the ViT sizes, one patch size
    for both, the token count and the token width."""
    return dict(
        vit_enc_model_size=preset.encoder,
        vit_dec_model_size=preset.decoder,
        vit_enc_patch_size=preset.patch_size,
        vit_dec_patch_size=preset.patch_size,
        num_latent_tokens=preset.num_latent_tokens,
        token_size=preset.config_kwargs()["token_size"],
    )


# --------------------------------------------------------------------------------------------------
# State dicts
# --------------------------------------------------------------------------------------------------


def _fit(tensor: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """The tensor in `shape` if the two differ only by singleton dims (1x1 conv -> linear, [1, W] -> [W])."""
    if tensor.shape == shape:
        return tensor
    if [d for d in tensor.shape if d != 1] == [d for d in shape if d != 1]:
        return tensor.reshape(shape)
    return None


def convert_state_dict(
    official: Mapping[str, torch.Tensor],
    rules: list[tuple[str, str]],
    expected: Mapping[str, torch.Tensor],
    what: str = "checkpoint",
) -> dict[str, torch.Tensor]:
    """Rename `official` keys with the first matching `(pattern, replacement)` rule and fit them to the
    shapes of `expected` (our model's state dict). Raises [`ConversionError`] listing every unmapped,
    missing, unexpected or mis-shaped key."""
    converted, unmapped, unexpected, mismatched, seen = {}, [], [], [], set()
    for key, tensor in official.items():
        for pattern, replacement in rules:
            if re.search(pattern, key):
                new_key = re.sub(pattern, replacement, key, count=1)
                break
        else:
            unmapped.append(key)
            continue
        if new_key not in expected:
            unexpected.append(f"{key} -> {new_key}")
            continue
        seen.add(new_key)
        fitted = _fit(tensor, expected[new_key].shape)
        if fitted is None:
            mismatched.append(f"{key}: {list(tensor.shape)} vs expected {list(expected[new_key].shape)} ({new_key})")
            continue
        converted[new_key] = fitted
    missing = [key for key in expected if key not in seen]
    problems = []
    for title, keys in (
        ("keys with no mapping", unmapped),
        ("keys the model does not have", unexpected),
        ("shape mismatches", mismatched),
        ("parameters missing from the checkpoint", missing),
    ):
        if keys:
            shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
            problems.append(f"{title}: {shown}")
    if problems:
        raise ConversionError(f"the {what} does not match the model built from its config; " + "; ".join(problems))
    return converted


def load_official_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official state dict: `.safetensors`, or a `.bin`/`.pt`/`.pth` pickle loaded with
    `weights_only=True` (no code from the file is run)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state_dict = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # corrupted files or pickles with non-tensor objects
        raise ConversionError(f"could not read {path} as a weights-only torch state dict: {error}") from None
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ConversionError(f"{path} does not hold a flat state dict of tensors")
    return dict(state_dict)


__all__ = [
    "ConversionError",
    "Converter",
    "convert_state_dict",
    "is_official_config",
    "load_official_config",
    "load_official_weights",
    "official_vit_sizes",
    "resolve_references",
]
