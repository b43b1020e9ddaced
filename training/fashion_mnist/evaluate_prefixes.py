#!/usr/bin/env python
"""Reconstruction quality against the number of tokens kept: a tokenizer trained with Tail Token Drop beside the
built-in TiTok tokenizer (trained on full sequences only).

    python training/fashion_mnist/evaluate_prefixes.py --tokenizer outputs/fashion_mnist/prefix_tokenizer/final \
        [--lengths 1 2 4 8 16 32] [--report outputs/fashion_mnist/prefix_report.json] [--plot prefix_curve.png]

PSNR and SSIM of the uint8 reconstructions of the 10k test split (through each tokenizer's own processor) decoded
from the first k tokens. The built-in tokenizer refuses prefixes (it was not trained for them); to draw its curve
this script switches `prefix_decoding` on for a copy, which shows what that refusal protects users from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_titok import FASHION_MNIST_PIPELINE, TiTokImageProcessor, TiTokTokenizer
from hf_titok.data.fashion_mnist import load_fashion_mnist, to_rgb32
from hf_titok.evaluation.metrics import psnr, ssim
from hf_titok.models.titok.image_processing_titok import to_float, to_uint8
from hf_titok.visualization import line_plot, plot_panels


@torch.no_grad()
def prefix_curve(tokenizer: TiTokTokenizer, pixel_values: torch.Tensor, lengths: list[int], batch_size: int = 500):
    """Mean PSNR and SSIM of the uint8 reconstructions from each prefix length (each image encoded once)."""
    sums = {k: {"psnr": 0.0, "ssim": 0.0} for k in lengths}
    for batch in tqdm(pixel_values.split(batch_size), desc="reconstructing from prefixes"):
        ids = tokenizer.encode(batch).token_ids
        for k in lengths:
            reconstruction = to_float(to_uint8(tokenizer.decode(ids[:, :k])))
            sums[k]["psnr"] += float(psnr(reconstruction, batch).sum())
            sums[k]["ssim"] += float(ssim(reconstruction, batch).sum())
    count = len(pixel_values)
    return [{"num_tokens": k, "psnr": sums[k]["psnr"] / count, "ssim": sums[k]["ssim"] / count} for k in lengths]


def tokenizer_and_processor(folder: str) -> tuple[TiTokTokenizer, TiTokImageProcessor]:
    """A tokenizer folder (with its processor's config) or a pipeline folder (`vqvae/`, `image_processor/`)."""
    path = Path(folder)
    if (path / "model_index.json").is_file():
        return TiTokTokenizer.from_pretrained(path / "vqvae").eval(), TiTokImageProcessor.from_pretrained(
            path / "image_processor"
        )
    return TiTokTokenizer.from_pretrained(path).eval(), TiTokImageProcessor.from_pretrained(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="the Tail Token Drop tokenizer folder")
    parser.add_argument(
        "--baseline", default=FASHION_MNIST_PIPELINE, help="a tokenizer folder or a pipeline (default: the built-in)"
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--report", default="outputs/fashion_mnist/prefix_report.json")
    parser.add_argument("--plot", default="outputs/fashion_mnist/prefix_curve.png")
    args = parser.parse_args()

    images, _ = load_fashion_mnist("test")
    raw = to_rgb32(images)
    models = {  # both loaded before any image is reconstructed (a wrong folder fails in seconds, not minutes)
        name: tokenizer_and_processor(folder)
        for name, folder in (
            ("Tail Token Drop", args.tokenizer),
            ("built-in TiTok (full sequences only)", args.baseline),
        )
    }
    curves = {}
    for name, (tokenizer, processor) in models.items():
        tokenizer.config.prefix_decoding = True  # the baseline refuses prefixes otherwise; measuring why
        pixel_values = torch.cat(
            [processor(list(chunk), return_tensors="pt")["pixel_values"] for chunk in np.array_split(raw, 20)]
        )
        curves[name] = prefix_curve(tokenizer, pixel_values, sorted(set(args.lengths)))
    report = {"tokenizer": args.tokenizer, "baseline": args.baseline, "num_images": len(raw), "curves": curves}
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    lengths = [row["num_tokens"] for row in next(iter(curves.values()))]
    panels = [
        line_plot(
            lengths,
            {name: [row[key] for row in rows] for name, rows in curves.items()},
            f"{title} vs. tokens kept (Fashion-MNIST test, 10k)",
            "tokens kept",
            title,
            log2_x=True,
        )
        for key, title in (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))
    ]
    plot_panels(panels).save(args.plot)
    print("| tokens kept | " + " | ".join(f"{name} PSNR / SSIM" for name in curves) + " |")
    print("|---" * (len(curves) + 1) + "|")
    for i, k in enumerate(lengths):
        cells = [f"{rows[i]['psnr']:.2f} dB / {rows[i]['ssim']:.3f}" for rows in curves.values()]
        print(f"| {k} | " + " | ".join(cells) + " |")
    print(f"wrote {args.report} and {args.plot}")


if __name__ == "__main__":
    main()
