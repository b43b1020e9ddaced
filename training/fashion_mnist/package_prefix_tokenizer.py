#!/usr/bin/env python
"""Ship the Tail Token Drop tokenizer inside the package (src/hf_titok/pretrained/fashion_mnist_prefix).

    python training/fashion_mnist/package_prefix_tokenizer.py --tokenizer outputs/fashion_mnist/prefix_tokenizer/final \
        [--report outputs/fashion_mnist/prefix_report.json]

Saves the tokenizer and its processor for loading by the installed package (no code copies) and writes the model
card, with the quality-vs-tokens table of an `evaluate_prefixes.py` report when given.
"""

import argparse
import json
from pathlib import Path

from builtin_folder import save_builtin  # this folder (the script's own)

from hf_titok import FASHION_MNIST_PREFIX_TOKENIZER, TiTokImageProcessor, TiTokTokenizer

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--tokenizer", required=True)
parser.add_argument("--output-dir", default=FASHION_MNIST_PREFIX_TOKENIZER)
parser.add_argument("--report", help="evaluate_prefixes.py report for the card")
args = parser.parse_args()

tokenizer = TiTokTokenizer.from_pretrained(args.tokenizer)
if not tokenizer.config.prefix_decoding:
    parser.error(f"{args.tokenizer} does not decode prefixes (config.prefix_decoding is False)")
processor = TiTokImageProcessor.from_pretrained(args.tokenizer)
results = ""
if args.report:
    report = json.loads(Path(args.report).read_text())
    names = list(report["curves"])
    rows = "\n".join(
        f"| {k} | "
        + " | ".join(
            f"{report['curves'][name][i]['psnr']:.2f} dB / {report['curves'][name][i]['ssim']:.3f}" for name in names
        )
        + " |"
        for i, k in enumerate(row["num_tokens"] for row in report["curves"][names[0]])
    )
    results = f"""
## Quality against the tokens kept (training/fashion_mnist/evaluate_prefixes.py)

PSNR / SSIM of the uint8 reconstructions of the {report["num_images"]} test images decoded from their first k tokens:

| tokens kept | {" | ".join(names)} |
|---|{"---|" * len(names)}
{rows}

The built-in tokenizer refuses prefixes (it was trained on full sequences only); its column is measured with that
check switched off, to show what the refusal protects from.
"""
size = save_builtin(tokenizer, args.output_dir, processor=processor)
card = f"""---
library_name: hf_titok
license: mit
datasets: [zalando-datasets/fashion_mnist]
pipeline_tag: image-feature-extraction
tags: [titok, one-d-piece, tail-token-drop, image-tokenization, fashion-mnist]
---

# A Fashion-MNIST TiTok that decodes any prefix of its tokens (built into hf_titok)

`hf_titok.FASHION_MNIST_PREFIX_TOKENIZER`: the built-in TiTok tokenizer (32 tokens per 32x32 image, codebook
{tokenizer.config.codebook_size}) whose decoder was fine-tuned with One-D-Piece's Tail Token Drop (config
`fashion_mnist/prefix_tokenizer`: every step decodes the first k tokens, k uniform on 1..32; 1000 steps of 32 images,
the reconstruction loss with a small GAN term from step 700; about 10 minutes on 2 CPU cores). Its encoder and
codebook are the built-in tokenizer's, frozen: it gives the same ids, so the built-in MaskGIT and RAR generate for it
too. It ships beside the built-in tokenizer rather than replacing it: decoding every prefix well costs some of the
full sequence's quality (the last row of the table below), and the built-in generators' measured numbers are the
built-in tokenizer's.

```python
import torch, hf_titok
from hf_titok import TiTokImageProcessor, TiTokTokenizer

tokenizer = TiTokTokenizer.from_pretrained(hf_titok.FASHION_MNIST_PREFIX_TOKENIZER)
processor = TiTokImageProcessor.from_pretrained(hf_titok.FASHION_MNIST_PREFIX_TOKENIZER)
ids = tokenizer.encode(processor(image, return_tensors="pt")["pixel_values"]).token_ids
coarse = tokenizer.decode(ids[:, :4])   # the image from its first 4 tokens
```
{results}
Data: Fashion-MNIST, (c) Zalando SE, MIT licence. Methods: Yu et al., "An Image is Worth 32 Tokens for Reconstruction
and Generation", NeurIPS 2024; Miwa et al., "One-D-Piece: Image Tokenizer Meets Quality-Controllable Compression", 2025.
"""
(Path(args.output_dir) / "README.md").write_text(card)
print(f"wrote {args.output_dir} ({size:.1f} MB)")
