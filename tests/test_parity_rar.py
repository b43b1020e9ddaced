"""RAR against the outputs of the official code (tests/fixtures_rar, README inside): the forward pass (raster,
prefixes, explicit orders, intermediates), the key/value cache (dynamic and static), the six seeded sampling runs
token for token with the cache on and off, the end-to-end decode through the tiny MaskGIT-VQGAN, the training
step's loss, and the conversion of every released layout."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers.cache_utils import DynamicCache

from hf_titok import RARConfig, RARPipeline, RARScheduler, RARTransformer
from hf_titok.conversion import convert_model, convert_vqgan, load_official_config
from hf_titok.models.rar.convert_rar import official_rar_config
from hf_titok.models.rar.modeling_rar import next_token_loss, permute_tokens, training_orders
from hf_titok.releases import RAR_PRESETS

from conftest import OFFICIAL_KEYS, TESTS_DIR

RAR_FIXTURES = Path(os.environ.get("TITOK_RAR_FIXTURES_DIR") or TESTS_DIR / "fixtures_rar")
MANIFEST = json.loads((RAR_FIXTURES / "manifest.json").read_text())
RUNS = MANIFEST["sizes"]["runs"]  # [name, guidance_scale, guidance_scale_pow, temperature]
ATOL = 1e-4


def io(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(RAR_FIXTURES / f"rar_{name}.io.safetensors"))


@pytest.fixture(scope="module")
def model() -> RARTransformer:
    config = load_official_config(RAR_FIXTURES / "rar.config.json")
    return convert_model("rar", config, load_file(str(RAR_FIXTURES / "rar.weights.safetensors")))


@pytest.fixture(scope="module")
def forward() -> dict[str, torch.Tensor]:
    return io("forward")


def class_labels_of(condition: torch.Tensor, config: RARConfig) -> torch.Tensor:
    """The official shifted condition ids (class + K + 1, or the drop label) as our class labels."""
    return condition - config.class_token_offset


def test_config_is_the_official_one(model, forward):
    config, sizes = model.config, MANIFEST["sizes"]["rar"]
    assert (config.hidden_size, config.num_hidden_layers, config.num_latent_tokens) == (
        sizes["hidden_size"],
        sizes["num_hidden_layers"],
        sizes["image_seq_len"],
    )
    assert config.null_class_id == int(forward["none_condition_id"])
    assert torch.equal(forward["condition"], forward["class_labels"] + config.class_token_offset)


def test_raster_forward_and_intermediates(model, forward):
    ids, labels = forward["input_ids"], forward["class_labels"]
    output = model(ids, labels, output_hidden_states=True)
    torch.testing.assert_close(output.hidden_states[0], forward["blocks_in"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(output.hidden_states[1], forward["block0_out"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(output.hidden_states[2], forward["block1_out"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(output.logits, forward["logits_raster"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(model(ids, None).logits, forward["logits_uncond"], atol=ATOL, rtol=ATOL)
    mixed = class_labels_of(forward["condition_drop_half"], model.config)
    torch.testing.assert_close(model(ids, mixed).logits, forward["logits_drop_half"], atol=ATOL, rtol=ATOL)


def test_prefixes(model, forward):
    ids, labels, length = forward["input_ids"], forward["class_labels"], int(forward["prefix_len"])
    torch.testing.assert_close(model(ids[:, :length], labels).logits, forward["logits_prefix"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(model(ids[:, :0], labels).logits, forward["logits_prefix0"], atol=ATOL, rtol=ATOL)


def test_explicit_orders_training_path_and_loss(model, forward):
    ids, labels, orders = forward["input_ids"], forward["class_labels"], forward["orders"]
    in_order = permute_tokens(ids, orders)
    assert torch.equal(in_order, forward["labels_orders"]) and torch.equal(in_order, forward["ids_in_generation_order"])
    output = model(in_order, labels, orders=orders, labels=in_order, output_hidden_states=True)
    torch.testing.assert_close(output.hidden_states[0], forward["orders_blocks_in"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(output.logits, forward["logits_orders"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(output.loss, forward["ar_loss_orders"][0], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(output.token_accuracy, forward["ar_correct_tokens_orders"][0])
    length = int(forward["prefix_len"])
    prefix = model(in_order[:, :length], labels, orders=orders).logits
    torch.testing.assert_close(prefix, forward["logits_orders_sampling_prefix"], atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("implementation", ["dynamic", "static"])
def test_kv_cache_teacher_forced(model, forward, implementation):
    ids, labels = forward["input_ids"], forward["class_labels"]
    cache = DynamicCache() if implementation == "dynamic" else model.static_cache(ids.shape[0])
    first = model(ids[:, :0], labels, past_key_values=cache).logits
    torch.testing.assert_close(first, forward["kv_step0_logits"][:, 1:], atol=ATOL, rtol=ATOL)  # no start-token row
    rows = [first[:, -1]]
    for step in range(1, ids.shape[1]):
        rows.append(model(ids[:, step - 1 : step], labels, past_key_values=cache).logits[:, -1])
    torch.testing.assert_close(torch.stack(rows, 1), forward["kv_logits"], atol=ATOL, rtol=ATOL)


def test_use_cache_starts_a_dynamic_cache(model, forward):
    ids, labels = forward["input_ids"], forward["class_labels"]
    output = model(ids[:, :3], labels, use_cache=True)
    assert isinstance(output.past_key_values, DynamicCache) and output.past_key_values.get_seq_length() == 5
    step = model(ids[:, 3:4], labels, past_key_values=output.past_key_values).logits
    torch.testing.assert_close(step[:, -1], forward["kv_logits"][:, 4], atol=ATOL, rtol=ATOL)


@pytest.fixture(scope="module")
def pipe(model, fixtures) -> RARPipeline:
    vqgan = convert_vqgan(load_official_config(fixtures.config_path("maskgit_vqgan")), fixtures.vqgan_weights())
    pipeline = RARPipeline(vqvae=vqgan, transformer=model)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("run", RUNS, ids=[run[0] for run in RUNS])
def test_seeded_sampling_is_the_official_run(pipe, run, use_cache):
    name, guidance_scale, guidance_scale_pow, temperature = run
    generate = io("generate")
    steps = []

    def record(pipeline, step, timestep, tensors):
        steps.append(tensors["logits"])

    ids = pipe(
        MANIFEST["sizes"]["gen_labels"],
        guidance_scale=guidance_scale,
        guidance_scale_pow=guidance_scale_pow,
        temperature=temperature,
        generator=torch.Generator().manual_seed(MANIFEST["settings"]["gen_seed"]),
        use_cache=use_cache,
        output_type="latent",
        callback_on_step_end=record,
        callback_on_step_end_tensor_inputs=["logits"],
    ).images
    assert torch.equal(ids, generate[f"gen_{name}_ids" if use_cache else f"gen_{name}_ids_nokv"])
    guided = generate[f"gen_{name}_guided_logits" if guidance_scale else f"gen_{name}_cond_logits"]
    torch.testing.assert_close(torch.stack(steps, 1), guided, atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("run", RUNS, ids=[run[0] for run in RUNS])
def test_guidance_schedule_is_the_official_table(run):
    name, guidance_scale, guidance_scale_pow, temperature = run
    scheduler = RARScheduler(
        guidance_scale=guidance_scale, guidance_scale_pow=guidance_scale_pow, temperature=temperature
    )
    scheduler.set_timesteps(num_tokens=MANIFEST["sizes"]["rar"]["image_seq_len"])
    if guidance_scale == 0:
        assert scheduler.guidance_scales == [None] * len(scheduler.timesteps)
    else:
        assert torch.equal(torch.tensor(scheduler.guidance_scales), io("generate")[f"gen_{name}_cfg_scale"])


def test_static_cache_samples_the_same_ids(pipe):
    seed, labels = MANIFEST["settings"]["gen_seed"], MANIFEST["sizes"]["gen_labels"]
    ids = pipe(labels, generator=torch.Generator().manual_seed(seed), output_type="latent").images
    static = pipe(
        labels, generator=torch.Generator().manual_seed(seed), output_type="latent", cache_implementation="static"
    ).images
    assert torch.equal(ids, static) and torch.equal(ids, io("generate")["gen_rar_b_ids"])


def test_decode_end_to_end(pipe):
    decode = io("decode")
    _, guidance_scale, guidance_scale_pow, temperature = MANIFEST["sizes"]["decode"]["run"]
    settings = dict(guidance_scale=guidance_scale, guidance_scale_pow=guidance_scale_pow, temperature=temperature)

    def seeded():
        return torch.Generator().manual_seed(MANIFEST["settings"]["decode_seed"])

    labels = decode["decode_labels"]
    pixels = pipe(labels, generator=seeded(), output_type="pt", **settings).images
    torch.testing.assert_close(pixels, decode["decode_pixels"], atol=ATOL, rtol=ATOL)
    images = pipe(labels, generator=seeded(), **settings).images  # PIL: truncated to uint8, as the official sampler
    assert all(image.size == (32, 32) for image in images)
    assert torch.equal(torch.from_numpy(np.stack([np.array(image) for image in images])), decode["decode_uint8"])


def test_training_step_loss(model):
    train = io("train")
    config = model.config
    labels = class_labels_of(train["train_condition"], config)  # one label dropped by the official coin
    assert int((labels == config.num_classes).sum()) == int((train["train_drop_uniform"] < 0.1).sum())
    in_order = permute_tokens(train["train_input_tokens"], train["train_orders"])
    assert torch.equal(in_order, train["train_labels"])
    output = model(in_order, labels, orders=train["train_orders"], labels=in_order)
    torch.testing.assert_close(output.logits, train["train_logits"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(output.loss, train["train_loss"][0], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(output.token_accuracy, train["train_correct_tokens"][0])
    loss, accuracy = next_token_loss(train["train_logits"], train["train_labels"])
    torch.testing.assert_close(loss, train["train_loss"][0], atol=ATOL, rtol=ATOL)


def test_training_orders_mix_raster_and_random_rows():
    generator = torch.Generator().manual_seed(0)
    orders = training_orders(512, 16, 0.25, generator=generator)
    raster = (orders == torch.arange(16)).all(dim=1)
    assert torch.equal(orders.sort(dim=1).values, torch.arange(16).expand(512, -1))  # permutations
    assert 0.65 < raster.float().mean() < 0.85  # ~75 % raster rows (a random permutation is never raster here)
    assert (training_orders(8, 16, 0.0, generator=generator) == torch.arange(16)).all()
    assert not (training_orders(8, 16, 1.0, generator=generator) == torch.arange(16)).all(dim=1).any()


def meta_state_dict(name: str) -> dict[str, torch.Tensor]:
    state = {}
    for line in (OFFICIAL_KEYS / f"{name}.txt").read_text().splitlines():
        key, shape, dtype = line.split("\t")
        state[key] = torch.empty(json.loads(shape), dtype=getattr(torch, dtype), device="meta")
    return state


@pytest.mark.parametrize("name", sorted(RAR_PRESETS))
def test_released_layout_converts_completely(name):
    """Every key of the released state dict maps (strictly), to the preset's config; the converter keeps the rows of
    the position tables that are read (N + 2 of N + 1024, N + 2 of N + 100, N of the target-aware table's)."""
    entry = json.loads((OFFICIAL_KEYS / "rar_index.json").read_text())["models"][name]
    official = meta_state_dict(name)
    model = convert_model("rar", official_rar_config(name), official)
    assert model.config.to_dict() == RARConfig.from_preset(name).to_dict()
    width, tokens = model.config.hidden_size, model.config.num_latent_tokens
    unread_rows = 2 * (tokens + 1024) + (tokens + 100) - 2 * (tokens + 2) - tokens
    assert sum(p.numel() for p in model.parameters()) == entry["num_parameters"] - unread_rows * width
    assert len(model.state_dict()) == entry["num_state_dict_tensors"] == len(official)
    assert RARScheduler.from_preset(name).config.guidance_scale == entry["sampling"]["guidance_scale"]


# ---------------------------------------------------------------------------------------------------------
# Loading: the official layouts, offline
# ---------------------------------------------------------------------------------------------------------


def test_yucornetto_rar_bin_files_load_as_a_pipeline(hub_cache, fixtures, tmp_path, monkeypatch):
    """`RARPipeline.from_pretrained("yucornetto/RAR", release="rar_b")` in a Hub cache laid out here: the `.bin` read
    weights-only, its config and sampling settings from the release table (here the tiny fixture's), the
    MaskGIT-VQGAN from fun-research/TiTok; seeded sampling is the official run."""
    from hf_titok.conversion import direct
    from hf_titok.releases import FUN_RESEARCH_REPO, RAR_REPO

    from conftest import populate_hub_cache

    rar_folder, titok_folder = tmp_path / "rar", tmp_path / "titok"
    rar_folder.mkdir(), titok_folder.mkdir()
    torch.save(load_file(str(RAR_FIXTURES / "rar.weights.safetensors")), rar_folder / "rar_b.bin")
    torch.save(fixtures.vqgan_weights(), titok_folder / "maskgit-vqgan-imagenet-f16-256.bin")
    populate_hub_cache(hub_cache, RAR_REPO, rar_folder)
    populate_hub_cache(hub_cache, FUN_RESEARCH_REPO, titok_folder)
    tiny = json.loads((RAR_FIXTURES / "rar.config.json").read_text())
    vqgan = json.loads(fixtures.config_path("maskgit_vqgan").read_text())
    monkeypatch.setattr(direct, "release_official_config", lambda name: tiny if name.startswith("rar") else vqgan)

    pipe = RARPipeline.from_pretrained(RAR_REPO, release="rar_b")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.sampling_settings() == dict(guidance_scale=16.0, guidance_scale_pow=2.75, temperature=1.0)
    ids = pipe(
        MANIFEST["sizes"]["gen_labels"],
        generator=torch.Generator().manual_seed(MANIFEST["settings"]["gen_seed"]),
        output_type="latent",
    ).images
    assert torch.equal(ids, io("generate")["gen_rar_b_ids"])
    model = RARTransformer.from_pretrained(RAR_REPO, release="rar_b")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), pipe.transformer.state_dict().values()))
    with pytest.raises(ValueError, match="holds the .bin files of several releases: pass --release / release="):
        RARTransformer.from_pretrained(RAR_REPO)
    # The command line: generate from the release, and convert it into a ready pipeline folder with its card.
    from hf_titok.cli import main

    assert (
        main(
            [
                "generate",
                "--model",
                RAR_REPO,
                "--release",
                "rar_b",
                "--labels",
                "1",
                "--output",
                str(tmp_path / "g.png"),
            ]
        )
        == 0
    )
    assert main(["convert", "--repo-id", RAR_REPO, "--release", "rar_b", "--output-dir", str(tmp_path / "ready")]) == 0
    ready = RARPipeline.from_pretrained(tmp_path / "ready")
    ready.set_progress_bar_config(disable=True)
    assert "RAR-B" in (tmp_path / "ready" / "README.md").read_text()
    seeded = torch.Generator().manual_seed(MANIFEST["settings"]["gen_seed"])
    assert torch.equal(ready(MANIFEST["sizes"]["gen_labels"], generator=seeded, output_type="latent").images, ids)


