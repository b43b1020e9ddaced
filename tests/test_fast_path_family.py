"""The CPU fast path of every family (hf_titok.fast_path): MaskGen VQ and KL (with the diffusion head), the CLIP text
tower, TA-TiTok, RAR and One-D-Piece's prefix decoding - what it switches, one argument on every `from_pretrained`,
bounds to the exact path on tiny models, and the refusals. TiTok's own is in test_fast_path.py; speed is measured by
benchmarks/bench_maskgen.py and bench_rar.py, never here."""

import copy

import pytest
import torch
from torch import nn

from hf_titok import (
    MaskGenKLTransformer,
    MaskGenPipeline,
    MaskGenVQTransformer,
    RARPipeline,
    RARTransformer,
    TATiTokTokenizer,
    TiTokTokenizer,
)
from hf_titok.evaluation.metrics import psnr

from conftest import tiny_maskgen_pipeline, tiny_pipeline, tiny_rar_pipeline, tiny_tatitok_config, tiny_titok_config

PROMPTS = ["a red shirt", "two boots"]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def quantized(module: nn.Module) -> int:
    return sum(
        type(m).__name__ == "Linear" and type(m).__module__.startswith("torch.ao.nn.quantized")
        for m in module.modules()
    )


def linear_layers(module: nn.Module) -> int:
    return sum(type(m) is nn.Linear for m in module.modules())


def relative_error(fast: torch.Tensor, exact: torch.Tensor) -> float:
    return float((fast - exact).abs().max() / exact.abs().max())


def exact_and_fast(build):
    exact = build()
    return exact, copy.deepcopy(exact).enable_fast_path()


@pytest.fixture(scope="module", params=["vq", "kl"])
def maskgen(request):
    return exact_and_fast(lambda: tiny_maskgen_pipeline(request.param))


def test_maskgen_fast_path_switches_every_model(maskgen):
    exact, fast = maskgen
    assert fast.transformer.fast_path and fast.vqvae.fast_path and fast.text_encoder.fast_path
    # int8: every linear layer of the generator (the diffusion head's too), the tokenizer's decoder, the text tower.
    assert quantized(fast.transformer) == linear_layers(exact.transformer) > 0
    assert quantized(fast.vqvae.decoder) == linear_layers(exact.vqvae.decoder) > 0
    assert quantized(fast.text_encoder) == linear_layers(exact.text_encoder) > 0
    if exact.is_kl:
        assert quantized(fast.transformer.diffusion_head) == linear_layers(exact.transformer.diffusion_head)
    # The CLIP text tower keeps its transformers class name and config; only the refusals are added.
    assert type(fast.text_encoder).__name__ == type(exact.text_encoder).__name__
    assert isinstance(fast.text_encoder, type(exact.text_encoder))


@torch.no_grad()
def test_maskgen_fast_path_stays_close_to_the_exact_path(maskgen):
    exact, fast = maskgen
    text = [pipe.encode_prompt(PROMPTS) for pipe in (exact, fast)]
    for exact_text, fast_text in zip(text[0], text[1]):  # per-token and pooled states, both halves, decoder text
        assert relative_error(fast_text, exact_text) < 0.1
    tokens = [pipe(PROMPTS, generator=seeded(), output_type="latent").images for pipe in (exact, fast)]
    assert tokens[0].shape == tokens[1].shape
    if exact.is_kl:  # continuous tokens drawn from the same noise stay near each other
        assert relative_error(tokens[1], tokens[0]) < 0.25
    else:  # a few sampled ids may move with the int8 logits
        assert float((tokens[1] == tokens[0]).float().mean()) >= 0.5
    # The tokenizer's int8 decoder: the same tokens and text decode to nearly the same pixels.
    decoder_text = text[0][-1]
    pixels = [pipe.vqvae.decode(tokens[0], text_embeddings=decoder_text) for pipe in (exact, fast)]
    assert float(psnr(pixels[1].clamp(0, 1), pixels[0].clamp(0, 1)).mean()) > 30
    again = fast(PROMPTS, generator=seeded(), output_type="latent").images
    assert torch.equal(again, tokens[1])  # deterministic


