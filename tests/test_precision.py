"""Half precision: every model and the pipeline run in float16 and bfloat16 (CPU, tiny models and the built-in
model), against float32 within stated tolerances; what `from_pretrained` loads without a dtype; mixed-precision
training of every recipe."""

import numpy as np
import PIL.Image
import pytest
import torch

import hf_titok
from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, TiTokMaskGIT, TiTokPipeline, TiTokTokenizer
from hf_titok.data.fashion_mnist import demo_test_images
from hf_titok.evaluation.metrics import psnr

from conftest import tiny_maskgit_config, tiny_pipeline, tiny_titok_config

HALF = [torch.float16, torch.bfloat16]
# Tolerances on tiny random models, max abs error against float32 (pixels nominally in [0, 1]). bfloat16 keeps 8
# mantissa bits (relative step 2^-8 = 0.004), float16 11 (0.0005); the two-stage decoder stacks a ViT, a
# softmax mixture and a conv decoder, so its error is the largest.
PIXEL_ATOL = {torch.float16: 0.02, torch.bfloat16: 0.1}
LOGIT_ATOL = {torch.float16: 0.01, torch.bfloat16: 0.08}


def cast_copy(model, dtype):
    copy = type(model)(model.config).eval()
    copy.load_state_dict(model.state_dict())
    return copy.to(dtype)


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("kind", ["two_stage", "single_vq", "vae"])
@torch.no_grad()
def test_tokenizers_run_in_half_precision(kind, dtype):
    torch.manual_seed(0)
    model = TiTokTokenizer(tiny_titok_config(kind)).eval()
    half = cast_copy(model, dtype)
    pixels = torch.rand(4, 3, 32, 32)  # float32 images into a half-precision model: cast on entry
    reference, encoded = model.encode(pixels), half.encode(pixels)
    assert encoded.latents.dtype == torch.float32  # the quantizer / posterior run in float32 on purpose
    tokens = encoded.token_ids if model.is_vq else encoded.latents
    decoded = half.decode(tokens)
    assert decoded.dtype == dtype and decoded.shape == (4, 3, 32, 32) and torch.isfinite(decoded).all()
    expected = model.decode(reference.token_ids if model.is_vq else reference.latents)
    torch.testing.assert_close(decoded.float(), expected, atol=PIXEL_ATOL[dtype], rtol=0)
    if model.is_vq:
        agreement = (encoded.token_ids == reference.token_ids).float().mean().item()
        assert agreement >= 0.9, f"{kind} {dtype}: only {agreement:.0%} of ids equal float32's"
    else:
        torch.testing.assert_close(encoded.latents, reference.latents, atol=PIXEL_ATOL[dtype], rtol=0)
        assert torch.isfinite(encoded.kl_loss) and encoded.kl_loss.dtype == torch.float32
    out = half(pixels, sample_posterior=False)
    assert out.reconstruction.dtype == dtype and out.loss.dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF, ids=str)
@torch.no_grad()
def test_vqgan_runs_in_half_precision(dtype):
    torch.manual_seed(0)
    config = MaskGITVQGANConfig(
        image_size=32, hidden_channels=32, channel_mult=[1, 1, 2, 2], num_res_blocks=1, z_channels=16, codebook_size=128
    )
    model = MaskGITVQGAN(config).eval()
    half = cast_copy(model, dtype)
    pixels = torch.rand(2, 3, 32, 32)
    codes = model.encode(pixels).codes
    assert (half.encode(pixels).codes == codes).float().mean() >= 0.9
    decoded = half.decode(codes)
    assert decoded.dtype == dtype
    torch.testing.assert_close(decoded.float(), model.decode(codes), atol=PIXEL_ATOL[dtype], rtol=0)
    assert torch.isfinite(half(pixels).loss)


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("architecture", ["bert", "uvit"])
@torch.no_grad()
def test_generators_run_in_half_precision(architecture, dtype):
    torch.manual_seed(0)
    model = TiTokMaskGIT(tiny_maskgit_config(architecture)).eval()
    half = cast_copy(model, dtype)
    ids, labels = torch.randint(0, 65, (4, 8)), torch.tensor([0, 3, 9, 10])
    logits = half(ids, labels).logits
    assert logits.dtype == dtype
    torch.testing.assert_close(logits.float(), model(ids, labels).logits, atol=LOGIT_ATOL[dtype], rtol=0)
    assert half(ids, labels, labels=ids.clamp(max=63)).loss.dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("architecture", ["bert", "uvit"])
def test_pipeline_in_half_precision_every_output_type_and_variations(architecture, dtype):
    pipe = tiny_pipeline(architecture)
    seed = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    reference_ids = pipe([1, 2], generator=seed(), output_type="latent").images
    reference = pipe([1, 2], generator=seed(), output_type="pt").images
    pipe.to(dtype=dtype)
    assert pipe.vqvae.dtype == dtype and pipe.transformer.dtype == dtype
    ids = pipe([1, 2], generator=seed(), output_type="latent").images
    assert ids.dtype == torch.int64
    pt = pipe([1, 2], generator=seed(), output_type="pt").images
    assert pt.dtype == torch.float32 and pt.shape == (2, 3, 32, 32)
    if torch.equal(ids, reference_ids):  # same ids: the pixels differ by decoder rounding only
        torch.testing.assert_close(pt, reference, atol=PIXEL_ATOL[dtype], rtol=0)
    array = pipe([1, 2], generator=seed(), output_type="np").images
    assert array.dtype == np.float32 and array.shape == (2, 32, 32, 3)
    pil = pipe([1, 2], generator=seed()).images
    assert all(isinstance(image, PIL.Image.Image) and image.size == (32, 32) for image in pil)
    variations = pipe(1, image=torch.rand(2, 3, 32, 32), strength=0.5, generator=seed(), output_type="pt").images
    assert variations.shape == (2, 3, 32, 32) and torch.isfinite(variations).all()


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_from_pretrained_with_a_dtype_loads_half_precision(tmp_path, dtype):
    tiny_pipeline().save_pretrained(tmp_path)
    pipe = TiTokPipeline.from_pretrained(tmp_path, dtype=dtype)
    assert pipe.vqvae.dtype == dtype and pipe.transformer.dtype == dtype
    pipe.set_progress_bar_config(disable=True)
    assert len(pipe([0, 1], num_inference_steps=2).images) == 2
    assert TiTokTokenizer.from_pretrained(tmp_path / "vqvae", dtype=dtype).dtype == dtype


