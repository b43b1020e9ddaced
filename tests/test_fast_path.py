"""The CPU fast path (hf_titok.fast_path): one argument, the quality bounds on the built-in model, clear refusals,
and chunked decoding. Its speed is measured by benchmarks/bench_stages.py, never here."""

import sys

import numpy as np
import pytest
import torch
from torch import nn

import hf_titok
from hf_titok import TiTokMaskGIT, TiTokPipeline, TiTokTokenizer
from hf_titok.data.fashion_mnist import demo_test_images
from hf_titok.evaluation.metrics import psnr
from hf_titok.fast_path import (
    Bfloat16Island,
    OnnxRuntimeConvolutions,
    fast_bfloat16,
    onnx_runtime_available,
    release_pages,
)

from conftest import tiny_pipeline


def pipelines(bfloat16: bool):
    exact = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE)
    fast = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE).enable_fast_path(bfloat16=bfloat16)
    for pipe in (exact, fast):
        pipe.set_progress_bar_config(disable=True)
    return exact, fast


@pytest.fixture(scope="module", params=[True, False], ids=["with_bfloat16", "int8_only"])
def exact_and_fast(request):
    """Both variants, whatever this CPU has: with bfloat16 (what CPUs with fast bfloat16 get) and without."""
    return pipelines(bfloat16=request.param)


@pytest.fixture(scope="module")
def test_images():
    images, _ = demo_test_images()
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def quantized_linear_layers(module: nn.Module) -> int:
    return sum(
        type(m).__name__ == "Linear" and type(m).__module__.startswith("torch.ao.nn.quantized")
        for m in module.modules()
    )


@torch.no_grad()
def test_builtin_model_keeps_its_ids_and_psnr(exact_and_fast, test_images):
    """The issue's bounds on the shipped test images: >= 99% equal encode ids, reconstruction PSNR within 0.3 dB.
    (On all 10,000 test images, training/fashion_mnist/evaluate.py --fast-path: 99.18% ids, -0.02 dB.)"""
    exact, fast = exact_and_fast
    exact_ids = exact.vqvae.encode(test_images).token_ids
    fast_ids = fast.vqvae.encode(test_images).token_ids
    assert float((fast_ids == exact_ids).float().mean()) >= 0.99
    exact_psnr = float(psnr(exact.vqvae.decode(exact_ids).clamp(0, 1), test_images).mean())
    fast_psnr = float(psnr(fast.vqvae.decode(fast_ids).clamp(0, 1), test_images).mean())
    assert abs(fast_psnr - exact_psnr) <= 0.3, (exact_psnr, fast_psnr)


@torch.no_grad()
def test_builtin_model_samples_nearly_the_same_tokens(exact_and_fast):
    """Same seeds, same sampler: the int8 generator's logits move a little, so a few sampled ids differ (the
    class consistency bound is measured by evaluate.py --fast-path on 1,000 samples)."""
    exact, fast = exact_and_fast
    labels = list(range(10)) * 3
    ids = [
        pipe(labels, generator=torch.Generator().manual_seed(0), output_type="latent").images for pipe in (exact, fast)
    ]
    assert ids[0].shape == ids[1].shape == (30, exact.vqvae.config.num_latent_tokens)
    assert float((ids[0] == ids[1]).float().mean()) >= 0.8
    again = fast(labels, generator=torch.Generator().manual_seed(0), output_type="latent").images
    assert torch.equal(again, ids[1])  # deterministic


def test_what_the_fast_path_changes(exact_and_fast):
    exact, fast = exact_and_fast
    bfloat16 = isinstance(fast.vqvae.encoder.layers[0].mlp, Bfloat16Island)
    assert fast.vqvae.fast_path and fast.transformer.fast_path and not exact.vqvae.fast_path
    # int8: every linear layer of the tokenizer's decoder and of the generator.
    assert quantized_linear_layers(fast.vqvae.decoder) == sum(
        isinstance(m, nn.Linear) for m in exact.vqvae.decoder.modules()
    )
    assert quantized_linear_layers(fast.transformer) == sum(
        isinstance(m, nn.Linear) for m in exact.transformer.modules()
    )
    # The encoder's query/key/value projections, the quantizer and the sampler stay exact float32.
    for layer in fast.vqvae.encoder.layers:
        assert type(layer.self_attn.qkv_proj) is nn.Linear and layer.self_attn.qkv_proj.weight.dtype == torch.float32
        assert isinstance(layer.self_attn.out_proj, Bfloat16Island) == bfloat16
    assert fast.vqvae.quantizer.embedding.weight.dtype == torch.float32
    assert isinstance(fast.vqvae.pixel_decoder, Bfloat16Island) == bfloat16
    if bfloat16:
        assert fast.vqvae.encoder.layers[0].mlp.module.fc1.weight.dtype == torch.bfloat16


