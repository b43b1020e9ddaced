#!/usr/bin/env python
"""Sampling throughput of a TiTok pipeline preset on this machine, against its measured fp32 matmul peak.

    python benchmarks/bench_pipeline.py [--preset titok_l32] [--batch-size 8] [--repeats 2]

Random weights, fp32, the preset's official gFID sampling settings (steps, guidance schedule, temperature,
softmax annealing; one batched conditional+unconditional forward per step). Prints one JSON line with
samples/s for token generation alone and for generation + decoding to 256x256 pixels, the achieved GFLOP/s
of each (FLOPs counted once with eager attention so the attention matmuls are seen) and the fraction of
the peak fp32 matmul rate measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from bench_tokenizer import count_flops, matmul_peak_gflops, timed
from hf_titok import (
    TITOK_MASKGIT_PRESETS,
    TiTokConfig,
    TiTokMaskGIT,
    TiTokMaskGITConfig,
    TiTokMaskGITScheduler,
    TiTokPipeline,
    TiTokTokenizer,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="titok_l32", choices=sorted(TITOK_MASKGIT_PRESETS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    peak = matmul_peak_gflops()
    transformer = TiTokMaskGIT(TiTokMaskGITConfig.from_preset(args.preset)).eval()
    vqvae = TiTokTokenizer(TiTokConfig.from_preset(args.preset)).eval()
    pipe = TiTokPipeline(vqvae, transformer, TiTokMaskGITScheduler(mask_token_id=transformer.config.mask_token_id))
    pipe.set_progress_bar_config(disable=True)
    labels = list(range(args.batch_size))

    def generate(output_type):
        return lambda: pipe(labels, generator=torch.Generator().manual_seed(0), output_type=output_type)

    config = transformer.config
    result = {
        "benchmark": "pipeline",
        "preset": args.preset,
        "batch_size": args.batch_size,
        "num_inference_steps": config.num_inference_steps,
        "guidance_scale": config.guidance_scale,
        "guidance_schedule": config.guidance_schedule,
        "temperature": config.temperature,
        "softmax_temperature_annealing": config.softmax_temperature_annealing,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "generator_parameters_millions": round(sum(p.numel() for p in transformer.parameters()) / 1e6, 2),
        "matmul_peak_gflops": round(peak, 1),
    }
    for name, output_type in (("tokens", "latent"), ("images", "pt")):
        seconds = timed(generate(output_type), args.repeats)
        flops = count_flops([transformer, vqvae], generate(output_type))
        result[f"{name}_seconds_per_batch"] = round(seconds, 3)
        result[f"{name}_samples_per_second"] = round(args.batch_size / seconds, 4)
        result[f"{name}_gflops"] = round(flops / seconds / 1e9, 1)
        result[f"{name}_fraction_of_peak"] = round(flops / seconds / 1e9 / peak, 3)
    result["torch"] = torch.__version__
    result["cpu"] = platform.processor() or platform.machine()
    print(json.dumps(result))


if __name__ == "__main__":
    with torch.inference_mode():
        main()
