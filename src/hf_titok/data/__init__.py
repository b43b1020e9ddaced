"""Data: images and the official augmentations, image datasets (local folders, `save_to_disk`, the Hub),
class names, and Fashion-MNIST (the built-in model's data). Builds on the models layer (the image
processor's RGB conversion); training, evaluation and the command line build on it."""

from .class_labels import dataset_class_names, default_id2label, imagenet_id2label
from .datasets import (
    IMAGENET_WDS,
    ImageTrainingDataset,
    StreamingImageDataset,
    collate_images,
    collate_tokens,
    evaluation_images,
    load_image_dataset,
)
from .fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_PIPELINE,
    demo_test_images,
    fashion_mnist_dataset,
    load_fashion_mnist,
    to_rgb32,
)
from .images import Augmentation, decode_image, sample_rng

__all__ = [
    "Augmentation",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_PIPELINE",
    "IMAGENET_WDS",
    "ImageTrainingDataset",
    "StreamingImageDataset",
    "collate_images",
    "collate_tokens",
    "dataset_class_names",
    "decode_image",
    "default_id2label",
    "demo_test_images",
    "evaluation_images",
    "fashion_mnist_dataset",
    "imagenet_id2label",
    "load_fashion_mnist",
    "load_image_dataset",
    "sample_rng",
    "to_rgb32",
]