def test_without_a_dtype_weights_load_in_the_dtype_their_config_records(tmp_path):
    """transformers 5's "auto": a float16 checkpoint stays float16 (not doubled in memory on a GPU)."""
    pipe = tiny_pipeline()
    pipe.to(dtype=torch.float16).save_pretrained(tmp_path)
    assert TiTokTokenizer.from_pretrained(tmp_path / "vqvae").dtype == torch.float16
    loaded = TiTokPipeline.from_pretrained(tmp_path)
    assert loaded.vqvae.dtype == torch.float16 and loaded.transformer.dtype == torch.float16
    assert TiTokMaskGIT.from_pretrained(tmp_path / "transformer", dtype=torch.float32).dtype == torch.float32


def test_builtin_model_stores_fp16_weights_and_loads_float32():
    from safetensors import safe_open

    folder = hf_titok.FASHION_MNIST_PIPELINE
    with safe_open(f"{folder}/transformer/model.safetensors", "pt") as weights:
        assert {weights.get_slice(key).get_dtype() for key in weights.keys()} == {"F16"}
    pipe = TiTokPipeline.from_pretrained(folder)
    assert pipe.transformer.dtype == torch.float32 and pipe.vqvae.dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF, ids=str)
@torch.no_grad()
def test_builtin_model_in_half_precision(dtype):
    """Measured on the 30 shipped test images and 100 samples (10 per class), against float32 (closing note of
    issue 15): float16 ids 100% / sampled ids 98.8%, bfloat16 97.8% / 96.3%."""
    reference = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE)
    pipe = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE, dtype=dtype)
    images, _ = demo_test_images()
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    ids, half_ids = reference.vqvae.encode(pixels).token_ids, pipe.vqvae.encode(pixels).token_ids
    assert (half_ids == ids).float().mean() >= {torch.float16: 0.99, torch.bfloat16: 0.95}[dtype]
    reconstruction, half_reconstruction = reference.vqvae.decode(ids), pipe.vqvae.decode(ids).float()
    assert float(psnr(half_reconstruction.clamp(0, 1), reconstruction.clamp(0, 1)).mean()) > 45
    labels = torch.arange(10)
    logits = reference.transformer(ids[:10], labels).logits
    torch.testing.assert_close(
        pipe.transformer(ids[:10], labels).logits.float(), logits, atol=LOGIT_ATOL[dtype], rtol=0
    )


# ---------------------------------------------------------------------------------------------------------
# Mixed-precision training: a few bf16 autocast steps of every recipe on CPU
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bf16_workspace(tmp_path_factory):
    from test_training import VQGAN, make_image_folder

    root = tmp_path_factory.mktemp("bf16")
    make_image_folder(root / "images", corrupt=False)
    torch.manual_seed(0)
    MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)).save_pretrained(root / "teacher")
    return root


def _bf16_recipes(root):
    from test_training import DISCRIMINATOR, GENERATOR, SAMPLING, SINGLE_VAE, SINGLE_VQ, TWO_STAGE, VQGAN

    yield "vqgan", {"recipe": "vqgan", "model": {"config": VQGAN}, "discriminator": DISCRIMINATOR}
    yield "stage1", {"recipe": "stage1", "model": {"config": TWO_STAGE}, "teacher": str(root / "teacher")}
    yield (
        "stage2",
        {
            "recipe": "stage2",
            "model": {"init_from": str(root / "stage1" / "final"), "pixel_decoder_from": str(root / "teacher")},
            "discriminator": DISCRIMINATOR,
        },
    )
    yield "single_vq", {"recipe": "single_stage", "model": {"config": SINGLE_VQ}, "discriminator": DISCRIMINATOR}
    yield "single_vae", {"recipe": "single_stage", "model": {"config": SINGLE_VAE}, "discriminator": DISCRIMINATOR}
    yield (
        "generator",
        {
            "recipe": "generator",
            "tokenizer": str(root / "single_vq" / "final"),
            "model": {"config": GENERATOR},
            "sampling": SAMPLING,
        },
    )


def test_bf16_mixed_precision_trains_every_recipe(bf16_workspace):
    from hf_titok.training import load_recipe_config
    from hf_titok.training.recipes import build_trainer

    from test_training import training

    root = bf16_workspace
    for name, recipe in _bf16_recipes(root):
        config = {
            **recipe,
            "data": {"source": str(root / "images")},
            "training": training(max_steps=3, bf16=True, logging_steps=1, discriminator_start=1),
        }
        trainer = build_trainer(load_recipe_config(config), str(root / name))
        seen = set()
        first_layer = next(
            m for m in trainer.model.model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
        )
        first_layer.register_forward_hook(lambda module, args, output: seen.add(output.dtype))
        trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        assert len(losses) == 3 and all(np.isfinite(losses)), f"{name}: {losses}"
        assert seen == {torch.bfloat16}, f"{name}: autocast was not active ({seen})"
        assert trainer.model.model.dtype == torch.float32  # master weights stay float32