def test_one_argument_on_every_from_pretrained(tmp_path):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path)
    fast = TiTokPipeline.from_pretrained(tmp_path, fast_path=True)
    assert fast.vqvae.fast_path and fast.transformer.fast_path and not fast.vqvae.training
    tokenizer = TiTokTokenizer.from_pretrained(tmp_path / "vqvae", fast_path=True)
    generator = TiTokMaskGIT.from_pretrained(tmp_path / "transformer", fast_path=True)
    assert tokenizer.fast_path and generator.fast_path
    assert quantized_linear_layers(tokenizer.decoder) > 0 and quantized_linear_layers(generator) > 0
    # The default follows the CPU: bfloat16 parts only where bfloat16 matrix products are fast.
    assert isinstance(tokenizer.encoder.layers[0].mlp, Bfloat16Island) == fast_bfloat16()
    pixels = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ids = tokenizer.encode(pixels).token_ids
        assert torch.equal(ids, fast.vqvae.encode(pixels).token_ids)
        assert torch.allclose(tokenizer.decode(ids), fast.vqvae.decode(ids))
    # Switching on twice changes nothing.
    assert tokenizer.enable_fast_path() is tokenizer and quantized_linear_layers(tokenizer.decoder) > 0


def test_fast_bfloat16_is_amx_or_measured(monkeypatch):
    from hf_titok import fast_path

    measured = {"speedup": 0.55}  # one AVX-512 BF16 CPU without AMX; another measured 2.6
    monkeypatch.setattr(fast_path, "bfloat16_speedup", lambda: measured["speedup"])
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    try:
        for speedup, expected in ((0.55, False), (1.2, False), (1.3, True), (2.6, True)):
            measured["speedup"] = speedup
            fast_bfloat16.cache_clear()
            assert fast_bfloat16() is expected
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
        measured["speedup"] = 0.5
        fast_bfloat16.cache_clear()
        assert fast_bfloat16() is True  # AMX: no measurement needed
        assert fast_bfloat16.cache_info().currsize == 1  # measured once per process
    finally:
        fast_bfloat16.cache_clear()
    monkeypatch.undo()
    # A real measurement: a ratio of two timings. On CPUs without bfloat16 instructions (AVX2 only) bfloat16
    # matrix products run ~100-200x slower than float32 ones, so the ratio can lie well below 0.01.
    assert 1e-4 < fast_path.bfloat16_speedup() < 100


def resident_file_mb() -> float:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssFile:")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_PAGEOUT is Linux's")
def test_replaced_weights_give_their_file_pages_back_and_lose_nothing(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    weights = torch.randn(8 * 2**20, generator=torch.Generator().manual_seed(0))  # 32 MiB
    save_file({"weight": weights}, tmp_path / "model.safetensors")
    with safe_open(tmp_path / "model.safetensors", "pt") as file:
        mapped = file.get_tensor("weight")  # mapped from the file, as from_pretrained loads weights
    assert torch.equal(mapped, weights)  # reads every page
    before = resident_file_mb()
    assert release_pages([mapped]) >= 31 * 2**20
    assert resident_file_mb() < before - 24
    assert torch.equal(mapped, weights)  # read back from the file when touched again
    assert release_pages([weights]) == 0  # anonymous memory is left to PyTorch's allocator
    assert release_pages([]) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_PAGEOUT is Linux's")
@torch.no_grad()
def test_fast_from_pretrained_gives_the_replaced_float32_pages_back(tmp_path):
    import gc

    from conftest import tiny_maskgit_config

    config = tiny_maskgit_config(hidden_size=512, intermediate_size=2048, num_attention_heads=4)
    TiTokMaskGIT(config).save_pretrained(tmp_path)
    ids = torch.randint(
        0, config.codebook_size, (2, config.num_latent_tokens), generator=torch.Generator().manual_seed(0)
    )
    labels = torch.tensor([1, 2])
    exact = TiTokMaskGIT.from_pretrained(tmp_path).eval()
    linear_mb = sum(m.weight.nbytes for m in exact.modules() if type(m) is nn.Linear) / 2**20  # ~25 MB
    exact_logits = exact(ids, labels).logits
    # Pages another mapping of the same file also holds are not reclaimed (they are shared): one model at a time.
    del exact
    TiTokMaskGIT.from_pretrained(tmp_path, fast_path=True)  # warm-up: the int8 kernels' own code pages
    gc.collect()
    model = TiTokMaskGIT.from_pretrained(tmp_path).eval()
    assert sum(float(p.abs().sum()) for p in model.parameters()) > 0  # every page read in
    before = resident_file_mb()
    model.enable_fast_path()
    assert resident_file_mb() < before - 0.5 * linear_mb
    fast_logits = model(ids, labels).logits
    assert float((fast_logits - exact_logits).abs().max()) < 0.1 * float(exact_logits.abs().max())


def test_standalone_vqgan_fast_path(fixtures):
    from hf_titok.conversion import convert_vqgan, load_official_config

    def load():
        return convert_vqgan(
            load_official_config(fixtures.config_path("maskgit_vqgan")), fixtures.vqgan_weights()
        ).eval()

    exact, fast = load(), load().enable_fast_path(bfloat16=True)
    pixels = fixtures.pixel_values
    with torch.no_grad():
        codes = exact.encode(pixels).codes
        assert torch.equal(fast.encode(pixels).codes, codes)  # the codebook search stays float32
        exact_pixels, fast_pixels = exact.decode(codes), fast.decode(codes)
    assert isinstance(fast.decoder, Bfloat16Island) and fast_pixels.dtype == torch.float32
    between = float(psnr(fast_pixels.clamp(0, 1), exact_pixels.clamp(0, 1)).mean())
    assert 35 < between < 200
    # Without bfloat16 (CPUs where it is slow): the float32 convolutions through ONNX Runtime (a dev dependency).
    assert onnx_runtime_available()
    float32 = load().enable_fast_path(bfloat16=False)
    assert float32.fast_path and isinstance(float32.decoder, OnnxRuntimeConvolutions)
    with torch.no_grad():
        onnx_pixels = float32.decode(codes)
        assert onnx_pixels.dtype == torch.float32 and onnx_pixels.shape == exact_pixels.shape
        assert torch.allclose(onnx_pixels, exact_pixels, atol=1e-4, rtol=0)
        assert not torch.equal(onnx_pixels, exact_pixels)  # really ONNX Runtime's kernels, not PyTorch's
        # Other batch sizes and feature maps on request (from the PyTorch decoder it keeps).
        two = torch.cat([codes, codes.flip(0)])
        assert torch.allclose(float32.decode(two), exact.decode(two), atol=1e-4, rtol=0)
        latents = exact.quantizer.embed_codes(codes, exact.config.grid_size)
        maps = float32.decoder(latents, True)
        assert maps.hidden_states is not None and torch.equal(
            maps.last_hidden_state, exact.decoder(latents, True).last_hidden_state
        )


def test_refusals(tmp_path):
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match=r"for inference: call model.eval\(\)"):
        pipe.vqvae.train().enable_fast_path()
    with pytest.raises(ValueError, match="starts from a float32 model, this one is torch.bfloat16"):
        pipe.transformer.eval().to(torch.bfloat16).enable_fast_path()
    with pytest.raises(ValueError, match="is for CPUs .* this model is on meta"):
        TiTokMaskGIT(pipe.transformer.config).to("meta").eval().enable_fast_path()
    fast = tiny_pipeline().enable_fast_path()
    with pytest.raises(ValueError, match="on the CPU fast path .* save the exact model"):
        fast.vqvae.save_pretrained(tmp_path / "vqvae")
    with pytest.raises(ValueError, match="on the CPU fast path"):
        fast.save_pretrained(tmp_path / "pipe")


