"""The CPU fast path: cheaper arithmetic where the measured quality allows it, exact float32 where it does not.

Switched on with one argument, `from_pretrained(..., fast_path=True)` (tokenizers, generators, pipelines, for every
family: TiTok and One-D-Piece, TA-TiTok, MaskGen VQ and KL, RAR, the CLIP text tower in MaskGen's pipeline), or
`model.enable_fast_path()`. Chosen by measurement (benchmarks/bench_stages.py, bench_maskgen.py, bench_rar.py,
README "Performance"):

- int8 dynamic quantization (PyTorch's `torch.ao` dynamic quantization: int8 weights per tensor, activations
  quantized per batch, fbgemm/oneDNN int8 GEMMs, no compilation) of every linear layer of the tokenizer's
  decoder ViT (TA-TiTok's text-conditioned one too), of the generators (MaskGIT, RAR, MaskGen VQ and KL with
  MaskGen-KL's diffusion head) and of the CLIP text tower.
- bfloat16 for the encoder's MLPs and attention output projections and for the MaskGIT-VQGAN decoder's
  convolutions, on CPUs where bfloat16 matrix products are clearly faster than float32 (`fast_bfloat16()`:
  AMX tiles, or else measured once per process, since CPUs with the same instruction flags differ). Elsewhere
  these parts stay float32. The encoder's query/key/value projections and attention stay float32: the encoder
  decides the ids, and each cheaper part costs some of them.
- The MaskGIT-VQGAN decoder's convolutions where bfloat16 is not fast: exported to ONNX and run by ONNX Runtime
  when it is installed (`pip install hf_titok[fast]`), faster than PyTorch's float32 convolutions.
- Everything that decides ids stays float32: the codebook search, the proxy-code softmax, the sampler.

What each choice measured (speed, equal ids, PSNR, memory) is in the README's "Performance" section and
`benchmarks/bench_stages.py` / `bench_fast_path_candidates.py`, not here, where figures would go stale.

Memory: `from_pretrained` maps the safetensors file, so the float32 weights are file pages. Each float32 weight
the fast path replaces (an int8 or bfloat16 copy, ONNX Runtime's copy of the VQGAN decoder) gives its pages back
to the OS as soon as its copy exists (`release_pages`), so loading with the fast path peaks near the exact
path's (no second full copy) and ends below it.

The fast path is for inference: the quantized modules cannot be trained or saved (save the exact model).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import io
import math
import mmap
import sys
import time
import warnings
from collections.abc import Iterable

import torch
from torch import nn


@functools.cache
def fast_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices clearly (>= 1.3x) faster than float32. CPUs with AMX tiles do;
    without AMX the instruction flags do not tell (CPUs with AVX-512 BF16 were measured both well below and well
    above float32: README "Performance"), so elsewhere it is measured, once per process (`bfloat16_speedup`).
    `enable_fast_path(bfloat16=True/False)` overrides it."""
    return _has_amx() or bfloat16_speedup() >= 1.3