@pytest.fixture(scope="module", params=["vqgan", "titok"])
def rar(request):
    vqvae = (
        None
        if request.param == "vqgan"
        else TiTokTokenizer(tiny_titok_config("single_vq", num_latent_tokens=16, codebook_size=128)).eval()
    )
    return exact_and_fast(lambda: tiny_rar_pipeline(vqvae=vqvae, guidance_scale=2.0))


@torch.no_grad()
def test_rar_fast_path(rar):
    exact, fast = rar
    assert fast.transformer.fast_path and fast.vqvae.fast_path
    assert quantized(fast.transformer) == linear_layers(exact.transformer) > 0
    config = exact.transformer.config
    ids = torch.randint(0, config.codebook_size, (3, config.num_latent_tokens), generator=seeded())
    labels = torch.tensor([0, 4, 9])
    logits = [pipe.transformer(ids, labels).logits for pipe in (exact, fast)]
    assert relative_error(logits[1], logits[0]) < 0.1
    # The decode loop with the KV cache (dynamic and static) on int8 layers: the same ids as without the cache.
    runs = [
        fast([0, 4, 9], generator=seeded(), output_type="latent", **options).images
        for options in ({"use_cache": True}, {"use_cache": False}, {"cache_implementation": "static"})
    ]
    assert runs[0].shape == (3, config.num_latent_tokens)
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    pixels = [pipe.vqvae.decode(runs[0]) for pipe in (exact, fast)]
    assert float(psnr(pixels[1].clamp(0, 1), pixels[0].clamp(0, 1)).mean()) > 30


@torch.no_grad()
def test_tatitok_fast_path_keeps_the_ids_and_decodes_close():
    torch.manual_seed(0)
    for kind in ("vq", "vae"):
        exact, fast = exact_and_fast(lambda kind=kind: TATiTokTokenizer(tiny_tatitok_config(kind)).eval())
        assert quantized(fast.decoder) == linear_layers(exact.decoder) > 0
        pixels = torch.rand(4, 3, 32, 32, generator=seeded())
        text = torch.randn(4, 77, exact.config.text_hidden_size, generator=seeded(1))
        encoded = [model.encode(pixels) for model in (exact, fast)]
        # The encoder decides the ids: float32 unless bfloat16 is fast here, then >= 99 % equal (test_fast_path.py).
        if kind == "vq":
            assert float((encoded[1].token_ids == encoded[0].token_ids).float().mean()) >= 0.9
            decoded = [model.decode(encoded[0].token_ids, text_embeddings=text) for model in (exact, fast)]
        else:
            decoded = [model.decode_latents(encoded[0].latents, text_embeddings=text) for model in (exact, fast)]
        assert float(psnr(decoded[1].clamp(0, 1), decoded[0].clamp(0, 1)).mean()) > 30


@torch.no_grad()
def test_onedpiece_prefix_decoding_on_the_fast_path():
    torch.manual_seed(0)
    exact, fast = exact_and_fast(lambda: TiTokTokenizer(tiny_titok_config("two_stage", prefix_decoding=True)).eval())
    ids = exact.encode(torch.rand(2, 3, 32, 32, generator=seeded())).token_ids
    for k in (1, 3, ids.shape[1]):
        pixels = [model.decode(ids[:, :k]) for model in (exact, fast)]
        assert float(psnr(pixels[1].clamp(0, 1), pixels[0].clamp(0, 1)).mean()) > 30
    with pytest.raises(ValueError, match="num_decoded_tokens|prefix"):
        fast.decode(ids[:, :0])


