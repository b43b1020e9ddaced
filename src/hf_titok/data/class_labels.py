"""Class names: the 1000 ImageNet-1k classes, and the names a dataset gives its labels."""

from __future__ import annotations

import json
from importlib import resources


def imagenet_id2label() -> dict[int, str]:
    """The 1000 ImageNet-1k class names (comma-separated synonyms) in the canonical index order (sorted WordNet
    synset ids, as TiTok, DiT and `timm/imagenet-1k-wds` use)."""
    rows = json.loads(resources.files(__package__).joinpath("imagenet_classes.json").read_text())
    return {index: names for index, (_, names) in enumerate(rows)}


def dataset_class_names(dataset, num_classes: int | None = None) -> list[str] | None:
    """The class names of a dataset's label column (`label`, `labels` or `cls` as a `ClassLabel`), if it has
    them (and `num_classes` of them, when given). Works on `datasets` datasets and on the wrappers of
    `hf_titok.data.datasets`, which keep theirs as `.dataset`."""
    inner = getattr(dataset, "dataset", dataset)
    features = getattr(inner, "features", None) or {}
    for column in ("label", "labels", "cls"):
        names = getattr(features.get(column), "names", None)
        if names and (num_classes is None or len(names) == num_classes):
            return list(names)
    return None


def default_id2label(num_classes: int, dataset=None) -> dict[int, str]:
    """Names for a generator's classes: the dataset's own, else ImageNet's for 1000 classes, else `class i`."""
    names = dataset_class_names(dataset, num_classes) if dataset is not None else None
    if names:
        return dict(enumerate(names))
    if num_classes == 1000:
        return imagenet_id2label()
    return {index: f"class {index}" for index in range(num_classes)}


__all__ = ["dataset_class_names", "default_id2label", "imagenet_id2label"]
