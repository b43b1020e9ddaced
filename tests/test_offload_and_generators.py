"""Offload and big-model loading (accelerate hooks on encode/decode, weights read only inside their own module's
forward), and random numbers the diffusers way (CPU generators, one generator per image)."""

import pytest
import torch
from accelerate import cpu_offload

from hf_titok import TiTokPipeline, TiTokTokenizer
from hf_titok.utils.torch_utils import check_generator, rand_tensor

from conftest import tiny_pipeline


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    tiny_pipeline().save_pretrained(folder)
    return folder


def load(folder) -> TiTokPipeline:
    pipe = TiTokPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def count_hook_calls(module) -> list:
    calls = []
    hook = module._hf_hook
    original = hook.pre_forward

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    hook.pre_forward = counted
    return calls


def test_model_cpu_offload_fires_the_vqvae_hook(saved_pipeline):
    reference = load(saved_pipeline)([1, 2], generator=seeded(0), output_type="pt").images
    pipe = load(saved_pipeline)
    # On a GPU: enable_model_cpu_offload(). Here the "accelerator" is the CPU itself; the hooks are the same.
    pipe.enable_model_cpu_offload(device="cpu")
    vqvae_calls, transformer_calls = count_hook_calls(pipe.vqvae), count_hook_calls(pipe.transformer)
    images = pipe([1, 2], num_inference_steps=4, generator=seeded(0), output_type="pt").images
    assert len(vqvae_calls) >= 1, "decode() bypassed the vqvae's offload hook: it would stay on the CPU"
    assert len(transformer_calls) == 4
    assert torch.equal(images, reference)
    # Variations encode through the hook too (the pipeline re-installs its hooks after each call).
    vqvae_calls = count_hook_calls(pipe.vqvae)
    pipe(1, image=torch.rand(1, 3, 32, 32), generator=seeded(0), output_type="latent")
    assert len(vqvae_calls) >= 1


def _sequential_offload(pipe):
    """What `enable_sequential_cpu_offload()` does per component, with the CPU as the execution device.
    (diffusers turns `device="cpu"` into "cpu:0", which accelerate's hooks do not handle.) Every weight then
    lives on the meta device and is loaded only inside its own module's forward."""
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            cpu_offload(component, torch.device("cpu"), offload_buffers=len(component._parameters) > 0)


def test_sequential_offload_samples_and_decodes(saved_pipeline):
    reference = load(saved_pipeline)
    expected = reference([1, 2], generator=seeded(0), output_type="pt").images
    pipe = load(saved_pipeline)
    _sequential_offload(pipe)
    assert pipe.vqvae.quantizer.embedding.weight.device.type == "meta"
    assert pipe.vqvae.pixel_quantizer.embedding.weight.device.type == "meta"
    assert pipe.transformer.position_embedding.device.type == "meta"
    assert torch.equal(pipe([1, 2], generator=seeded(0), output_type="pt").images, expected)
    ids = torch.randint(0, 64, (3, 8), generator=seeded(1))
    torch.testing.assert_close(pipe.vqvae.decode(ids), reference.vqvae.decode(ids), rtol=0, atol=0)
    pixels = torch.rand(2, 3, 32, 32, generator=seeded(2))
    assert torch.equal(pipe.vqvae.encode(pixels).token_ids, reference.vqvae.encode(pixels).token_ids)


def test_device_map_with_disk_and_cpu_offload_decodes(saved_pipeline, tmp_path):
    reference = TiTokTokenizer.from_pretrained(saved_pipeline / "vqvae")
    device_map = {
        "encoder": "cpu",
        "quantizer": "disk",
        "decoder": "disk",
        "pixel_quantizer": "disk",
        "pixel_decoder": "cpu",
    }
    tokenizer = TiTokTokenizer.from_pretrained(saved_pipeline / "vqvae", device_map=device_map, offload_folder=tmp_path)
    assert tokenizer.decoder.latent_projection.weight.device.type == "meta"
    assert tokenizer.quantizer.embedding.weight.device.type == "meta"
    with torch.no_grad():
        ids = torch.randint(0, 64, (2, 8), generator=seeded(0))
        assert torch.equal(tokenizer.decode(ids), reference.decode(ids))
        pixels = torch.rand(2, 3, 32, 32, generator=seeded(1))
        assert torch.equal(tokenizer.encode(pixels).token_ids, reference.encode(pixels).token_ids)


# ---------------------------------------------------------------------------------------------------------
# Random numbers
# ---------------------------------------------------------------------------------------------------------


def test_rand_tensor_follows_the_diffusers_conventions():
    torch.manual_seed(0)
    assert torch.equal(rand_tensor((2, 3), seeded(5)), torch.rand((2, 3), generator=seeded(5)))
    # One generator per row: row i is what generator i alone gives.
    rows = rand_tensor((3, 4), [seeded(1), seeded(2), seeded(3)])
    for i, seed in enumerate((1, 2, 3)):
        assert torch.equal(rows[i], torch.rand((1, 4), generator=seeded(seed))[0])
    # A list of one is one generator; a CPU generator draws on the CPU whatever the target device ("meta" here
    # stands in for an accelerator: the numbers are drawn on the CPU, then moved).
    assert torch.equal(rand_tensor((2, 3), [seeded(5)]), rand_tensor((2, 3), seeded(5)))
    assert rand_tensor((2, 3), seeded(5), device="meta").device.type == "meta"
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        rand_tensor((3, 4), [seeded(1), seeded(2)])


def test_generator_arguments_are_checked():
    check_generator(None, 4)
    check_generator(seeded(0), 4)
    check_generator([seeded(0)] * 4, 4)
    with pytest.raises(TypeError, match="generator must be a torch.Generator.*got int"):
        check_generator(0, 4)
    with pytest.raises(ValueError, match="list of 3 generators, but the batch has 4 images"):
        check_generator([seeded(0)] * 3, 4)
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match="list of 3 generators, but the batch has 4 images"):
        pipe([1, 2], num_images_per_label=2, generator=[seeded(0)] * 3)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        pipe([1], generator="seed")


def test_generator_lists_make_each_image_independent_of_the_batch():
    """diffusers' batch consistency: with one generator per image, image k of a batch (num_images_per_label > 1)
    is the image that a call for its label alone, with generator k, gives."""
    pipe = tiny_pipeline()
    generators = [seeded(10 + k) for k in range(4)]
    batch = pipe([3, 5], num_images_per_label=2, generator=generators, output_type="latent").images
    labels = [3, 3, 5, 5]
    for k in range(4):
        alone = pipe(labels[k], generator=seeded(10 + k), output_type="latent").images
        assert torch.equal(batch[k], alone[0]), f"image {k} depends on the rest of the batch"
    pixels = pipe([3, 5], num_images_per_label=2, generator=[seeded(10 + k) for k in range(4)], output_type="pt").images
    alone = pipe(5, generator=seeded(13), output_type="pt").images
    torch.testing.assert_close(pixels[3], alone[0], atol=1e-5, rtol=0)
    # Variations too.
    image = torch.rand(1, 3, 32, 32, generator=seeded(0))
    varied = pipe(1, image=image, num_images_per_label=2, generator=[seeded(1), seeded(2)], output_type="latent").images
    assert torch.equal(varied[1], pipe(1, image=image, generator=seeded(2), output_type="latent").images[0])
