"""Official releases -> ready repos with model cards, Hub ids through the offline cache, uploads, and the
`hf-titok` command line, all on local files (the Hub is unreachable here)."""

import json
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from huggingface_hub import HfApi, ModelCard

from hf_titok import TiTokMaskGIT, TiTokMaskGITScheduler, TiTokPipeline, TiTokTokenizer
from hf_titok.cli import main
from hf_titok.conversion import convert_generator, convert_tokenizer, official_config
from hf_titok.data import imagenet_id2label
from hf_titok.hub import pipeline_card, tokenizer_card
from hf_titok.models.titok.image_processing_titok import to_uint8
from hf_titok.releases import RELEASES

from conftest import populate_hub_cache, tiny_pipeline, tiny_titok_config
from test_official_keys import meta_state_dict

ATOL = 1e-4


@pytest.fixture
def uploads(monkeypatch):
    """Record HfApi uploads instead of reaching the Hub."""
    calls = []

    class RepoUrl(str):
        @property
        def repo_id(self):
            return str(self)

    def create_repo(self, repo_id, private=None, exist_ok=False, **kwargs):
        calls.append(("create_repo", repo_id, private))
        return RepoUrl(repo_id)

    def upload_folder(self, folder_path, repo_id, **kwargs):
        from pathlib import Path

        calls.append(
            (
                "upload_folder",
                repo_id,
                sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file()),
            )
        )
        return f"https://huggingface.co/{repo_id}/commit/0"

    def create_commit(self, repo_id, operations, **kwargs):
        calls.append(("create_commit", repo_id, sorted(op.path_in_repo for op in operations)))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    return calls


def official_repo(tmp_path, fixtures, name: str, config: str, layout: str = "hub"):
    """A folder in the layout of an official release repo, holding a tiny fixture model."""
    folder = tmp_path / "official" / name
    folder.mkdir(parents=True)
    weights = fixtures.weights(name)
    (folder / "config.json").write_text(fixtures.config_path(config).read_text())
    from safetensors.torch import save_file

    save_file(weights, str(folder / "model.safetensors"))
    return folder


def run_card_snippet(card_path, workdir, monkeypatch):
    """Execute the card's Python usage block (it names the converted local folder) in `workdir`."""
    text = card_path.read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    PIL.Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(workdir / "image.jpg")
    monkeypatch.chdir(workdir)
    exec(compile(code, str(card_path), "exec"), {})


def parse_card(path):
    card = ModelCard.load(path)
    assert card.data.license == "apache-2.0" and card.data.library_name == "hf_titok"
    assert "arxiv:2406.07550" in card.data.tags
    return card


# ---------------------------------------------------------------------------------------------------------
# Every release layout, with its card
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n, r in RELEASES.items() if r.kind in ("tokenizer", "generator")))
def test_every_release_converts_and_gets_a_valid_card(name, tmp_path):
    release = RELEASES[name]
    if release.kind == "generator":
        transformer = convert_generator(official_config(name), meta_state_dict(f"{release.tokenizer}_generator"))
        vqvae = convert_tokenizer(official_config(release.tokenizer), meta_state_dict(release.tokenizer))
        pipe = TiTokPipeline(
            vqvae, transformer, TiTokMaskGITScheduler.from_preset(release.preset), id2label=imagenet_id2label()
        )
        card = pipeline_card(pipe, f"me/{name}", release)
        steps = TiTokMaskGITScheduler.from_preset(release.preset).config.num_inference_steps
        assert f"Default sampling settings (the official gFID protocol): {steps} steps" in card.content
        assert "class_labels=['tench', 'goldfish']" in card.content
        assert card.data.pipeline_tag == "unconditional-image-generation"
        assert card.data.base_model == [release.repo_id, RELEASES[release.tokenizer].repo_id]
        assert f"gFID | {release.results['gFID']}" in card.content
        assert "TiTokPipeline.from_pretrained" in card.content
    else:
        model = convert_tokenizer(official_config(name), meta_state_dict(name))
        card = tokenizer_card(model, f"me/{name}", release)
        assert card.data.base_model == release.repo_id
        assert f"rFID | {release.results['rFID']}" in card.content
        assert f"{model.config.num_latent_tokens} tokens" in card.content
    card.save(tmp_path / "README.md")
    parse_card(tmp_path / "README.md")
    assert "@inproceedings{yu2024an" in card.content and f'from_pretrained("me/{name}")' in card.content


