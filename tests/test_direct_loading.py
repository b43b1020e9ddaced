"""Official checkpoints load directly (converted in memory) from their Hub ids, offline, through every entry
point: `from_pretrained` of the models and the pipeline, the command line, the Space and `evaluate`. The tiny
official-format fixtures are laid out as the Hub cache of the official release ids."""

import json
import logging
from pathlib import Path

import huggingface_hub
import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_titok import MaskGITVQGAN, TiTokMaskGIT, TiTokPipeline, TiTokTokenizer
from hf_titok.cli import main
from hf_titok.conversion import direct
from hf_titok.conversion import official as official_module
from hf_titok.loaders import load_pipeline, load_tokenizer
from hf_titok.models.maskgit_vqgan import convert_maskgit_vqgan
from hf_titok.models.titok import convert_titok
from hf_titok.releases import FUN_RESEARCH_REPO, RELEASES

from conftest import populate_hub_cache

L32 = RELEASES["titok_l32"].repo_id
L32_GENERATOR = RELEASES["titok_l32_generator"].repo_id
S128 = RELEASES["titok_s128"].repo_id
S128_GENERATOR = RELEASES["titok_s128_generator"].repo_id
VQ8K = RELEASES["titok_bl64_vq8k"].repo_id
VAE = RELEASES["titok_bl64_vae_c16"].repo_id

# Official release id -> (fixture weights, fixture config in the layout the repo has).
OFFICIAL_REPOS = {
    L32: ("titok_vq_legacy", "titok_vq_legacy.config.json"),
    L32_GENERATOR: ("maskgit_vit", "maskgit_vit.config.json"),
    S128: ("titok_vq_legacy", "titok_vq_legacy.config.json"),
    S128_GENERATOR: ("maskgit_uvit", "maskgit_uvit.config.json"),
    VQ8K: ("titok_vq_single", "titok_vq_single.config.json"),
    VAE: ("titok_vae", "titok_vae.config.json"),
}
DETERMINISTIC = dict(
    num_inference_steps=8,
    guidance_scale=0.0,
    guidance_schedule="constant",
    temperature=0.0,
    softmax_temperature_annealing=False,
)


