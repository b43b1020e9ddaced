"""The one-command demo: samples and reconstructions from the built-in Fashion-MNIST models, offline.

    python -m hf_titok.demo [--output-dir .] [--samples-per-class 8] [--seed 0]

Writes `samples.png` (every class x several class-conditional samples of the built-in MaskGIT, labelled),
`rar_samples.png` (the same from the built-in RAR, autoregressive over the same tokenizer's 32 tokens),
`reconstructions.png` (Fashion-MNIST test images beside their reconstructions from their tokens),
`prefix_reconstructions.png` (test images decoded from growing prefixes of their tokens by the built-in tokenizer
trained with Tail Token Drop) and `text_samples.png` (text to image with the built-in MaskGen: one prompt per class,
in a phrasing never seen in training, as the row label).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import PIL.Image
import torch

from .data.fashion_mnist import (
    CAPTION_TEMPLATES,
    FASHION_MNIST_NAMES,
    FASHION_MNIST_PIPELINE,
    FASHION_MNIST_PREFIX_TOKENIZER,
    FASHION_MNIST_RAR_PIPELINE,
    FASHION_MNIST_TEXT_PIPELINE,
    demo_test_images,
)
from .evaluation.metrics import psnr
from .models.maskgen.pipeline_maskgen import MaskGenPipeline
from .models.rar.pipeline_rar import RARPipeline
from .models.titok.image_processing_titok import TiTokImageProcessor, to_float, to_uint8
from .models.titok.modeling_titok import TiTokTokenizer
from .models.titok_maskgit.pipeline_titok import TiTokPipeline
from .visualization import image_grid


def write_samples(pipe: TiTokPipeline | RARPipeline, path: Path, samples_per_class: int, seed: int) -> PIL.Image.Image:
    """Every class x `samples_per_class` samples, a row per class; the title says how they were sampled."""
    classes = sorted(pipe.id2label)
    images = pipe(classes, num_images_per_label=samples_per_class, generator=torch.Generator().manual_seed(seed)).images
    rows = [images[i * samples_per_class : (i + 1) * samples_per_class] for i in range(len(classes))]
    labels = [pipe.label_name(c) for c in classes]
    sampling = SimpleNamespace(**pipe.sampling_settings())
    num_tokens = pipe.transformer.config.num_latent_tokens
    if isinstance(pipe, RARPipeline):
        title = (
            f"RAR samples, {num_tokens} TiTok tokens one by one, guidance {sampling.guidance_scale} (power "
            f"{sampling.guidance_scale_pow}), temperature {sampling.temperature}, seed {seed}"
        )
    else:
        title = (
            f"TiTok samples, {num_tokens} tokens, {sampling.num_inference_steps} steps, "
            f"guidance {sampling.guidance_scale} ({sampling.guidance_schedule}), seed {seed}"
        )
    grid = image_grid(rows, row_labels=labels, title=title, cell_size=64)
    grid.save(path)
    return grid


def demo_prompts() -> list[str]:
    """One prompt per Fashion-MNIST class, each in a phrasing the text model never saw in training."""
    templates = CAPTION_TEMPLATES["test"]
    return [templates[label % len(templates)].format(names[0]) for label, names in enumerate(FASHION_MNIST_NAMES)]


def write_text_samples(pipe: MaskGenPipeline, path: Path, samples_per_prompt: int, seed: int) -> PIL.Image.Image:
    prompts = demo_prompts()
    images = pipe(
        prompts, num_images_per_prompt=samples_per_prompt, generator=torch.Generator().manual_seed(seed)
    ).images
    rows = [images[i * samples_per_prompt : (i + 1) * samples_per_prompt] for i in range(len(prompts))]
    sampling = SimpleNamespace(**pipe.sampling_settings())
    title = (
        f"MaskGen text to image, {pipe.transformer.config.num_latent_tokens} tokens, {sampling.num_inference_steps} "
        f"steps, guidance {sampling.guidance_scale}, seed {seed}"
    )
    grid = image_grid(rows, row_labels=prompts, title=title, cell_size=64)
    grid.save(path)
    return grid


@torch.no_grad()
def write_reconstructions(pipe: TiTokPipeline, path: Path, count: int) -> float:
    """Test images beside their reconstructions; returns the mean PSNR (dB) of the shown images."""
    images, labels = demo_test_images()
    order = np.argsort(np.arange(len(labels)) % 3 * 100 + labels, kind="stable")[:count]  # one per class first
    pixel_values = to_float(torch.from_numpy(images[order]).permute(0, 3, 1, 2))
    token_ids = pipe.vqvae.encode(pixel_values).token_ids
    reconstruction = pipe.vqvae.decode(token_ids)
    originals = pipe.processor.postprocess(pixel_values, rounding="round")
    reconstructed = pipe.processor.postprocess(reconstruction)
    value = float(psnr(to_float(to_uint8(reconstruction)), pixel_values).mean())  # of the uint8 images shown
    columns = 5
    rows = []
    for start in range(0, len(order), columns):
        rows.append(
            [
                image
                for pair in zip(originals[start : start + columns], reconstructed[start : start + columns])
                for image in pair
            ]
        )
    header = [label for _ in range(columns) for label in ("input", "recon")]
    title = f"TiTok reconstructions from {token_ids.shape[1]} tokens per image (PSNR {value:.1f} dB)"
    image_grid(rows, column_labels=header, title=title, cell_size=64).save(path)
    return value


PREFIX_LENGTHS = (1, 2, 4, 8, 16, 32)


@torch.no_grad()
def write_prefix_reconstructions(folder: str, path: Path, count: int) -> list[float]:
    """One test image per row, decoded from its first 1, 2, 4, ... tokens by a tokenizer that decodes prefixes;
    returns the mean PSNR (dB) of the shown images per prefix length."""
    tokenizer = TiTokTokenizer.from_pretrained(folder).eval()
    processor = TiTokImageProcessor.from_pretrained(folder)
    images, labels = demo_test_images()
    order = np.argsort(labels, kind="stable")[:: max(1, len(labels) // count)][:count]  # different classes
    pixel_values = to_float(torch.from_numpy(images[order]).permute(0, 3, 1, 2))
    ids = tokenizer.encode(pixel_values).token_ids
    lengths = [k for k in PREFIX_LENGTHS if k <= ids.shape[1]]
    decoded = [tokenizer.decode(ids[:, :k]) for k in lengths]
    values = [float(psnr(to_float(to_uint8(pixels)), pixel_values).mean()) for pixels in decoded]
    columns = [processor.postprocess(pixel_values, rounding="round")] + [processor.postprocess(d) for d in decoded]
    rows = [[column[i] for column in columns] for i in range(len(order))]
    header = ["input"] + [f"{k} tok" for k in lengths]
    title = "Decoded from the first k tokens (Tail Token Drop); PSNR " + ", ".join(
        f"{k}: {value:.1f}" for k, value in zip(lengths, values)
    )
    image_grid(rows, column_labels=header, title=title, cell_size=64).save(path)
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=FASHION_MNIST_PIPELINE, help="a TiTokPipeline (default: the built-in one)")
    parser.add_argument(
        "--rar-model", default=FASHION_MNIST_RAR_PIPELINE, help="a RARPipeline (default: the built-in one)"
    )
    parser.add_argument(
        "--prefix-tokenizer",
        default=FASHION_MNIST_PREFIX_TOKENIZER,
        help="a tokenizer that decodes prefixes (default: the built-in one)",
    )
    parser.add_argument(
        "--text-model", default=FASHION_MNIST_TEXT_PIPELINE, help="a MaskGenPipeline (default: the built-in one)"
    )
    parser.add_argument("--output-dir", default=".")
    parser.add_argument("--samples-per-class", type=int, default=8)
    parser.add_argument("--reconstructions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pipe = TiTokPipeline.from_pretrained(args.model)
    write_samples(pipe, out / "samples.png", args.samples_per_class, args.seed)
    value = write_reconstructions(pipe, out / "reconstructions.png", args.reconstructions)
    print(
        f"wrote {out / 'samples.png'} ({len(pipe.id2label)} classes x {args.samples_per_class} samples, seed "
        f"{args.seed})"
    )
    rar_pipe = RARPipeline.from_pretrained(args.rar_model)
    rar_pipe.set_progress_bar_config(disable=True)
    write_samples(rar_pipe, out / "rar_samples.png", args.samples_per_class, args.seed)
    print(f"wrote {out / 'rar_samples.png'} (the same classes and count from the built-in RAR)")
    values = write_prefix_reconstructions(args.prefix_tokenizer, out / "prefix_reconstructions.png", 6)
    print(
        f"wrote {out / 'prefix_reconstructions.png'} (6 test images from their first "
        f"{', '.join(str(k) for k in PREFIX_LENGTHS)} tokens; PSNR {values[0]:.1f} to {values[-1]:.1f} dB)"
    )
    text_pipe = MaskGenPipeline.from_pretrained(args.text_model)
    text_pipe.set_progress_bar_config(disable=True)
    write_text_samples(text_pipe, out / "text_samples.png", args.samples_per_class, args.seed)
    print(
        f"wrote {out / 'reconstructions.png'} ({args.reconstructions} test images, "
        f"{pipe.vqvae.config.num_latent_tokens} tokens each, PSNR {value:.2f} dB)"
    )
    print(
        f"wrote {out / 'text_samples.png'} ({len(demo_prompts())} prompts x {args.samples_per_class} samples, seed "
        f"{args.seed}) in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
