"""Evaluation the way papers report it: rFID/gFID and the Inception Score with the standard FID Inception
network, PSNR, SSIM, LPIPS and codebook statistics (`metrics`, `inception`), and the protocols that produce
them (`protocols`: reconstruction of a dataset split; sharded, resumable class-conditional sampling into an
ADM `.npz`). Builds on the models and data layers."""

from .inception import INCEPTION_ENV, InceptionFeatureExtractor, InceptionLogits, default_inception_path
from .metrics import (
    EVALUATE_METRIC_PATH,
    ImageMetrics,
    codebook_statistics,
    make_compute_metrics,
    psnr,
    reference_statistics,
    set_reference_statistics,
    ssim,
)
from .protocols import (
    add_reference,
    evaluate_reconstruction,
    evaluate_samples,
    load_npz_images,
    merge_shards,
    model_fingerprint,
    sample_shards,
    save_reference_statistics,
    shard_path,
)

__all__ = [
    "EVALUATE_METRIC_PATH",
    "INCEPTION_ENV",
    "ImageMetrics",
    "InceptionFeatureExtractor",
    "InceptionLogits",
    "add_reference",
    "codebook_statistics",
    "evaluate_reconstruction",
    "evaluate_samples",
    "default_inception_path",
    "load_npz_images",
    "make_compute_metrics",
    "merge_shards",
    "model_fingerprint",
    "psnr",
    "reference_statistics",
    "sample_shards",
    "save_reference_statistics",
    "set_reference_statistics",
    "shard_path",
    "ssim",
]
