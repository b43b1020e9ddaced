"""Behaviour of TiTokTokenizer / MaskGITVQGAN beyond parity: round trips, auto classes, errors, training."""

import json

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoImageProcessor, AutoModel

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, TiTokConfig, TiTokImageProcessor, TiTokTokenizer

from conftest import tiny_titok_config

KINDS = ["two_stage", "stage1", "single_vq", "vae"]


def fields(config) -> dict:
    data = config.to_dict()
    for volatile in ("_name_or_path", "transformers_version"):
        data.pop(volatile, None)
    return data


def tiny_model(kind: str = "two_stage", **overrides) -> TiTokTokenizer:
    torch.manual_seed(0)
    return TiTokTokenizer(tiny_titok_config(kind, **overrides)).eval()


def images(batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_of_every_kind(kind):
    model = tiny_model(kind)
    config = model.config
    with torch.no_grad():
        encoded = model.encode(images())
        out = model(images())
    assert encoded.latents.shape == (2, config.num_latent_tokens, config.token_size)
    if kind == "vae":
        assert encoded.token_ids is None and encoded.kl_loss.ndim == 0
    else:
        assert encoded.token_ids.shape == (2, config.num_latent_tokens) and encoded.token_ids.dtype == torch.int64
        assert int(encoded.token_ids.max()) < config.codebook_size
    if kind in ("two_stage", "stage1"):
        assert out.proxy_logits.shape == (2, config.decoder_grid_size**2, config.num_proxy_codes)
    if kind == "stage1":
        assert out.reconstruction is None
    else:
        assert out.reconstruction.shape == (2, 3, 32, 32)
        tokens = encoded.latents if kind == "vae" else encoded.token_ids
        assert model.decode(tokens).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("kind", ["two_stage", "single_vq", "vae"])
def test_decode_of_encoded_tokens_equals_forward_reconstruction(kind):
    model = tiny_model(kind)
    x = images()
    with torch.no_grad():
        encoded = model.encode(x)
        tokens = encoded.latents if kind == "vae" else encoded.token_ids
        torch.testing.assert_close(model.decode(tokens), model(x).reconstruction, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_round_trip_is_bit_exact(kind, tmp_path):
    model = tiny_model(kind)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = TiTokTokenizer.from_pretrained(tmp_path)
    via_auto = AutoModel.from_pretrained(tmp_path)
    assert type(via_auto) is TiTokTokenizer and not reloaded.training
    original = model.state_dict()
    for loaded in (reloaded.state_dict(), via_auto.state_dict()):
        assert loaded.keys() == original.keys()
        assert all(torch.equal(loaded[k], original[k]) for k in original)
    x = images()
    with torch.no_grad():
        a, b = model(x), reloaded(x)
    for name in ("token_ids", "latents", "reconstruction", "proxy_logits"):
        if a[name] is not None if name in a else False:
            assert torch.equal(a[name], b[name]), name


def test_vqgan_round_trip_and_auto_model(tmp_path):
    torch.manual_seed(0)
    config = MaskGITVQGANConfig(
        image_size=32, hidden_channels=32, channel_mult=[1, 2], num_res_blocks=1, z_channels=8, codebook_size=16
    )
    model = MaskGITVQGAN(config).eval()
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert type(reloaded) is MaskGITVQGAN
    x = images()
    with torch.no_grad():
        codes = model.encode(x).codes
        assert codes.shape == (2, (32 // 2) ** 2) and torch.equal(codes, reloaded.encode(x).codes)
        assert torch.equal(model.decode(codes), reloaded.decode(codes))
        out = model(x)
    assert out.reconstruction.shape == x.shape and out.quantizer_loss.ndim == 0


def test_config_json_round_trip(tmp_path):
    for kind in KINDS:
        config = tiny_titok_config(kind)
        config.save_pretrained(tmp_path / kind)
        data = json.loads((tmp_path / kind / "config.json").read_text())
        assert data["model_type"] == "titok"
        reloaded = AutoConfig.from_pretrained(tmp_path / kind)
        assert isinstance(reloaded, TiTokConfig) and fields(reloaded) == fields(config)
        if kind in ("two_stage", "stage1"):
            assert isinstance(reloaded.pixel_decoder_config, MaskGITVQGANConfig)
            assert reloaded.num_proxy_codes == 128
        else:
            assert reloaded.pixel_decoder_config is None


def test_presets_and_config_errors():
    assert TiTokConfig.from_preset("titok_bl64_vq8k").decoder_head == "pixels"
    assert TiTokConfig.from_preset("titok_s128", num_latent_tokens=64).num_latent_tokens == 64
    with pytest.raises(ValueError, match="unknown TiTok preset 'titok_x'; available: titok_l32"):
        TiTokConfig.from_preset("titok_x")
    # Architecture checks run in transformers 5's `validate_architecture` (raised as strict-dataclass errors).
    with pytest.raises(StrictDataclassError, match="encoder_hidden_size=30 is not divisible by encoder_num_heads=4"):
        TiTokConfig(encoder_hidden_size=30, encoder_num_heads=4)
    with pytest.raises(StrictDataclassError, match="quantize_mode. expected one of"):
        TiTokConfig(quantize_mode="fsq")
    with pytest.raises(StrictDataclassError, match="set decoder_patch_size=16"):
        TiTokConfig(decoder_patch_size=8)
    with pytest.raises(StrictDataclassError, match="image_size=250 is not divisible by encoder_patch_size=16"):
        TiTokConfig(image_size=250, decoder_head="pixels")
    # Contradictory arguments raise instead of being overwritten.
    with pytest.raises(ValueError, match="include_pixel_decoder=True needs decoder_head='proxy_codes'"):
        TiTokConfig(decoder_head="pixels", include_pixel_decoder=True)
    with pytest.raises(ValueError, match="pixel_decoder_config is the MaskGIT-VQGAN of decoder_head='proxy_codes'"):
        TiTokConfig(decoder_head="pixels", pixel_decoder_config={"image_size": 256})
    assert TiTokConfig(decoder_head="pixels").include_pixel_decoder is False
    assert TiTokConfig().include_pixel_decoder is True and TiTokConfig(include_pixel_decoder=False).pixel_decoder_config


def test_auto_image_processor_round_trip(tmp_path):
    tiny_titok_config().save_pretrained(tmp_path)
    TiTokImageProcessor.for_image_size(32).save_pretrained(tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(processor, TiTokImageProcessor) and processor.crop_size.height == 32


def test_sdpa_matches_eager_attention(tmp_path):
    model = tiny_model("single_vq")
    assert model.config._attn_implementation == "sdpa"
    model.save_pretrained(tmp_path)
    eager = TiTokTokenizer.from_pretrained(tmp_path, attn_implementation="eager")
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(model(x).reconstruction, eager(x).reconstruction, atol=1e-5, rtol=1e-5)


def test_attention_is_bidirectional():
    """A change to the last position must reach the first one (a causal mask would block it)."""
    attention = tiny_model("single_vq").encoder.layers[0].self_attn
    with torch.no_grad():
        for parameter in attention.parameters():
            parameter.normal_(std=0.3)
        x = torch.randn(1, 6, 32)
        changed = x.clone()
        changed[0, -1] += 5.0
        difference = (attention(x)[0][0, 0] - attention(changed)[0][0, 0]).abs().max()
        unchanged = (attention(x)[0][0, 0] - attention(x.clone())[0][0, 0]).abs().max()
    assert difference > 1e-4 and unchanged == 0  # a causal mask would give exactly 0


@pytest.mark.parametrize("kind", ["two_stage", "vae"])
def test_batch_results_equal_single_results(kind):
    model = tiny_model(kind)
    x = images(3)
    with torch.no_grad():
        batched = model(x).reconstruction
        single = torch.cat([model(x[i : i + 1]).reconstruction for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


def test_vae_sampling_is_reproducible_and_only_on_request():
    model = tiny_model("vae")
    x = images()
    with torch.no_grad():
        mean = model.encode(x).latents
        assert torch.equal(mean, model.encode(x).latents)
        s1 = model.encode(x, sample_posterior=True, generator=torch.Generator().manual_seed(3)).latents
        s2 = model.encode(x, sample_posterior=True, generator=torch.Generator().manual_seed(3)).latents
        s3 = model.encode(x, sample_posterior=True, generator=torch.Generator().manual_seed(4)).latents
    assert torch.equal(s1, s2) and not torch.equal(s1, s3) and not torch.equal(s1, mean)


@pytest.mark.parametrize("kind", ["two_stage", "single_vq", "vae"])
def test_forward_losses_backpropagate(kind):
    model = tiny_model(kind).train()
    out = model(images())
    loss = (out.reconstruction - images()).pow(2).mean()
    loss = loss + (out.quantizer_loss if kind != "vae" else 1e-6 * out.kl_loss)
    loss.backward()
    assert model.encoder.latent_tokens.grad is not None and model.encoder.latent_tokens.grad.abs().sum() > 0
    assert model.decoder.mask_token.grad.abs().sum() > 0
    if kind != "vae":
        assert model.quantizer.embedding.weight.grad.abs().sum() > 0


def test_gradient_checkpointing_gives_the_same_gradients():
    x = images()
    grads = []
    for checkpointing in (False, True):
        model = tiny_model("single_vq").train()
        if checkpointing:
            model.activation_checkpointing_enable()
        out = model(x)
        (out.reconstruction.pow(2).mean() + out.quantizer_loss).backward()
        grads.append(model.encoder.layers[0].mlp.fc1.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


class TestBadInput:
    model = tiny_model("two_stage")
    vae = tiny_model("vae")

    def test_pixel_values(self):
        with pytest.raises(TypeError, match="must be a torch.Tensor"):
            self.model.encode([[0.0]])
        with pytest.raises(TypeError, match="floating-point.*uint8"):
            self.model.encode(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
        with pytest.raises(ValueError, match="4 dimensions"):
            self.model.encode(torch.zeros(3, 32, 32))
        with pytest.raises(ValueError, match="3 channels"):
            self.model.encode(torch.zeros(1, 1, 32, 32))
        with pytest.raises(ValueError, match="takes 32x32 images, got 64x48"):
            self.model.encode(torch.zeros(1, 3, 64, 48))
        with pytest.raises(ValueError, match=r"\[0, 1\].*\[0, 255\]: divide by 255"):
            self.model.encode(torch.full((1, 3, 32, 32), 200.0))
        with pytest.raises(ValueError, match=r"look like \[-1, 1\]"):
            self.model(torch.full((1, 3, 32, 32), -1.0))

    def test_token_ids(self):
        with pytest.raises(ValueError, match=r"token_ids must lie in \[0, 63\].*got values in \[0, 64\]"):
            self.model.decode(torch.tensor([[0] * 7 + [64]]))
        with pytest.raises(ValueError, match=r"token_ids must lie in \[0, 63\]"):
            self.model.decode(torch.full((1, 8), -1))
        with pytest.raises(ValueError, match=r"shape \[B, 8\], got \(1, 7\)"):
            self.model.decode(torch.zeros(1, 7, dtype=torch.long))
        with pytest.raises(ValueError, match=r"shape \[B, 8\], got \(8,\)"):
            self.model.decode(torch.zeros(8, dtype=torch.long))
        with pytest.raises(TypeError, match="VQ tokenizer.*decode_latents"):
            self.model.decode(torch.zeros(1, 8, 8))
        with pytest.raises(TypeError, match="VAE tokenizer.*integer tensor"):
            self.vae.decode(torch.zeros(1, 8, dtype=torch.long))
        with pytest.raises(ValueError, match=r"latents must have shape \[B, 8, 8\]"):
            self.vae.decode(torch.zeros(1, 8, 4))

    def test_mismatched_checkpoint(self, tmp_path):
        tiny_model("single_vq").save_pretrained(tmp_path)
        with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
            TiTokTokenizer.from_pretrained(tmp_path, config=tiny_titok_config("single_vq", token_size=4))
        weights = load_file(tmp_path / "model.safetensors")
        weights.pop("quantizer.embedding.weight")
        save_file(
            {**weights, "extra.weight": torch.zeros(1)}, tmp_path / "model.safetensors", metadata={"format": "pt"}
        )
        with pytest.raises(
            ValueError, match="missing weights: quantizer.embedding.weight; unexpected weights: extra.weight"
        ):
            TiTokTokenizer.from_pretrained(tmp_path)
        with pytest.raises(ValueError, match="missing weights"):
            AutoModel.from_pretrained(tmp_path)
        model = TiTokTokenizer.from_pretrained(tmp_path, strict=False)
        assert model.quantizer.embedding.weight.shape == (64, 8)
