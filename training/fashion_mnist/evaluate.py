#!/usr/bin/env python
"""Quality of a Fashion-MNIST class-conditional pipeline (the built-in TiTok one by default; RAR too).

    python training/fashion_mnist/evaluate.py [--pipeline DIR] [--sweep] [--report report.json]

- Reconstruction on the 10k test split: PSNR and SSIM of the uint8 reconstructions, codebook usage/entropy.
- Class consistency: a small CNN trained on the real training split (cached in --classifier) labels
  `--per-class` generated images of each class; per-class and mean accuracy, beside the same classifier's
  accuracy on the real test images. Also the Frechet distance between classifier features of generated
  and real test images (lower = closer to the data distribution; a diversity check).
- `--sweep` tries sampling settings and reports each (used to pick the shipped defaults); the grid spans the
  settings the pipeline's sampler takes (MaskGIT: steps, guidance, schedule, temperature; RAR: guidance, its power,
  temperature), the other `--sweep-*` values are not used.
- `--fast-path` scores the CPU fast path (`from_pretrained(..., fast_path=True)`) beside the exact one: encode id
  agreement and PSNR on the test split, and class consistency with the same seeds.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from hf_titok import FASHION_MNIST_PIPELINE, RARPipeline, TiTokPipeline
from hf_titok.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist, to_rgb32
from hf_titok.evaluation.metrics import codebook_statistics, psnr, ssim
from hf_titok.loaders import load_pipeline


class Classifier(nn.Module):
    """A small CNN on 32x32 grey images (the mean of RGB)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 8 * 8, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def forward(self, images):  # [B, 3, 32, 32] in [0, 1]
        return self.head(self.features(images.mean(1, keepdim=True)))

    def embed(self, images):
        return self.features(images.mean(1, keepdim=True))


