#!/usr/bin/env python
"""The exact path and the CPU fast path of a TiTok preset, stage by stage, against this machine's peak.

    python benchmarks/bench_stages.py --preset titok_l32 [--batch-size 8] [--repeats 2] [--paths exact,fast]
        [--no-breakdown] [--no-memory] [--json out.json]

Random weights (speed does not depend on them), 256x256 images, the preset's official sampling settings.
Stages: `encode` (images -> ids), `decode` (ids -> pixels, the pixel decoder included), `tokens` (sampling
alone) and `images` (sampling + decoding). For each path and stage: seconds per batch, images/s, the achieved
GFLOP/s (FLOPs of the exact path, counted once with eager attention) and its fraction of the float32 matmul
peak measured in this run (the fast path's int8 and bfloat16 work is counted as the same FLOPs, so its
"fraction" can exceed 1), the peak RSS the stage adds, and, for the exact path, a per-module breakdown of time
and GFLOP/s. Loading is measured too (peak RSS of `from_pretrained` against the float32 size of the weights).
Also printed: the paper's A100 throughput and the official code's CPU throughput measured on this kind of
machine (`official_bench_cpu.json`), which only compare as ratios within one run.

One JSON line, then a table. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch

from hf_titok import TiTokConfig, TiTokMaskGIT, TiTokMaskGITConfig, TiTokMaskGITScheduler, TiTokPipeline, TiTokTokenizer
from hf_titok.fast_path import fast_bfloat16

from common import PAPER_A100_SAMPLES_PER_SECOND, count_flops, machine_info, matmul_peak_gflops, timed

STAGES = ("encode", "decode", "tokens", "images")
OFFICIAL = Path(__file__).resolve().parent / "official_bench_cpu.json"
OFFICIAL_KEYS = {
    "encode": "encode_images_per_s",
    "decode": "decode_images_per_s",
    "tokens": "generate_tokens_samples_per_s",
    "images": "generate_plus_decode_samples_per_s",
}

# Per-module breakdown: (group, regex of the FLOP counter's module names whose time and FLOPs it sums).
GROUPS = {
    "encode": [
        ("encoder ViT layers", r"TiTokEncoder\.layers\.\d+$"),
        ("patch embedding", r"TiTokEncoder\.patch_embedding$"),
        ("token projection", r"TiTokEncoder\.projection$"),
        ("codebook search", r"TiTokVectorQuantizer$"),
    ],
    "decode": [
        ("decoder ViT layers", r"TiTokDecoder\.layers\.\d+$"),
        ("decoder head", r"TiTokDecoder\.head$"),
        ("VQGAN convolutions", r"MaskGITVQGANDecoder$"),
    ],
    "tokens": [("generator layers", r"TiTokMaskGIT\.encoder$"), ("generator output head", r"TiTokMaskGIT\.lm_head$")],
}
GROUPS["images"] = GROUPS["tokens"] + GROUPS["decode"]


def rss_mb() -> float:
    return _status("VmRSS")


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def peak_rss():
    """Peak RSS added by the body (MB): Linux resets the high-water mark when 5 is written to clear_refs."""
    result = {}
    try:
        Path("/proc/self/clear_refs").write_text("5")
        resettable = True
    except OSError:
        resettable = False
    before = rss_mb()
    yield result
    result["peak_rss_added_mb"] = round(_status("VmHWM") - before, 1) if resettable else None


def build(preset: str):
    torch.manual_seed(0)
    tokenizer = TiTokTokenizer(TiTokConfig.from_preset(preset)).eval()
    generator = TiTokMaskGIT(TiTokMaskGITConfig.from_preset(preset)).eval()
    return tokenizer, generator


def pipeline(tokenizer, generator, preset):
    pipe = TiTokPipeline(tokenizer, generator, TiTokMaskGITScheduler.from_preset(preset))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stage_functions(pipe, images, ids, labels):
    tokenizer = pipe.vqvae
    return {
        "encode": lambda: tokenizer.encode(images),
        "decode": lambda: tokenizer.decode(ids),
        "tokens": lambda: pipe(labels, generator=torch.Generator().manual_seed(0), output_type="latent"),
        "images": lambda: pipe(labels, generator=torch.Generator().manual_seed(0), output_type="pt"),
    }


def breakdown(pipe, function, stage: str, per_module_flops: dict, peak: float) -> list[dict]:
    """Time and GFLOP/s of each module group of a stage (forward hooks), and the rest (elementwise work, the
    softmax mixture, the sampler's noise and sorting, Python)."""
    modules = {}
    for model in (pipe.vqvae, pipe.transformer):
        root = type(model).__name__
        for name, module in model.named_modules():
            modules[f"{root}.{name}" if name else root] = module
    # The counter names a module by the class of the outermost module called (decode calls the decoder directly).
    by_counter_name = {}
    for full_name, module in modules.items():
        for prefix, owner in (
            ("TiTokTokenizer.encoder", "TiTokEncoder"),
            ("TiTokTokenizer.decoder", "TiTokDecoder"),
            ("TiTokTokenizer.pixel_decoder", "MaskGITVQGANDecoder"),
            ("TiTokTokenizer.quantizer", "TiTokVectorQuantizer"),
        ):
            if full_name.startswith(prefix):
                by_counter_name[owner + full_name[len(prefix) :]] = module
        if full_name.startswith("TiTokMaskGIT"):
            by_counter_name[full_name] = module
    times, handles = defaultdict(float), []
    rows = []
    for group, pattern in GROUPS[stage]:
        matched = [name for name in by_counter_name if re.fullmatch(pattern, name)]
        for name in matched:
            module = by_counter_name[name]

            def pre(module, args, _group=group):
                module._bench_start = time.perf_counter()

            def post(module, args, output, _group=group):
                times[_group] += time.perf_counter() - module._bench_start

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
        flops = sum(per_module_flops.get(name, 0) for name in per_module_flops if re.fullmatch(pattern, name))
        rows.append({"group": group, "flops": flops})
    start = time.perf_counter()
    function()
    total = time.perf_counter() - start
    for handle in handles:
        handle.remove()
    seen = set()
    result = []
    for row in rows:
        if row["group"] in seen or (row["flops"] == 0 and times[row["group"]] == 0):
            continue
        seen.add(row["group"])
        seconds = times[row["group"]]
        gflops = row["flops"] / seconds / 1e9 if seconds else 0.0
        result.append(
            {
                "group": row["group"],
                "seconds": round(seconds, 3),
                "share": round(seconds / total, 3),
                "gflops": round(gflops, 1),
                "fraction_of_peak": round(gflops / peak, 3),
            }
        )
    rest_seconds = total - sum(times.values())
    rest_flops = per_module_flops.get("Global", 0) - sum(r["flops"] for r in rows if r["group"] in seen)
    result.append(
        {
            "group": "rest",
            "seconds": round(rest_seconds, 3),
            "share": round(rest_seconds / total, 3),
            "gflops": round(rest_flops / max(rest_seconds, 1e-9) / 1e9, 1),
            "fraction_of_peak": round(rest_flops / max(rest_seconds, 1e-9) / 1e9 / peak, 3),
        }
    )
    return result


def measure_loading(tokenizer, generator, preset, fast: bool) -> dict:
    """Peak RSS of loading the saved pipeline in a fresh process (in this one, memory freed by earlier work would
    be reused unseen), against the float32 size of its weights."""
    with tempfile.TemporaryDirectory() as folder:
        pipeline(tokenizer, generator, preset).save_pretrained(folder)
        command = [sys.executable, __file__, "--load-only", folder] + (["--fast-path"] if fast else [])
        measured = json.loads(
            subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        )
    weights_mb = sum(p.numel() * 4 for m in (tokenizer, generator) for p in m.parameters()) / 2**20
    return {
        **measured,
        "float32_weights_mb": round(weights_mb, 1),
        "peak_over_weights": round(measured["peak_rss_added_mb"] / weights_mb, 3),
    }


def load_only(folder: str, fast: bool) -> None:
    """`--load-only`: load one pipeline and print what it cost (one JSON line)."""
    before = {key: _status(key) for key in ("VmRSS", "RssAnon", "RssFile")}
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    loaded = TiTokPipeline.from_pretrained(folder, fast_path=fast)
    seconds = time.perf_counter() - start
    # safetensors maps the file: its pages count in RSS but are clean; the fast path's int8/bfloat16/ONNX Runtime
    # copies are anonymous memory, and the float32 weights they replace give their file pages back (release_pages).
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_rss_added_mb": round(_status("VmHWM") - before["VmRSS"], 1),
                "after_loading_anonymous_mb": round(_status("RssAnon") - before["RssAnon"], 1),
                "after_loading_file_mapped_mb": round(_status("RssFile") - before["RssFile"], 1),
                "fast_path": loaded.vqvae.fast_path,
            }
        )
    )


