#!/usr/bin/env python
"""The candidates for the CPU fast path, measured on TiTok-L-32's two hot pieces (this is how the fast path of
`hf_titok.fast_path` was chosen).

    python benchmarks/bench_fast_path_candidates.py [--tokens 2312] [--vqgan-batch 2] [--json out.json]

- a ViT MLP block of L-32 (1024 -> 4096 -> 1024, GELU) over 8 x 289 tokens: the bulk of the encoder, the decoder
  and the generator;
- the MaskGIT-VQGAN decoder (16x16 codes -> 256x256 pixels): half of L-32's decode, convolutions only.

Each candidate: milliseconds, speed-up over float32 eager, and the max abs error against float32 (random
weights; the quality on trained weights is the built-in model's, in the README). Candidates from optional
packages (torchao, ONNX Runtime) are reported as "not installed" when missing. One JSON line, then a table.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from hf_titok import MaskGITVQGANConfig
from hf_titok.fast_path import Bfloat16Island, DecoderPixels, fast_bfloat16, quantize_linear_layers
from hf_titok.models.maskgit_vqgan.modeling_maskgit_vqgan import MaskGITVQGANDecoder

from common import machine_info, matmul_peak_gflops, timed


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024)).eval()


def torchao_int8(module: nn.Module, compile_it: bool) -> nn.Module:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(module, Int8DynamicActivationInt8WeightConfig())
    return torch.compile(module) if compile_it else module


def pt2e_int8(module: nn.Module, example: torch.Tensor) -> nn.Module:
    """PyTorch 2 export quantization (torchao's PT2E) with the x86 inductor quantizer: static int8 activations and
    weights, convolutions included, calibrated on a few random inputs of the example's shape (the VQGAN decoder's
    inputs are codebook vectors, so such data needs no images), then compiled so inductor picks oneDNN's int8
    kernels (~70 s to compile the VQGAN decoder on 2 cores)."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(torch.export.export(module, (example,)).module(), quantizer)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        prepared(torch.randn(example.shape, generator=generator))
    return torch.compile(convert_pt2e(prepared))


def onnx_runtime(module: nn.Module, example: torch.Tensor, int8: bool):
    """ONNX export + ONNX Runtime (optionally its dynamic int8 quantization); returns a callable on tensors."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(tempfile.mkdtemp())
    path = folder / "model.onnx"
    torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=["x"], output_names=["y"])
    if int8:
        quantize_dynamic(str(path), str(folder / "int8.onnx"), weight_type=QuantType.QInt8)
        path = folder / "int8.onnx"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def candidates(piece: str, module: nn.Module, example: torch.Tensor) -> dict:
    """name -> (callable, what it is) for one piece."""

    def bf16(m):
        return Bfloat16Island(copy.deepcopy(m))

    table = {
        "float32 eager": lambda: module,
        "float32 torch.compile": lambda: torch.compile(copy.deepcopy(module)),
        "bfloat16 (weights + activations)": lambda: bf16(module),
        "bfloat16 torch.compile": lambda: torch.compile(bf16(module)),
    }
    if piece == "mlp":
        table["int8 dynamic, torch.ao (eager)"] = lambda: quantize_linear_layers(copy.deepcopy(module))
        table["int8 dynamic, torchao (eager)"] = lambda: torchao_int8(copy.deepcopy(module), compile_it=False)
        table["int8 dynamic, torchao + torch.compile"] = lambda: torchao_int8(copy.deepcopy(module), compile_it=True)
        table["ONNX Runtime float32"] = lambda: onnx_runtime(module, example, int8=False)
        table["ONNX Runtime int8 dynamic"] = lambda: onnx_runtime(module, example, int8=True)
    else:
        table["ONNX Runtime float32"] = lambda: onnx_runtime(module, example, int8=False)
        table["int8 static, PT2E x86 inductor quantizer + torch.compile"] = lambda: pt2e_int8(module, example)
    return table


def measure(piece: str, module: nn.Module, example: torch.Tensor, repeats: int) -> list[dict]:
    reference = module(example)
    rows, base = [], None
    for name, make in candidates(piece, module, example).items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                candidate = make()
                output = candidate(example)  # the first call compiles / builds sessions
                seconds = timed(lambda: candidate(example), repeats)
        except ImportError as error:
            rows.append({"candidate": name, "status": f"not installed ({error.name})"})
            continue
        except Exception as error:  # a candidate that does not run is a result too
            rows.append(
                {"candidate": name, "status": f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"}
            )
            continue
        base = base or seconds
        rows.append(
            {
                "candidate": name,
                "status": "ok",
                "ms": round(seconds * 1e3, 1),
                "speedup": round(base / seconds, 2),
                "max_abs_error": float(f"{(output.float() - reference).abs().max():.3g}"),
            }
        )
    return rows


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=8 * 289, help="MLP rows (batch 8 x 289 tokens of L-32's decoder)")
    parser.add_argument("--vqgan-batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    torch.manual_seed(0)
    vqgan_config = MaskGITVQGANConfig()
    decoder = DecoderPixels(MaskGITVQGANDecoder(vqgan_config)).eval()
    latents = torch.randn(args.vqgan_batch, vqgan_config.z_channels, vqgan_config.grid_size, vqgan_config.grid_size)
    result = {
        "benchmark": "fast_path_candidates",
        "threads": torch.get_num_threads(),
        "fast_bfloat16": fast_bfloat16(),
        "matmul_peak_gflops": {
            "float32": round(matmul_peak_gflops(), 1),
            "bfloat16": round(matmul_peak_gflops(dtype=torch.bfloat16), 1),
        },
        "mlp": measure("mlp", mlp(), torch.randn(args.tokens, 1024), args.repeats),
        "vqgan_decoder": measure("vqgan", decoder, latents, args.repeats),
        **machine_info(torch.device("cpu")),
    }
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(
        f"\nfloat32 matmul peak {result['matmul_peak_gflops']['float32']} GFLOP/s, bfloat16 "
        f"{result['matmul_peak_gflops']['bfloat16']} (fast bfloat16: {result['fast_bfloat16']}), "
        f"{result['threads']} threads"
    )
    for piece, title in (
        ("mlp", f"L-32 MLP block, {args.tokens} tokens"),
        ("vqgan_decoder", f"VQGAN decoder, batch {args.vqgan_batch}"),
    ):
        print(f"\n{title}\n| candidate | ms | speed-up | max abs error |\n|---|---|---|---|")
        for row in result[piece]:
            if row["status"] == "ok":
                print(f"| {row['candidate']} | {row['ms']} | x{row['speedup']} | {row['max_abs_error']} |")
            else:
                print(f"| {row['candidate']} | {row['status']} | | |")


if __name__ == "__main__":
    main()
