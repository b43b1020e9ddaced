"""The field's evaluation protocols for tokenizers (rFID) and generators (gFID), as the official TiTok
evaluators run them.

- Reconstruction: images of a `datasets` split / image folder, shorter side resized to the tokenizer's size
  (bicubic) and center-cropped; reconstructions clamped to [0, 1] and truncated to uint8; rFID against the
  inputs, Inception Score, PSNR, SSIM, (LPIPS), codebook usage and entropy.
- Generation: N images per class sampled with a pipeline into shards (`shard_XXXXXX.npz`; each shard's
  random numbers depend only on (seed, shard), so any number of processes - accelerate - makes the same
  images, and a rerun skips finished shards), merged into an ADM-evaluator `.npz` (`arr_0`: uint8
  `[N, H, W, 3]`, `arr_1`: labels), and gFID/IS against a reference: an ADM reference batch (`mu`/`sigma`
  precomputed, e.g. `VIRTUAL_imagenet256_labeled.npz`), any `.npz` with `arr_0` images, or an image folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.datasets import evaluation_images
from ..models.titok.image_processing_titok import to_uint8
from .metrics import ImageMetrics, reference_statistics, set_reference_statistics

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"  # what made the shards of a generation run


# --------------------------------------------------------------------------------------------------
# Reconstruction (rFID)
# --------------------------------------------------------------------------------------------------


def _batched(rows, batch_size: int):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


@torch.no_grad()
def evaluate_reconstruction(
    tokenizer,
    images,
    metrics: ImageMetrics | dict[int, ImageMetrics],
    batch_size: int = 32,
    total: int | None = None,
    progress: bool = True,
) -> dict:
    """Reconstruct `images` (an iterable of `(pixel_values [3, S, S] in [0, 1], label)`) and return the
    metrics' results plus `num_images`. `metrics` may map prefix lengths k to their own metrics (a tokenizer with
    `prefix_decoding`): each image is encoded once and decoded from its first k tokens for every k; the result then
    maps each k to its results."""
    by_length = metrics if isinstance(metrics, dict) else {None: metrics}
    count = 0
    with tqdm(total=total, desc="reconstructing", unit="img", disable=not progress) as bar:
        for batch in _batched(images, batch_size):
            pixel_values = torch.stack([pixels for pixels, _ in batch]).to(tokenizer.device)
            encoded = tokenizer.encode(pixel_values)
            real = to_uint8(pixel_values, "round").cpu()
            for length, length_metrics in by_length.items():
                reconstruction = tokenizer.decode(encoded.tokens[:, :length])
                length_metrics.update(real=real, fake=to_uint8(reconstruction).cpu(), token_ids=encoded.token_ids)
            count += len(batch)
            bar.update(len(batch))
    results = {length: {**m.compute(), "num_images": count} for length, m in by_length.items()}
    return results if isinstance(metrics, dict) else results[None]


# --------------------------------------------------------------------------------------------------
# Generation (gFID)
# --------------------------------------------------------------------------------------------------


def shard_path(output_dir: str | Path, shard: int) -> Path:
    return Path(output_dir) / f"shard_{shard:06d}.npz"


def model_fingerprint(*models: torch.nn.Module) -> str:
    """A short digest of the models' weights (names, dtypes, shapes and bytes): exact and the same on any device
    or process count, so a resumed run on other hardware is recognised; ~1 s for the largest generators."""
    digest = hashlib.sha256()
    for model in models:
        for name, tensor in model.state_dict().items():
            digest.update(f"{name}{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def check_run(output_dir: Path, run: dict) -> None:
    """Resuming is only sound when the shards on disk come from the same run: record the run in `run.json`
    (written atomically; every process writes the same content) or check it against the recorded one."""
    record = output_dir / RUN_FILE
    # Shards first: the record is written before any shard, so a shard seen here means the record exists below.
    has_shards = any(output_dir.glob("shard_*[0-9].npz"))
    if not record.is_file():
        if has_shards:
            raise ValueError(
                f"{output_dir} holds sample shards but no {RUN_FILE}, so they cannot be resumed safely: "
                "delete them or choose another output directory"
            )
        temporary = record.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(run, indent=2))
        os.replace(temporary, record)
        return
    recorded = json.loads(record.read_text())
    changed = [f"{key}: {recorded.get(key)!r} -> {run[key]!r}" for key in run if recorded.get(key) != run[key]]
    if changed:
        raise ValueError(
            f"{output_dir} holds samples of another run ({'; '.join(changed)}): choose another output "
            "directory, or delete it to sample again"
        )


def sample_shards(
    pipeline,
    output_dir: str | Path,
    class_ids: Sequence[int | None],
    per_class: int,
    batch_size: int = 32,
    seed: int = 0,
    process_index: int = 0,
    num_processes: int = 1,
    progress: bool = True,
    **sampling_kwargs,
) -> list[Path]:
    """Sample `per_class` images of every class (grouped by class) in shards of `batch_size`; this process
    writes shards `process_index`, `process_index + num_processes`, ... and skips those already on disk
    (after checking, through `run.json`, that they come from the same model, classes, seed and settings).
    Shard k uses `torch.Generator().manual_seed(seed * 1_000_003 + k)`. Returns this process's shards."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_run(
        output_dir,
        {
            "model": model_fingerprint(pipeline.transformer, pipeline.vqvae),
            "class_ids": list(class_ids),
            "per_class": per_class,
            "batch_size": batch_size,
            "seed": seed,
            "sampling": pipeline.sampling_settings(**sampling_kwargs),
        },
    )
    labels = [class_id for class_id in class_ids for _ in range(per_class)]
    num_shards = -(-len(labels) // batch_size)
    mine = list(range(process_index, num_shards, num_processes))
    todo = [shard for shard in mine if not shard_path(output_dir, shard).is_file()]
    if len(todo) < len(mine):
        logger.info(
            "process %d: %d of its %d shards already done, skipped", process_index, len(mine) - len(todo), len(mine)
        )
    with tqdm(
        total=len(todo) * batch_size, desc=f"sampling (process {process_index})", unit="img", disable=not progress
    ) as bar:
        for shard in todo:
            shard_labels = labels[shard * batch_size : (shard + 1) * batch_size]
            # Seed and shard mixed through a prime larger than any shard count: distinct (seed, shard) pairs get
            # distinct generators (seed s, shard k never collides with seed s + 1, shard k - 1 as s + k would).
            generator = torch.Generator().manual_seed(seed * 1_000_003 + shard)
            images = pipeline(shard_labels, generator=generator, output_type="pt", **sampling_kwargs).images
            uint8 = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()  # truncation, as the official sampler
            numeric = np.array([-1 if label is None else label for label in shard_labels], dtype=np.int64)
            temporary = shard_path(output_dir, shard).with_suffix(".tmp.npz")
            np.savez(temporary, images=uint8, labels=numeric)
            os.replace(temporary, shard_path(output_dir, shard))  # a killed run never leaves a half shard
            bar.update(len(shard_labels))
    return [shard_path(output_dir, shard) for shard in mine]


def merge_shards(output_dir: str | Path, npz_path: str | Path, expected: int | None = None) -> Path:
    """All shards -> one ADM-evaluator `.npz`: `arr_0` uint8 `[N, H, W, 3]` (what the evaluator reads) and
    `arr_1` the class labels (-1: unconditional)."""
    shards = sorted(Path(output_dir).glob("shard_*[0-9].npz"))
    if not shards:
        raise FileNotFoundError(f"no sample shards in {output_dir}")
    images, labels = [], []
    for path in shards:
        with np.load(path) as data:
            images.append(data["images"])
            labels.append(data["labels"])
    images, labels = np.concatenate(images), np.concatenate(labels)
    if expected is not None and len(images) != expected:
        raise RuntimeError(
            f"{len(images)} images in the shards of {output_dir}, expected {expected}: some shards are missing"
        )
    np.savez(npz_path, arr_0=images, arr_1=labels)
    return Path(npz_path)


def load_npz_images(path: str | Path) -> np.ndarray:
    with np.load(path) as data:
        if "arr_0" not in data:
            raise ValueError(f"{path} has no arr_0 (the ADM batch layout: uint8 images [N, H, W, 3])")
        images = data["arr_0"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{path}: arr_0 must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    return images


def add_reference(
    metrics: ImageMetrics, reference: str | Path, image_size: int, batch_size: int = 64, progress: bool = True
) -> str:
    """Feed the reference to the FID metric: an ADM reference batch's precomputed `mu`/`sigma` when present,
    else its `arr_0` images, or the images of a folder / dataset (resized and center-cropped to
    `image_size`). Returns a description."""
    reference = Path(reference)
    if reference.suffix == ".npz":
        with np.load(reference) as data:
            if "mu" in data and "sigma" in data:
                # The ADM batches hold their images beside the statistics; ours (`save_reference_statistics`) the count.
                num_samples = (
                    int(data["num_images"])
                    if "num_images" in data
                    else len(data["arr_0"])
                    if "arr_0" in data
                    else 50_000
                )
                set_reference_statistics(metrics.fid, data["mu"], data["sigma"], num_samples)
                return f"{reference.name} (precomputed statistics of {num_samples} images)"
        images = load_npz_images(reference)
        for start in tqdm(range(0, len(images), batch_size), desc="reference", disable=not progress):
            metrics.fid.update(
                torch.from_numpy(images[start : start + batch_size]).permute(0, 3, 1, 2).contiguous(), real=True
            )
        return f"{reference.name} ({len(images)} images)"
    count = 0
    for batch in _batched(
        tqdm(evaluation_images(str(reference), "train", image_size), desc="reference", disable=not progress), batch_size
    ):
        metrics.fid.update(to_uint8(torch.stack([pixels for pixels, _ in batch]), "round"), real=True)
        count += len(batch)
    return f"{reference} ({count} images)"


def save_reference_statistics(metrics: ImageMetrics, path: str | Path) -> Path:
    """Write the reference added to `metrics` as a reference batch of precomputed statistics (`mu`, `sigma`,
    `num_images`), so that repeated gFID runs against it skip the reference's Inception pass."""
    mean, covariance, num_images = reference_statistics(metrics.fid)
    np.savez(path, mu=mean, sigma=covariance, num_images=np.int64(num_images))
    return Path(path)


def evaluate_samples(
    npz_path: str | Path, metrics: ImageMetrics, batch_size: int = 64, progress: bool = True
) -> dict[str, float]:
    """FID/IS of the samples in an ADM `.npz` (the reference already added to `metrics`)."""
    images = load_npz_images(npz_path)
    for start in tqdm(range(0, len(images), batch_size), desc="scoring samples", disable=not progress):
        metrics.update(fake=torch.from_numpy(images[start : start + batch_size]).permute(0, 3, 1, 2).contiguous())
    return {**metrics.compute(), "num_images": len(images)}


__all__ = [
    "add_reference",
    "evaluate_reconstruction",
    "evaluate_samples",
    "load_npz_images",
    "merge_shards",
    "sample_shards",
    "save_reference_statistics",
    "shard_path",
]
