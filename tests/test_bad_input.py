"""Bad input anywhere gets a clear error that names the problem: one table of distinct bad inputs across every
public surface (models, image processor, pipeline, scheduler, loading, configs, converter, command line,
training configs, evaluation, the Space), each asserting the error type and the words that name the problem.
(Threads with mixed settings:
`test_architecture.py::test_concurrent_calls_with_different_settings_equal_sequential_calls`.)"""

import math
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors.torch import load_file, save_file

from hf_titok import (
    MaskGITVQGAN,
    MaskGITVQGANConfig,
    RARPipeline,
    TiTokConfig,
    TiTokImageProcessor,
    TiTokMaskGITConfig,
    TiTokMaskGITScheduler,
    TiTokPipeline,
    TiTokTokenizer,
)
from hf_titok.cli import main as cli
from hf_titok.conversion import ConversionError, convert, load_official_config, load_official_weights
from hf_titok.training import build_trainer, load_recipe_config

from conftest import (
    FAMILY_FIXTURES,
    FIXTURES,
    tiny_clip_text_encoder,
    tiny_maskgen_pipeline,
    tiny_pipeline,
    tiny_rar_pipeline,
    tiny_tatitok_config,
    tiny_titok_config,
)

VQGAN = dict(
    image_size=32, hidden_channels=32, channel_mult=[1, 1, 2, 2], num_res_blocks=1, z_channels=16, codebook_size=128
)


@pytest.fixture(scope="module")
def r(tmp_path_factory):
    """The resources the cases use: tiny models, saved folders (healthy and damaged) and a Space model."""
    root = tmp_path_factory.mktemp("bad_input")
    torch.manual_seed(0)
    pipe = tiny_pipeline()
    pipe.save_pretrained(root / "pipeline")
    vq = TiTokTokenizer(tiny_titok_config("single_vq")).eval()
    vae = TiTokTokenizer(tiny_titok_config("vae")).eval()
    vq.save_pretrained(root / "vq")
    prefix = TiTokTokenizer(tiny_titok_config("single_vq", prefix_decoding=True)).eval()
    prefix.save_pretrained(root / "prefix")
    TiTokImageProcessor.for_image_size(32).save_pretrained(root / "prefix")
    # A compressed token file (`hf-titok encode --output X.npz`) written by the prefix model.
    np.savez_compressed(
        root / "prefix_ids.npz",
        token_ids=np.zeros((1, 4), np.uint8),
        model=np.str_(str(root / "prefix")),
        num_latent_tokens=8,
        codebook_size=64,
    )
    for name, damage in (
        ("truncated", lambda b: b[: len(b) // 2]),
        ("empty", lambda b: b""),
        ("garbage", lambda b: b"\x07" * 64),
    ):
        shutil.copytree(root / "vq", root / name)
        path = root / name / "model.safetensors"
        path.write_bytes(damage(path.read_bytes()))
    shutil.copytree(root / "vq", root / "nan")
    weights = load_file(root / "nan" / "model.safetensors")
    weights["decoder.mask_token"][0] = math.nan
    save_file(weights, root / "nan" / "model.safetensors", metadata={"format": "pt"})
    shutil.copytree(root / "pipeline", root / "no_transformer")
    shutil.rmtree(root / "no_transformer" / "transformer")
    (root / "generator_as_tokenizer").mkdir()
    shutil.copy(root / "pipeline" / "transformer" / "config.json", root / "generator_as_tokenizer" / "config.json")
    image = root / "image.png"
    PIL.Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(image)
    bomb = root / "bomb.png"
    PIL.Image.new("1", (15_000, 15_000)).save(bomb)  # 225 MP in a tiny file: Pillow refuses to decode it
    (root / "not_an_image.png").write_bytes(b"hello")
    (root / "images").mkdir()
    shutil.copy(image, root / "images" / "a.png")
    scheduler = TiTokMaskGITScheduler(num_inference_steps=4)
    scheduler.set_timesteps()
    app = load_space_app()
    space = app.load_model(str(root / "pipeline"))
    return SimpleNamespace(
        root=root,
        pipe=pipe,
        vq=vq,
        prefix=prefix,
        vae=vae,
        vqgan=MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)).eval(),
        generator=pipe.transformer,
        scheduler=scheduler,
        processor=TiTokImageProcessor.for_image_size(32),
        image=image,
        bomb=bomb,
        space=space,
        app=app,
        maskgen_vq=tiny_maskgen_pipeline("vq"),
        maskgen_kl=tiny_maskgen_pipeline("kl"),
        rar=tiny_rar_pipeline(),
    )


