#!/usr/bin/env python
"""Cheaper arithmetic in TiTok's encoder, the part of the fast path that decides the ids: each candidate's equal ids
on the built-in model (Fashion-MNIST test images through its processor) and on TiTok-L-32 with random weights, and
its encode speed-up on L-32 against the exact float32 encoder, measured in one run.

    python benchmarks/bench_encoder_candidates.py [--images 1000] [--batch-size 8] [--candidates ...]

Candidates (int8 is `torch.ao` dynamic quantization, the fast path's int8 kernel; `pc`: per-channel weight scales
instead of one per tensor): `int8_all` / `int8_all_pc` (every linear layer of the encoder), `int8_mlp` /
`int8_mlp_pc` (the MLPs only), `int8_half_pc` (every linear layer of the first half of the layers), `bf16_parts`
(what the fast path runs where bfloat16 is fast: MLPs and attention output projections in bfloat16; skipped where
bfloat16 is slow). The fast path takes a candidate only at >= 99 % equal ids on the built-in model. Prints one JSON
line per candidate.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings

import torch
from torch import nn

import hf_titok
from hf_titok import TiTokConfig, TiTokPipeline, TiTokTokenizer
from hf_titok.data.fashion_mnist import load_fashion_mnist, to_rgb32
from hf_titok.fast_path import Bfloat16Island, bfloat16_speedup, fast_bfloat16

from common import machine_info, matmul_peak_gflops

CANDIDATES = ("int8_all", "int8_all_pc", "int8_mlp", "int8_mlp_pc", "int8_half_pc", "bf16_parts")


def _int8(module: nn.Module, per_channel: bool) -> None:
    qconfig = (
        torch.ao.quantization.per_channel_dynamic_qconfig
        if per_channel
        else torch.ao.quantization.default_dynamic_qconfig
    )
    linears = [(p, n, c) for p in module.modules() for n, c in p.named_children() if type(c) is nn.Linear]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        for parent, name, linear in linears:
            linear.qconfig = qconfig
            setattr(parent, name, torch.ao.nn.quantized.dynamic.Linear.from_float(linear))


def candidate(tokenizer: TiTokTokenizer, name: str) -> TiTokTokenizer:
    """A copy of `tokenizer` whose encoder runs candidate `name`."""
    tokenizer = copy.deepcopy(tokenizer)
    layers = tokenizer.encoder.layers
    per_channel = name.endswith("_pc")
    if name.startswith("int8_all"):
        for layer in layers:
            _int8(layer, per_channel)
    elif name.startswith("int8_mlp"):
        for layer in layers:
            _int8(layer.mlp, per_channel)
    elif name == "int8_half_pc":
        for layer in layers[: len(layers) // 2]:
            _int8(layer, True)
    elif name == "bf16_parts":
        for layer in layers:
            layer.mlp = Bfloat16Island(layer.mlp)
            layer.self_attn.out_proj = Bfloat16Island(layer.self_attn.out_proj)
    else:
        raise ValueError(f"unknown candidate {name!r}; choose from {CANDIDATES}")
    return tokenizer


def best_seconds(fn, repeats: int = 2) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="built-in model: test images (default 1000)")
    parser.add_argument("--batch-size", type=int, default=8, help="L-32: images per encode (default 8)")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    args = parser.parse_args()
    torch.manual_seed(0)
    peak = matmul_peak_gflops()
    pipe = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE)
    builtin = pipe.vqvae.eval()
    images, _ = load_fashion_mnist("test")
    pixel_values = pipe.processor(list(to_rgb32(images[: args.images])), return_tensors="pt").pixel_values
    large = TiTokTokenizer(TiTokConfig.from_preset("titok_l32")).eval()
    batch = torch.rand(args.batch_size, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    builtin_ids = builtin.encode(pixel_values).token_ids
    large_ids = large.encode(batch).token_ids
    exact_seconds = best_seconds(lambda: large.encode(batch))
    for name in args.candidates:
        if name == "bf16_parts" and not fast_bfloat16():
            # Without fast bfloat16 kernels (AVX2: ~1 GFLOP/s) L-32's encode would take hours; the fast path does
            # not take bfloat16 on such a CPU anyway.
            skipped = {"candidate": name, "skipped": f"bfloat16 is slow here (x{bfloat16_speedup():.3f} float32)"}
            print(json.dumps({"benchmark": "encoder_candidates", **skipped}), flush=True)
            continue
        small, big = candidate(builtin, name), candidate(large, name)
        seconds = best_seconds(lambda big=big: big.encode(batch))
        result = {
            "benchmark": "encoder_candidates",
            "candidate": name,
            "builtin_equal_ids": round(float((small.encode(pixel_values).token_ids == builtin_ids).float().mean()), 4),
            "builtin_images": len(pixel_values),
            "l32_equal_ids": round(float((big.encode(batch).token_ids == large_ids).float().mean()), 4),
            "l32_exact_seconds": round(exact_seconds, 3),
            "l32_seconds": round(seconds, 3),
            "l32_speedup": round(exact_seconds / seconds, 2),
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "matmul_peak_gflops": round(peak, 1),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
        result.update(machine_info(torch.device("cpu")))
        print(json.dumps(result), flush=True)
        del small, big


if __name__ == "__main__":
    with torch.inference_mode():
        main()