def official_folder(root: Path, fixtures, name: str, config: str) -> Path:
    """A folder laid out as an official release repo: the official nested config.json + model.safetensors."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text((fixtures.dir / config).read_text())
    save_file(fixtures.weights(name), str(folder / "model.safetensors"))
    return folder


@pytest.fixture
def official_hub(hub_cache, tmp_path, fixtures):
    """The official release ids of OFFICIAL_REPOS in the offline Hub cache."""
    for repo_id, (name, config) in OFFICIAL_REPOS.items():
        populate_hub_cache(hub_cache, repo_id, official_folder(tmp_path / "repos" / repo_id, fixtures, name, config))
    return hub_cache


def converted(tmp_path, repo_id: str) -> Path:
    """`hf-titok convert` of a release id into a folder."""
    out = tmp_path / "converted" / repo_id.replace("/", "--")
    assert main(["convert", "--repo-id", repo_id, "--output-dir", str(out)]) == 0
    return out


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key


# ---------------------------------------------------------------------------------------------------------
# Tokenizers: parity with the official outputs, bit for bit what convert + from_pretrained gives
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("repo_id", [L32, VQ8K, VAE])
def test_official_tokenizer_ids_load_directly(repo_id, official_hub, fixtures, tmp_path, caplog):
    name = OFFICIAL_REPOS[repo_id][0]
    with caplog.at_level(logging.WARNING, logger="hf_titok.conversion.direct"):
        tokenizer = TiTokTokenizer.from_pretrained(repo_id)
    lines = [r.getMessage() for r in caplog.records if r.name == "hf_titok.conversion.direct"]
    assert len(lines) == 1 and lines[0].startswith(
        f"{repo_id} is an official TiTok tokenizer checkpoint: converted in memory"
    )
    assert not tokenizer.training
    io = fixtures.io(name)
    with torch.no_grad():
        encoded = tokenizer.encode(fixtures.pixel_values)
        if tokenizer.config.quantize_mode == "vq":
            assert torch.equal(encoded.token_ids, io["indices"].reshape(encoded.token_ids.shape))
        pixels = tokenizer.decode(encoded.tokens)
    expected = io["decoded_pixels" if "decoded_pixels" in io else "decoded_pixels_from_mean"]
    torch.testing.assert_close(pixels, expected, atol=1e-3, rtol=1e-4)
    # Bit for bit what `hf-titok convert` then `from_pretrained` gives.
    assert_same_weights(tokenizer, TiTokTokenizer.from_pretrained(converted(tmp_path, repo_id)))


def test_loading_arguments_work_as_for_converted_repos(official_hub, fixtures, tmp_path, monkeypatch):
    exact = TiTokTokenizer.from_pretrained(L32)
    half = TiTokTokenizer.from_pretrained(L32, dtype=torch.bfloat16)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    mapped = TiTokTokenizer.from_pretrained(L32, device_map="cpu")
    assert_same_weights(exact, mapped)
    fast = TiTokTokenizer.from_pretrained(L32, fast_path=True, release=None)
    assert fast.fast_path
    # revision= (the cached commit) and cache_dir= (another cache) reach the Hub lookups.
    commit = (official_hub / f"models--{L32.replace('/', '--')}" / "refs" / "main").read_text()
    assert_same_weights(exact, TiTokTokenizer.from_pretrained(L32, revision=commit))
    other_cache = tmp_path / "other_cache"
    populate_hub_cache(
        other_cache,
        L32,
        official_folder(tmp_path / "again", fixtures, "titok_vq_legacy", "titok_vq_legacy.config.json"),
    )
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert_same_weights(exact, TiTokTokenizer.from_pretrained(L32, cache_dir=str(other_cache)))
    with pytest.raises(OSError, match=f"cannot fetch config.json from the Hub repo {L32}"):
        TiTokTokenizer.from_pretrained(L32)  # not in the (now empty) default cache, and offline


def test_a_local_folder_in_the_official_format_loads(fixtures, tmp_path):
    folder = official_folder(tmp_path, fixtures, "titok_vq_single", "titok_vq_single.config.json")
    tokenizer = TiTokTokenizer.from_pretrained(folder)
    with torch.no_grad():
        ids = tokenizer.encode(fixtures.pixel_values).token_ids
    assert torch.equal(ids, fixtures.io("titok_vq_single")["indices"].reshape(ids.shape))


# ---------------------------------------------------------------------------------------------------------
# Generators and pipelines
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("repo_id,name", [(L32_GENERATOR, "maskgit_vit"), (S128_GENERATOR, "maskgit_uvit")])
def test_official_generator_ids_give_a_full_pipeline(repo_id, name, official_hub, fixtures, tmp_path):
    pipe = TiTokPipeline.from_pretrained(repo_id)
    pipe.set_progress_bar_config(disable=True)
    io = fixtures.io(name)
    # The tokenizer is the release's (the tiny two-stage fixture under its id), the sampler the official one.
    assert_same_weights(
        pipe.vqvae,
        TiTokTokenizer.from_pretrained(
            RELEASES[RELEASES[next(n for n, r in RELEASES.items() if r.repo_id == repo_id)].tokenizer].repo_id
        ),
    )
    official = json.loads((fixtures.dir / OFFICIAL_REPOS[repo_id][1]).read_text())["model"]["generator"]
    settings = pipe.scheduler.config
    assert (settings.num_inference_steps, settings.guidance_scale, settings.guidance_schedule) == (
        official.get("num_steps", 8),
        official.get("guidance_scale", 3.0),
        official.get("guidance_decay", "constant"),
    )
    assert settings.softmax_temperature_annealing
    labels = io["gen_labels"].tolist()
    ids = pipe(labels, output_type="latent", **DETERMINISTIC).images
    assert torch.equal(ids, io["gen_det_nocfg_ids"])
    with torch.no_grad():
        logits = pipe.transformer(io["input_ids"], io["labels"]).logits
    torch.testing.assert_close(logits, io["logits_cond"], atol=1e-4, rtol=1e-4)
    # The same as `hf-titok convert` then TiTokPipeline.from_pretrained.
    again = TiTokPipeline.from_pretrained(converted(tmp_path, repo_id))
    assert_same_weights(pipe.transformer, again.transformer)
    assert_same_weights(pipe.vqvae, again.vqvae)
    assert pipe.sampling_settings() == again.sampling_settings() and pipe.id2label == again.id2label
    again.set_progress_bar_config(disable=True)
    seeded = [p(labels, generator=torch.Generator().manual_seed(1284), output_type="pt").images for p in (pipe, again)]
    assert torch.equal(*seeded)


def test_pipeline_arguments_and_vqvae(official_hub, fixtures, tmp_path):
    pipe = TiTokPipeline.from_pretrained(L32_GENERATOR, torch_dtype=torch.bfloat16)
    assert pipe.transformer.dtype == pipe.vqvae.dtype == torch.bfloat16
    fast = TiTokPipeline.from_pretrained(L32_GENERATOR, fast_path=True)
    assert fast.transformer.fast_path and fast.vqvae.fast_path
    # vqvae= as a folder (a converted tokenizer) or as a model replaces the release's tokenizer.
    tokenizer_folder = converted(tmp_path, L32)
    with_folder = TiTokPipeline.from_pretrained(L32_GENERATOR, vqvae=str(tokenizer_folder))
    assert_same_weights(with_folder.vqvae, TiTokTokenizer.from_pretrained(L32))
    model = TiTokTokenizer.from_pretrained(tokenizer_folder)
    assert TiTokPipeline.from_pretrained(L32_GENERATOR, vqvae=model).vqvae is model
    # A generator folder in the official format that is no release needs vqvae=.
    folder = official_folder(tmp_path / "mine", fixtures, "maskgit_vit", "maskgit_vit.config.json")
    with pytest.raises(ValueError, match="its tokenizer is unknown: pass vqvae="):
        TiTokPipeline.from_pretrained(folder)
    assert TiTokPipeline.from_pretrained(folder, vqvae=model).vqvae is model


def test_fun_research_bin_files_with_a_release(hub_cache, fixtures, tmp_path, monkeypatch):
    """fun-research/TiTok: `.bin` state dicts (read weights-only) whose config comes from the release table -
    here the table's entries are the tiny fixtures' configs."""
    folder = tmp_path / "fun-research"
    folder.mkdir()
    torch.save(fixtures.weights("titok_vq_legacy"), folder / "tokenizer_titok_l32.bin")
    torch.save(fixtures.weights("maskgit_vit"), folder / "generator_titok_l32.bin")
    torch.save(fixtures.vqgan_weights(), folder / "maskgit-vqgan-imagenet-f16-256.bin")
    populate_hub_cache(hub_cache, FUN_RESEARCH_REPO, folder)
    tiny = json.loads(fixtures.config_path("maskgit_vit").read_text())
    monkeypatch.setattr(direct, "release_official_config", lambda name: tiny)
    for converter in (convert_titok, convert_maskgit_vqgan):
        monkeypatch.setattr(converter, "MASKGIT_VQGAN", tiny["_harness"]["pixel_decoder"])

    tokenizer = TiTokTokenizer.from_pretrained(FUN_RESEARCH_REPO, release="titok_l32")
    with torch.no_grad():
        ids = tokenizer.encode(fixtures.pixel_values).token_ids
    assert torch.equal(ids, fixtures.io("titok_vq_legacy")["indices"].reshape(ids.shape))
    pipe = TiTokPipeline.from_pretrained(FUN_RESEARCH_REPO, release="titok_l32_generator")
    pipe.set_progress_bar_config(disable=True)
    io = fixtures.io("maskgit_vit")
    assert torch.equal(
        pipe(io["gen_labels"].tolist(), output_type="latent", **DETERMINISTIC).images, io["gen_det_nocfg_ids"]
    )
    assert_same_weights(pipe.vqvae, tokenizer)
    vqgan = MaskGITVQGAN.from_pretrained(FUN_RESEARCH_REPO)  # the only MaskGIT-VQGAN there: no release needed
    with torch.no_grad():
        assert torch.equal(vqgan.encode(fixtures.pixel_values).codes, fixtures.io("maskgit_vqgan")["proxy_codes"])
    # A folder holding the .bin files works the same with release=.
    assert_same_weights(TiTokTokenizer.from_pretrained(folder, release="titok_l32"), tokenizer)
    with pytest.raises(ValueError, match="holds the .bin files of several releases: pass --release / release="):
        TiTokTokenizer.from_pretrained(FUN_RESEARCH_REPO)


# ---------------------------------------------------------------------------------------------------------
# The command line, the Space and evaluate take official ids
# ---------------------------------------------------------------------------------------------------------


def test_cli_takes_official_ids(official_hub, tmp_path, capsys):
    image = tmp_path / "image.png"
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(image)
    assert main(["encode", "--model", L32, str(image), "--output", str(tmp_path / "ids.json")]) == 0
    ids = json.loads((tmp_path / "ids.json").read_text())
    assert main(["reconstruct", "--model", L32_GENERATOR, str(image), "--output-dir", str(tmp_path / "rec")]) == 0
    assert (
        main(["generate", "--model", L32_GENERATOR, "--labels", "1", "2", "--output", str(tmp_path / "grid.png")]) == 0
    )
    assert PIL.Image.open(tmp_path / "grid.png").size[0] > 64  # a grid of 32x32 samples
    assert len(next(iter(ids.values())) if isinstance(ids, dict) else ids) >= 1
    capsys.readouterr()
    assert main(["generate", "--model", L32, "--labels", "1", "--output", str(tmp_path / "x.png")]) == 2
    assert "is an official tokenizer checkpoint; generation needs a generator" in capsys.readouterr().err


def test_evaluate_and_loaders_take_official_ids(official_hub, tmp_path, capsys):
    images = tmp_path / "images" / "c0"
    images.mkdir(parents=True)
    for i in range(4):
        PIL.Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
            images / f"{i}.png"
        )
    assert (
        main(
            [
                "evaluate",
                "reconstruction",
                "--model",
                VQ8K,
                "--data",
                str(tmp_path / "images"),
                "--split",
                "train",
                "--no-fid",
                "--max-images",
                "4",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["num_images"] == 4 and report["image_size"] == 32
    assert (
        main(
            [
                "evaluate",
                "generation",
                "--model",
                L32_GENERATOR,
                "--output-dir",
                str(tmp_path / "gen"),
                "--per-class",
                "2",
                "--classes",
                "1",
                "--steps",
                "2",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["num_images"] == 2
    tokenizer, processor = load_tokenizer(VAE)
    assert tokenizer.config.quantize_mode == "vae" and processor.size["shortest_edge"] == 32
    generator_tokenizer, _ = load_tokenizer(L32_GENERATOR)
    assert generator_tokenizer.config.decoder_head == "proxy_codes"
    pipe = load_pipeline(S128_GENERATOR)
    assert pipe.transformer.config.architecture == "uvit"


def test_space_takes_official_ids(official_hub):
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "spaces"))
    import app

    model = app.load_model(L32_GENERATOR)
    assert model.pipeline is not None and model.name == L32_GENERATOR and model.is_vq
    assert app.load_model(VAE).pipeline is None


# ---------------------------------------------------------------------------------------------------------
# Bad input: each error names the repo, the file and what to do; nothing half-loaded comes back
# ---------------------------------------------------------------------------------------------------------


def test_bad_sources_get_errors_that_say_what_they_are(official_hub, fixtures, tmp_path, hub_cache):
    neither = tmp_path / "neither"
    neither.mkdir()
    (neither / "config.json").write_text(json.dumps({"hidden": 3}))
    with pytest.raises(Exception, match="neither an hf_titok config .* nor an official TiTok config.*Accepted: "):
        TiTokTokenizer.from_pretrained(neither)
    # Another kind of official checkpoint, for each class.
    with pytest.raises(
        ValueError,
        match="official TiTok generator checkpoint, not a TiTokTokenizer's: load it with TiTokPipeline "
        "\\(or TiTokMaskGIT\\)",
    ):
        TiTokTokenizer.from_pretrained(L32_GENERATOR)
    with pytest.raises(ValueError, match="official TiTok tokenizer checkpoint, not a TiTokMaskGIT's"):
        TiTokMaskGIT.from_pretrained(L32)
    with pytest.raises(ValueError, match="official TiTok tokenizer checkpoint, not a TiTokPipeline's"):
        TiTokPipeline.from_pretrained(L32)
    # A missing weight file in a cached repo.
    snapshot = next((hub_cache / f"models--{VQ8K.replace('/', '--')}" / "snapshots").iterdir())
    (snapshot / "model.safetensors").unlink()
    with pytest.raises(OSError, match=f"cannot fetch model.safetensors from the Hub repo {VQ8K}"):
        TiTokTokenizer.from_pretrained(VQ8K)
    # A truncated download.
    snapshot = next((hub_cache / f"models--{VAE.replace('/', '--')}" / "snapshots").iterdir())
    weights = snapshot / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{VAE}: cannot read model.safetensors .*truncated: download it again"):
        TiTokTokenizer.from_pretrained(VAE)
    # A .bin that is not a state dict.
    bins = tmp_path / "bins"
    bins.mkdir()
    torch.save({"step": 3}, bins / "tokenizer_titok_l32.bin")
    with pytest.raises(ValueError, match="bins: .*does not hold a flat state dict of tensors. Download the file again"):
        TiTokTokenizer.from_pretrained(bins, release="titok_l32")


def test_a_generator_whose_tokenizer_cannot_be_reached(hub_cache, fixtures, tmp_path):
    populate_hub_cache(
        hub_cache, L32_GENERATOR, official_folder(tmp_path / "g", fixtures, "maskgit_vit", "maskgit_vit.config.json")
    )
    with pytest.raises(
        OSError, match=f"cannot load the tokenizer of {L32_GENERATOR} \\({L32}, release titok_l32\\).*Or pass vqvae="
    ):
        TiTokPipeline.from_pretrained(L32_GENERATOR)


def test_converted_weights_equal_the_fixture_conversion(fixtures, tmp_path):
    """The in-memory path uses the converter's own function: the state dict equals convert_tokenizer's."""
    folder = official_folder(tmp_path, fixtures, "titok_vae", "titok_vae.config.json")
    expected = official_module.convert_tokenizer(
        official_module.load_official_config(folder / "config.json"), load_file(str(folder / "model.safetensors"))
    )
    assert_same_weights(TiTokTokenizer.from_pretrained(folder), expected)
