#!/usr/bin/env python
"""`make gpu-check`: the GPU tests, then the pipeline benchmark of the three released TiTok presets and of RAR-B and
RAR-L (random weights) in bfloat16, eager and compiled (RAR compiled: with the static cache), into one JSON file
(samples/s beside the paper's A100 figures, peak GPU memory).

    python benchmarks/gpu_check.py [--output gpu_check.json] [--batch-size 32] [--budget-seconds 450]

Where there is no CUDA device it says so and exits 0 without measuring. Each step runs in its own process
with a time limit, so one slow compile cannot eat the whole budget (about 8 minutes on one H200).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("titok_l32", "titok_b64", "titok_s128")
RAR_SIZES = ("rar_b", "rar_l")
RAR_BATCH = 8


def run(command: list[str], timeout: float) -> tuple[int | None, str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=max(timeout, 1), cwd=ROOT)
        return done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        return None, f"timed out after {timeout:.0f} s\n{expired.stdout or ''}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="gpu_check.json")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--budget-seconds", type=float, default=450.0, help="total time for all steps (default 450)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            "gpu-check: skipped - no CUDA device here (torch.cuda.is_available() is False); run it on a machine "
            "with an NVIDIA GPU and a CUDA build of torch"
        )
        return 0
    deadline = time.monotonic() + args.budget_seconds
    result = {
        "check": "gpu",
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "dtype": "bfloat16",
        "tests": {},
        "pipelines": [],
    }

    code, output = run(
        [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"], deadline - time.monotonic()
    )
    summary = re.findall(r"(\d+) (passed|failed|skipped|error)", output)
    result["tests"] = {"exit_code": code, **{word: int(count) for count, word in summary}}
    print(f"gpu tests: {result['tests']}", flush=True)

    cuda_bf16 = ["--device", "cuda", "--dtype", "bfloat16"]
    steps = [
        (
            {"preset": preset, "compile": compiled},
            ["benchmarks/bench_pipeline.py", "--preset", preset, *cuda_bf16, "--batch-size", str(args.batch_size)]
            + ["--repeats", "3"]
            + (["--compile"] if compiled else []),
        )
        for compiled in (False, True)
        for preset in PRESETS
    ] + [
        (
            {"preset": size, "compile": compiled, "batch_size": RAR_BATCH},
            ["benchmarks/bench_rar.py", "--size", size, *cuda_bf16, "--batch-size", str(RAR_BATCH), "--repeats", "2"]
            + (["--compile", "--cache", "static"] if compiled else ["--cache", "dynamic"]),
        )
        for compiled in (False, True)
        for size in RAR_SIZES
    ]
    keys = (
        "images_samples_per_second",
        "tokens_samples_per_second",
        "images_images_per_second",
        "tokens_images_per_second",
        "images_fraction_of_peak",
        "peak_gpu_memory_mb",
        "paper_a100_images_samples_per_second",
        "num_inference_steps",
        "matmul_peak_gflops",
    )
    for index, (row, command) in enumerate(steps):
        remaining = deadline - time.monotonic()
        if remaining < 20:
            row["skipped"] = "out of time budget"
        else:
            code, output = run([sys.executable, *command], remaining / (len(steps) - index) * 1.5)
            lines = [line for line in output.splitlines() if line.startswith("{")]
            if code == 0 and lines:
                measured = json.loads(lines[-1])
                row.update({key: measured[key] for key in keys if key in measured})
            else:
                row["error"] = output.strip().splitlines()[-1] if output.strip() else f"exit code {code}"
        result["pipelines"].append(row)
        print(json.dumps(row), flush=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"gpu-check: wrote {args.output}")
    return (
        0
        if result["tests"].get("exit_code") in (0, 5) and not any("error" in row for row in result["pipelines"])
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
