"""One-D-Piece (a TiTok fork with prefix decoding) against the outputs of the official code
(tests/fixtures_onedpiece, README inside): encoding, decoding from every prefix length of the set with the decoder's
and the pixel decoder's intermediate tensors, the forward pass at a prefix, the Tail Token Drop training forwards
(two-stage and stage-1 layouts, given the official draws' lengths) and their losses; and the refusals of a
tokenizer not trained for prefixes."""

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from hf_titok import TiTokPipeline, TiTokTokenizer
from hf_titok.cli import main as cli
from hf_titok.conversion import convert_model, direct, load_official_config
from hf_titok.models.titok import convert_titok
from hf_titok.releases import RELEASES
from hf_titok.training.wrappers import Stage1Training, tail_token_drop_length

from conftest import TESTS_DIR, Fixtures, populate_hub_cache

FIXTURES = Path(os.environ.get("TITOK_ONEDPIECE_FIXTURES_DIR") or TESTS_DIR / "fixtures_onedpiece")
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
LENGTHS = MANIFEST["config"]["lengths"]
ATOL, PIXEL_ATOL = 1e-4, 1e-3


@pytest.fixture(scope="module")
def fixtures() -> Fixtures:
    return Fixtures()


def io(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / f"{name}.io.safetensors"))


def convert(config_name: str, drop_pixel_decoder: bool = False) -> TiTokTokenizer:
    weights = load_file(str(FIXTURES / "onedpiece_vq.weights.safetensors"))
    if drop_pixel_decoder:  # the stage-1 layout: the released weights without the MaskGIT-VQGAN part
        weights = {key: value for key, value in weights.items() if not key.startswith("pixel_")}
    return convert_model("tokenizer", load_official_config(FIXTURES / f"{config_name}.config.json"), weights)


@pytest.fixture(scope="module")
def model() -> TiTokTokenizer:
    return convert("onedpiece_vq")


@pytest.fixture(scope="module")
def pixel_values() -> torch.Tensor:
    return io("inputs")["pixel_values"]


