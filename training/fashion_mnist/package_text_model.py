#!/usr/bin/env python
"""Ship a trained Fashion-MNIST text-to-image pipeline inside the package (src/hf_titok/pretrained/fashion_mnist_text).

    python training/fashion_mnist/package_text_model.py --pipeline outputs/fashion_mnist/maskgen_vq/final \
        --settings outputs/fashion_mnist/text_sweep.json [--report outputs/fashion_mnist/text_report.json]

Sets the sampling defaults in the scheduler config - the best settings of an `evaluate_text.py --sweep` report
(`--settings`), or given one by one (these win) - stores the generator in float16 (it loads as float32) and writes
the model card, with the measured quality when an `evaluate_text.py` report (of the packaged defaults) is given.
"""

import argparse
import json
from pathlib import Path

import torch
from builtin_folder import save_builtin  # this folder (the script's own)

from hf_titok import FASHION_MNIST_TEXT_PIPELINE, MaskGenPipeline

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--pipeline", required=True)
parser.add_argument("--output-dir", default=FASHION_MNIST_TEXT_PIPELINE)
parser.add_argument("--settings", help="an evaluate_text.py --sweep report: its best settings become the defaults")
parser.add_argument("--steps", type=int)
parser.add_argument("--guidance-scale", type=float)
parser.add_argument("--temperature", type=float)
parser.add_argument("--report", help="evaluate_text.py report of the packaged defaults, for the card")
args = parser.parse_args()

settings = {}
if args.settings:
    sweep = json.loads(Path(args.settings).read_text())
    if "best_settings" not in sweep:
        parser.error(f"{args.settings} has no best_settings: write it with evaluate_text.py --sweep")
    settings = dict(sweep["best_settings"])
given = {"num_inference_steps": args.steps, "guidance_scale": args.guidance_scale, "temperature": args.temperature}
settings.update({key: value for key, value in given.items() if value is not None})

pipe = MaskGenPipeline.from_pretrained(args.pipeline)
pipe.scheduler = pipe.scheduler.from_config(pipe.scheduler.config, **settings)  # checks the settings too
shipped = pipe.sampling_settings()
results = ""
if args.report:
    report = json.loads(Path(args.report).read_text())
    held_out, seen = report["held_out_phrasings"], report["training_phrasings"]
    if held_out["settings"] != shipped:
        parser.error(f"{args.report} was measured with {held_out['settings']}, the shipped defaults are {shipped}")
    rec = report["reconstruction"]
    rows = "\n".join(
        f"| {name} | {held_out['consistency_per_class'][name]:.3f} | {seen['consistency_per_class'][name]:.3f} | "
        f"{report['classifier_test_accuracy_per_class'][name]:.3f} |"
        for name in held_out["consistency_per_class"]
    )
    results = f"""
## Quality (training/fashion_mnist/evaluate_text.py)

Prompt consistency: {report["per_class"]} images per class from prompts naming the class (its four names), labelled
by a small CNN trained on the real training split. In phrasings never seen in training (`a picture showing a ...`,
`this is a ...`, `a close-up of a ...`, `a catalogue photo of one ...`): mean **{held_out["consistency_mean"]:.3f}**;
in the training phrasings: {seen["consistency_mean"]:.3f}; the same classifier on the real test images:
**{report["classifier_test_accuracy_mean"]:.3f}**; the class-conditional built-in model (same classifier and count):
{report["class_conditional_consistency_mean"]:.3f}. Fréchet distance of the classifier's features, held-out-phrasing
samples vs. test images: {held_out["classifier_frechet_distance"]:.2f}.

| class | held-out phrasings | training phrasings | classifier on real test images |
|---|---|---|---|
{rows}

TA-TiTok reconstruction of the 10,000 test images from {rec["num_tokens"]} tokens, decoded with their test captions
(uint8 outputs): **PSNR {rec["psnr_db"]:.2f} dB**, SSIM {rec["ssim"]:.4f}; codebook usage {rec["codebook_usage"]:.3f}.
"""

pipe.transformer.to(torch.float16)  # half the size in the wheel; MaskGenPipeline.from_pretrained loads float32
size = save_builtin(pipe, args.output_dir)
sizes = {
    name: sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6
    for name in ("vqvae", "transformer", "text_encoder")
}
text, vq, generator = pipe.text_encoder.config, pipe.vqvae.config, pipe.transformer.config
components = "\n".join(
    f"| {name} | {what} | {sizes[key]:.2f} M |"
    for name, key, what in (
        (
            "text_encoder, tokenizer",
            "text_encoder",
            f"CLIP text tower ({text.num_hidden_layers} layers, {text.hidden_size} wide) trained with transformers' "
            f"`CLIPModel` contrastive loss on the captions and images (recipe `clip`); a CLIP BPE tokenizer learnt "
            f"from the captions ({len(pipe.tokenizer)} entries)",
        ),
        (
            "vqvae",
            "vqvae",
            f"TA-TiTok VQ, {vq.num_latent_tokens} tokens, codebook {vq.codebook_size}; its decoder reads the caption "
            "(recipe `tatitok`)",
        ),
        (
            "transformer",
            "transformer",
            f"MaskGen-VQ ({generator.num_layers} MM-DiT blocks, {generator.hidden_size} wide; recipe "
            "`maskgen_vq_stage1` on pre-tokenized ids and CLIP features)",
        ),
    )
)
card = f"""---
library_name: hf_titok
license: mit
datasets: [fashion_mnist]
pipeline_tag: text-to-image
---

# The built-in Fashion-MNIST text-to-image model

`hf_titok.FASHION_MNIST_TEXT_PIPELINE`: a `MaskGenPipeline` trained on captioned Fashion-MNIST (32x32) with this
package's own recipes (`training/fashion_mnist/train_text.sh`), shipped inside the package so that text to image
works offline:

```python
import torch, hf_titok
from hf_titok import MaskGenPipeline

pipe = MaskGenPipeline.from_pretrained(hf_titok.FASHION_MNIST_TEXT_PIPELINE)
image = pipe("a photo of a sneaker", generator=torch.Generator().manual_seed(0)).images[0]
```

| component | what | parameters |
|---|---|---|
{components}

Captions name the class under one of four names (`hf_titok.data.fashion_mnist.FASHION_MNIST_NAMES`) in one of ten
training phrasings; the test split uses four other phrasings. Default sampling: {shipped}.
{results}"""
(Path(args.output_dir) / "README.md").write_text(card)
print(f"wrote {args.output_dir} ({size:.1f} MB)")