# ---------------------------------------------------------------------------------------------------------
# Official repos (Hub format and fun-research .bin) -> ready repos, through the offline cache
# ---------------------------------------------------------------------------------------------------------


def fixture_pipeline_outputs(fixtures):
    io = fixtures.io("maskgit_vit")
    return io, dict(
        num_inference_steps=8,
        guidance_scale=0.0,
        guidance_schedule="constant",
        temperature=0.0,
        softmax_temperature_annealing=False,
    )


def assert_pipeline_matches_official(folder, fixtures):
    pipe = TiTokPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    io, settings = fixture_pipeline_outputs(fixtures)
    ids = pipe(io["gen_labels"].tolist(), output_type="latent", **settings).images
    assert torch.equal(ids, io["gen_det_nocfg_ids"])
    seeded = pipe(io["gen_labels"].tolist(), generator=torch.Generator().manual_seed(1284), output_type="pt").images
    torch.testing.assert_close(seeded, io["gen_seeded_pixels"].clamp(0, 1), atol=1e-3, rtol=1e-4)
    return pipe


def test_hub_release_repos_become_a_pipeline_repo(fixtures, tmp_path, hub_cache, capsys, monkeypatch):
    populate_hub_cache(
        hub_cache,
        RELEASES["titok_l32"].repo_id,
        official_repo(tmp_path, fixtures, "titok_vq_legacy", "titok_vq_legacy"),
    )
    populate_hub_cache(
        hub_cache,
        RELEASES["titok_l32_generator"].repo_id,
        official_repo(tmp_path, fixtures, "maskgit_vit", "maskgit_vit"),
    )
    out = tmp_path / "pipeline"
    assert main(["convert", "--release", "titok_l32_generator", "--output-dir", str(out)]) == 0
    assert "wrote TiTokPipeline" in capsys.readouterr().out
    pipe = assert_pipeline_matches_official(out, fixtures)
    # The scheduler holds the official protocol's sampling defaults; the card says so and parses.
    assert pipe.scheduler.config.guidance_schedule == "linear" and pipe.scheduler.config.softmax_temperature_annealing
    card = parse_card(out / "README.md")
    assert card.data.base_model == [
        "yucornetto/generator_titok_l32_imagenet",
        "yucornetto/tokenizer_titok_l32_imagenet",
    ]
    run_card_snippet(out / "README.md", tmp_path, monkeypatch)
    assert PIL.Image.open(tmp_path / "sample.png").size == (32, 32)
    # The same release converted by repo id gives a tokenizer repo with the tokenizer card.
    tok_out = tmp_path / "tokenizer"
    assert main(["convert", "--repo-id", "yucornetto/tokenizer_titok_l32_imagenet", "--output-dir", str(tok_out)]) == 0
    tokenizer = TiTokTokenizer.from_pretrained(tok_out)
    io = fixtures.io("titok_vq_legacy")
    with torch.no_grad():
        assert torch.equal(tokenizer.encode(fixtures.pixel_values).token_ids, io["indices"][:, 0])
    assert parse_card(tok_out / "README.md").data.base_model == "yucornetto/tokenizer_titok_l32_imagenet"
    assert (tok_out / "preprocessor_config.json").is_file()
    run_card_snippet(tok_out / "README.md", tmp_path, monkeypatch)
    assert PIL.Image.open(tmp_path / "reconstruction.png").size == (32, 32)