def agreement(stage: str, exact, fast) -> str:
    """How close the fast path's output is to the exact path's, on random weights (the built-in model's quality
    numbers, from trained weights, are in the README): equal ids, or the PSNR between the two images."""
    if stage in ("encode", "tokens"):
        exact, fast = (output.token_ids if stage == "encode" else output.images for output in (exact, fast))
        return f"{float((exact == fast).float().mean()):.2%} equal ids"
    if stage == "images":
        exact, fast = exact.images, fast.images
    mse = float(((exact.float().clamp(0, 1) - fast.float().clamp(0, 1)) ** 2).mean())
    return f"{10 * math.log10(1 / mse) if mse > 0 else float('inf'):.1f} dB to exact"


def fast_copy(tokenizer, generator, preset):
    fast = pipeline(copy.deepcopy(tokenizer), copy.deepcopy(generator), preset)
    return fast.enable_fast_path()


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="titok_l32", choices=["titok_l32", "titok_b64", "titok_s128"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--paths", default="exact,fast")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--load-only", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--fast-path", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_only:
        return load_only(args.load_only, args.fast_path)
    torch.set_num_threads(args.threads)
    paths, stages = args.paths.split(","), args.stages.split(",")

    peaks = {"float32": matmul_peak_gflops(), "bfloat16": matmul_peak_gflops(dtype=torch.bfloat16)}
    tokenizer, generator = build(args.preset)
    exact = pipeline(tokenizer, generator, args.preset)
    images = torch.rand(args.batch_size, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    ids = tokenizer.encode(images).token_ids
    labels = list(range(args.batch_size))
    functions = {"exact": stage_functions(exact, images, ids, labels)}
    counted = {
        stage: count_flops([exact.vqvae, exact.transformer], functions["exact"][stage], per_module=True)
        for stage in stages
    }
    if "fast" in paths:
        functions["fast"] = stage_functions(fast_copy(tokenizer, generator, args.preset), images, ids, labels)

    result = {
        "benchmark": "stages",
        "preset": args.preset,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "fast_bfloat16": fast_bfloat16(),
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "paths": {},
    }
    outputs = defaultdict(dict)
    for path in paths:
        rows = {}
        for stage in stages:
            function = functions[path][stage]

            def keep_output(_function=function, _path=path, _stage=stage):
                outputs[_path][_stage] = _function()

            with peak_rss() as memory:
                seconds = timed(keep_output, args.repeats)
            flops = counted[stage][0]
            row = {
                "seconds_per_batch": round(seconds, 3),
                "per_second": round(args.batch_size / seconds, 4),
                "gflops": round(flops / seconds / 1e9, 1),
                "fraction_of_peak": round(flops / seconds / 1e9 / peaks["float32"], 3),
                **memory,
            }
            if path == "exact" and not args.no_breakdown:
                row["breakdown"] = breakdown(exact, function, stage, counted[stage][1], peaks["float32"])
            rows[stage] = row
        result["paths"][path] = rows
    if "fast" in paths and "exact" in paths:
        for stage in stages:
            result["paths"]["fast"][stage]["agreement_random_weights"] = agreement(
                stage, outputs["exact"][stage], outputs["fast"][stage]
            )
    if not args.no_memory:
        result["loading"] = {path: measure_loading(tokenizer, generator, args.preset, path == "fast") for path in paths}
    if OFFICIAL.is_file():
        official = json.loads(OFFICIAL.read_text())["models"].get(args.preset, {})
        result["official_cpu_per_second_other_run"] = {
            stage: round(official[key], 4) for stage, key in OFFICIAL_KEYS.items() if key in official
        }
    result["paper_a100_images_per_second"] = PAPER_A100_SAMPLES_PER_SECOND.get(args.preset)
    result.update(machine_info(torch.device("cpu")))
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print_table(result)


def print_table(result: dict) -> None:
    paths = result["paths"]
    print(
        f"\n{result['preset']}, batch {result['batch_size']}, {result['threads']} threads; float32 matmul peak "
        f"{result['matmul_peak_gflops']['float32']} GFLOP/s (bfloat16 "
        f"{result['matmul_peak_gflops']['bfloat16']}) in this run"
    )
    header = "| stage | " + " | ".join(f"{p} /s | {p} frac. of peak | {p} peak RSS MB" for p in paths)
    both = "exact" in paths and "fast" in paths
    if both:
        header += " | fast / exact | fast vs exact (random weights)"
    print(header + " |")
    print("|" + "---|" * (1 + 3 * len(paths) + 2 * both))
    for stage in paths[next(iter(paths))]:
        cells = []
        for path in paths:
            row = paths[path][stage]
            cells += [f"{row['per_second']:.3f}", f"{row['fraction_of_peak']:.2f}", str(row["peak_rss_added_mb"])]
        if both:
            cells.append(f"x{paths['fast'][stage]['per_second'] / paths['exact'][stage]['per_second']:.2f}")
            cells.append(paths["fast"][stage].get("agreement_random_weights", ""))
        print(f"| {stage} | " + " | ".join(cells) + " |")
    official = result.get("official_cpu_per_second_other_run")
    if official:
        print(
            "official code, this kind of machine, another run (compare as ratios only): "
            + ", ".join(f"{stage} {value}/s" for stage, value in official.items())
        )
    for stage, row in paths.get("exact", {}).items():
        if "breakdown" in row:
            parts = ", ".join(
                f"{b['group']} {b['seconds']} s ({b['share']:.0%}, {b['fraction_of_peak']:.2f} of peak)"
                for b in row["breakdown"]
            )
            print(f"exact {stage}: {parts}")
    for path, loading in result.get("loading", {}).items():
        print(
            f"loading ({path}): {loading['seconds']} s, peak RSS +{loading['peak_rss_added_mb']} MB = "
            f"{loading['peak_over_weights']} x the {loading['float32_weights_mb']} MB of float32 weights "
            f"(after loading: {loading['after_loading_file_mapped_mb']} MB mapped from the file, "
            f"{loading['after_loading_anonymous_mb']} MB anonymous)"
        )


if __name__ == "__main__":
    main()