def to_tensor(uint8_images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(uint8_images).permute(0, 3, 1, 2).float() / 255


def train_classifier(path: Path, epochs: int = 5, seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    model = Classifier()
    if path.is_file():
        model.load_state_dict(load_file(str(path)))
        return model.eval()
    images, labels = load_fashion_mnist("train")
    x, y = to_tensor(to_rgb32(images)), torch.from_numpy(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc="training the classifier"):
        for batch in torch.randperm(len(x), generator=generator).split(256):
            images_batch = x[batch]
            flip = torch.rand(len(batch), generator=generator) < 0.5
            images_batch = torch.where(flip[:, None, None, None], images_batch.flip(-1), images_batch)
            loss = F.cross_entropy(model(images_batch), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(path))
    return model.eval()


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> list[float]:
    return [float((predictions[labels == c] == c).float().mean()) for c in range(10)]


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """|mu_a - mu_b|^2 + tr(A + B - 2 (A^1/2 B A^1/2)^1/2), with symmetric eigendecompositions."""
    a, b = a.double().numpy(), b.double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    cross = np.sqrt(np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


@torch.no_grad()
def encode_ids(pipe: TiTokPipeline | RARPipeline, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    return torch.cat([pipe.vqvae.encode(batch).token_ids for batch in images.split(batch_size)])


@torch.no_grad()
def reconstruction_metrics(
    pipe: TiTokPipeline | RARPipeline, images: torch.Tensor, batch_size: int = 500, decoder_inputs=None
) -> dict:
    """PSNR / SSIM of the uint8 reconstructions of `images` and the codebook statistics of their ids.
    `decoder_inputs(start, stop)`: the decoder's inputs beyond the tokens for images `start:stop` (TA-TiTok: text)."""
    tokenizer = pipe.vqvae
    psnrs, ssims, ids = [], [], []
    for start in tqdm(range(0, len(images), batch_size), desc="reconstructing the test split"):
        batch = images[start : start + batch_size]
        extra = decoder_inputs(start, start + len(batch)) if decoder_inputs is not None else {}
        encoded = tokenizer.encode(batch)
        reconstruction = (
            tokenizer.decode(encoded.token_ids, **extra).clamp(0, 1) * 255
        ).round() / 255  # uint8, as evaluated officially
        psnrs.append(psnr(reconstruction, batch))
        ssims.append(ssim(reconstruction, batch))
        ids.append(encoded.token_ids)
    stats = codebook_statistics(torch.cat(ids), tokenizer.config.codebook_size)
    return {
        "psnr_db": float(torch.cat(psnrs).mean()),
        "ssim": float(torch.cat(ssims).mean()),
        "num_tokens": tokenizer.config.num_latent_tokens,
        **{k: round(v, 4) for k, v in stats.items()},
    }


@torch.no_grad()
def generation_metrics(
    pipe: TiTokPipeline | RARPipeline,
    classifier: Classifier,
    real_features: torch.Tensor,
    per_class: int,
    seed: int = 0,
    **settings,
) -> dict:
    labels = torch.arange(10).repeat_interleave(per_class)
    images = pipe(
        list(range(10)),
        num_images_per_label=per_class,
        generator=torch.Generator().manual_seed(seed),
        output_type="pt",
        **settings,
    ).images
    images = (images * 255).floor() / 255  # what the PNGs hold
    predictions = classifier(images).argmax(-1)
    accuracy = per_class_accuracy(predictions, labels)
    return {
        "settings": pipe.sampling_settings(**settings),
        "class_consistency_per_class": dict(zip(FASHION_MNIST_CLASSES, accuracy)),
        "class_consistency_mean": float(np.mean(accuracy)),
        "classifier_frechet_distance": frechet_distance(classifier.embed(images), real_features),
    }


def best_settings(sweep: list[dict], target: float, tolerance: float = 0.05) -> dict:
    """The shipped defaults: the lowest classifier-feature Frechet distance (closest to the data: sharp and
    diverse) among the settings whose class consistency is within `tolerance` of `target`, the classifier's
    accuracy on real test images - samples should be as recognisable as real images, and far more
    recognisable means less varied than the data; if none is within it, the setting closest to `target`."""
    eligible = [row for row in sweep if abs(row["class_consistency_mean"] - target) <= tolerance]
    if not eligible:
        return min(sweep, key=lambda row: abs(row["class_consistency_mean"] - target))["settings"]
    return min(eligible, key=lambda row: row["classifier_frechet_distance"])["settings"]


def earlier_sweep_rows(parser: argparse.ArgumentParser, args: argparse.Namespace, report: dict) -> list[dict]:
    """The rows of the `--sweep-from` reports; each must come from the same pipeline, classifier and sample count,
    or its numbers would not be comparable with the new ones."""
    rows = []
    for path in args.sweep_from:
        earlier = json.loads(Path(path).read_text())
        same = {
            key: (earlier.get(key), report[key]) for key in ("pipeline", "per_class", "classifier_test_accuracy_mean")
        }
        different = [f"{key} {old!r} (here {new!r})" for key, (old, new) in same.items() if old != new]
        if different:
            parser.error(f"--sweep-from {path} is not comparable with this run: {', '.join(different)}")
        if "sweep" not in earlier:
            parser.error(f"--sweep-from {path} has no sweep rows: write it with --sweep")
        rows += [row for row in earlier["sweep"] if row["settings"] not in [kept["settings"] for kept in rows]]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=FASHION_MNIST_PIPELINE)
    parser.add_argument("--classifier", default="outputs/fashion_mnist/classifier.safetensors")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--sweep", action="store_true", help="score every combination of the --sweep-* values")
    parser.add_argument("--sweep-steps", type=int, nargs="+", default=[6, 8, 12])
    parser.add_argument("--sweep-guidance", type=float, nargs="+", default=[0.5, 1.5, 3.0])
    parser.add_argument("--sweep-temperature", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument(
        "--sweep-schedule", nargs="+", default=["linear"], choices=["constant", "linear", "power-cosine"]
    )
    parser.add_argument(
        "--sweep-guidance-pow", type=float, nargs="+", help="RAR's guidance power (default: the pipeline's, not swept)"
    )
    parser.add_argument(
        "--sweep-from",
        nargs="+",
        default=[],
        metavar="REPORT",
        help="earlier --sweep reports of the same pipeline and classifier: their rows are kept and ranked "
        "with the new ones, and settings they measured are not run again (also resumes a killed sweep)",
    )
    parser.add_argument("--report", default="outputs/fashion_mnist/report.json")
    parser.add_argument("--fast-path", action="store_true", help="also score the CPU fast path against the exact one")
    args = parser.parse_args()

    pipe = load_pipeline(str(args.pipeline))  # TiTokPipeline or RARPipeline, as its model_index.json says
    classifier = train_classifier(Path(args.classifier))
    test_images, test_labels = load_fashion_mnist("test")
    test = to_tensor(to_rgb32(test_images))
    with torch.no_grad():
        real_predictions = torch.cat([classifier(b).argmax(-1) for b in test.split(1000)])
        real_features = torch.cat([classifier.embed(b) for b in test.split(1000)])
    real_accuracy = per_class_accuracy(real_predictions, torch.from_numpy(test_labels))
    report = {
        "pipeline": str(args.pipeline),
        "per_class": args.per_class,
        "reconstruction": reconstruction_metrics(pipe, test),
        "classifier_test_accuracy_per_class": dict(zip(FASHION_MNIST_CLASSES, real_accuracy)),
        "classifier_test_accuracy_mean": float(np.mean(real_accuracy)),
        "real_test_frechet_distance_reference": frechet_distance(real_features[:5000], real_features[5000:]),
        "generation": generation_metrics(pipe, classifier, real_features, args.per_class),
    }
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    if args.fast_path:
        fast = type(pipe).from_pretrained(args.pipeline, fast_path=True)
        fast.set_progress_bar_config(disable=True)
        fast_reconstruction = reconstruction_metrics(fast, test)
        fast_generation = generation_metrics(fast, classifier, real_features, args.per_class)
        report["fast_path"] = {
            "encode_id_agreement": float((encode_ids(fast, test) == encode_ids(pipe, test)).float().mean()),
            "psnr_db": fast_reconstruction["psnr_db"],
            "psnr_delta_db": fast_reconstruction["psnr_db"] - report["reconstruction"]["psnr_db"],
            "class_consistency_mean": fast_generation["class_consistency_mean"],
            "class_consistency_delta": fast_generation["class_consistency_mean"]
            - report["generation"]["class_consistency_mean"],
            "classifier_frechet_distance": fast_generation["classifier_frechet_distance"],
        }
        print("fast path:", {key: round(value, 4) for key, value in report["fast_path"].items()})
    if args.sweep:
        report["sweep"] = earlier_sweep_rows(parser, args, report)
        measured = [row["settings"] for row in report["sweep"]]
        values = {
            "num_inference_steps": args.sweep_steps,
            "guidance_scale": args.sweep_guidance,
            "guidance_schedule": args.sweep_schedule,
            "guidance_scale_pow": args.sweep_guidance_pow,
            "temperature": args.sweep_temperature,
        }
        names = [name for name in values if values[name] and name in pipe.scheduler.setting_names()]
        grid = [dict(zip(names, row)) for row in itertools.product(*(values[name] for name in names))]
        todo = [settings for settings in grid if pipe.sampling_settings(**settings) not in measured]
        print(
            f"sweep: {len(grid)} settings, {len(grid) - len(todo)} of them already measured; "
            f"{len(report['sweep'])} rows kept"
        )
        for settings in tqdm(todo, desc="sweeping sampling settings"):
            report["sweep"].append(generation_metrics(pipe, classifier, real_features, args.per_class, **settings))
            Path(args.report).write_text(json.dumps(report, indent=2))  # a killed sweep resumes with --sweep-from
        for row in sorted(report["sweep"], key=lambda r: r["classifier_frechet_distance"])[:10]:
            print(
                f"{row['settings']}: consistency {row['class_consistency_mean']:.3f}, FD "
                f"{row['classifier_frechet_distance']:.2f}"
            )
        target = report["classifier_test_accuracy_mean"]
        report["sweep_best"] = best_settings(report["sweep"], target)
        print(
            f"best (lowest FD among the settings with class consistency within 0.05 of {target:.3f}): "
            f"{report['sweep_best']}"
        )
    Path(args.report).write_text(json.dumps(report, indent=2))
    rec, gen = report["reconstruction"], report["generation"]
    print(
        f"reconstruction: PSNR {rec['psnr_db']:.2f} dB, SSIM {rec['ssim']:.4f}, codebook usage "
        f"{rec['codebook_usage']:.3f}"
    )
    print(f"classifier on real test images: {report['classifier_test_accuracy_mean']:.4f}")
    print(
        f"class consistency of samples: {gen['class_consistency_mean']:.4f}, FD "
        f"{gen['classifier_frechet_distance']:.2f}"
    )
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