def test_fun_research_bin_files_with_an_infer_config(fixtures, tmp_path, hub_cache):
    folder = tmp_path / "fun-research"
    folder.mkdir()
    torch.save(fixtures.weights("titok_vq_legacy"), folder / "tokenizer_titok_l32.bin")
    torch.save(fixtures.weights("maskgit_vit"), folder / "generator_titok_l32.bin")
    populate_hub_cache(hub_cache, "fun-research/TiTok", folder)
    out = tmp_path / "pipeline"
    code = main(
        [
            "convert",
            "--repo-id",
            "fun-research/TiTok",
            "--release",
            "titok_l32_generator",
            "--config",
            str(fixtures.config_path("maskgit_vit")),
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0
    assert_pipeline_matches_official(out, fixtures)


def test_fun_research_vqgan(fixtures, tmp_path, hub_cache):
    folder = tmp_path / "fun-research"
    folder.mkdir()
    torch.save(fixtures.vqgan_weights(), folder / "maskgit-vqgan-imagenet-f16-256.bin")
    populate_hub_cache(hub_cache, "fun-research/TiTok", folder)
    out = tmp_path / "vqgan"
    assert (
        main(
            [
                "convert",
                "--release",
                "maskgit_vqgan",
                "--config",
                str(fixtures.config_path("maskgit_vqgan")),
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    from hf_titok import MaskGITVQGAN

    with torch.no_grad():
        codes = MaskGITVQGAN.from_pretrained(out).encode(fixtures.pixel_values).codes
    assert torch.equal(codes, fixtures.io("maskgit_vqgan")["proxy_codes"])


def test_convert_errors_are_one_line(tmp_path, hub_cache, capsys):
    assert main(["convert", "--repo-id", "fun-research/TiTok", "--output-dir", str(tmp_path / "x")]) == 2
    assert "pass --release" in capsys.readouterr().err
    assert main(["convert", "--release", "titok_b64", "--output-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "hf-titok convert: error: cannot fetch config.json from the Hub repo yucornetto/tokenizer_titok_b64_imagenet"
    )
    assert len(err.strip().splitlines()) == 1
    assert main(["convert", "--output-dir", str(tmp_path / "x")]) == 2
    assert "give --release NAME, --repo-id REPO" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "--release", "titok_x", "--output-dir", "x"])
    assert exit_info.value.code == 2 and "invalid choice: 'titok_x'" in capsys.readouterr().err


def test_push_to_hub_after_conversion(fixtures, tmp_path, uploads, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    out = tmp_path / "converted"
    code = main(
        [
            "convert",
            "--kind",
            "tokenizer",
            "--config",
            str(fixtures.config_path("titok_vq_single")),
            "--weights",
            str(fixtures.path("titok_vq_single.weights.safetensors")),
            "--output-dir",
            str(out),
            "--push-to-hub",
            "me/titok-tiny",
            "--private",
        ]
    )
    assert code == 0
    assert uploads[0] == ("create_repo", "me/titok-tiny", True)
    assert uploads[1][0] == "upload_folder" and {"config.json", "model.safetensors", "preprocessor_config.json"} <= set(
        uploads[1][2]
    )


def test_push_to_hub_of_the_three_kinds(tmp_path, uploads):
    pipe = tiny_pipeline()
    pipe.push_to_hub("me/pipe", private=True)
    assert uploads[0] == ("create_repo", "me/pipe", True)
    files = set(uploads[1][2])
    assert {
        "model_index.json",
        "README.md",
        "vqvae/model.safetensors",
        "transformer/config.json",
        "scheduler/scheduler_config.json",
    } <= files
    uploads.clear()
    for model, repo in ((pipe.vqvae, "me/tok"), (pipe.transformer, "me/gen")):
        model.push_to_hub(repo)
        assert uploads[0][:2] == ("create_repo", repo)
        assert {"config.json", "model.safetensors"} <= set(uploads[1][2])
        uploads.clear()


def test_models_load_by_hub_id_from_the_cache(tmp_path, hub_cache):
    pipe = tiny_pipeline()
    pipe.vqvae.save_pretrained(tmp_path / "tok")
    pipe.transformer.save_pretrained(tmp_path / "gen")
    populate_hub_cache(hub_cache, "org/titok-tok", tmp_path / "tok")
    populate_hub_cache(hub_cache, "org/titok-gen", tmp_path / "gen")
    tokenizer = TiTokTokenizer.from_pretrained("org/titok-tok")
    generator = TiTokMaskGIT.from_pretrained("org/titok-gen")
    assert torch.equal(tokenizer.quantizer.embedding.weight, pipe.vqvae.quantizer.embedding.weight)
    assert torch.equal(generator.lm_head.weight, pipe.transformer.lm_head.weight)


# ---------------------------------------------------------------------------------------------------------
# The command line on tiny local models
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    pipe = tiny_pipeline(id2label={i: f"thing{i}, alias{i}" for i in range(10)})
    pipe.save_pretrained(root / "pipeline")
    torch.manual_seed(1)
    TiTokTokenizer(tiny_titok_config("vae")).save_pretrained(root / "vae")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, mode in enumerate(["RGB", "L", "RGBA"]):
        PIL.Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).convert(mode).save(images / f"img{i}.png")
    (images / "broken.png").write_bytes(b"not an image")
    return root


def test_cli_generate_grid_and_pngs(models, tmp_path, capsys):
    grid, out_dir = tmp_path / "grid.png", tmp_path / "pngs"
    code = main(
        [
            "generate",
            "--model",
            str(models / "pipeline"),
            "--labels",
            "thing1",
            "2",
            "ALIAS3",
            "--num-per-label",
            "2",
            "--seed",
            "5",
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--output",
            str(grid),
            "--out-dir",
            str(out_dir),
        ]
    )
    assert code == 0
    assert f"wrote {grid} (6 images, seed 5)" in capsys.readouterr().out
    assert PIL.Image.open(grid).size[0] > 2 * 32
    pngs = sorted(out_dir.glob("*.png"))
    assert [p.name for p in pngs][:2] == ["0000_class1.png", "0001_class1.png"] and len(pngs) == 6
    # Same seed, same images.
    main(
        [
            "generate",
            "--model",
            str(models / "pipeline"),
            "--labels",
            "thing1",
            "2",
            "ALIAS3",
            "--num-per-label",
            "2",
            "--seed",
            "5",
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--output",
            str(tmp_path / "again.png"),
            "--out-dir",
            str(tmp_path / "again"),
        ]
    )
    assert all(
        np.array_equal(np.asarray(PIL.Image.open(p)), np.asarray(PIL.Image.open(tmp_path / "again" / p.name)))
        for p in pngs
    )


def test_cli_reconstruct_prints_ids_and_writes_side_by_side(models, tmp_path, capsys):
    images = [str(models / "images" / f"img{i}.png") for i in range(3)]
    assert main(["reconstruct", *images, "--model", str(models / "pipeline"), "--output-dir", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if ": 8 tokens:" in line]
    assert len(lines) == 3 and all(len(line.split(": 8 tokens: ")[1].split()) == 8 for line in lines)
    side_by_side = PIL.Image.open(tmp_path / "img0_reconstruction.png")
    assert side_by_side.size[0] > side_by_side.size[1]
    assert main(["reconstruct", images[0], "--model", str(models / "vae"), "--output-dir", str(tmp_path)]) == 0
    assert "8 tokens x 8 channels (VAE latents)" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".npy", ".json"])
def test_cli_encode_decode_round_trip(models, tmp_path, suffix):
    images = [str(models / "images" / f"img{i}.png") for i in range(3)]
    ids_file = tmp_path / f"ids{suffix}"
    assert main(["encode", *images, "--model", str(models / "pipeline"), "--output", str(ids_file)]) == 0
    ids = np.load(ids_file) if suffix == ".npy" else np.asarray(json.loads(ids_file.read_text())["token_ids"])
    assert ids.shape == (3, 8) and ids.dtype.kind == "i"
    tokenizer = TiTokTokenizer.from_pretrained(models / "pipeline" / "vqvae")
    assert (
        main(["decode", str(ids_file), "--model", str(models / "pipeline"), "--output-dir", str(tmp_path / "out")]) == 0
    )
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == (
        ["img0.png", "img1.png", "img2.png"]
        if suffix == ".json"
        else ["decoded_0000.png", "decoded_0001.png", "decoded_0002.png"]
    )
    with torch.no_grad():
        expected = tokenizer.decode(torch.from_numpy(ids))[
            :1
        ]  # the batch the CLI decodes (results depend on it in the last bit)
    first = np.asarray(PIL.Image.open(sorted((tmp_path / "out").glob("*.png"))[0]))
    assert np.array_equal(first, to_uint8(expected)[0].permute(1, 2, 0).numpy())


def test_cli_vae_encode_decode(models, tmp_path):
    image = str(models / "images" / "img0.png")
    assert main(["encode", image, "--model", str(models / "vae"), "--output", str(tmp_path / "z.npy")]) == 0
    latents = np.load(tmp_path / "z.npy")
    assert latents.shape == (1, 8, 8) and latents.dtype == np.float32
    assert (
        main(["decode", str(tmp_path / "z.npy"), "--model", str(models / "vae"), "--output-dir", str(tmp_path / "o")])
        == 0
    )
    assert len(list((tmp_path / "o").glob("*.png"))) == 1


def test_cli_bad_input_is_one_clear_line(models, tmp_path, capsys):
    pipeline, broken = str(models / "pipeline"), str(models / "images" / "broken.png")
    cases = [
        (["reconstruct", broken, "--model", pipeline], f"cannot read image {broken}"),
        (["reconstruct", str(tmp_path / "nope.png"), "--model", pipeline], "image not found"),
        (
            ["encode", broken, "--model", pipeline, "--output", str(tmp_path / "x.txt")],
            "--output must end in .npy, .json or .npz",
        ),
        (["decode", str(tmp_path / "missing.npy"), "--model", pipeline], "token file not found"),
        (
            ["generate", "--model", pipeline, "--labels", "thingy"],
            "unknown class name 'thingy'; close matches: 'thing9'",
        ),
        (["generate", "--model", pipeline, "--labels", "11"], "class id 11 is out of range"),
        (["generate", "--model", str(models / "vae"), "--labels", "1"], "is not a TiTokPipeline"),
        (
            ["reconstruct", str(models / "images" / "img0.png"), "--model", str(tmp_path / "nowhere")],
            "model directory not found",
        ),
        (
            [
                "encode",
                str(models / "images" / "img0.png"),
                "--model",
                "org/not-cached",
                "--output",
                str(tmp_path / "a.npy"),
            ],
            "cannot load model 'org/not-cached'",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    bad_ids = tmp_path / "bad.npy"
    np.save(bad_ids, np.full((1, 8), 999))
    assert main(["decode", str(bad_ids), "--model", pipeline]) == 2
    assert "token_ids must lie in [0, 63]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--model", pipeline, "--labels", "1", "--num-per-label", "0"])
    assert exit_info.value.code == 2 and "--num-per-label must be >= 1" in capsys.readouterr().err


def test_console_script_is_installed(models, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_titok.cli",
            "encode",
            str(models / "images" / "img0.png"),
            "--model",
            str(models / "pipeline"),
            "--output",
            str(tmp_path / "ids.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    from shutil import which

    script = which("hf-titok") or str(__import__("pathlib").Path(sys.executable).parent / "hf-titok")
    help_text = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and all(
        c in help_text.stdout for c in ("generate", "reconstruct", "encode", "decode", "convert")
    )