class Recorder:
    """The outputs of the decoder's post-LayerNorm (its image-grid tokens) and the pixel decoder's input, the two
    intermediates the fixtures store, in call order."""

    def __init__(self, model: TiTokTokenizer):
        self.post_layernorm, self.pixel_decoder_in = [], []
        self.handles = [
            model.decoder.post_layernorm.register_forward_hook(
                lambda module, args, output: self.post_layernorm.append(output)
            )
        ]
        if model.pixel_decoder is not None:
            self.handles.append(
                model.pixel_decoder.register_forward_pre_hook(
                    lambda module, args: self.pixel_decoder_in.append(args[0])
                )
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def test_config_allows_prefixes_and_encodes_as_officially(model, pixel_values):
    expected = io("onedpiece_vq")
    assert model.config.prefix_decoding and model.config.num_latent_tokens == MANIFEST["num_latent_tokens"]
    with torch.no_grad():
        encoded = model.encode(pixel_values)
    assert torch.equal(encoded.token_ids, expected["indices"][:, 0])
    official_latents = expected["z_quantized"][:, :, 0].transpose(1, 2)  # [B, C, 1, N] -> [B, N, C]
    torch.testing.assert_close(encoded.latents, official_latents, atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("length", LENGTHS)
def test_a_prefix_decodes_to_the_official_pixels(model, pixel_values, length):
    expected = io("onedpiece_vq")
    ids = expected["indices"][:, 0, :length]
    with torch.no_grad(), Recorder(model) as recorded:
        pixels = model.decode(ids)
    torch.testing.assert_close(
        recorded.post_layernorm[0], expected[f"dec_ln_post_out_len{length}"], atol=ATOL, rtol=ATOL
    )
    torch.testing.assert_close(
        recorded.pixel_decoder_in[0], expected[f"pixel_decoder_in_len{length}"], atol=ATOL, rtol=ATOL
    )
    assert pixels.shape == (2, 3, 32, 32)
    torch.testing.assert_close(pixels, expected[f"decoded_pixels_len{length}"], atol=PIXEL_ATOL, rtol=ATOL)


def test_prefixes_of_the_latents_decode_as_prefixes_of_the_ids(model, pixel_values):
    with torch.no_grad():
        encoded = model.encode(pixel_values)
        from_latents = model.decode_latents(encoded.latents[:, :3])
        from_ids = model.decode(encoded.token_ids[:, :3])
    torch.testing.assert_close(from_latents, from_ids, atol=1e-5, rtol=1e-5)


def test_the_forward_pass_at_a_prefix(model, pixel_values):
    expected = io("onedpiece_vq")
    length = MANIFEST["config"]["forward_length"]
    with torch.no_grad():
        output = model(pixel_values, num_decoded_tokens=length)
    torch.testing.assert_close(output.reconstruction, expected[f"forward_pixels_len{length}"], atol=PIXEL_ATOL, rtol=0)
    assert torch.equal(output.token_ids, expected["indices"][:, 0])  # encoding keeps all N tokens


def test_tail_token_drop_forwards_of_the_two_stage_layout(model, pixel_values):
    """The official training forward draws one length per call; given the same lengths ours equals it (the recipe
    draws them from the Trainer's seeded generator, `test_training_onedpiece`)."""
    expected = io("onedpiece_vq_ttd")
    assert expected["ttd_lengths"].tolist() == MANIFEST["ttd_rng_check"]["drawn"]
    for step, length in enumerate(expected["ttd_lengths"].tolist()):
        with torch.no_grad(), Recorder(model) as recorded:
            output = model(pixel_values, num_decoded_tokens=length)
        torch.testing.assert_close(
            recorded.post_layernorm[0], expected[f"ttd_dec_ln_post_out_step{step}"], atol=ATOL, rtol=ATOL
        )
        torch.testing.assert_close(output.reconstruction, expected[f"ttd_pixels_step{step}"], atol=PIXEL_ATOL, rtol=0)


def test_tail_token_drop_losses_of_the_stage1_layout(pixel_values):
    """Stage 1: the proxy-code cross entropy of the prefix's decode plus the quantizer loss over all N tokens."""
    model = convert("onedpiece_stage1", drop_pixel_decoder=True)
    expected = io("onedpiece_stage1")
    assert model.pixel_decoder is None and model.config.prefix_decoding
    for step, length in enumerate(expected["ttd_lengths"].tolist()):
        with torch.no_grad(), Recorder(model) as recorded:
            output = model(pixel_values, labels=expected["target_codes"], num_decoded_tokens=length)
        torch.testing.assert_close(
            recorded.post_layernorm[0], expected[f"dec_ln_post_out_step{step}"], atol=ATOL, rtol=ATOL
        )
        torch.testing.assert_close(output.loss, expected[f"total_loss_step{step}"][0], atol=ATOL, rtol=ATOL)
        torch.testing.assert_close(
            output.loss - output.quantizer_loss, expected[f"reconstruction_loss_step{step}"][0], atol=ATOL, rtol=ATOL
        )
        torch.testing.assert_close(output.quantizer_loss, expected["quantizer_loss"][0], atol=ATOL, rtol=ATOL)
        assert torch.equal(output.token_ids, expected["indices"][:, 0])


def test_prefix_lengths_outside_one_to_n_are_refused(model):
    ids = torch.zeros(1, 17, dtype=torch.long)
    prefix = "must have shape [B, k] with 1 <= k <= 16 (a prefix of the 16 tokens)"
    with pytest.raises(ValueError, match=re.escape(f"token_ids {prefix}, got (1, 17)")):
        model.decode(ids)
    with pytest.raises(ValueError, match=re.escape(f"token_ids {prefix}, got (1, 0)")):
        model.decode(ids[:, :0])
    with pytest.raises(
        ValueError, match=re.escape("num_decoded_tokens must be in [1, 16] (a prefix of the 16 tokens)")
    ):
        model(torch.rand(1, 3, 32, 32), num_decoded_tokens=0)
    with pytest.raises(TypeError, match="num_decoded_tokens must be an integer number of tokens, got 2.5"):
        model(torch.rand(1, 3, 32, 32), num_decoded_tokens=2.5)


def test_a_tokenizer_without_prefix_decoding_refuses_a_prefix(pixel_values):
    """The official default (`strict_length_assertion` absent, as in every TiTok release) decodes exactly N."""
    config = load_official_config(FIXTURES / "onedpiece_vq.config.json")
    del config["model"]["vq_model"]["strict_length_assertion"]
    strict = convert_model("tokenizer", config, load_file(str(FIXTURES / "onedpiece_vq.weights.safetensors")))
    assert not strict.config.prefix_decoding
    ids = strict.encode(pixel_values).token_ids
    assert strict.decode(ids).shape == (2, 3, 32, 32)  # all N tokens: fine
    refusal = "token_ids must have shape [B, 16], got (2, 8): this tokenizer was not trained to decode a prefix"
    with pytest.raises(ValueError, match=re.escape(refusal)):
        strict.decode(ids[:, :8])
    with pytest.raises(ValueError, match=re.escape("latents must have shape [B, 16, 12], got (2, 8, 12): this")):
        strict.decode_latents(strict.encode(pixel_values).latents[:, :8])
    for count in (8, 0, 17):  # any other count, a prefix or not, is refused (never decoded as a slice)
        with pytest.raises(ValueError, match=re.escape(f"num_decoded_tokens must be 16, got {count}: this tokenizer")):
            strict(pixel_values, num_decoded_tokens=count)


# Tail Token Drop in training: the draws and the stage-1 wrapper's losses (the recipes: test_training.py)


def test_the_drawn_lengths_are_the_official_draws():
    model = SimpleNamespace(config=SimpleNamespace(num_latent_tokens=MANIFEST["num_latent_tokens"]))
    for fixture, seed in (("onedpiece_vq_ttd", 2508), ("onedpiece_stage1", 2518)):
        expected = io(fixture)["ttd_lengths"].tolist()
        torch.manual_seed(seed)
        assert [tail_token_drop_length(model, True) for _ in expected] == expected
    assert tail_token_drop_length(model, False) is None


class FixedTeacher(torch.nn.Module):
    """A teacher whose codes are the fixture's targets (the official harness drew them)."""

    def __init__(self, codes: torch.Tensor):
        super().__init__()
        self.codes = codes
        self.config = SimpleNamespace(codebook_size=1024, grid_size=4)

    def encode(self, pixel_values):
        return SimpleNamespace(codes=self.codes)


def test_stage1_tail_token_drop_forwards_equal_the_official_ones():
    """The wrapper's training forwards after the official seed: the same drawn lengths, hence the official losses."""
    weights = load_file(str(FIXTURES / "onedpiece_vq.weights.safetensors"))
    weights = {key: value for key, value in weights.items() if not key.startswith("pixel_")}
    model = convert_model("tokenizer", load_official_config(FIXTURES / "onedpiece_stage1.config.json"), weights)
    expected = io("onedpiece_stage1")
    wrapper = Stage1Training(model, FixedTeacher(expected["target_codes"]), use_ema=False, tail_token_drop=True)
    wrapper.train()
    pixel_values = io("inputs")["pixel_values"]
    torch.manual_seed(2518)
    for step in range(len(expected["ttd_lengths"])):
        loss = wrapper(pixel_values)["loss"]
        torch.testing.assert_close(loss.detach(), expected[f"total_loss_step{step}"][0], atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# The official ids: bare state dicts (pytorch_model.bin, read weights-only) whose config is the release table's
# ---------------------------------------------------------------------------------------------------------


def test_the_tokenizer_id_loads_from_its_bare_state_dict(hub_cache, tmp_path, monkeypatch, pixel_values):
    """`from_pretrained("turing-motors/One-D-Piece-S-256")`: the repo holds `pytorch_model.bin` alone; here the
    release table's config is the tiny fixture's."""
    folder = tmp_path / "repo"
    folder.mkdir()
    torch.save(load_file(str(FIXTURES / "onedpiece_vq.weights.safetensors")), folder / "pytorch_model.bin")
    populate_hub_cache(hub_cache, RELEASES["onedpiece_s256"].repo_id, folder)
    tiny = json.loads((FIXTURES / "onedpiece_vq.config.json").read_text())
    monkeypatch.setattr(direct, "release_official_config", lambda name: tiny)
    tokenizer = TiTokTokenizer.from_pretrained("turing-motors/One-D-Piece-S-256")
    assert tokenizer.config.prefix_decoding
    expected = io("onedpiece_vq")
    with torch.no_grad():
        pixels = tokenizer.decode(tokenizer.encode(pixel_values).token_ids[:, :3])
    torch.testing.assert_close(pixels, expected["decoded_pixels_len3"], atol=PIXEL_ATOL, rtol=ATOL)
    # The command line converts it into a ready folder with a card naming One-D-Piece, its licence and results.
    output = tmp_path / "converted"
    assert cli(["convert", "--repo-id", "turing-motors/One-D-Piece-S-256", "--output-dir", str(output)]) == 0
    card = (output / "README.md").read_text()
    assert "One-D-Piece-S-256" in card and "apache-2.0" in card and "arxiv:2501.10064" in card
    assert "| rFID | 1.48 |" in card and "turingmotors/One-D-Piece" in card and "decodes any prefix" in card
    converted = TiTokTokenizer.from_pretrained(output)
    assert converted.config.prefix_decoding
    with torch.no_grad():
        torch.testing.assert_close(converted.decode(expected["indices"][:, 0, :3]), pixels)


def test_the_generator_id_loads_with_its_tokenizer(hub_cache, fixtures, tmp_path, monkeypatch):
    """`TiTokPipeline.from_pretrained("turing-motors/MaskGIT_One-D-Piece-S-256")` takes its tokenizer from the
    tokenizer's repo and the yaml's sampling settings; the plumbing is shown with TiTok's tiny fixtures (the same
    ImageBert, no One-D-Piece generator fixture exists) in the two repos' layout."""
    for release, weights in (("onedpiece_s256", "titok_vq_legacy"), ("onedpiece_s256_generator", "maskgit_vit")):
        folder = tmp_path / release
        folder.mkdir()
        torch.save(fixtures.weights(weights), folder / "pytorch_model.bin")
        populate_hub_cache(hub_cache, RELEASES[release].repo_id, folder)
    tiny = json.loads(fixtures.config_path("maskgit_vit").read_text())
    tiny["model"]["vq_model"]["strict_length_assertion"] = False
    tiny["model"]["generator"].update(num_steps=16, guidance_scale=12.5, guidance_decay="power-cosine")
    monkeypatch.setattr(direct, "release_official_config", lambda name: tiny)
    monkeypatch.setattr(convert_titok, "MASKGIT_VQGAN", tiny["_harness"]["pixel_decoder"])
    pipe = TiTokPipeline.from_pretrained("turing-motors/MaskGIT_One-D-Piece-S-256")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vqvae.config.prefix_decoding
    settings = pipe.sampling_settings()
    assert (settings["num_inference_steps"], settings["guidance_scale"], settings["guidance_schedule"]) == (
        16,
        12.5,
        "power-cosine",
    )
    io_maskgit = fixtures.io("maskgit_vit")
    deterministic = dict(guidance_scale=0.0, guidance_schedule="constant", temperature=0.0, num_inference_steps=8)
    ids = pipe(
        io_maskgit["gen_labels"].tolist(), output_type="latent", softmax_temperature_annealing=False, **deterministic
    )
    assert torch.equal(ids.images, io_maskgit["gen_det_nocfg_ids"])
