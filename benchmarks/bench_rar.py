#!/usr/bin/env python
"""Class-conditional throughput of a full-size RAR pipeline (RAR-B by default) with random weights, exact or on the
CPU fast path, against the peak measured in the same run.

    python benchmarks/bench_rar.py [--size rar_b] [--fast-path] [--batch-size 8] [--repeats 1]
        [--cache dynamic static none] [--device cuda] [--dtype bfloat16] [--compile]

The released architecture (RAR-B: 768 wide, 24 layers, 256 MaskGIT-VQGAN tokens) with random weights and the
release's sampling settings (guidance 16 with power 2.75: every step runs the conditional and unconditional rows
in one batch). Prints one JSON line per cache setting, the same keys with and without `--fast-path`: seconds per
batch and images/s for class -> tokens, tokens -> pixels (`decode`) and class -> pixels (`images`: the two
together), the achieved GFLOP/s and its fraction of the in-run peak of the arithmetic used (float32 matmul for the
exact path, the int8 peak of the fast path's `torch.ao` kernels for the fast path, counting the exact path's
FLOPs), the peak resident memory of the timed stages, and with `--fast-path` the quality against the exact path
from the same seed (equal ids; PSNR of the fast decoder's pixels on the exact ids and of the fast run's images
against the exact run's). FLOPs are counted once on the exact path with torch's FLOP counter, which does not see
fused SDPA (a few % of RAR-B's FLOPs at 258 positions), so the fraction is a lower bound; the counted run warms the
kernels up. `--compile` compiles the transformer's forward (with `--cache static`: one graph for every step).
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, RARConfig, RARPipeline, RARScheduler, RARTransformer
from hf_titok.releases import RAR_PRESETS

from common import (
    add_device_arguments,
    int8_linear_peak_gops,
    machine_info,
    matmul_peak_gflops,
    peak_rss_mb,
    psnr_db,
    reset_peak_rss,
    setup,
    stage_figures,
    timed,
)


def pipeline(size: str) -> RARPipeline:
    torch.manual_seed(0)
    transformer = RARTransformer(RARConfig.from_preset(size)).eval()
    with torch.no_grad():  # the official initialisation zeroes the adaLN layers: draw them, as trained weights are
        for name, parameter in transformer.named_parameters():
            if "modulation" in name:
                parameter.normal_(std=0.02)
    pipe = RARPipeline(MaskGITVQGAN(MaskGITVQGANConfig()).eval(), transformer, RARScheduler.from_preset(size))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def counted(fn):
    with FlopCounterMode(display=False) as counter:
        result = fn()
    return counter.get_total_flops(), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="rar_b", choices=sorted(RAR_PRESETS))
    parser.add_argument("--fast-path", action="store_true", help="the CPU fast path (hf_titok.fast_path)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cache", nargs="+", default=["dynamic"], choices=["dynamic", "static", "none"])
    add_device_arguments(parser)
    args = parser.parse_args()
    device, dtype = setup(args)
    peak = matmul_peak_gflops(device, dtype)
    int8_peak = int8_linear_peak_gops() if args.fast_path else None
    pipe = pipeline(args.size).to(device, dtype)
    parameters = round(sum(p.numel() for p in pipe.transformer.parameters()) / 1e6, 2)
    labels = list(range(args.batch_size))

    def sample(options):
        return pipe(labels, generator=torch.Generator().manual_seed(0), output_type="latent", **options).images

    caches = {
        cache: {"use_cache": False} if cache == "none" else {"cache_implementation": cache} for cache in args.cache
    }
    exact = {}  # per cache setting: FLOPs of sampling, of decoding, the ids and the pixels (the quality reference)
    for cache, options in caches.items():
        sample_flops, ids = counted(lambda options=options: sample(options))
        decode_flops, pixels = counted(lambda ids=ids: pipe.vqvae.decode(ids))
        exact[cache] = (sample_flops, decode_flops, ids, pixels)
    if args.fast_path:
        pipe.enable_fast_path()
    if args.compile:
        pipe.transformer.forward = torch.compile(pipe.transformer.forward, fullgraph=False)
    used_peak = int8_peak if args.fast_path else peak
    for cache, options in caches.items():
        sample_flops, decode_flops, exact_ids, exact_pixels = exact[cache]
        reset_peak_rss()
        runs = []  # the timed runs' ids (the last is measured against the exact path)
        warmup = int(args.compile)
        seconds = {"tokens": timed(lambda options=options: runs.append(sample(options)), args.repeats, device, warmup)}
        ids = runs[-1]
        seconds["decode"] = timed(lambda ids=ids: pipe.vqvae.decode(ids), args.repeats, device, warmup=0)
        seconds["images"] = seconds["tokens"] + seconds["decode"]
        flops = {"tokens": sample_flops, "decode": decode_flops, "images": sample_flops + decode_flops}
        result = {
            "benchmark": args.size,
            "fast_path": args.fast_path,
            "batch_size": args.batch_size,
            "cache": cache,
            "compile": args.compile,
            "sampling": pipe.sampling_settings(),
            "device": str(device),
            "dtype": args.dtype,
            "threads": torch.get_num_threads(),
            "parameters_millions": parameters,
            "matmul_peak_gflops": round(peak, 1),
            "int8_peak_gops": round(int8_peak, 1) if int8_peak else None,
            "peak_of": "int8" if args.fast_path else args.dtype,
        }
        result.update(stage_figures(seconds, flops, args.batch_size, used_peak))
        result["peak_rss_mb"] = peak_rss_mb()
        if device.type == "cuda":
            result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        result["quality_vs_exact"] = (
            {
                "equal_token_ids": round(float((ids == exact_ids).float().mean()), 4),
                "decode_psnr_db_on_exact_tokens": psnr_db(pipe.vqvae.decode(exact_ids), exact_pixels),
                "images_psnr_db": psnr_db(pipe.vqvae.decode(ids), exact_pixels),
            }
            if args.fast_path
            else None
        )
        result.update(machine_info(device))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
