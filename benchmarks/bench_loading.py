#!/usr/bin/env python
"""Loading an official checkpoint directly (converted in memory) against loading its converted folder.

A full-size random checkpoint in the official layout (the release's official key names and shapes, from
`tests/official_keys`, random weights) is written as an official repo folder (config.json +
model.safetensors) and converted once with `hf-titok convert`. Each load then runs in a fresh process (memory
freed by earlier work would otherwise be reused unseen): time of `from_pretrained`, and the peak RSS it adds
against the float32 size of the weights.

    python benchmarks/bench_loading.py --release titok_l32 [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from hf_titok import MaskGITVQGAN, TiTokMaskGIT, TiTokTokenizer
from hf_titok.conversion import convert, official_config
from hf_titok.releases import get_release

KEYS_DIR = Path(__file__).resolve().parents[1] / "tests" / "official_keys"
CLASSES = {"tokenizer": TiTokTokenizer, "generator": TiTokMaskGIT, "vqgan": MaskGITVQGAN}


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_official_folder(release: str, folder: Path, keys_dir: Path) -> int:
    """A random full-size checkpoint of `release` in the official repo layout; returns its parameter count."""
    listing = keys_dir / f"{release}.txt"
    generator = torch.Generator().manual_seed(0)
    weights = {}
    for line in listing.read_text().splitlines():
        key, shape, dtype = line.split("\t")
        tensor = torch.empty(json.loads(shape), dtype=getattr(torch, dtype))
        if tensor.is_floating_point():
            tensor.normal_(0, 0.02, generator=generator)
        else:
            tensor.zero_()
        weights[key] = tensor
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(official_config(release)))
    save_file(weights, str(folder / "model.safetensors"))
    return sum(t.numel() for t in weights.values())


def load_once(kind: str, folder: str) -> None:
    """`--load-only`: one `from_pretrained` in this fresh process, one JSON line."""
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    start = time.perf_counter()
    model = CLASSES[kind].from_pretrained(folder)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_rss_added_mb": round(_status("VmHWM") - before, 1),
                "parameters": sum(p.numel() for p in model.parameters()),
            }
        )
    )


def measure(kind: str, folder: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        command = [sys.executable, __file__, "--load-only", str(folder), "--kind", kind]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    best = min(runs, key=lambda run: run["seconds"])
    return {
        "seconds_best": best["seconds"],
        "seconds_all": [run["seconds"] for run in runs],
        "peak_rss_added_mb": max(run["peak_rss_added_mb"] for run in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", default="titok_l32", help="an official release name (default titok_l32)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keys-dir", type=Path, default=KEYS_DIR)
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--load-only", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_only:
        return load_once(args.kind, args.load_only)
    kind = get_release(args.release).kind
    with tempfile.TemporaryDirectory() as root:
        official, converted = Path(root) / "official", Path(root) / "converted"
        parameters = write_official_folder(args.release, official, args.keys_dir)
        convert(
            kind, official / "config.json", official / "model.safetensors", converted
        )  # = hf-titok convert --weights
        weights_mb = parameters * 4 / 2**20
        rows = {
            "converted folder": measure(kind, converted, args.repeats),
            "official folder (in-memory conversion)": measure(kind, official, args.repeats),
        }
    for row in rows.values():
        row["peak_over_weights"] = round(row["peak_rss_added_mb"] / weights_mb, 2)
    result = {
        "benchmark": "loading",
        "release": args.release,
        "float32_weights_mb": round(weights_mb, 1),
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    print(json.dumps(result))
    print(f"\n{args.release}: {parameters / 1e6:.1f} M parameters, {weights_mb:.0f} MB in float32")
    print(f"{'source':42s} {'best s':>8s} {'peak RSS MB':>12s} {'x weights':>10s}")
    for name, row in rows.items():
        print(
            f"{name:42s} {row['seconds_best']:8.2f} {row['peak_rss_added_mb']:12.0f} {row['peak_over_weights']:10.2f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
