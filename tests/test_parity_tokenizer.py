"""Parity of the converted tokenizers and MaskGIT-VQGAN with the outputs of the official code."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hf_titok import TiTokTokenizer
from hf_titok.conversion import (
    convert_tokenizer,
    convert_vqgan,
    load_official_config,
    load_official_weights,
    titok_config_from_official,
)

ATOL, RTOL = 1e-4, 1e-4
PIXEL_ATOL = 1e-3
NEAR_TIE = 1e-5
PROJECT = Path(__file__).resolve().parent.parent


def official_layout(tokens: torch.Tensor) -> torch.Tensor:
    """Our token-major [B, N, C] -> the official [B, C, 1, N]."""
    return tokens.transpose(1, 2).unsqueeze(2)


def assert_ids_equal(ours: torch.Tensor, official: torch.Tensor, margin: torch.Tensor | None = None):
    """Ids must be identical except at official near-ties (vq_margin < 1e-5)."""
    differ = ours != official
    if margin is not None:
        differ &= margin.reshape(differ.shape) >= NEAR_TIE
    assert not differ.any(), f"token ids differ at {differ.nonzero().tolist()}: {ours[differ]} vs {official[differ]}"


def capture(module: torch.nn.Module, store: dict, name: str, inputs: bool = False):
    def hook(_, args, output):
        # Encoders and decoders return (last_hidden_state, hidden_states, ...): capture the tensor.
        store[name] = args[0] if inputs else (output[0] if isinstance(output, tuple) else output)

    return module.register_forward_hook(hook)


def load(fixtures, name: str, config_name: str | None = None, drop_prefix: str | None = None) -> TiTokTokenizer:
    weights = fixtures.weights(name)
    if drop_prefix:
        weights = {k: v for k, v in weights.items() if not k.startswith(drop_prefix)}
    return convert_tokenizer(load_official_config(fixtures.config_path(config_name or name)), weights)


@pytest.fixture(scope="module")
def legacy(fixtures):
    return load(fixtures, "titok_vq_legacy")


@torch.no_grad()
def test_two_stage_legacy_tokenizer_matches_official(fixtures, legacy):
    io, x = fixtures.io("titok_vq_legacy"), fixtures.pixel_values
    seen = {}
    hooks = [
        capture(legacy.encoder.post_layernorm, seen, "enc_ln_post_out"),
        capture(legacy.decoder.post_layernorm, seen, "dec_ln_post_out"),
        capture(legacy.pixel_decoder, seen, "pixel_decoder_in", inputs=True),
        capture(legacy.decoder, seen, "proxy_logits"),
    ]
    encoded = legacy.encode(x)
    assert encoded.token_ids.dtype == torch.int64
    assert_ids_equal(encoded.token_ids, io["indices"][:, 0], io["vq_margin"][:, 0])
    torch.testing.assert_close(seen["enc_ln_post_out"], io["enc_ln_post_out"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(official_layout(encoded.unquantized_latents), io["z_pre_quant"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(official_layout(encoded.latents), io["z_quantized"], atol=ATOL, rtol=RTOL)

    pixels = legacy.decode_latents(encoded.latents)
    torch.testing.assert_close(seen["dec_ln_post_out"], io["dec_ln_post_out"], atol=ATOL, rtol=RTOL)
    grid = legacy.config.decoder_grid_size
    logits = seen["proxy_logits"].transpose(1, 2).reshape(x.shape[0], -1, grid, grid)
    torch.testing.assert_close(logits, io["proxy_logits"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(seen["pixel_decoder_in"], io["pixel_decoder_in"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(pixels, io["decoded_pixels"], atol=PIXEL_ATOL, rtol=RTOL)
    for h in hooks:
        h.remove()

    from_ids = legacy.decode(io["indices"][:, 0])
    torch.testing.assert_close(from_ids, io["decoded_pixels_from_tokens"], atol=PIXEL_ATOL, rtol=RTOL)


@torch.no_grad()
def test_single_stage_vq_tokenizer_matches_official(fixtures):
    model = load(fixtures, "titok_vq_single")
    io, x = fixtures.io("titok_vq_single"), fixtures.pixel_values
    seen = {}
    capture(model.encoder.post_layernorm, seen, "enc_ln_post_out")
    capture(model.decoder.head.conv_out, seen, "dec_ffn_out", inputs=True)
    encoded = model.encode(x)
    assert_ids_equal(encoded.token_ids, io["indices"][:, 0], io["vq_margin"][:, 0])
    torch.testing.assert_close(seen["enc_ln_post_out"], io["enc_ln_post_out"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(official_layout(encoded.unquantized_latents), io["z_pre_quant"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(official_layout(encoded.latents), io["z_quantized"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(encoded.quantizer_loss.reshape(1), io["quantizer_loss"], atol=ATOL, rtol=RTOL)
    pixels = model.decode_latents(encoded.latents)
    torch.testing.assert_close(seen["dec_ffn_out"], io["dec_ffn_out"], atol=PIXEL_ATOL, rtol=RTOL)
    torch.testing.assert_close(pixels, io["decoded_pixels"], atol=PIXEL_ATOL, rtol=RTOL)
    torch.testing.assert_close(
        model.decode(io["indices"][:, 0]), io["decoded_pixels_from_tokens"], atol=PIXEL_ATOL, rtol=RTOL
    )


@torch.no_grad()
def test_vae_tokenizer_matches_official(fixtures):
    model = load(fixtures, "titok_vae")
    io, x = fixtures.io("titok_vae"), fixtures.pixel_values
    seen = {}
    capture(model.encoder, seen, "moments")
    encoded = model.encode(x)
    assert encoded.token_ids is None
    torch.testing.assert_close(official_layout(seen["moments"]), io["moments"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(official_layout(encoded.latents), io["posterior_mean"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(official_layout(encoded.posterior_logvar), io["posterior_logvar"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(encoded.kl_loss, io["kl"].sum() / x.shape[0], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(
        model.decode(encoded.latents), io["decoded_pixels_from_mean"], atol=PIXEL_ATOL, rtol=RTOL
    )

    # The official sample is mean + std * randn after torch.manual_seed(1305): a seeded generator
    # reproduces it, and the sampled latents decode as the official ones do.
    sampled = model.encode(x, sample_posterior=True, generator=torch.Generator().manual_seed(1305)).latents
    torch.testing.assert_close(official_layout(sampled), io["z_sample"], atol=ATOL, rtol=RTOL)
    std = torch.exp(0.5 * encoded.posterior_logvar)
    torch.testing.assert_close(official_layout(std), io["posterior_std"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(
        model.decode(io["z_sample"].squeeze(2).transpose(1, 2)),
        io["decoded_pixels_from_sample"],
        atol=PIXEL_ATOL,
        rtol=RTOL,
    )


@torch.no_grad()
def test_stage1_layout_matches_official(fixtures):
    """Stage-1 checkpoints (finetune_decoder=False): the legacy weights without the pixel decoder."""
    official = load_official_config(fixtures.config_path("titok_vq_legacy"))
    official["model"]["vq_model"]["finetune_decoder"] = False
    weights = {k: v for k, v in fixtures.weights("titok_vq_legacy").items() if not k.startswith("pixel_")}
    model = convert_tokenizer(official, weights)
    assert model.pixel_decoder is None and not model.config.include_pixel_decoder
    io = fixtures.io("titok_vq_stage1")
    out = model(fixtures.pixel_values)
    assert out.reconstruction is None
    grid = model.config.decoder_grid_size
    logits = out.proxy_logits.transpose(1, 2).reshape(out.proxy_logits.shape[0], -1, grid, grid)
    torch.testing.assert_close(logits, io["proxy_logits"], atol=ATOL, rtol=RTOL)
    assert torch.equal(out.token_ids, io["indices"][:, 0])
    for name in ("quantizer_loss", "commitment_loss", "codebook_loss"):
        torch.testing.assert_close(out[name].reshape(1), io[name], atol=1e-5, rtol=1e-4)
    cross_entropy = F.cross_entropy(out.proxy_logits.flatten(0, 1), io["proxy_codes"].flatten())
    torch.testing.assert_close(cross_entropy.reshape(1), io["stage1_reconstruction_loss"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(
        (cross_entropy + out.quantizer_loss).reshape(1), io["stage1_total_loss"], atol=ATOL, rtol=RTOL
    )
    with pytest.raises(ValueError, match="stage-1 layout"):
        model.decode(out.token_ids)


@torch.no_grad()
def test_maskgit_vqgan_matches_official(fixtures):
    model = convert_vqgan(load_official_config(fixtures.config_path("maskgit_vqgan")), fixtures.vqgan_weights())
    io, x = fixtures.io("maskgit_vqgan"), fixtures.pixel_values
    encoded = model.encode(x)
    torch.testing.assert_close(encoded.latents, io["encoder_out"], atol=ATOL, rtol=RTOL)
    assert torch.equal(encoded.codes, io["proxy_codes"])
    # The official PretrainedTokenizer.decode clamps; ours returns the raw decoder output.
    torch.testing.assert_close(
        model.decode(encoded.codes).clamp(0, 1), io["decoded_pixels"], atol=PIXEL_ATOL, rtol=RTOL
    )
    # Its codebook and decoder are exactly the two-stage tokenizer's pixel decoder.
    tokenizer = load(fixtures, "titok_vq_legacy")
    grid = model.config.grid_size
    codes = encoded.codes
    one_hot = F.one_hot(codes, model.config.codebook_size).float() * 1e4  # softmax of huge logits = argmax
    via_tokenizer = tokenizer._render_proxy_logits(one_hot)
    torch.testing.assert_close(via_tokenizer, model.decode(codes), atol=PIXEL_ATOL, rtol=RTOL)
    assert grid == tokenizer.config.decoder_grid_size


def test_hub_config_json_converts_like_the_harness_config(fixtures, tmp_path):
    """The Hub config.json (unresolved ${...} interpolation, no _harness) gives the same config where the
    official sizes apply; harness-only size names are rejected with a clear error."""
    hub = load_official_config(fixtures.path("titok_vq_legacy.hub_config.json"))
    assert hub["model"]["generator"]["image_seq_len"] == hub["model"]["vq_model"]["num_latent_tokens"]
    with pytest.raises(ValueError, match="unknown ViT size 'harness_"):
        titok_config_from_official(hub)


def test_converter_script_writes_a_loadable_model(fixtures, tmp_path):
    out = tmp_path / "converted"
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT / "conversion" / "convert_official_titok.py"),
            "--kind",
            "tokenizer",
            "--config",
            str(fixtures.config_path("titok_vq_single")),
            "--weights",
            str(fixtures.path("titok_vq_single.weights.safetensors")),
            "--output-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote TiTokTokenizer" in result.stdout
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()
    model = TiTokTokenizer.from_pretrained(out)
    io = fixtures.io("titok_vq_single")
    with torch.no_grad():
        assert torch.equal(model.encode(fixtures.pixel_values).token_ids, io["indices"][:, 0])

    bad = subprocess.run(
        [
            sys.executable,
            str(PROJECT / "conversion" / "convert_official_titok.py"),
            "--kind",
            "tokenizer",
            "--config",
            str(fixtures.config_path("titok_vq_single")),
            "--weights",
            str(fixtures.path("titok_vq_legacy.weights.safetensors")),
            "--output-dir",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("hf-titok convert: error: the tokenizer checkpoint does not match")
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_converter_rejects_mismatched_checkpoints(fixtures, tmp_path):
    config = load_official_config(fixtures.config_path("titok_vq_single"))
    weights = fixtures.weights("titok_vq_single")
    with pytest.raises(ValueError, match="parameters missing from the checkpoint: quantizer.embedding.weight"):
        convert_tokenizer(config, {k: v for k, v in weights.items() if k != "quantize.embedding.weight"})
    with pytest.raises(ValueError, match="keys with no mapping: bogus.weight"):
        convert_tokenizer(config, {**weights, "bogus.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"shape mismatches: quantize.embedding.weight: \[3, 3\]"):
        convert_tokenizer(config, {**weights, "quantize.embedding.weight": torch.zeros(3, 3)})
    # A legacy (two-stage) checkpoint given with a single-stage config.
    with pytest.raises(ValueError, match="keys the model does not have: .*pixel_decoder.conv_in.weight"):
        convert_tokenizer(config, fixtures.weights("titok_vq_legacy"))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_converter_reads_bin_weights_only(fixtures, tmp_path, monkeypatch):
    weights = fixtures.weights("titok_vae")
    torch.save(weights, tmp_path / "model.bin")
    loaded = load_official_weights(tmp_path / "model.bin")
    assert loaded.keys() == weights.keys() and all(torch.equal(loaded[k], weights[k]) for k in weights)
    # A pickle that would run code is refused, and the code does not run.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.bin").write_bytes(pickle.dumps({"w": _RunsCode()}, protocol=2))
    with pytest.raises(ValueError, match="weights-only"):
        load_official_weights(tmp_path / "evil.bin")
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(FileNotFoundError):
        load_official_weights(tmp_path / "missing.bin")
