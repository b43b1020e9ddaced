"""The path GPU users take: half precision on CUDA against float32 on the CPU, model and sequential CPU offload
with their default (accelerator) device, CPU generators with a CUDA pipeline, torch.compile on the GPU.

Marked `gpu`; skipped, with the reason shown in the summary (`-ra`), where there is no CUDA device. Run them
alone with `pytest -m gpu`.
"""

import pytest
import torch

import hf_titok
from hf_titok import TiTokPipeline
from hf_titok.data.fashion_mnist import demo_test_images
from hf_titok.evaluation.metrics import psnr

from conftest import tiny_pipeline

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (this machine has none)"),
]

HALF = [torch.float16, torch.bfloat16]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def cpu_reference():
    pipe = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("dtype", HALF, ids=str)
@torch.no_grad()
def test_builtin_model_half_precision_on_cuda_matches_cpu_float32(cpu_reference, dtype):
    pipe = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE, dtype=dtype).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    images, _ = demo_test_images()
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    ids = cpu_reference.vqvae.encode(pixels).token_ids
    agreement = (pipe.vqvae.encode(pixels.cuda()).token_ids.cpu() == ids).float().mean()
    assert agreement >= {torch.float16: 0.98, torch.bfloat16: 0.95}[dtype]
    reconstruction = pipe.vqvae.decode(ids.cuda()).float().cpu()
    assert float(psnr(reconstruction.clamp(0, 1), cpu_reference.vqvae.decode(ids).clamp(0, 1)).mean()) > 40
    # A CPU generator with a CUDA pipeline: the noise is drawn on the CPU, so ids mostly agree with the CPU run.
    expected = cpu_reference(list(range(10)), num_images_per_label=4, generator=seeded(0), output_type="latent").images
    sampled = pipe(list(range(10)), num_images_per_label=4, generator=seeded(0), output_type="latent").images
    assert sampled.device.type == "cuda"
    assert (sampled.cpu() == expected).float().mean() >= 0.9
    assert len(pipe(["Bag", "Dress"], generator=seeded(1)).images) == 2


@torch.no_grad()
def test_cuda_generator_and_generator_lists():
    pipe = tiny_pipeline().to("cuda")
    a = pipe([1, 2], generator=torch.Generator("cuda").manual_seed(0), output_type="latent").images
    b = pipe([1, 2], generator=torch.Generator("cuda").manual_seed(0), output_type="latent").images
    assert torch.equal(a, b) and a.device.type == "cuda"
    batch = pipe([1, 2], generator=[seeded(3), seeded(4)], output_type="latent").images
    assert torch.equal(batch[1], pipe(2, generator=seeded(4), output_type="latent").images[0])


@pytest.mark.parametrize("offload", ["model", "sequential"])
@torch.no_grad()
def test_offload_to_the_gpu(cpu_reference, offload):
    pipe = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE, dtype=torch.float16)
    pipe.set_progress_bar_config(disable=True)
    getattr(pipe, f"enable_{offload}_cpu_offload")()
    assert pipe._execution_device.type == "cuda"
    sampled = pipe(list(range(10)), generator=seeded(0), output_type="pt").images
    assert sampled.shape == (10, 3, 32, 32) and torch.isfinite(sampled).all()
    ids = cpu_reference(list(range(10)), generator=seeded(0), output_type="latent").images
    decoded = pipe.vqvae.decode(ids.cuda()).float().cpu()
    assert float(psnr(decoded.clamp(0, 1), cpu_reference.vqvae.decode(ids).clamp(0, 1)).mean()) > 40
    if offload == "model":
        assert next(pipe.vqvae.parameters()).device.type == "cpu"  # offloaded again after the call


@torch.no_grad()
def test_compiled_transformer_on_cuda():
    pipe = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE, dtype=torch.bfloat16).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    eager = pipe(list(range(10)), generator=seeded(0), output_type="latent").images
    pipe.transformer.compile(fullgraph=True)
    compiled = pipe(list(range(10)), generator=seeded(0), output_type="latent").images
    assert (compiled == eager).float().mean() >= 0.95