def load_space_app():
    import importlib.util
    import sys

    if "titok_space_app" in sys.modules:
        return sys.modules["titok_space_app"]
    spec = importlib.util.spec_from_file_location(
        "titok_space_app", Path(__file__).resolve().parent.parent / "spaces" / "app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ids(*shape, high=64, dtype=torch.long):
    return torch.randint(0, high, shape).to(dtype)


PIXELS = torch.rand(2, 3, 32, 32)


def _maskgen(r, kind="vq", **components):
    """A MaskGen pipeline from `r`'s tiny one with some components replaced."""
    from hf_titok import MaskGenPipeline

    pipe = r.maskgen_vq if kind == "vq" else r.maskgen_kl
    return MaskGenPipeline(**{**pipe.components, **components})


def _tatitok():
    from hf_titok import TATiTokTokenizer

    return TATiTokTokenizer(tiny_tatitok_config("vq")).eval()


TEXT = torch.randn(1, 77, 32)

# (surface, what is wrong, call(r), expected error type(s), words that name the problem)
CASES = [
    (
        "TiTok",
        "a prefix of 0 tokens",
        lambda r: r.prefix.decode(ids(1, 0)),
        ValueError,
        r"token_ids must have shape \[B, k\] with 1 <= k <= 8 \(a prefix of the 8 tokens\), got \(1, 0\)",
    ),
    (
        "TiTok",
        "more tokens than the tokenizer has",
        lambda r: r.prefix.decode(ids(1, 9)),
        ValueError,
        r"token_ids must have shape \[B, k\] with 1 <= k <= 8 .*got \(1, 9\)",
    ),
    (
        "TiTok",
        "a prefix to a tokenizer not trained for one",
        lambda r: r.vq.decode(ids(1, 4)),
        ValueError,
        r"token_ids must have shape \[B, 8\], got \(1, 4\): this tokenizer was not trained to decode a prefix",
    ),
    (
        "pipeline",
        "num_decoded_tokens with a tokenizer not trained for prefixes",
        lambda r: r.pipe([0], num_decoded_tokens=4),
        ValueError,
        "num_decoded_tokens must be 8, got 4: this tokenizer was not trained to decode a prefix",
    ),
    (
        "pipeline",
        "a fractional num_decoded_tokens",
        lambda r: r.pipe([0], num_decoded_tokens=2.5),
        TypeError,
        "num_decoded_tokens must be an integer number of tokens, got 2.5",
    ),
    # ---- RAR: pipeline, model, scheduler, loading ---------------------------------------------------------------
    ("RAR", "a class id out of range", lambda r: r.rar([3, 10]), ValueError, "class id 10 is out of range"),
    ("RAR", "temperature 0", lambda r: r.rar([0], temperature=0.0), ValueError, r"temperature must lie in \(0, 100\]"),
    ("RAR", "a negative guidance scale", lambda r: r.rar([0], guidance_scale=-1.0), ValueError, "guidance_scale must"),
    (
        "RAR",
        "a guidance power out of bounds",
        lambda r: r.rar([0], guidance_scale_pow=1e3),
        ValueError,
        r"guidance_scale_pow must lie in \[0, 100\]",
    ),
    (
        "RAR",
        "a step count (RAR samples one token per step)",
        lambda r: r.rar.scheduler.for_call(num_inference_steps=8),
        TypeError,
        r"unknown sampling settings \['num_inference_steps'\]",
    ),
    (
        "RAR",
        "use_cache not a bool",
        lambda r: r.rar([0], use_cache="yes"),
        TypeError,
        "use_cache must be True or False",
    ),
    (
        "RAR",
        "an unknown cache implementation",
        lambda r: r.rar([0], cache_implementation="paged"),
        ValueError,
        "cache_implementation must be one of",
    ),
    (
        "RAR",
        "a vqvae with fewer codes than the model predicts",
        lambda r: RARPipeline(
            vqvae=MaskGITVQGAN(MaskGITVQGANConfig(**{**VQGAN, "codebook_size": 64})), transformer=r.rar.transformer
        ),
        ValueError,
        "vqvae cannot decode .* 64 codebook entries, fewer than the 128 ids",
    ),
    (
        "RAR",
        "a vqvae with another number of tokens",
        lambda r: RARPipeline(
            vqvae=MaskGITVQGAN(MaskGITVQGANConfig(**{**VQGAN, "image_size": 64})), transformer=r.rar.transformer
        ),
        ValueError,
        "vqvae cannot decode .* 64 tokens per image and the generator makes 16",
    ),
    (
        "RAR",
        "a release that does not exist",
        lambda r: RARPipeline.from_pretrained("yucornetto/RAR", release="rar_m"),
        ValueError,
        "unknown official release 'rar_m'",
    ),
    (
        "RAR",
        "a state dict that is not RAR's",
        lambda r: convert(
            "rar",
            FIXTURES / "maskgit_vit.config.json",
            FIXTURES / "maskgit_vit.weights.safetensors",
            r.root / "rar_out",
        ),
        ConversionError,
        "not an official RAR (config|checkpoint)",
    ),
    (
        "RAR",
        "orders that are not permutations",
        lambda r: r.rar.transformer(
            ids(1, 16, high=128), torch.tensor([0]), orders=torch.zeros(1, 16, dtype=torch.long)
        ),
        ValueError,
        "each row of orders must be a permutation",
    ),
    (
        "RAR",
        "more ids than the model generates",
        lambda r: r.rar.transformer(ids(1, 17, high=128), torch.tensor([0])),
        ValueError,
        r"n <= 16 \(the model's tokens per image\)",
    ),
    # ---- text-to-image: TA-TiTok, MaskGen pipeline ----------------------------------------------------------
    ("text-to-image", "no prompt", lambda r: r.maskgen_vq(), ValueError, "give a prompt"),
    (
        "text-to-image",
        "prompt_embeds without decoder_prompt_embeds, with a text encoder",
        lambda r: _before_sampling(r.maskgen_vq, prompt_embeds=TEXT, pooled_prompt_embeds=torch.randn(1, 32)),
        ValueError,
        "precomputed embeddings needs decoder_prompt_embeds",
    ),
    (
        "text-to-image",
        "a step callback that returns a number",
        lambda r: r.maskgen_vq("a cat", callback_on_step_end=lambda pipe, i, t, kwargs: 42),
        TypeError,
        r"callback_on_step_end must return a dict of \(some of\) the tensors it was given \(\['latents'\]\)",
    ),
    (
        "text-to-image",
        "a step callback that returns a list as latents",
        lambda r: r.maskgen_vq("a cat", callback_on_step_end=lambda pipe, i, t, kwargs: {"latents": [1, 2]}),
        TypeError,
        "returned 'latents' as list; it must be a tensor",
    ),
    (
        "text-to-image",
        "a step callback that returns latents of the wrong shape (KL)",
        lambda r: r.maskgen_kl("a cat", callback_on_step_end=lambda pipe, i, t, kwargs: {"latents": torch.zeros(1, 3)}),
        ValueError,
        r"returned 'latents' as a \[1, 3\] torch.float32 tensor .*must keep the shape, dtype and device .*\[1, 8, 8\]",
    ),
    (
        "text-to-image",
        "a step callback that returns a tensor it was not given",
        lambda r: r.maskgen_kl(
            "a cat", callback_on_step_end=lambda pipe, i, t, kwargs: {**kwargs, "noise": torch.zeros(1)}
        ),
        ValueError,
        r"returned \['noise'\], which it was not given",
    ),
    ("text-to-image", "an empty prompt list", lambda r: r.maskgen_vq([]), ValueError, "non-empty list of strings"),
    ("text-to-image", "an empty prompt", lambda r: r.maskgen_vq(["a cat", " "]), ValueError, "prompt 1 is empty"),
    ("text-to-image", "a prompt that is not a string", lambda r: r.maskgen_vq(["a cat", 3]), TypeError, "prompt 1"),
    (
        "text-to-image",
        "prompt and prompt_embeds",
        lambda r: r.maskgen_vq("a cat", prompt_embeds=TEXT, pooled_prompt_embeds=torch.randn(1, 32)),
        ValueError,
        "not both",
    ),
    (
        "text-to-image",
        "prompt_embeds without pooled",
        lambda r: r.maskgen_vq(prompt_embeds=TEXT),
        ValueError,
        "needs pooled_prompt_embeds",
    ),
    (
        "text-to-image",
        "NaN prompt embeddings",
        lambda r: r.maskgen_vq(
            prompt_embeds=torch.full((1, 77, 32), math.nan),
            pooled_prompt_embeds=torch.randn(1, 32),
            output_type="latent",
        ),
        ValueError,
        "prompt_embeds contain NaN",
    ),
    (
        "text-to-image",
        "prompt embeddings of the wrong width",
        lambda r: r.maskgen_vq(
            prompt_embeds=torch.randn(1, 77, 16), pooled_prompt_embeds=torch.randn(1, 32), output_type="latent"
        ),
        ValueError,
        r"prompt_embeds must have shape \[B, 77, 32\]",
    ),
    (
        "text-to-image",
        "aesthetic score above 10",
        lambda r: r.maskgen_vq("a cat", aesthetic_score=11),
        ValueError,
        r"aesthetic_score must be a number in \[0, 10\]",
    ),
    (
        "text-to-image",
        "aesthetic score not a number",
        lambda r: r.maskgen_vq("a cat", aesthetic_score="high"),
        ValueError,
        "aesthetic_score",
    ),
    (
        "text-to-image",
        "negative guidance",
        lambda r: r.maskgen_vq("a cat", guidance_scale=-1),
        ValueError,
        "guidance_scale must lie in",
    ),
    (
        "text-to-image",
        "zero steps",
        lambda r: r.maskgen_vq("a cat", num_inference_steps=0),
        ValueError,
        "num_inference_steps must be an integer >= 1",
    ),
    (
        "text-to-image",
        "more steps than tokens",
        lambda r: r.maskgen_kl("a cat", num_inference_steps=9),
        ValueError,
        "num_inference_steps",
    ),
    (
        "text-to-image",
        "a TiTok schedule name",
        lambda r: r.maskgen_vq("a cat", guidance_schedule="power-cosine"),
        ValueError,
        "guidance_schedule must be one of",
    ),
    (
        "text-to-image",
        "a VQ schedule for KL",
        lambda r: r.maskgen_kl("a cat", guidance_schedule="cosine"),
        ValueError,
        "guidance_schedule must be one of",
    ),
    (
        "text-to-image",
        "guidance_scale_pow for KL",
        lambda r: r.maskgen_kl("a cat", guidance_scale_pow=2.0),
        TypeError,
        r"unknown sampling settings \['guidance_scale_pow'\]: MaskGenKLScheduler takes",
    ),
    (
        "text-to-image",
        "latents for VQ",
        lambda r: r.maskgen_vq("a cat", latents=torch.randn(1, 8, 8)),
        ValueError,
        "MaskGen-KL's",
    ),
    (
        "text-to-image",
        "token orders that are not permutations",
        lambda r: r.maskgen_kl("a cat", token_orders=torch.zeros(1, 8, dtype=torch.long)),
        ValueError,
        "one permutation",
    ),
    (
        "text-to-image",
        "an unknown output type",
        lambda r: r.maskgen_vq("a cat", output_type="jpeg"),
        ValueError,
        "output_type must be one of",
    ),
    (
        "text-to-image",
        "strength without an image",
        lambda r: r.maskgen_vq("a cat", strength=0.5),
        ValueError,
        "it needs image=",
    ),
    (
        "text-to-image",
        "a variation strength of zero",
        lambda r: r.maskgen_kl("a cat", image=PIXELS[:1], strength=0),
        ValueError,
        r"strength must be a number in \(0, 1\]",
    ),
    (
        "text-to-image",
        "prompts and variation images that do not pair",
        lambda r: r.maskgen_vq(["a cat", "a dog", "a cow"], image=PIXELS),
        ValueError,
        "got 3 prompts and 2 images",
    ),
    (
        "text-to-image",
        "a text encoder of another width",
        lambda r: _maskgen(r, text_encoder=tiny_clip_text_encoder(width=16)),
        ValueError,
        "the text encoder is 16 wide, but the tokenizer reads 32",
    ),
    (
        "text-to-image",
        "a TiTok tokenizer in a MaskGen pipeline",
        lambda r: _maskgen(r, vqvae=TiTokTokenizer(tiny_titok_config("single_vq"))),
        TypeError,
        "not text-aware",
    ),
    (
        "text-to-image",
        "a TA-TiTok in a TiTokPipeline",
        lambda r: TiTokPipeline(_tatitok(), r.generator),
        TypeError,
        "MaskGenPipeline",
    ),
    (
        "text-to-image",
        "a VQ TA-TiTok with MaskGen-KL",
        lambda r: _maskgen(r, "kl", vqvae=r.maskgen_vq.vqvae),
        ValueError,
        "needs a TA-TiTok VAE tokenizer",
    ),
    (
        "text-to-image",
        "the wrong scheduler kind",
        lambda r: _maskgen(r, scheduler=r.maskgen_kl.scheduler),
        TypeError,
        "samples with MaskGenVQScheduler",
    ),
    (
        "text-to-image",
        "TA-TiTok decode without text",
        lambda r: _tatitok().decode(ids(1, 8)),
        ValueError,
        "TA-TiTok decodes with text",
    ),
    (
        "text-to-image",
        "text to a TiTok decode",
        lambda r: r.vq._decode(ids(1, 8), {"text_embeddings": TEXT}, None, False),
        ValueError,
        "not text-aware",
    ),
    (
        "text-to-image",
        "text rows that do not fit the batch",
        lambda r: _tatitok().decode(ids(3, 8), torch.randn(2, 77, 32)),
        ValueError,
        "2 rows for a batch of 3",
    ),
    (
        "text-to-image",
        "no text encoder and no unconditional embeddings",
        lambda r: _maskgen(r, text_encoder=None, tokenizer=None)(
            prompt_embeds=TEXT, pooled_prompt_embeds=torch.randn(1, 32), output_type="latent"
        ),
        ValueError,
        "negative_prompt_embeds",
    ),
    # ---- models: tokenizer, VQGAN, generator -------------------------------------------------------------
    (
        "models",
        "NaN pixels",
        lambda r: r.vq.encode(torch.full((1, 3, 32, 32), math.nan)),
        ValueError,
        "NaN or infinite",
    ),
    (
        "models",
        "inf pixels",
        lambda r: r.vq.encode(torch.full((1, 3, 32, 32), math.inf)),
        ValueError,
        "NaN or infinite",
    ),
    ("models", "pixels in [0, 255]", lambda r: r.vq.encode(PIXELS * 255), ValueError, r"\[0, 255\]: divide by 255"),
    ("models", "pixels in [-1, 1]", lambda r: r.vq.encode(PIXELS * 2 - 1), ValueError, r"\(x \+ 1\) / 2"),
    ("models", "uint8 pixels", lambda r: r.vq.encode((PIXELS * 255).to(torch.uint8)), TypeError, "floating-point"),
    ("models", "a NumPy image", lambda r: r.vq.encode(PIXELS.numpy()), TypeError, "must be a torch.Tensor"),
    (
        "models",
        "wrong image size",
        lambda r: r.vq.encode(torch.rand(1, 3, 16, 16)),
        ValueError,
        "takes 32x32 images, got 16x16",
    ),
    ("models", "2 channels", lambda r: r.vq.encode(torch.rand(1, 2, 32, 32)), ValueError, "3 channels"),
    ("models", "3-d pixels", lambda r: r.vq.encode(torch.rand(3, 32, 32)), ValueError, "4 dimensions"),
    ("models", "empty batch", lambda r: r.vq.encode(torch.rand(0, 3, 32, 32)), ValueError, "empty batch"),
    (
        "models",
        "ids out of range",
        lambda r: r.vq.decode(ids(1, 8) + 64),
        ValueError,
        r"token_ids must lie in \[0, 63\]",
    ),
    ("models", "wrong number of ids", lambda r: r.vq.decode(ids(1, 9)), ValueError, r"shape \[B, 8\]"),
    ("models", "float ids to a VQ model", lambda r: r.vq.decode(torch.rand(1, 8)), TypeError, "VQ tokenizer"),
    ("models", "ids to a VAE model", lambda r: r.vae.decode(ids(1, 8)), TypeError, "VAE tokenizer"),
    (
        "models",
        "NaN latents",
        lambda r: r.vae.decode(torch.full((1, 8, 8), math.nan)),
        ValueError,
        "latents contain NaN",
    ),
    ("models", "bool ids", lambda r: r.vq.decode(ids(1, 8) > 3), TypeError, "integer tensor"),
    (
        "models",
        "bad generator for sampling",
        lambda r: r.vae.encode(PIXELS, sample_posterior=True, generator=3),
        TypeError,
        "torch.Generator",
    ),
    (
        "models",
        "proxy-code labels to a pixel model",
        lambda r: r.vq(PIXELS, labels=ids(2, 16)),
        ValueError,
        "pixel head",
    ),
    (
        "models",
        "VQGAN codes out of range",
        lambda r: r.vqgan.decode(ids(1, 16, high=128) + 128),
        ValueError,
        r"codes must lie in \[0, 127\]",
    ),
    (
        "models",
        "VQGAN wrong size",
        lambda r: r.vqgan.encode(torch.rand(1, 3, 64, 64)),
        ValueError,
        "takes 32x32 images",
    ),
    (
        "models",
        "generator ids out of range",
        lambda r: r.generator(ids(2, 8) + 65, torch.tensor([0, 1])),
        ValueError,
        r"input_ids must lie in \[0, 64\]",
    ),
    (
        "models",
        "class label out of range",
        lambda r: r.generator(ids(2, 8), torch.tensor([0, 11])),
        ValueError,
        r"class_labels must lie in \[0, 10\]",
    ),
    (
        "models",
        "float class labels",
        lambda r: r.generator(ids(2, 8), torch.tensor([0.0, 1.0])),
        TypeError,
        "integer tensor",
    ),
    (
        "models",
        "class labels of another batch",
        lambda r: r.generator(ids(2, 8), torch.tensor([0])),
        ValueError,
        r"shape \[2\]",
    ),
    # ---- image processor -----------------------------------------------------------------------------------
    (
        "image processor",
        "float image in [0, 255]",
        lambda r: r.processor(np.full((32, 32, 3), 200.0)),
        ValueError,
        r"must lie in \[0, 1\].*\[0, 255\]",
    ),
    (
        "image processor",
        "NaN in a float image",
        lambda r: r.processor(np.full((32, 32, 3), math.nan, np.float32)),
        ValueError,
        "NaN or infinite",
    ),
    (
        "image processor",
        "2 channels",
        lambda r: r.processor(np.zeros((32, 32, 2), np.uint8)),
        ValueError,
        "1 \\(grey\\), 3 \\(RGB\\) or 4",
    ),
    (
        "image processor",
        "5 channels",
        lambda r: r.processor(np.zeros((5, 32, 32), np.uint8)),
        ValueError,
        "got shape \\(5, 32, 32\\)",
    ),
    (
        "image processor",
        "16-bit levels as int64",
        lambda r: r.processor(np.full((8, 8), 1000)),
        ValueError,
        r"8-bit levels in \[0, 255\]",
    ),
    ("image processor", "bool image", lambda r: r.processor(np.zeros((8, 8), bool)), TypeError, "dtype bool"),
    (
        "image processor",
        "complex image",
        lambda r: r.processor(np.zeros((8, 8), np.complex64)),
        TypeError,
        "dtype complex64",
    ),
    ("image processor", "empty list", lambda r: r.processor([]), ValueError, "images is empty"),
    ("image processor", "a path instead of an image", lambda r: r.processor("photo.png"), TypeError, "got str"),
    (
        "image processor",
        "1-d array",
        lambda r: r.processor(np.zeros(10, np.uint8)),
        ValueError,
        r"\[H, W\], \[H, W, C\]",
    ),
    ("image processor", "zero-size image", lambda r: r.processor(np.zeros((0, 5, 3), np.uint8)), ValueError, "empty"),
    (
        "image processor",
        "unknown argument",
        lambda r: r.processor(np.zeros((8, 8), np.uint8), do_flip=True),
        TypeError,
        "do_flip",
    ),
    (
        "image processor",
        "non-square sizes",
        lambda r: TiTokImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 16}),
        ValueError,
        "square images",
    ),
    # ---- pipeline ------------------------------------------------------------------------------------------
    ("pipeline", "unknown class name", lambda r: r.pipe("zebra"), ValueError, "unknown class name 'zebra'"),
    ("pipeline", "class id out of range", lambda r: r.pipe(10), ValueError, "class id 10 is out of range"),
    ("pipeline", "float class label", lambda r: r.pipe(1.5), TypeError, "ints, class names or None, got float"),
    ("pipeline", "no class labels", lambda r: r.pipe([]), ValueError, "class_labels is empty"),
    (
        "pipeline",
        "steps as a string",
        lambda r: r.pipe(1, num_inference_steps="4"),
        TypeError,
        "num_inference_steps must be an integer",
    ),
    (
        "pipeline",
        "more steps than tokens",
        lambda r: r.pipe(1, num_inference_steps=10_000),
        ValueError,
        "exceeds the 8 tokens",
    ),
    (
        "pipeline",
        "NaN guidance",
        lambda r: r.pipe(1, guidance_scale=math.nan),
        ValueError,
        "guidance_scale must be finite",
    ),
    (
        "pipeline",
        "huge guidance",
        lambda r: r.pipe(1, guidance_scale=1e30),
        ValueError,
        r"guidance_scale must lie in \[0, 100\]",
    ),
    (
        "pipeline",
        "inf temperature",
        lambda r: r.pipe(1, temperature=math.inf),
        ValueError,
        "temperature must be finite",
    ),
    (
        "pipeline",
        "temperature as a string",
        lambda r: r.pipe(1, temperature="hot"),
        TypeError,
        "temperature must be a number",
    ),
    (
        "pipeline",
        "unknown guidance schedule",
        lambda r: r.pipe(1, guidance_schedule="cosine"),
        ValueError,
        "guidance_schedule must be one of",
    ),
    (
        "pipeline",
        "annealing as a string",
        lambda r: r.pipe(1, softmax_temperature_annealing="yes"),
        TypeError,
        "True or False",
    ),
    ("pipeline", "strength without an image", lambda r: r.pipe(1, strength=0.3), ValueError, "it needs image="),
    (
        "pipeline",
        "strength above 1",
        lambda r: r.pipe(1, image=PIXELS, strength=1.5),
        ValueError,
        r"strength must be a number in \(0, 1\]",
    ),
    ("pipeline", "non-Generator generator", lambda r: r.pipe(1, generator=42), TypeError, "torch.Generator"),
    (
        "pipeline",
        "too few generators",
        lambda r: r.pipe([1, 2], generator=[torch.Generator()]),
        None,
        None,
    ),  # one generator is fine
    (
        "pipeline",
        "generators for another batch",
        lambda r: r.pipe([1, 2], generator=[torch.Generator()] * 3),
        ValueError,
        "list of 3 generators, but the batch has 2",
    ),
    (
        "pipeline",
        "zero images per label",
        lambda r: r.pipe(1, num_images_per_label=0),
        ValueError,
        "num_images_per_label must be an integer >= 1",
    ),
    (
        "pipeline",
        "unknown output type",
        lambda r: r.pipe(1, output_type="jpeg"),
        ValueError,
        "output_type must be one of",
    ),
    (
        "pipeline",
        "unknown callback tensor",
        lambda r: r.pipe(1, callback_on_step_end=lambda *a: {}, callback_on_step_end_tensor_inputs=["noise"]),
        ValueError,
        "not among the tensors",
    ),
    (
        "pipeline",
        "callback leaves masks",
        lambda r: r.pipe(
            1,
            output_type="latent",
            callback_on_step_end=lambda p, i, t, kw: {"latents": torch.full_like(kw["latents"], 64)},
        ),
        ValueError,
        "left masked positions",
    ),
    (
        "pipeline",
        "a VAE as the vqvae",
        lambda r: TiTokPipeline(r.vae, r.generator),
        ValueError,
        "VQ tokenizer, not a VAE",
    ),
    (
        "pipeline",
        "incomplete id2label",
        lambda r: TiTokPipeline(r.pipe.vqvae, r.generator, id2label={0: "a"}),
        ValueError,
        "id2label must name every class",
    ),
    # ---- scheduler -----------------------------------------------------------------------------------------
    (
        "scheduler",
        "negative temperature",
        lambda r: TiTokMaskGITScheduler(temperature=-1.0),
        ValueError,
        r"temperature must lie in \[0, 100\]",
    ),
    (
        "scheduler",
        "zero power",
        lambda r: TiTokMaskGITScheduler(guidance_scale_pow=0.0),
        ValueError,
        r"guidance_scale_pow must lie in \(0, 100\]",
    ),
    (
        "scheduler",
        "step before set_timesteps",
        lambda r: TiTokMaskGITScheduler().step(torch.zeros(1, 8, 64), 0, ids(1, 8)),
        RuntimeError,
        "set_timesteps",
    ),
    (
        "scheduler",
        "timestep out of range",
        lambda r: r.scheduler.step(torch.zeros(1, 8, 64), 9, ids(1, 8)),
        ValueError,
        r"timestep must lie in \[0, 3\]",
    ),
    (
        "scheduler",
        "logits and ids disagree",
        lambda r: r.scheduler.step(torch.zeros(1, 8, 64), 0, ids(1, 7)),
        ValueError,
        "disagree on",
    ),
    (
        "scheduler",
        "float ids",
        lambda r: r.scheduler.step(torch.zeros(1, 8, 64), 0, torch.zeros(1, 8)),
        TypeError,
        "sample must be integer ids",
    ),
    (
        "scheduler",
        "float timestep",
        lambda r: r.scheduler.step(torch.zeros(1, 8, 64), 0.5, ids(1, 8)),
        TypeError,
        "timestep must be an integer",
    ),
    (
        "scheduler",
        "zero masked tokens",
        lambda r: TiTokMaskGITScheduler().set_timesteps(num_masked_tokens=0),
        ValueError,
        "num_masked_tokens must be an integer >= 1",
    ),
    # ---- loading and configs -------------------------------------------------------------------------------
    (
        "loading",
        "our config.json beside official-format weights",
        lambda r: TiTokTokenizer.from_pretrained(_ours_beside_official(r)),
        ValueError,
        "beside the weights of an official tokenizer checkpoint .*hf-titok convert --kind tokenizer",
    ),
    (
        "loading",
        "a folder of official TA-TiTok .bin files without release=",
        lambda r: type(_tatitok()).from_pretrained(_family_bin_folder(r.root)),
        ValueError,
        "holds .bin files \\(tatitok_bl32_vq.bin\\) and no config.json: .*release='tatitok_bl32_vq'.*tatitok_sl128_vae",
    ),
    (
        "loading",
        "a missing absolute folder (TA-TiTok)",
        lambda r: type(_tatitok()).from_pretrained(str(r.root / "no" / "such" / "folder")),
        FileNotFoundError,
        "no such folder: .*no/such/folder",
    ),
    (
        "loading",
        "a missing absolute folder (MaskGen pipeline)",
        lambda r: type(r.maskgen_vq).from_pretrained(str(r.root / "no" / "such" / "pipeline")),
        FileNotFoundError,
        "no such folder: .*no/such/pipeline",
    ),
    (
        "loading",
        "a missing absolute folder (MaskGen transformer)",
        lambda r: type(r.maskgen_kl.transformer).from_pretrained(str(r.root / "no" / "such" / "transformer")),
        FileNotFoundError,
        "no such folder: .*no/such/transformer",
    ),
    (
        "training",
        "a stage-1 recipe whose teacher folder does not exist yet",
        lambda r: _build_stage1_with_teacher(r, r.root / "teacher-not-trained-yet"),
        FileNotFoundError,
        "teacher: no such folder: .*teacher-not-trained-yet",
    ),
    (
        "loading",
        "a TA-TiTok checkpoint with a weight missing",
        lambda r: type(_tatitok()).from_pretrained(
            _saved_without(_tatitok(), r.root, "tatitok-missing", "decoder.text_projection.weight")
        ),
        ValueError,
        "missing weights: decoder.text_projection.weight\\); pass strict=False",
    ),
    (
        "loading",
        "a MaskGen checkpoint with a weight missing",
        lambda r: type(r.maskgen_vq.transformer).from_pretrained(
            _saved_without(r.maskgen_vq.transformer, r.root, "maskgen-missing", "norm_out.linear.bias")
        ),
        ValueError,
        "missing weights: norm_out.linear.bias\\); pass strict=False",
    ),
    (
        "loading",
        "truncated weights",
        lambda r: TiTokTokenizer.from_pretrained(r.root / "truncated"),
        ValueError,
        r"damaged weight file .*truncated/model.safetensors.*not fully covered",
    ),
    (
        "loading",
        "zero-byte weights",
        lambda r: TiTokTokenizer.from_pretrained(r.root / "empty"),
        ValueError,
        r"empty/model.safetensors.*\(0 bytes\)",
    ),
    (
        "loading",
        "garbage weights",
        lambda r: TiTokTokenizer.from_pretrained(r.root / "garbage"),
        ValueError,
        r"garbage/model.safetensors",
    ),
    (
        "loading",
        "NaN weights",
        lambda r: TiTokTokenizer.from_pretrained(r.root / "nan"),
        ValueError,
        "NaN or infinite weights: decoder.mask_token",
    ),
    (
        "loading",
        "another model type",
        lambda r: TiTokTokenizer.from_pretrained(r.root / "generator_as_tokenizer"),
        ValueError,
        "config of a 'titok_maskgit' model, not of a TiTokTokenizer",
    ),
    (
        "loading",
        "truncated MaskGen weights",
        lambda r: type(r.maskgen_vq.transformer).from_pretrained(
            _saved_damaged(r.maskgen_vq.transformer, r.root, "maskgen-truncated", lambda b: b[: len(b) // 2])
        ),
        ValueError,
        r"damaged weight file .*maskgen-truncated/diffusion_pytorch_model.safetensors",
    ),
    (
        "loading",
        "NaN MaskGen weights",
        lambda r: type(r.maskgen_kl.transformer).from_pretrained(
            _saved_with_nan(r.maskgen_kl.transformer, r.root, "maskgen-nan", "norm_out.linear.bias")
        ),
        ValueError,
        "NaN or infinite weights: norm_out.linear.bias",
    ),
    (
        "loading",
        "a MaskGen-KL transformer as a MaskGen-VQ one",
        lambda r: type(r.maskgen_vq.transformer).from_pretrained(_saved(r.maskgen_kl.transformer, r.root, "kl")),
        ValueError,
        "config of a 'MaskGenKLTransformer' model, not of a MaskGenVQTransformer",
    ),
    (
        "loading",
        "a tokenizer folder as a MaskGen transformer",
        lambda r: type(r.maskgen_vq.transformer).from_pretrained(r.root / "vq"),
        ValueError,
        "config of a 'titok' model, not of a MaskGenVQTransformer",
    ),
    (
        "loading",
        "a MaskGen transformer folder as a tokenizer",
        lambda r: TiTokTokenizer.from_pretrained(_saved(r.maskgen_vq.transformer, r.root, "vq-transformer")),
        ValueError,
        "config of a 'MaskGenVQTransformer' model, not of a TiTokTokenizer",
    ),
    (
        "loading",
        "pipeline without a component",
        lambda r: TiTokPipeline.from_pretrained(r.root / "no_transformer"),
        FileNotFoundError,
        "no_transformer/transformer",
    ),
    (
        "loading",
        "not a pipeline folder",
        lambda r: TiTokPipeline.from_pretrained(r.root / "vq"),
        FileNotFoundError,
        "no model_index.json",
    ),
    (
        "loading",
        "a config of neither format",
        lambda r: TiTokTokenizer.from_pretrained(_folder_with(r.root / "neither", {"hidden": 3})),
        ValueError,
        "neither an hf_titok config .* nor an official TiTok config .*Accepted: ",
    ),
    (
        "loading",
        "an official generator as a tokenizer",
        lambda r: TiTokTokenizer.from_pretrained(_official(r.root, "maskgit_vit")),
        ValueError,
        "official TiTok generator checkpoint, not a TiTokTokenizer's: load it with TiTokPipeline \\(or TiTokMaskGIT\\)",
    ),
    (
        "loading",
        "an official release folder without weights",
        lambda r: TiTokTokenizer.from_pretrained(_official(r.root, "titok_vq_single", weights=False)),
        FileNotFoundError,
        "has no model.safetensors",
    ),
    (
        "loading",
        "fun-research without a release",
        lambda r: TiTokTokenizer.from_pretrained("fun-research/TiTok"),
        ValueError,
        "pass --release / release=",
    ),
    (
        "loading",
        "an official .bin that runs code",
        lambda r: TiTokTokenizer.from_pretrained(_bin_folder(r.root), release="titok_l32"),
        ValueError,
        "weights-only",
    ),
    (
        "loading",
        "an unknown release name",
        lambda r: TiTokTokenizer.from_pretrained(r.root / "vq", release="titok_xl"),
        ValueError,
        "unknown official release 'titok_xl'",
    ),
    (
        "loading",
        "fast_path not a bool",
        lambda r: TiTokTokenizer.from_pretrained(r.root / "vq", fast_path="yes"),
        TypeError,
        "fast_path must be True or False, got 'yes'",
    ),
    (
        "fast path",
        "a fast pipeline to float16",
        lambda r: _fast(r).to(torch.float16),
        ValueError,
        "on the CPU fast path .*moving it to cpu / torch.float16 is not possible",
    ),
    (
        "fast path",
        "a fast model to train()",
        lambda r: _fast(r).vqvae.train(),
        ValueError,
        "training is not possible. Load the exact model",
    ),
    (
        "fast path",
        "requires_grad_(True) on a fast model",
        lambda r: _fast(r).transformer.requires_grad_(True),
        ValueError,
        r"gradients \(requires_grad_\(True\)\) is not possible",
    ),
    (
        "fast path",
        "a fast pipeline from_pretrained with fast_path='yes'",
        lambda r: TiTokPipeline.from_pretrained(r.root / "pipeline", fast_path="yes"),
        TypeError,
        "fast_path must be True or False",
    ),
    (
        "image processor",
        "NaN pixels to a PIL image",
        lambda r: r.processor.postprocess(torch.full((1, 3, 4, 4), math.nan)),
        ValueError,
        "48 pixel values are NaN or infinite",
    ),
    ("configs", "a size as a string", lambda r: TiTokConfig(image_size="256"), StrictDataclassError, "image_size"),
    (
        "configs",
        "a negative size",
        lambda r: TiTokConfig(num_latent_tokens=-4),
        StrictDataclassError,
        "num_latent_tokens must be a positive integer",
    ),
    (
        "configs",
        "a NaN ratio",
        lambda r: TiTokConfig(mlp_ratio=math.nan),
        StrictDataclassError,
        "mlp_ratio must be a finite number",
    ),
    (
        "configs",
        "heads that do not divide the width",
        lambda r: TiTokMaskGITConfig(hidden_size=30, num_attention_heads=4),
        StrictDataclassError,
        "not divisible",
    ),
    (
        "configs",
        "a dropout above 1",
        lambda r: TiTokMaskGITConfig(class_dropout_prob=1.5),
        StrictDataclassError,
        "probability in \\[0, 1\\]",
    ),
    (
        "configs",
        "a pixel head with a pixel decoder",
        lambda r: TiTokConfig(decoder_head="pixels", include_pixel_decoder=True),
        ValueError,
        "needs decoder_head='proxy_codes'",
    ),
    (
        "configs",
        "unknown preset",
        lambda r: TiTokConfig.from_preset("titok_xl"),
        ValueError,
        "unknown TiTok preset 'titok_xl'",
    ),
    (
        "configs",
        "VQGAN groups that do not divide",
        lambda r: MaskGITVQGANConfig(hidden_channels=30),
        StrictDataclassError,
        "not divisible by norm_num_groups",
    ),
    # ---- converter -----------------------------------------------------------------------------------------
    (
        "converter",
        "missing weights file",
        lambda r: load_official_weights(r.root / "nothing.bin"),
        FileNotFoundError,
        "weights file not found",
    ),
    (
        "converter",
        "a pickle that is not weights",
        lambda r: load_official_weights(_pickle_with_code(r.root)),
        ConversionError,
        "weights-only",
    ),
    (
        "converter",
        "missing config file",
        lambda r: load_official_config(r.root / "nothing.yaml"),
        FileNotFoundError,
        "config file not found",
    ),
    (
        "converter",
        "a config that is not a mapping",
        lambda r: load_official_config(_write(r.root / "list.json", "[1, 2]")),
        ConversionError,
        "does not hold a config mapping",
    ),
    (
        "converter",
        "unknown kind",
        lambda r: convert("decoder", None, r.root / "x", r.root / "out"),
        ConversionError,
        "unknown kind 'decoder'",
    ),
    (
        "converter",
        "tokenizer weights of another size",
        lambda r: convert(
            "tokenizer",
            FIXTURES / "titok_vq_single.config.json",
            FIXTURES / "titok_vq_legacy.weights.safetensors",
            r.root / "out",
        ),
        ConversionError,
        "does not match the model",
    ),
]


class _SamplingStarted(AssertionError):
    """Raised by a patched transformer: the pipeline started sampling before the error it should have raised."""


def _before_sampling(pipe, *args, **kwargs):
    """Calls `pipe(*args, **kwargs)` with its transformer's forward replaced by one that raises `_SamplingStarted`:
    the error a case expects must come before any sampling work."""

    def sampling(*_, **__):
        raise _SamplingStarted("the pipeline ran its transformer before refusing the input")

    pipe.transformer.forward = sampling
    try:
        return pipe(*args, **kwargs)
    finally:
        del pipe.transformer.forward


def _ours_beside_official(r) -> Path:
    """A folder holding this package's tokenizer config.json beside an official-format model.safetensors."""
    folder = r.root / "ours_beside_official"
    if not folder.exists():
        folder.mkdir()
        shutil.copy(r.root / "vq" / "config.json", folder / "config.json")
        shutil.copy(FIXTURES / "titok_vq_single.weights.safetensors", folder / "model.safetensors")
    return folder


def _family_bin_folder(root: Path) -> Path:
    """A folder holding an official TA-TiTok state dict as the `.bin` file of its fun-research release."""
    folder = root / "family_bins"
    if not folder.exists():
        folder.mkdir()
        torch.save(load_file(FAMILY_FIXTURES / "tatitok_vq.weights.safetensors"), folder / "tatitok_bl32_vq.bin")
    return folder


def _build_stage1_with_teacher(r, teacher: Path):
    config = load_recipe_config(
        {
            "recipe": "stage1",
            "model": {"config": {"image_size": 32}},
            "teacher": str(teacher),
            "data": {"source": str(r.root / "images")},
        }
    )
    return build_trainer(config, str(r.root / "stage1-run"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _fast(r):
    """A fast copy of the resources' pipeline (built once)."""
    if not hasattr(r, "fast"):
        r.fast = tiny_pipeline().enable_fast_path()
    return r.fast


def _folder_with(folder: Path, config: dict) -> Path:
    import json

    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _official(root: Path, name: str, weights: bool = True) -> Path:
    """A folder in the official release layout holding fixture `name`."""
    folder = root / f"official_{name}_{weights}"
    if not folder.exists():
        folder.mkdir()
        shutil.copy(FIXTURES / f"{name}.config.json", folder / "config.json")
        if weights:
            shutil.copy(FIXTURES / f"{name}.weights.safetensors", folder / "model.safetensors")
    return folder


def _bin_folder(root: Path) -> Path:
    """A folder of fun-research .bin files whose tokenizer file is a pickle that would run code."""
    folder = root / "bins"
    folder.mkdir(exist_ok=True)
    shutil.copy(_pickle_with_code(root), folder / "tokenizer_titok_l32.bin")
    return folder


def _saved_without(model, root: Path, name: str, weight: str) -> Path:
    """`model` saved to `root/name` with one weight dropped from its safetensors file."""
    folder = root / name
    model.save_pretrained(folder)
    (weights_file,) = folder.glob("*.safetensors")
    weights = load_file(weights_file)
    weights.pop(weight)
    save_file(weights, weights_file, metadata={"format": "pt"})
    return folder


def _saved(model, root: Path, name: str) -> Path:
    """`model` saved to `root/name` (once per module: the folder is reused)."""
    folder = root / name
    if not folder.exists():
        model.save_pretrained(folder)
    return folder


def _saved_damaged(model, root: Path, name: str, damage) -> Path:
    """`model` saved to `root/name` with its weight file's bytes passed through `damage`."""
    (weights_file,) = _saved(model, root, name).glob("*.safetensors")
    weights_file.write_bytes(damage(weights_file.read_bytes()))
    return root / name


def _saved_with_nan(model, root: Path, name: str, weight: str) -> Path:
    """`model` saved to `root/name` with one weight's first value NaN."""
    (weights_file,) = _saved(model, root, name).glob("*.safetensors")
    weights = load_file(weights_file)
    weights[weight].view(-1)[0] = math.nan
    save_file(weights, weights_file, metadata={"format": "pt"})
    return root / name


def _pickle_with_code(root: Path) -> Path:
    import pickle

    path = root / "evil.bin"
    path.write_bytes(pickle.dumps({"weights": SimpleNamespace(value=1)}))
    return path


@pytest.mark.parametrize("case", CASES, ids=[f"{surface}: {what}" for surface, what, *_ in CASES])
def test_bad_input_gets_a_clear_error(r, case):
    surface, what, call, error_type, words = case
    if error_type is None:  # a case that must work
        call(r)
        return
    with pytest.raises(error_type, match=words):
        call(r)


# ---- command line: one line on stderr, exit status 2 ----------------------------------------------------------

CLI_CASES = [
    (
        "a non-integer --num-tokens",
        lambda r: ["encode", str(r.image), "--model", str(r.root / "prefix"), "--output", "t.npz", "--num-tokens", "x"],
        "argument --num-tokens: invalid int value: 'x'",
    ),
    (
        "--num-tokens 0",
        lambda r: ["encode", str(r.image), "--model", str(r.root / "prefix"), "--output", "t.npz", "--num-tokens", "0"],
        r"--num-tokens must be in \[1, 8\] \(a prefix of the 8 tokens\), got 0",
    ),
    (
        "--num-tokens for a tokenizer not trained for prefixes",
        lambda r: ["encode", str(r.image), "--model", str(r.root / "vq"), "--output", "t.npz", "--num-tokens", "4"],
        "--num-tokens must be 8, got 4: this tokenizer was not trained to decode a prefix",
    ),
    (
        "a compressed token file of another model",
        lambda r: ["decode", str(r.root / "prefix_ids.npz"), "--model", str(r.root / "vq")],
        r"prefix_ids.npz holds the tokens of .*prefix, not of --model .*vq",
    ),
    (
        "decompression bomb",
        lambda r: ["reconstruct", str(r.bomb), "--model", str(r.root / "vq")],
        "refusing image .*bomb.png",
    ),
    (
        "not an image",
        lambda r: ["reconstruct", str(r.root / "not_an_image.png"), "--model", str(r.root / "vq")],
        "cannot read image",
    ),
    (
        "missing image",
        lambda r: ["encode", str(r.root / "nothing.png"), "--model", str(r.root / "vq"), "--output", "ids.npy"],
        "image not found",
    ),
    (
        "missing model folder",
        lambda r: ["encode", str(r.image), "--model", str(r.root / "nowhere"), "--output", "ids.npy"],
        "model directory not found",
    ),
    (
        "damaged model",
        lambda r: ["encode", str(r.image), "--model", str(r.root / "truncated"), "--output", str(r.root / "ids.npy")],
        "damaged weight file",
    ),
    (
        "unknown class",
        lambda r: ["generate", "--model", str(r.root / "pipeline"), "--labels", "zebra"],
        "unknown class name 'zebra'",
    ),
    (
        "zero steps",
        lambda r: ["generate", "--model", str(r.root / "pipeline"), "--steps", "0"],
        "argument --steps: num_inference_steps must be an integer >= 1, got 0",
    ),
    (
        "NaN guidance",
        lambda r: [
            "generate",
            "--model",
            str(r.root / "pipeline"),
            "--guidance-scale",
            "nan",
            "--output",
            str(r.root / "s.png"),
        ],
        "guidance_scale must be finite",
    ),
    (
        "bad token file",
        lambda r: ["decode", str(_write(r.root / "ids.txt", "1 2")), "--model", str(r.root / "vq")],
        "token files are .npy, .json or .npz",
    ),
    (
        "missing reference",
        lambda r: [
            "evaluate",
            "generation",
            "--model",
            str(r.root / "pipeline"),
            "--output-dir",
            str(r.root / "g"),
            "--reference",
            str(r.root / "nothing.npz"),
        ],
        "--reference not found",
    ),
    (
        "missing Inception file",
        lambda r: [
            "evaluate",
            "generation",
            "--model",
            str(r.root / "pipeline"),
            "--output-dir",
            str(r.root / "g2"),
            "--reference",
            str(r.root / "images"),
            "--inception",
            str(r.root / "nothing.pt"),
        ],
        "Inception",
    ),
    (
        "missing data folder",
        lambda r: [
            "evaluate",
            "reconstruction",
            "--model",
            str(r.root / "vq"),
            "--data",
            "./no/such/folder",
            "--no-fid",
        ],
        "dataset folder not found: ./no/such/folder",
    ),
    (
        "train --set with an empty value",
        lambda r: [
            "train",
            "--config",
            "fashion_mnist/stage1",
            "--output-dir",
            str(r.root / "never-trained"),
            "--set",
            "training.max_steps=",
        ],
        "training.max_steps cannot be null",
    ),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[what for what, *_ in CLI_CASES])
def test_command_line_bad_input_is_one_line_and_status_2(r, case, capsys, monkeypatch):
    what, arguments, words = case
    monkeypatch.chdir(r.root)
    # Refused by a parser itself, which exits: the sampler settings' bounds, and the commands with their own parser.
    parse_error = what in ("zero steps", "NaN guidance", "a non-integer --num-tokens") or arguments(r)[0] == "train"
    with pytest.raises(SystemExit) if parse_error else _no_exit() as exited:
        status = cli(arguments(r))
    captured = capsys.readouterr()
    message = captured.err.strip()
    if parse_error:
        assert exited.value.code == 2, message
    else:
        assert status == 2, message
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert __import__("re").search(words, message), message
    if what in ("missing reference", "missing Inception file"):
        assert not (r.root / "g").exists() and not (r.root / "g2" / "run.json").exists()  # nothing was sampled


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---- training configs -----------------------------------------------------------------------------------------

TRAINING_CASES = [
    (
        "a sampler setting in the generator's model config",
        {"recipe": "generator", "model": {"config": {"num_inference_steps": 4}}},
        None,
        "model.config.num_inference_steps is a sampler setting: set it in the sampling: section",
    ),
    (
        "a sampler setting out of bounds",
        {"recipe": "generator", "sampling": {"guidance_scale": 1000.0}},
        None,
        "sampling.guidance_scale must lie in \\[0, 100\\], got 1000",
    ),
    (
        "misspelt section",
        {"recipe": "stage1", "trainng": {"max_steps": 3}},
        None,
        "unknown section 'trainng' \\(did you mean 'training'\\?\\)",
    ),
    (
        "misspelt training key",
        {"recipe": "stage1", "training": {"max_step": 3}},
        None,
        "unknown key training.max_step \\(did you mean 'max_steps'\\?\\)",
    ),
    (
        "misspelt model config key",
        {"recipe": "stage1", "model": {"config": {"num_latent_token": 8}}},
        None,
        "model.config.num_latent_token .*'num_latent_tokens'",
    ),
    (
        "misspelt loss key",
        {"recipe": "stage2", "loss": {"perceptual_wieght": 1}},
        None,
        "loss.perceptual_wieght .*'perceptual_weight'",
    ),
    ("misspelt data key", {"recipe": "stage1", "data": {"sorce": "x"}}, None, "unknown key data.sorce .*'source'"),
    (
        "--set of the wrong type",
        {"recipe": "stage1"},
        ["training.max_steps=abc"],
        "training.max_steps must be an integer, got 'abc'",
    ),
    ("--set NaN", {"recipe": "stage1"}, ["training.learning_rate=.nan"], "training.learning_rate must be finite"),
    ("--set into a value", {"recipe": "stage1", "teacher": "t"}, ["teacher.path=x"], "teacher is not a section"),
    (
        "a section that is not a mapping",
        {"recipe": "stage1", "data": "images/"},
        None,
        "section 'data' must be a mapping",
    ),
    ("unknown recipe", {"recipe": "stage3"}, None, "recipe must be one of .* got 'stage3'"),
    (
        "--set an empty value (null) where the declaration allows none",
        {"recipe": "stage1"},
        ["training.max_steps="],
        "training.max_steps cannot be null \\(an empty value\\): it must be an integer",
    ),
    (
        "a null loss weight",
        {"recipe": "stage2"},
        ["loss.perceptual_weight="],
        "loss.perceptual_weight cannot be null",
    ),
    (
        "a sampling setting of the wrong type",
        {"recipe": "generator", "sampling": {"num_inference_steps": 2.5}},
        None,
        "sampling.num_inference_steps must be an integer",
    ),
]


@pytest.mark.parametrize("case", TRAINING_CASES, ids=[what for what, *_ in TRAINING_CASES])
def test_training_config_errors(case):
    what, config, overrides, words = case
    with pytest.raises(ValueError, match=words):
        load_recipe_config(config, overrides)


def test_an_unwritable_output_dir_is_a_clear_error(r, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    config = load_recipe_config(
        {
            "recipe": "single_stage",
            "model": {"config": {"image_size": 32, "decoder_head": "pixels"}},
            "data": {"source": str(r.root / "images")},
        }
    )
    with pytest.raises(OSError, match="cannot write to the training output directory .*blocked"):
        build_trainer(config, str(blocked / "run"))


# ---- the Space: every handler answers bad input with a readable gr.Error ---------------------------------------

SPACE_CASES = [
    (
        "steps as text",
        lambda r, app: app.generate(r.space, 0, 1, "many", 1.0, "linear", 1.0, 0, False, progress=_progress),
        "Steps must be a whole number",
    ),
    (
        "guidance as text",
        lambda r, app: app.generate(r.space, 0, 1, 2, "strong", "linear", 1.0, 0, False, progress=_progress),
        "Guidance scale must be between",
    ),
    (
        "unknown schedule",
        lambda r, app: app.generate(r.space, 0, 1, 2, 1.0, "cosine", 1.0, 0, False, progress=_progress),
        "Guidance schedule must be one of",
    ),
    (
        "class as text",
        lambda r, app: app.generate(r.space, "dog", 1, 2, 1.0, "linear", 1.0, 0, False, progress=_progress),
        "Unknown class dog",
    ),
    (
        "NaN temperature",
        lambda r, app: app.generate(r.space, 0, 1, 2, 1.0, "linear", math.nan, 0, False, progress=_progress),
        "Temperature must be between",
    ),
    (
        "not an image",
        lambda r, app: app.reconstruct(r.space, str(r.root / "not_an_image.png")),
        "is not an image this app can read",
    ),
    (
        "variations of nothing",
        lambda r, app: app.variations(r.space, None, 2, 1, 0, 0, False, progress=_progress),
        "Upload an image",
    ),
]


def _progress(*args, **kwargs):
    return None


@pytest.mark.parametrize("case", SPACE_CASES, ids=[what for what, *_ in SPACE_CASES])
def test_space_handlers_answer_with_messages(r, case):
    import gradio as gr

    what, call, words = case
    with pytest.raises(gr.Error, match=words):
        call(r, r.app)


def test_the_table_covers_every_surface():
    counts = Counter(surface for surface, *_ in CASES)
    counts.update(
        {"command line": len(CLI_CASES), "training configs": len(TRAINING_CASES) + 1, "Space": len(SPACE_CASES)}
    )
    assert sum(counts.values()) >= 60 and len(counts) >= 10, counts
    print("bad inputs per surface:", dict(counts))
