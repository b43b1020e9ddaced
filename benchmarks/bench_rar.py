#!/usr/bin/env python
"""Class-conditional throughput of a full-size RAR pipeline (RAR-B by default) with random weights, against the
matmul peak measured in the same run.

    python benchmarks/bench_rar.py [--size rar_b] [--batch-size 8] [--repeats 1] [--cache dynamic static none]
        [--device cuda] [--dtype bfloat16] [--compile]

The released architecture (RAR-B: 768 wide, 24 layers, 256 MaskGIT-VQGAN tokens) with random weights and the
release's sampling settings (guidance 16 with power 2.75: every step runs the conditional and unconditional rows
in one batch). Prints one JSON line per cache setting: seconds per batch and images/s for class -> tokens and
class -> pixels, the achieved GFLOP/s and its fraction of the in-run matmul peak. FLOPs are counted once with
torch's FLOP counter, which does not see fused SDPA (a few % of RAR-B's FLOPs at 258 positions), so the fraction is
a lower bound. `--compile` compiles the transformer's forward (with `--cache static`: one graph for every step).
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, RARConfig, RARPipeline, RARScheduler, RARTransformer
from hf_titok.releases import RAR_PRESETS

from common import add_device_arguments, machine_info, matmul_peak_gflops, setup, timed


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="rar_b", choices=sorted(RAR_PRESETS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cache", nargs="+", default=["dynamic"], choices=["dynamic", "static", "none"])
    add_device_arguments(parser)
    args = parser.parse_args()
    device, dtype = setup(args)
    peak = matmul_peak_gflops(device, dtype)
    pipe = pipeline(args.size).to(device, dtype)
    if args.compile:
        pipe.transformer.forward = torch.compile(pipe.transformer.forward, fullgraph=False)
    labels = list(range(args.batch_size))
    for cache in args.cache:
        options = {"use_cache": False} if cache == "none" else {"cache_implementation": cache}

        def generate(output_type, options=options):
            generator = torch.Generator().manual_seed(0)
            return lambda: pipe(labels, generator=generator, output_type=output_type, **options)

        stages = {"tokens": generate("latent"), "images": generate("pt")}
        flops = {}
        for name, fn in stages.items():
            with FlopCounterMode(display=False) as counter:
                fn()
            flops[name] = counter.get_total_flops()
        result = {
            "benchmark": args.size,
            "batch_size": args.batch_size,
            "cache": cache,
            "compile": args.compile,
            "sampling": pipe.sampling_settings(),
            "device": str(device),
            "dtype": args.dtype,
            "threads": torch.get_num_threads(),
            "parameters_millions": round(sum(p.numel() for p in pipe.transformer.parameters()) / 1e6, 2),
            "matmul_peak_gflops": round(peak, 1),
        }
        for name, fn in stages.items():
            seconds = timed(fn, args.repeats, device)
            result[f"{name}_seconds_per_batch"] = round(seconds, 3)
            result[f"{name}_images_per_second"] = round(args.batch_size / seconds, 4)
            result[f"{name}_gflops"] = round(flops[name] / seconds / 1e9, 1)
            result[f"{name}_fraction_of_peak"] = round(flops[name] / seconds / 1e9 / peak, 3)
        if device.type == "cuda":
            result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        result.update(machine_info(device))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
