"""Fashion-MNIST (Zalando, MIT licence) for the built-in model: read from the Debian package
`dataset-fashion-mnist` (IDX files in /usr/share/datasets/fashion-mnist), padded to 32x32 RGB."""

from __future__ import annotations

import gzip
import os
from importlib import resources
from pathlib import Path

import datasets
import numpy as np
import PIL.Image

# The built-in TiTok pipeline trained on Fashion-MNIST with this package (training/fashion_mnist/).
FASHION_MNIST_PIPELINE = str(Path(__file__).resolve().parent.parent / "pretrained" / "fashion_mnist")
# The built-in text-to-image pipeline (CLIP text encoder, TA-TiTok, MaskGen-VQ) trained on captioned Fashion-MNIST.
FASHION_MNIST_TEXT_PIPELINE = str(Path(__file__).resolve().parent.parent / "pretrained" / "fashion_mnist_text")
# The built-in RAR pipeline: autoregressive over the 32 1-D tokens of the built-in TiTok tokenizer (its `vqvae`).
FASHION_MNIST_RAR_PIPELINE = str(Path(__file__).resolve().parent.parent / "pretrained" / "fashion_mnist_rar")
# The built-in tokenizer's decoder fine-tuned with Tail Token Drop: decodes any prefix of the same 32 tokens.
FASHION_MNIST_PREFIX_TOKENIZER = str(Path(__file__).resolve().parent.parent / "pretrained" / "fashion_mnist_prefix")
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
# Captions for the built-in text-to-image model: each class under several names, in phrasings of which the test
# split's are never seen in training (so prompt consistency is measured on phrasings held out from training).
FASHION_MNIST_NAMES = [
    ["t-shirt", "top", "tee", "t-shirt or top"],
    ["trousers", "pants", "pair of trousers", "slacks"],
    ["pullover", "sweater", "jumper", "knitted pullover"],
    ["dress", "summer dress", "frock", "long dress"],
    ["coat", "jacket", "winter coat", "overcoat"],
    ["sandal", "sandals", "open shoe", "summer sandal"],
    ["shirt", "button-up shirt", "blouse", "collared shirt"],
    ["sneaker", "trainer", "running shoe", "sports shoe"],
    ["bag", "handbag", "purse", "tote bag"],
    ["ankle boot", "boot", "short boot", "leather boot"],
]
CAPTION_TEMPLATES = {
    "train": [
        "a photo of a {}",
        "a {}",
        "{}",
        "an image of a {}",
        "a black and white photo of a {}",
        "a grey picture of a {}",
        "a small photo of the {}",
        "a {} on a black background",
        "product photo of a {}",
        "a low resolution image of a {}",
    ],
    "test": [
        "a picture showing a {}",
        "this is a {}",
        "a close-up of a {}",
        "a catalogue photo of one {}",
    ],
}
DEFAULT_ROOT = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as file:
        data = file.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_fashion_mnist(split: str = "train", root: str | Path = DEFAULT_ROOT) -> tuple[np.ndarray, np.ndarray]:
    """`(images uint8 [N, 28, 28], labels int64 [N])` of the `train` (60k) or `test` (10k) split."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    paths = [root / name for name in _FILES[split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found ({', '.join(missing)}): install it with `apt-get install dataset-fashion-mnist` "
            "or set FASHION_MNIST_DIR to a folder with the IDX .gz files"
        )
    return _read_idx(paths[0]), _read_idx(paths[1]).astype(np.int64)


def to_rgb32(images: np.ndarray) -> np.ndarray:
    """28x28 grey -> 32x32x3 uint8 (2 black pixels of padding on each side, grey copied to RGB)."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(padded[..., None], 3, axis=-1)


def fashion_mnist_caption(label: int, index: int, split: str = "train") -> str:
    """The caption of image `index` of `split`, of class `label`: one of the class's names in one of the split's
    phrasings (`CAPTION_TEMPLATES`), chosen by the index (deterministic, every pairing used)."""
    names, templates = FASHION_MNIST_NAMES[label], CAPTION_TEMPLATES[split]
    name = names[index % len(names)]
    return templates[(index // len(names)) % len(templates)].format(name)


def fashion_mnist_dataset(split: str = "train", root: str | Path = DEFAULT_ROOT, limit: int | None = None):
    """A `datasets.Dataset` with an `image` (32x32 RGB PNG), a `label` (`ClassLabel` with the class names) and a
    `text` caption (`fashion_mnist_caption`: the test split's phrasings are never the training split's)."""
    images, labels = load_fashion_mnist(split, root)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=FASHION_MNIST_CLASSES),
            "text": datasets.Value("string"),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "image": [PIL.Image.fromarray(image) for image in to_rgb32(images)],
            "label": labels.tolist(),
            "text": [fashion_mnist_caption(int(label), index, split) for index, label in enumerate(labels)],
        },
        features=features,
    )


def demo_test_images() -> tuple[np.ndarray, np.ndarray]:
    """30 Fashion-MNIST test images (3 per class) shipped with the package: (uint8 [30, 32, 32, 3], labels)."""
    with resources.files(__package__).joinpath("fashion_mnist_test_samples.npz").open("rb") as file:
        data = np.load(file)
        return to_rgb32(data["images"]), data["labels"]


__all__ = [
    "CAPTION_TEMPLATES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_NAMES",
    "fashion_mnist_caption",
    "FASHION_MNIST_PIPELINE",
    "FASHION_MNIST_TEXT_PIPELINE",
    "FASHION_MNIST_RAR_PIPELINE",
    "FASHION_MNIST_PREFIX_TOKENIZER",
    "demo_test_images",
    "fashion_mnist_dataset",
    "load_fashion_mnist",
    "to_rgb32",
]
