#!/usr/bin/env python
"""Text-to-image throughput of the full-size MaskGen-L pipelines (VQ and KL) with random weights, exact or on the CPU
fast path, against the peak measured in the same run.

    python benchmarks/bench_maskgen.py [--kind vq kl] [--fast-path] [--batch-size 1] [--repeats 1] [--device cuda]
        [--dtype bfloat16]

The released architectures (MaskGen-L over TA-TiTok-BL-128 VQ / TA-TiTok-BL-32 VAE, CLIP ViT-L/14 text tower)
with random weights and the official sampling settings (VQ: 16 steps, guidance 12 cosine; KL: 32 steps with
100 reverse-diffusion steps of the head, guidance 3 linear). Prints one JSON line per kind, the same keys with and
without `--fast-path`: seconds per batch and images/s for prompt -> tokens, tokens -> pixels (`decode`) and prompt
-> pixels (`images`: the two together), the achieved GFLOP/s and its fraction of the in-run peak of the arithmetic
used (float32 matmul for the exact path; for the fast path the int8 peak of its `torch.ao` kernels, counting the
exact path's FLOPs), the peak resident memory of the timed stages, and the fast path's quality against the exact
path (`--fast-path` also samples once with the exact models, from the same seed): equal token ids (VQ) or the
tokens' relative error (KL), PSNR of the fast decoder's pixels on the exact tokens, and PSNR of the fast run's
images against the exact run's; and where the sampling time goes (`time_shares`: text encoder, transformer, the
diffusion head's batched modulations and per-step MLP, the rest). FLOPs are counted once on the exact path with
torch's FLOP counter; the transformers models (CLIP, TA-TiTok) run with eager attention while counting, MaskGen's
diffusers attention is fused SDPA, which the counter does not see (about 3% of MaskGen's FLOPs at these lengths),
so the fraction is a lower bound. `--modulation-rows 1` runs the diffusion head once per reverse step (the official
order of calls) to compare. The counted run warms the kernels up; each stage is then timed without another warm-up
(a run is tens of seconds). The official repository publishes no throughput for MaskGen.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from hf_titok import (
    MaskGenKLScheduler,
    MaskGenKLTransformer,
    MaskGenPipeline,
    MaskGenVQScheduler,
    MaskGenVQTransformer,
    TATiTokConfig,
    TATiTokTokenizer,
)
from hf_titok.releases import MASKGEN_PRESETS

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


class _WordTokenizer:
    """Stands in for CLIP's BPE tokenizer (its vocabulary is not on this machine): one id per word."""

    bos_token_id, eos_token_id = 49406, 49407

    def __call__(self, text, add_special_tokens=True, truncation=False):
        ids = [1 + hash(word) % 49000 for word in text.lower().split()]
        return {"input_ids": [self.bos_token_id, *ids, self.eos_token_id]}

    def decode(self, ids):
        return " ".join(map(str, ids))


def clip_text_encoder() -> CLIPTextModelWithProjection:
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=768,
        eos_token_id=2,
    )
    return CLIPTextModelWithProjection(config).eval()


def pipeline(kind: str) -> MaskGenPipeline:
    preset = MASKGEN_PRESETS[f"maskgen_{kind}_l"]
    torch.manual_seed(0)
    vqvae = TATiTokTokenizer(TATiTokConfig.from_preset(preset.tokenizer)).eval()
    if kind == "vq":
        transformer = MaskGenVQTransformer(**preset.transformer_kwargs()).eval()
        scheduler = MaskGenVQScheduler(**preset.scheduler_kwargs())
    else:
        transformer = MaskGenKLTransformer(**preset.transformer_kwargs()).eval()
        scheduler = MaskGenKLScheduler(**preset.scheduler_kwargs())
    pipe = MaskGenPipeline(vqvae, transformer, scheduler, clip_text_encoder(), _WordTokenizer())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def count_flops(pipe: MaskGenPipeline, fn):
    """FLOPs of `fn()` and its result (the transformers models with eager attention while counting)."""
    models = [pipe.vqvae, pipe.text_encoder]
    saved = [model.config._attn_implementation for model in models]
    for model in models:
        model.config._attn_implementation = "eager"
    try:
        with FlopCounterMode(display=False) as counter:
            result = fn()
    finally:
        for model, implementation in zip(models, saved):
            model.config._attn_implementation = implementation
    return counter.get_total_flops(), result


def quality(pipe: MaskGenPipeline, exact_tokens, fast_tokens, exact_pixels, decode) -> dict:
    """The fast path's outputs against the exact path's, from the same seed."""
    if pipe.is_kl:
        error = float((fast_tokens - exact_tokens).abs().max() / exact_tokens.abs().max())
        tokens = {"tokens_max_relative_error": round(error, 4)}
    else:
        tokens = {"equal_token_ids": round(float((fast_tokens == exact_tokens).float().mean()), 4)}
    return {
        **tokens,
        "decode_psnr_db_on_exact_tokens": psnr_db(decode(exact_tokens), exact_pixels),
        "images_psnr_db": psnr_db(decode(fast_tokens), exact_pixels),
    }