def _has_amx() -> bool:
    """AMX tiles, as torch reports them. The probe is private to torch (`torch.cpu._is_amx_tile_supported`): when a
    release lacks it, the speed is measured instead."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # a probe that fails on this CPU or build: measure instead
        return False


def bfloat16_speedup() -> float:
    """float32 time / bfloat16 time of two 768x768 matrix products on this CPU: interleaved, best of three after
    a warm-up round."""
    generator = torch.Generator().manual_seed(0)
    float32 = torch.randn(2, 768, 768, generator=generator)
    best = {torch.float32: math.inf, torch.bfloat16: math.inf}
    with torch.inference_mode():
        for round_ in range(4):  # round 0 warms both kernels up and is not counted
            for matrices in (float32, float32.to(torch.bfloat16)):
                start = time.perf_counter()
                torch.bmm(matrices, matrices)
                if round_:
                    best[matrices.dtype] = min(best[matrices.dtype], time.perf_counter() - start)
    return best[torch.float32] / best[torch.bfloat16]


class Bfloat16Island(nn.Module):
    """`module` run in bfloat16 inside a float32 model: inputs cast to bfloat16 on the way in, outputs back to
    float32 on the way out."""

    def __init__(self, module: nn.Module):
        super().__init__()
        float32 = [tensor.data for tensor in module.state_dict().values()]
        self.module = module.to(torch.bfloat16)
        release_pages(float32)

    def forward(self, *args):
        output = self.module(
            *(a.to(torch.bfloat16) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
        )
        return _to_float32(output)


class OnnxRuntimeConvolutions(nn.Module):
    """A MaskGIT-VQGAN decoder exported to ONNX and run by ONNX Runtime's CPU kernels (faster than PyTorch's float32
    convolutions on the CPUs measured, pixels equal up to float rounding: README "Performance"). The ONNX graph
    takes any batch and grid size. Feature maps on request (`output_hidden_states`) come from the PyTorch decoder
    it keeps."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        onnxruntime = importlib.import_module("onnxruntime")  # optional: not an import the remote-code loaders require

        self.decoder = decoder
        example = torch.zeros(1, decoder.conv_in.in_channels, 2, 2)
        with torch.no_grad():
            self._output_type = type(decoder(example))  # the decoder's own output tuple, built without importing it
        buffer = io.BytesIO()
        axes = {0: "batch", 2: "height", 3: "width"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
            torch.onnx.export(
                DecoderPixels(decoder),
                (example,),
                buffer,
                dynamo=False,
                input_names=["latents"],
                output_names=["pixels"],
                dynamic_axes={"latents": axes, "pixels": axes},
            )
        graph = buffer.getvalue()
        del buffer
        # ONNX Runtime makes its own copy of the weights: the PyTorch decoder's file pages go back to the OS first
        # (read again from the file only if feature maps are asked for).
        release_pages(decoder.state_dict().values())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def forward(self, latents: torch.Tensor, output_hidden_states: bool = False):
        if output_hidden_states:
            return self.decoder(latents, True)
        pixels = self.session.run(None, {"latents": latents.detach().float().contiguous().numpy()})[0]
        return self._output_type(torch.from_numpy(pixels), None)


class DecoderPixels(nn.Module):
    """A VQGAN decoder returning its pixels only (a plain tensor, for ONNX export and benchmarks)."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents).last_hidden_state


_MADV_PAGEOUT = 21  # linux/mman.h, Linux >= 5.4


def _file_mappings() -> list[tuple[int, int]]:
    """The address ranges of this process's file-backed memory mappings (Linux: /proc/self/maps)."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/"):
                start, end = fields[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return ranges


@functools.cache
def _madvise():
    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return madvise


def release_pages(tensors: Iterable[torch.Tensor]) -> int:
    """Ask the OS to reclaim the memory pages of `tensors` that lie in a mapped file (weights `from_pretrained`
    mapped from safetensors and that the fast path has replaced). `MADV_PAGEOUT` never loses data: the kernel
    drops clean file pages and reads them back from the file if a tensor is touched again (the PyTorch VQGAN
    decoder kept for `output_hidden_states` does so); anonymous memory (a model built in memory) is left to
    PyTorch's allocator. Only whole pages inside one tensor are released. Returns the bytes advised; 0 where
    the OS cannot (not Linux, a kernel older than 5.4)."""
    if not sys.platform.startswith("linux"):
        return 0
    tensors = [t for t in tensors if t.device.type == "cpu" and t.numel() > 0]
    if not tensors:
        return 0
    try:
        mappings, madvise = _file_mappings(), _madvise()
    except OSError:
        return 0
    page, advised = mmap.PAGESIZE, 0
    for tensor in tensors:
        start = tensor.data_ptr()
        end = start + tensor.nbytes
        first, last = -(-start // page) * page, end // page * page
        if last > first and any(low <= first and last <= high for low, high in mappings):
            if madvise(first, last - first, _MADV_PAGEOUT) != 0:
                return advised  # EINVAL: this kernel has no MADV_PAGEOUT
            advised += last - first
    return advised


def onnx_runtime_available() -> bool:
    """Whether ONNX Runtime and ONNX are installed (`pip install hf_titok[fast]`)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def _fast_convolutions(decoder: nn.Module, bfloat16: bool) -> nn.Module:
    """The MaskGIT-VQGAN decoder of the fast path: bfloat16 where it is fast, else ONNX Runtime when installed."""
    if bfloat16:
        return Bfloat16Island(decoder)
    return OnnxRuntimeConvolutions(decoder) if onnx_runtime_available() else decoder


def _to_float32(output):
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, tuple) and hasattr(output, "_replace"):  # NamedTuple outputs
        return type(output)(*(_to_float32(item) for item in output))
    if isinstance(output, tuple):
        return tuple(_to_float32(item) for item in output)
    return output


def quantize_linear_layers(module: nn.Module) -> nn.Module:
    """Every `nn.Linear` of `module` -> a dynamically quantized int8 linear layer (torch.ao's `quantize_dynamic`
    with int8 weights), in place, one layer at a time: each float32 weight gives its pages back as soon as its
    int8 copy exists (`release_pages`), so the float32 and int8 decoders never coexist."""
    linears = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear
    ]  # what quantize_dynamic(module, {nn.Linear}) swaps
    with warnings.catch_warnings():
        # torch.ao's eager dynamic quantization is deprecated in favour of torchao, whose int8 path is slower than
        # this one in eager mode and faster only after torch.compile (seconds to minutes per shape on a CPU, and an
        # extra package): measured in benchmarks/bench_fast_path_candidates.py.
        warnings.simplefilter("ignore")
        for parent, name, linear in linears:
            linear.qconfig = torch.ao.quantization.default_dynamic_qconfig
            setattr(parent, name, torch.ao.nn.quantized.dynamic.Linear.from_float(linear))
            release_pages(linear.parameters())
    return module


def already_fast(model: nn.Module) -> bool:
    """Checks a model before its fast path: True when it is already on it (switching twice changes nothing)."""
    if getattr(model, "fast_path", False):
        return True
    check_fast_path_model(model)
    return False


def check_fast_path_model(model: nn.Module) -> None:
    parameter = next(model.parameters(), None)
    if parameter is None:
        return
    if parameter.device.type != "cpu":
        raise ValueError(
            f"the fast path is for CPUs (int8 CPU kernels); this model is on {parameter.device}: on a GPU, load it "
            "with dtype=torch.bfloat16 instead"
        )
    if parameter.dtype != torch.float32:
        raise ValueError(f"the fast path starts from a float32 model, this one is {parameter.dtype}")
    if model.training:
        raise ValueError("the fast path is for inference: call model.eval() first (quantized layers do not train)")


def _check_fast_path_argument(fast_path) -> None:
    if not isinstance(fast_path, bool):
        raise TypeError(f"fast_path must be True or False, got {fast_path!r}")


def _device_and_dtype(args, kwargs) -> tuple[torch.device | None, torch.dtype | None]:
    """The device and dtype a `Module.to(...)` call asks for (either may be None)."""
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    for arg in args:
        if isinstance(arg, torch.dtype):
            dtype = arg
        elif isinstance(arg, torch.Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, (str, int, torch.device)):
            device = arg
    return (torch.device(device) if device is not None else None), dtype


class FastPathGuardMixin:
    """For the models that have a fast path: `from_pretrained(..., fast_path=True)` switches it on after loading,
    and a model on it (`fast_path` True) refuses, before anything changes, what its int8/bfloat16 modules and ONNX
    Runtime session cannot do - they exist only for float32 inference on the CPU: saving (save the exact model),
    moving to another device or dtype, training, gradients."""

    # True once `enable_fast_path()` has run: int8/bfloat16 modules, inference only.
    fast_path: bool = False

    @classmethod
    def from_pretrained(cls, *args, fast_path: bool = False, **kwargs):
        """The loading of the classes below, then `enable_fast_path()` with `fast_path=True`."""
        _check_fast_path_argument(fast_path)
        loaded = super().from_pretrained(*args, **kwargs)
        if fast_path:
            (loaded[0] if isinstance(loaded, tuple) else loaded).eval().enable_fast_path()
        return loaded

    def _refuse_on_fast_path(self, what: str) -> None:
        if self.fast_path:
            raise ValueError(
                f"this {type(self).__name__} is on the CPU fast path (int8/bfloat16 modules for float32 inference "
                f"on the CPU): {what} is not possible. Load the exact model (from_pretrained without "
                "fast_path=True) for that"
            )

    def save_pretrained(self, *args, variant: str | None = None, **kwargs):
        # `variant` is named: diffusers' pipeline saving passes it only to save methods whose signature names it.
        if self.fast_path:
            raise ValueError(
                f"this {type(self).__name__} is on the CPU fast path (int8/bfloat16 modules), which is not saved: save "
                "the exact model and load it with from_pretrained(..., fast_path=True)"
            )
        if variant is not None:
            kwargs["variant"] = variant
        return super().save_pretrained(*args, **kwargs)

    def to(self, *args, **kwargs):
        if self.fast_path:
            device, dtype = _device_and_dtype(args, kwargs)
            if (device is not None and device.type != "cpu") or dtype not in (None, torch.float32):
                self._refuse_on_fast_path(f"moving it to {device or 'cpu'} / {dtype or torch.float32}")
        return super().to(*args, **kwargs)

    def cuda(self, *args, **kwargs):
        self._refuse_on_fast_path("moving it to a GPU")
        return super().cuda(*args, **kwargs)

    def half(self, *args, **kwargs):
        self._refuse_on_fast_path("casting it to float16")
        return super().half(*args, **kwargs)

    def bfloat16(self, *args, **kwargs):
        self._refuse_on_fast_path("casting it to bfloat16")
        return super().bfloat16(*args, **kwargs)

    def train(self, mode: bool = True):
        if mode:
            self._refuse_on_fast_path("training")
        return super().train(mode)

    def requires_grad_(self, requires_grad: bool = True):
        if requires_grad:
            self._refuse_on_fast_path("gradients (requires_grad_(True))")
        return super().requires_grad_(requires_grad)


class FastPathPipelineMixin:
    """For the pipelines (`TiTokPipeline`, `RARPipeline`, `MaskGenPipeline`): `from_pretrained(..., fast_path=True)`
    and `enable_fast_path()` switch every model of the pipeline onto the fast path."""

    @classmethod
    def from_pretrained(cls, *args, fast_path: bool = False, **kwargs):
        """The pipeline's loading, then `enable_fast_path()` with `fast_path=True`."""
        _check_fast_path_argument(fast_path)
        pipe = super().from_pretrained(*args, **kwargs)
        return pipe.enable_fast_path() if fast_path else pipe

    def enable_fast_path(self, bfloat16: bool | None = None):
        """The CPU fast path of every model of the pipeline, in place (README "Performance"): int8 linear layers
        in the generator, the tokenizer's decoder and the text encoder; bfloat16 encoder MLPs and pixel-decoder
        convolutions on CPUs where bfloat16 is fast (`fast_bfloat16()`, or `bfloat16=`), else the pixel decoder
        through ONNX Runtime when installed. The samplers stay float32. Every model is checked (float32, on the
        CPU) before any changes."""
        text_encoder = getattr(self, "text_encoder", None)
        models = [self.vqvae, self.transformer] + ([text_encoder] if text_encoder is not None else [])
        for model in models:
            if not getattr(model, "fast_path", False):
                check_fast_path_model(model.eval())
        self.vqvae.enable_fast_path(bfloat16)
        self.transformer.enable_fast_path()
        if text_encoder is not None:
            text_encoder_fast_path(text_encoder)
        return self


def tokenizer_fast_path(tokenizer, bfloat16: bool | None = None):
    """The fast path of a `TiTokTokenizer`, in place (see the module docstring)."""
    if already_fast(tokenizer):
        return tokenizer
    bfloat16 = fast_bfloat16() if bfloat16 is None else bfloat16
    if bfloat16:
        for layer in tokenizer.encoder.layers:
            layer.mlp = Bfloat16Island(layer.mlp)
            layer.self_attn.out_proj = Bfloat16Island(layer.self_attn.out_proj)
    quantize_linear_layers(tokenizer.decoder)
    if tokenizer.pixel_decoder is not None:
        tokenizer.pixel_decoder = _fast_convolutions(tokenizer.pixel_decoder, bfloat16)
    tokenizer.fast_path = True
    return tokenizer


def vqgan_fast_path(vqgan, bfloat16: bool | None = None):
    """The fast path of a `MaskGITVQGAN`: the decoder's convolutions in bfloat16 on CPUs with fast bfloat16, else
    through ONNX Runtime when it is installed (encode's codebook search stays float32)."""
    if already_fast(vqgan):
        return vqgan
    vqgan.decoder = _fast_convolutions(vqgan.decoder, fast_bfloat16() if bfloat16 is None else bfloat16)
    vqgan.fast_path = True
    return vqgan


def generator_fast_path(generator):
    """The fast path of a generator (`TiTokMaskGIT`, `RARTransformer`, `MaskGenVQTransformer`,
    `MaskGenKLTransformer` with its diffusion head): int8 linear layers (attention, MLPs, modulations, output
    heads). Embeddings, norms, the attention products and the samplers stay float32."""
    if already_fast(generator):
        return generator
    quantize_linear_layers(generator)
    generator.fast_path = True
    return generator


@functools.cache
def _guarded_class(cls: type) -> type:
    """`cls` with `FastPathGuardMixin`'s refusals first in its method order (for a model class of another library)."""
    return type(cls.__name__, (FastPathGuardMixin, cls), {"__module__": cls.__module__, "__doc__": cls.__doc__})


def text_encoder_fast_path(text_encoder):
    """The fast path of a transformers text encoder (MaskGen's and TA-TiTok's CLIP text tower): int8 linear layers;
    the token and position embeddings, norms and attention products stay float32. transformers' class gets the
    fast path's refusals (saving, moving, training) through a subclass of the same name."""
    if already_fast(text_encoder):
        return text_encoder
    quantize_linear_layers(text_encoder)
    if not isinstance(text_encoder, FastPathGuardMixin):
        text_encoder.__class__ = _guarded_class(type(text_encoder))
    text_encoder.fast_path = True
    return text_encoder


__all__ = [
    "DecoderPixels",
    "FastPathGuardMixin",
    "FastPathPipelineMixin",
    "Bfloat16Island",
    "OnnxRuntimeConvolutions",
    "bfloat16_speedup",
    "fast_bfloat16",
    "generator_fast_path",
    "onnx_runtime_available",
    "quantize_linear_layers",
    "text_encoder_fast_path",
    "tokenizer_fast_path",
    "vqgan_fast_path",
]
