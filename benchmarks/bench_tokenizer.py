#!/usr/bin/env python
"""Throughput of TiTok encode/decode on this machine, against its matmul peak measured in the same run.

    python benchmarks/bench_tokenizer.py [--preset titok_l32] [--batch-size 8] [--repeats 3]
        [--device cuda] [--dtype bfloat16] [--compile]

Random weights (speed does not depend on them), 256x256. Prints one JSON line: images/s for encode and
decode (ids -> pixels, incl. the MaskGIT pixel decoder for two-stage presets), the achieved GFLOP/s (FLOPs
counted once with torch's FLOP counter, with eager attention so that the attention matmuls are counted too),
and that as a fraction of the peak matmul rate (same device and dtype) measured in the same run. On a CPU,
run it on an otherwise idle machine: a second busy torch process slows both ~10x.
"""

from __future__ import annotations

import argparse
import json

import torch

from hf_titok import TITOK_PRESETS, TiTokConfig, TiTokTokenizer

from common import add_device_arguments, compile_tokenizer, count_flops, machine_info, matmul_peak_gflops, setup, timed


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="titok_l32", choices=sorted(TITOK_PRESETS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    add_device_arguments(parser)
    args = parser.parse_args()
    device, dtype = setup(args)

    peak = matmul_peak_gflops(device, dtype)
    model = TiTokTokenizer(TiTokConfig.from_preset(args.preset)).eval().to(device, dtype)
    images = torch.rand(args.batch_size, 3, model.config.image_size, model.config.image_size, device=device)
    encoded = model.encode(images)
    tokens = encoded.token_ids if model.is_vq else encoded.latents
    stages = {"encode": lambda: model.encode(images), "decode": lambda: model.decode(tokens)}
    flops = {name: count_flops(model, fn) for name, fn in stages.items()}  # eager, before any compilation
    if args.compile:
        compile_tokenizer(model)

    result = {
        "benchmark": "tokenizer",
        "preset": args.preset,
        "batch_size": args.batch_size,
        "image_size": model.config.image_size,
        "device": str(device),
        "dtype": args.dtype,
        "compile": args.compile,
        "attention": model.config._attn_implementation,
        "threads": torch.get_num_threads(),
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "matmul_peak_gflops": round(peak, 1),
    }
    for name, fn in stages.items():
        seconds = timed(fn, args.repeats, device, warmup=2 if args.compile else 1)
        result[f"{name}_seconds_per_batch"] = round(seconds, 4)
        result[f"{name}_images_per_second"] = round(args.batch_size / seconds, 3)
        result[f"{name}_gflops"] = round(flops[name] / seconds / 1e9, 1)
        result[f"{name}_fraction_of_peak"] = round(flops[name] / seconds / 1e9 / peak, 3)
    result.update(machine_info(device))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