def test_an_official_format_folder_and_the_converter_command(fixtures, tmp_path):
    """A folder with the official config.json + model.safetensors loads directly; `hf-titok convert --kind rar`
    writes a model folder that loads (and runs) the same."""
    from safetensors.torch import save_file

    from hf_titok.cli import main

    folder = tmp_path / "official"
    folder.mkdir()
    (folder / "config.json").write_text((RAR_FIXTURES / "rar.config.json").read_text())
    save_file(load_file(str(RAR_FIXTURES / "rar.weights.safetensors")), folder / "model.safetensors")
    direct = RARTransformer.from_pretrained(folder)
    forward = io("forward")
    torch.testing.assert_close(
        direct(forward["input_ids"], forward["class_labels"]).logits, forward["logits_raster"], atol=ATOL, rtol=ATOL
    )
    output = tmp_path / "converted"
    arguments = ["convert", "--kind", "rar", "--config", str(RAR_FIXTURES / "rar.config.json")]
    arguments += ["--weights", str(RAR_FIXTURES / "rar.weights.safetensors"), "--output-dir", str(output)]
    assert main(arguments) == 0
    converted = RARTransformer.from_pretrained(output)
    assert all(torch.equal(a, b) for a, b in zip(converted.state_dict().values(), direct.state_dict().values()))