class TimeShares:
    """Where the timed sampling runs' time goes: wall time inside the text encoder, the transformer and (MaskGen-KL)
    the diffusion head's batched modulations and its per-step token MLP, measured by wrapping those calls on the
    instances (CPU calls are synchronous); the rest is the sampler's own work and Python."""

    def __init__(self, pipe: MaskGenPipeline):
        self.parts = {"text_encoder": (pipe.text_encoder, "forward"), "transformer": (pipe.transformer, "forward")}
        if pipe.is_kl:
            head = pipe.transformer.diffusion_head
            self.parts["head_modulations"] = (head, "step_modulations")
            self.parts["head_denoise"] = (head, "denoise")
        self.seconds = dict.fromkeys(self.parts, 0.0)
        self.calls = dict.fromkeys(self.parts, 0)

    def __enter__(self):
        for name, (owner, method) in self.parts.items():
            original = getattr(owner, method)

            def timed_call(*args, name=name, original=original, **kwargs):
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.seconds[name] += time.perf_counter() - start
                    self.calls[name] += 1

            setattr(owner, method, timed_call)
        return self

    def __exit__(self, *exc):
        for owner, method in self.parts.values():
            delattr(owner, method)  # the instance attribute: the class's method shows again

    def report(self, total: float) -> dict:
        # The transformer's time includes nothing of the head (the sampler calls the head after it).
        shares = {name: round(seconds / total, 3) for name, seconds in self.seconds.items()}
        shares["rest"] = round(1 - sum(self.seconds.values()) / total, 3)
        return {"time_shares": shares, "calls": self.calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", nargs="+", default=["vq", "kl"], choices=["vq", "kl"])
    parser.add_argument("--fast-path", action="store_true", help="the CPU fast path (hf_titok.fast_path)")
    parser.add_argument(
        "--modulation-rows",
        type=int,
        help="MaskGen-KL: rows x steps of the head's modulations per batched call (default the sampler's; 1 = one "
        "head call per diffusion step, the official order of calls)",
    )
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    add_device_arguments(parser)
    args = parser.parse_args()
    device, dtype = setup(args)
    if args.modulation_rows is not None:
        MaskGenKLScheduler.MODULATION_ROWS = args.modulation_rows
    peak = matmul_peak_gflops(device, dtype)
    int8_peak = int8_linear_peak_gops() if args.fast_path else None
    prompts = ["A cozy cabin in a snowy forest, northern lights glowing in the sky."] * args.batch_size
    for kind in args.kind:
        pipe = pipeline(kind).to(device, dtype)
        decoder_text = pipe.encode_prompt(prompts, device=device)[-1]

        def tokens(pipe=pipe):
            return pipe(prompts, generator=torch.Generator(device).manual_seed(0), output_type="latent").images

        def decode(tokens, pipe=pipe, decoder_text=decoder_text):
            return pipe.vqvae.decode(tokens, text_embeddings=decoder_text)

        token_flops, exact_tokens = count_flops(pipe, tokens)
        decode_flops, exact_pixels = count_flops(pipe, lambda: decode(exact_tokens))
        flops = {"tokens": token_flops, "decode": decode_flops, "images": token_flops + decode_flops}
        parameters = {
            name: round(sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6, 2)
            for name in ("transformer", "vqvae", "text_encoder")
        }
        if args.fast_path:
            pipe.enable_fast_path()
        reset_peak_rss()
        runs = []  # the timed runs' tokens (the last is measured against the exact path)
        with TimeShares(pipe) as shares:  # a few microseconds per wrapped call
            start = time.perf_counter()
            seconds = {"tokens": timed(lambda: runs.append(tokens()), args.repeats, device, warmup=0)}
            breakdown = shares.report(time.perf_counter() - start)
        sampled = runs[-1]
        seconds["decode"] = timed(lambda: decode(sampled), args.repeats, device, warmup=0)
        seconds["images"] = seconds["tokens"] + seconds["decode"]
        config = pipe.scheduler.config
        used_peak = int8_peak if args.fast_path else peak
        result = {
            "benchmark": f"maskgen_{kind}_l",
            "fast_path": args.fast_path,
            "batch_size": args.batch_size,
            "num_inference_steps": config.num_inference_steps,
            "num_diffusion_steps": getattr(config, "num_diffusion_steps", None),
            "modulation_rows": MaskGenKLScheduler.MODULATION_ROWS if kind == "kl" else None,
            "guidance_scale": config.guidance_scale,
            "guidance_schedule": config.guidance_schedule,
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
        result.update(breakdown)
        if device.type == "cuda":
            result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        result["quality_vs_exact"] = (
            quality(pipe, exact_tokens, sampled, exact_pixels, decode) if args.fast_path else None
        )
        result.update(machine_info(device))
        print(json.dumps(result), flush=True)
        del pipe


if __name__ == "__main__":
    with torch.inference_mode():
        main()
