#!/usr/bin/env python
"""Throughput of TiTok encode/decode on this machine, against its measured fp32 matmul peak.

    python benchmarks/bench_tokenizer.py [--preset titok_l32] [--batch-size 8] [--repeats 3]

Random weights (speed does not depend on them), fp32, 256x256. Prints one JSON line:
images/s for encode and decode (ids -> pixels, incl. the MaskGIT pixel decoder for two-stage presets),
the achieved GFLOP/s (FLOPs counted once with torch's FLOP counter, with eager attention so that the
attention matmuls are counted too), and that as a fraction of the peak fp32 matmul rate measured in the
same run. Run it on an otherwise idle machine: a second busy torch process slows both ~10x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from hf_titok import TITOK_PRESETS, TiTokConfig, TiTokTokenizer


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best observed fp32 GEMM rate (GFLOP/s) for a square matmul of `size`."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def timed(fn, repeats: int) -> float:
    """Median wall time of `fn()` over `repeats` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def count_flops(models, fn) -> int:
    """FLOPs of `fn()`. torch's FLOP counter does not see the fused CPU SDPA kernel, so the models run
    with eager attention (the same matmuls, counted) while counting."""
    models = models if isinstance(models, (list, tuple)) else [models]
    implementations = [model.config._attn_implementation for model in models]
    for model in models:
        model.config._attn_implementation = "eager"
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for model, implementation in zip(models, implementations):
            model.config._attn_implementation = implementation
    return counter.get_total_flops()


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="titok_l32", choices=sorted(TITOK_PRESETS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    peak = matmul_peak_gflops()
    model = TiTokTokenizer(TiTokConfig.from_preset(args.preset)).eval()
    images = torch.rand(args.batch_size, 3, model.config.image_size, model.config.image_size)
    encoded = model.encode(images)
    tokens = encoded.token_ids if model.is_vq else encoded.latents

    result = {
        "benchmark": "tokenizer",
        "preset": args.preset,
        "batch_size": args.batch_size,
        "image_size": model.config.image_size,
        "dtype": "float32",
        "attention": model.config._attn_implementation,
        "threads": torch.get_num_threads(),
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "matmul_peak_gflops": round(peak, 1),
    }
    for name, fn in (("encode", lambda: model.encode(images)), ("decode", lambda: model.decode(tokens))):
        seconds = timed(fn, args.repeats)
        flops = count_flops(model, fn)
        result[f"{name}_seconds_per_batch"] = round(seconds, 3)
        result[f"{name}_images_per_second"] = round(args.batch_size / seconds, 3)
        result[f"{name}_gflops"] = round(flops / seconds / 1e9, 1)
        result[f"{name}_fraction_of_peak"] = round(flops / seconds / 1e9 / peak, 3)
    result["torch"] = torch.__version__
    result["cpu"] = platform.processor() or platform.machine()
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