def test_one_argument_on_every_from_pretrained(tmp_path):
    for name, pipe, classes in (
        ("maskgen_vq", tiny_maskgen_pipeline("vq"), {"transformer": MaskGenVQTransformer}),
        ("maskgen_kl", tiny_maskgen_pipeline("kl"), {"transformer": MaskGenKLTransformer, "vqvae": TATiTokTokenizer}),
        ("rar", tiny_rar_pipeline(), {"transformer": RARTransformer}),
    ):
        pipe.save_pretrained(tmp_path / name)
        fast = type(pipe).from_pretrained(tmp_path / name, fast_path=True)
        assert fast.transformer.fast_path and fast.vqvae.fast_path and quantized(fast.transformer) > 0
        if isinstance(fast, MaskGenPipeline):
            assert fast.text_encoder.fast_path
        for component, cls in classes.items():
            model = cls.from_pretrained(tmp_path / name / component, fast_path=True)
            assert model.fast_path and not model.training and quantized(model) > 0
        with pytest.raises(TypeError, match="fast_path must be True or False, got 'yes'"):
            type(pipe).from_pretrained(tmp_path / name, fast_path="yes")
    assert isinstance(fast, RARPipeline)


def test_refusals_of_the_new_fast_models(tmp_path):
    fast = tiny_maskgen_pipeline("kl").enable_fast_path()
    for model in (fast.transformer, fast.text_encoder, fast.vqvae):
        with pytest.raises(ValueError, match="on the CPU fast path .*not possible. Load the exact model"):
            model.to(torch.bfloat16)
        with pytest.raises(ValueError, match="training is not possible"):
            model.train()
        with pytest.raises(ValueError, match="on the CPU fast path"):
            model.save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="on the CPU fast path"):
        fast.save_pretrained(tmp_path / "pipe")
    rar = tiny_rar_pipeline().enable_fast_path()
    with pytest.raises(ValueError, match="moving it to a GPU is not possible"):
        rar.transformer.cuda()
    # A pipeline with one model that cannot take the fast path is refused before any model changes.
    pipe = tiny_maskgen_pipeline("vq")
    pipe.transformer.to(torch.bfloat16)
    with pytest.raises(ValueError, match="starts from a float32 model, this one is torch.bfloat16"):
        pipe.enable_fast_path()
    assert not pipe.vqvae.fast_path and quantized(pipe.vqvae) == 0 and quantized(pipe.text_encoder) == 0


def test_the_command_line_takes_the_fast_path(tmp_path, monkeypatch, capsys):
    """`--fast-path` on generate (every family's pipeline) and on the tokenizer commands loads through
    `fast_path=True` and gives the same kind of output."""
    import numpy as np
    import PIL.Image

    from hf_titok import cli as cli_module
    from hf_titok import loaders

    loaded = []
    for name in ("load_pipeline", "load_tokenizer"):
        original = getattr(loaders, name)

        def recording(*args, original=original, **kwargs):
            result = original(*args, **kwargs)
            model = result[0] if isinstance(result, tuple) else result.transformer
            loaded.append(model.fast_path)
            return result

        monkeypatch.setattr(cli_module, name, recording)
    for kind, pipe in (("rar", tiny_rar_pipeline()), ("maskgen", tiny_maskgen_pipeline("vq"))):
        pipe.save_pretrained(tmp_path / kind)
        conditioning = ["--labels", "1", "2"] if kind == "rar" else ["--prompt", "a shirt"]
        grid = tmp_path / f"{kind}.png"
        arguments = ["generate", "--model", str(tmp_path / kind), *conditioning, "--num-per-label", "1"]
        assert cli_module.main([*arguments, "--fast-path", "--output", str(grid)]) == 0, capsys.readouterr().err
        assert PIL.Image.open(grid).size[0] >= 32
    image = tmp_path / "image.png"
    PIL.Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(image)
    ids = tmp_path / "ids.npy"
    tiny_pipeline().save_pretrained(tmp_path / "titok")
    encode = ["encode", str(image), "--model", str(tmp_path / "titok"), "--fast-path", "--output", str(ids)]
    assert cli_module.main(encode) == 0
    assert np.load(ids).shape == (1, 8)
    assert loaded == [True, True, True]
