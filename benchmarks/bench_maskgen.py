#!/usr/bin/env python
"""Text-to-image throughput of the full-size MaskGen-L pipelines (VQ and KL) with random weights, against the
matmul peak measured in the same run.

    python benchmarks/bench_maskgen.py [--kind vq kl] [--batch-size 1] [--repeats 1] [--device cuda]
        [--dtype bfloat16]

The released architectures (MaskGen-L over TA-TiTok-BL-128 VQ / TA-TiTok-BL-32 VAE, CLIP ViT-L/14 text tower)
with random weights and the official sampling settings (VQ: 16 steps, guidance 12 cosine; KL: 32 steps with
100 reverse-diffusion steps of the head, guidance 3 linear). Prints one JSON line per kind: seconds per batch and
images/s for prompt -> tokens and prompt -> pixels, the achieved GFLOP/s and its fraction of the in-run matmul
peak. FLOPs are counted once with torch's FLOP counter; the transformers models (CLIP, TA-TiTok) run with eager
attention while counting, MaskGen's diffusers attention is fused SDPA, which the counter does not see (about 3% of
MaskGen's FLOPs at these lengths), so the fraction is a lower bound. The official repository publishes no
throughput for MaskGen. The CPU fast path (int8/bfloat16, `enable_fast_path`) covers TiTok's models only.
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from hf_titok import (
    MaskGenKLScheduler,
    MaskGenKLTransformer,
    MaskGenPipeline,
    MaskGenVQScheduler,
    MaskGenVQTransformer,
    TATiTokConfig,
    TATiTokTokenizer,
)
from hf_titok.releases import MASKGEN_PRESETS

from common import add_device_arguments, machine_info, matmul_peak_gflops, setup, timed


class _WordTokenizer:
    """Stands in for CLIP's BPE tokenizer (its vocabulary is not on this machine): one id per word."""

    bos_token_id, eos_token_id = 49406, 49407

    def __call__(self, text, add_special_tokens=True, truncation=False):
        ids = [1 + hash(word) % 49000 for word in text.lower().split()]
        return {"input_ids": [self.bos_token_id, *ids, self.eos_token_id]}

    def decode(self, ids):
        return " ".join(map(str, ids))


def clip_text_encoder() -> CLIPTextModelWithProjection:
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=768,
        eos_token_id=2,
    )
    return CLIPTextModelWithProjection(config).eval()


def pipeline(kind: str) -> MaskGenPipeline:
    preset = MASKGEN_PRESETS[f"maskgen_{kind}_l"]
    torch.manual_seed(0)
    vqvae = TATiTokTokenizer(TATiTokConfig.from_preset(preset.tokenizer)).eval()
    if kind == "vq":
        transformer = MaskGenVQTransformer(**preset.transformer_kwargs()).eval()
        scheduler = MaskGenVQScheduler(**preset.scheduler_kwargs())
    else:
        transformer = MaskGenKLTransformer(**preset.transformer_kwargs()).eval()
        scheduler = MaskGenKLScheduler(**preset.scheduler_kwargs())
    pipe = MaskGenPipeline(vqvae, transformer, scheduler, clip_text_encoder(), _WordTokenizer())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def count_flops(pipe: MaskGenPipeline, fn) -> float:
    models = [pipe.vqvae, pipe.text_encoder]
    saved = [model.config._attn_implementation for model in models]
    for model in models:
        model.config._attn_implementation = "eager"
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for model, implementation in zip(models, saved):
            model.config._attn_implementation = implementation
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", nargs="+", default=["vq", "kl"], choices=["vq", "kl"])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    add_device_arguments(parser)
    args = parser.parse_args()
    device, dtype = setup(args)
    peak = matmul_peak_gflops(device, dtype)
    prompts = ["A cozy cabin in a snowy forest, northern lights glowing in the sky."] * args.batch_size
    for kind in args.kind:
        pipe = pipeline(kind).to(device, dtype)

        def generate(output_type, pipe=pipe):
            return lambda: pipe(prompts, generator=torch.Generator(device).manual_seed(0), output_type=output_type)

        stages = {"tokens": generate("latent"), "images": generate("pt")}
        flops = {name: count_flops(pipe, fn) for name, fn in stages.items()}
        config = pipe.scheduler.config
        result = {
            "benchmark": f"maskgen_{kind}_l",
            "batch_size": args.batch_size,
            "num_inference_steps": config.num_inference_steps,
            "num_diffusion_steps": getattr(config, "num_diffusion_steps", None),
            "guidance_scale": config.guidance_scale,
            "guidance_schedule": config.guidance_schedule,
            "device": str(device),
            "dtype": args.dtype,
            "threads": torch.get_num_threads(),
            "parameters_millions": {
                name: round(sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6, 2)
                for name in ("transformer", "vqvae", "text_encoder")
            },
            "matmul_peak_gflops": round(peak, 1),
        }
        for name, fn in stages.items():
            seconds = timed(fn, args.repeats, device)
            result[f"{name}_seconds_per_batch"] = round(seconds, 3)
            result[f"{name}_images_per_second"] = round(args.batch_size / seconds, 4)
            result[f"{name}_gflops"] = round(flops[name] / seconds / 1e9, 1)
            result[f"{name}_fraction_of_peak"] = round(flops[name] / seconds / 1e9 / peak, 3)
        result.update(machine_info(device))
        print(json.dumps(result), flush=True)
        del pipe


if __name__ == "__main__":
    with torch.inference_mode():
        main()