@torch.no_grad()
def test_decoding_in_chunks_gives_the_same_images(fixtures):
    pipe = tiny_pipeline()
    tokenizer = pipe.vqvae.eval()
    ids = torch.randint(
        0,
        tokenizer.config.codebook_size,
        (7, tokenizer.config.num_latent_tokens),
        generator=torch.Generator().manual_seed(0),
    )
    whole = tokenizer.decode(ids)
    for batch_size in (1, 3, 7, 100):
        # Not bit-identical: CPU matrix kernels block their work by batch size (differences ~1e-8).
        assert torch.allclose(tokenizer.decode(ids, batch_size=batch_size), whole, atol=1e-5, rtol=0)
    latents = tokenizer.quantizer.embed(ids)
    assert torch.allclose(tokenizer.decode_latents(latents, batch_size=2), whole, atol=1e-5, rtol=0)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer or None"):
            tokenizer.decode(ids, batch_size=bad)
    pipe.set_progress_bar_config(disable=True)
    images = [
        pipe([0, 1, 2], generator=torch.Generator().manual_seed(1), output_type="np", decode_batch_size=size).images
        for size in (None, 1)
    ]
    assert np.allclose(images[0], images[1], atol=1e-5)
    # What a user sees, 8-bit images, is identical.
    pil = [
        pipe([0, 1, 2], generator=torch.Generator().manual_seed(1), decode_batch_size=size).images for size in (None, 2)
    ]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(*pil))


def test_a_fast_model_refuses_what_it_cannot_do_before_changing_anything():
    fast = tiny_pipeline().enable_fast_path()
    fast.set_progress_bar_config(disable=True)
    before = fast([1], generator=torch.Generator().manual_seed(0), output_type="latent").images
    for move in (
        lambda: fast.to(torch.float16),
        lambda: fast.vqvae.to(torch.bfloat16),
        lambda: fast.transformer.to("meta"),
        lambda: fast.vqvae.half(),
        lambda: fast.transformer.bfloat16(),
    ):
        with pytest.raises(ValueError, match="on the CPU fast path .*not possible. Load the exact model"):
            move()
    with pytest.raises(ValueError, match="training is not possible"):
        fast.vqvae.train()
    with pytest.raises(ValueError, match=r"gradients \(requires_grad_\(True\)\) is not possible"):
        fast.transformer.requires_grad_(True)
    # Nothing changed: the pipeline still samples the same, and harmless calls pass.
    fast.to("cpu").to(torch.float32)
    fast.vqvae.eval().requires_grad_(False)
    assert fast.transformer.dtype == torch.float32 and not fast.vqvae.training
    assert torch.equal(before, fast([1], generator=torch.Generator().manual_seed(0), output_type="latent").images)
