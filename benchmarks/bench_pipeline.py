#!/usr/bin/env python
"""Sampling throughput of a TiTok pipeline preset, against the matmul peak measured in the same run.

    python benchmarks/bench_pipeline.py [--preset titok_l32] [--batch-size 8] [--repeats 2]
        [--device cuda] [--dtype bfloat16] [--compile]

Random weights, the preset's official gFID sampling settings (steps, guidance schedule, temperature,
softmax annealing; one batched conditional+unconditional forward per step). Prints one JSON line with
samples/s for token generation alone and for generation + decoding to 256x256 pixels, the achieved GFLOP/s
of each (FLOPs counted once with eager attention so the attention matmuls are seen), the fraction of the
peak matmul rate (same device and dtype) measured in the same run, and the paper's A100 throughput of
sampling + decoding to read a GPU run against.
"""

from __future__ import annotations

import argparse
import json

import torch

from hf_titok import (
    TITOK_MASKGIT_PRESETS,
    TiTokConfig,
    TiTokMaskGIT,
    TiTokMaskGITConfig,
    TiTokMaskGITScheduler,
    TiTokPipeline,
    TiTokTokenizer,
)

from common import (
    PAPER_A100_SAMPLES_PER_SECOND,
    add_device_arguments,
    compile_tokenizer,
    count_flops,
    machine_info,
    matmul_peak_gflops,
    setup,
    timed,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="titok_l32", choices=sorted(TITOK_MASKGIT_PRESETS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    add_device_arguments(parser)
    args = parser.parse_args()
    device, dtype = setup(args)

    peak = matmul_peak_gflops(device, dtype)
    transformer = TiTokMaskGIT(TiTokMaskGITConfig.from_preset(args.preset)).eval()
    vqvae = TiTokTokenizer(TiTokConfig.from_preset(args.preset)).eval()
    pipe = TiTokPipeline(vqvae, transformer, TiTokMaskGITScheduler.from_preset(args.preset))
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    labels = list(range(args.batch_size))

    def generate(output_type):
        # A generator on the pipeline's device: no host-to-device copy of the Gumbel noise.
        return lambda: pipe(labels, generator=torch.Generator(device).manual_seed(0), output_type=output_type)

    stages = {"tokens": generate("latent"), "images": generate("pt")}
    flops = {name: count_flops([transformer, vqvae], fn) for name, fn in stages.items()}  # eager
    if args.compile:
        transformer.compile(fullgraph=True)
        compile_tokenizer(vqvae)

    sampling = pipe.scheduler.config
    result = {
        "benchmark": "pipeline",
        "preset": args.preset,
        "batch_size": args.batch_size,
        "num_inference_steps": sampling.num_inference_steps,
        "guidance_scale": sampling.guidance_scale,
        "guidance_schedule": sampling.guidance_schedule,
        "temperature": sampling.temperature,
        "softmax_temperature_annealing": sampling.softmax_temperature_annealing,
        "device": str(device),
        "dtype": args.dtype,
        "compile": args.compile,
        "threads": torch.get_num_threads(),
        "generator_parameters_millions": round(sum(p.numel() for p in transformer.parameters()) / 1e6, 2),
        "matmul_peak_gflops": round(peak, 1),
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for name, fn in stages.items():
        seconds = timed(fn, args.repeats, device, warmup=2 if args.compile else 1)
        result[f"{name}_seconds_per_batch"] = round(seconds, 4)
        result[f"{name}_samples_per_second"] = round(args.batch_size / seconds, 4)
        result[f"{name}_gflops"] = round(flops[name] / seconds / 1e9, 1)
        result[f"{name}_fraction_of_peak"] = round(flops[name] / seconds / 1e9 / peak, 3)
    if device.type == "cuda":
        result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    result["paper_a100_images_samples_per_second"] = PAPER_A100_SAMPLES_PER_SECOND.get(args.preset)
    result.update(machine_info(device))
    print(json.dumps(result))


if __name__ == "__main__":
    with torch.inference_mode():
        main()
