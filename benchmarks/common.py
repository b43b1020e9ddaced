"""What the benchmarks share: device/dtype/compile flags, the in-run matmul peak, timing and FLOP counting.

Speeds are only comparable as ratios measured in one run (the fraction of the peak measured by the same
process), because a shared machine's peak varies by 3x from day to day.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import os
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# Sampling + decoding throughput the paper reports on one A100 (Table 3 of Yu et al., 2024; fp16 or bf16,
# batch size not stated), to read a GPU run against. S-128 is "about" that: read off the paper's figure.
PAPER_A100_SAMPLES_PER_SECOND = {"titok_l32": 101.6, "titok_b64": 89.8, "titok_s128": 7.8}


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="model dtype (default float32)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models' forward passes (fullgraph)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads")


def setup(args) -> tuple[torch.device, torch.dtype]:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: no CUDA device is available here")
    return device, DTYPES[args.dtype]


def synchronize(device: torch.device) -> None:
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def matmul_peak_gflops(
    device: torch.device = torch.device("cpu"),
    dtype: torch.dtype = torch.float32,
    size: int | None = None,
    repeats: int = 5,
) -> float:
    """Best observed GEMM rate (GFLOP/s) of a square matmul in `dtype` on `device` (2048 on a CPU, 8192 on
    an accelerator, where smaller matmuls do not fill the chip)."""
    size = size or (2048 if device.type == "cpu" else 8192)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def int8_linear_peak_gops(size: int = 2048, repeats: int = 5) -> float:
    """Best observed rate (GOP/s, multiply-adds counted as 2) of the fast path's int8 kernel: a `torch.ao`
    dynamically quantized `size x size` linear layer on `size` rows, the CPU's int8 peak as the fast path reaches
    it (activation quantization included)."""
    from hf_titok.fast_path import quantize_linear_layers

    layer = quantize_linear_layers(torch.nn.Sequential(torch.nn.Linear(size, size, bias=False)))
    rows = torch.randn(size, size)
    best = float("inf")
    with torch.inference_mode():
        layer(rows)
        for _ in range(repeats):
            start = time.perf_counter()
            layer(rows)
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def reset_peak_rss() -> bool:
    """Start a new high-water mark of this process's resident memory (Linux: `/proc/self/clear_refs`, value 5),
    after handing freed memory back to the OS (`malloc_trim`: what an earlier model of the run left in the heap
    would count otherwise); False where the OS cannot."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """The resident-memory high-water mark since the last `reset_peak_rss()` (Linux `VmHWM`), in MB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) between two image batches in [0, 1] (clamped), over the whole batch; inf when equal."""
    mse = float(((a.float().clamp(0, 1) - b.float().clamp(0, 1)) ** 2).mean())
    return round(10 * math.log10(1 / mse), 2) if mse > 0 else float("inf")


def stage_figures(seconds: dict, flops: dict, batch_size: int, peak: float) -> dict:
    """Per stage (the keys of `seconds`): seconds per batch, images/s, achieved GFLOP/s and its fraction of `peak`."""
    figures = {}
    for name, value in seconds.items():
        figures[f"{name}_seconds_per_batch"] = round(value, 3)
        figures[f"{name}_images_per_second"] = round(batch_size / value, 4)
        figures[f"{name}_gflops"] = round(flops[name] / value / 1e9, 1)
        figures[f"{name}_fraction_of_peak"] = round(flops[name] / value / 1e9 / peak, 3)
    return figures


def timed(fn, repeats: int, device: torch.device = torch.device("cpu"), warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeats` runs after `warmup` runs (compiled code compiles in the
    warm-up), waiting for the device to finish each run."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def count_flops(models, fn, per_module: bool = False):
    """FLOPs of `fn()`. torch's FLOP counter does not see the fused CPU SDPA kernel, so the models run
    with eager attention (the same matmuls, counted) while counting. `per_module=True`: also the FLOPs per
    module name of the counter, as `(total, {name: flops})`."""
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
    if per_module:
        return counter.get_total_flops(), {
            name: sum(counts.values()) for name, counts in counter.get_flop_counts().items()
        }
    return counter.get_total_flops()


def compile_tokenizer(tokenizer) -> None:
    """Compile the tokenizer's networks in place (encode/decode are methods, so their modules are compiled)."""
    for name in ("encoder", "decoder", "pixel_decoder"):
        module = getattr(tokenizer, name)
        if module is not None:
            module.compile(fullgraph=True)


def machine_info(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
