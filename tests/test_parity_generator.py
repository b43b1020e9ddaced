"""Parity of the converted MaskGIT generators and of the sampler with the official code."""

import ast
import json

import pytest
import torch

from hf_titok import TiTokMaskGITScheduler, TiTokPipeline, mask_tokens
from hf_titok.conversion import convert_generator, convert_tokenizer, load_official_config, load_official_weights

from conftest import FIXTURES

GENERATORS = ["maskgit_vit", "maskgit_uvit"]
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


def sampling_runs(name: str) -> dict[str, dict]:
    """The fixture's generate() runs, parsed from its manifest descriptions."""
    runs = {}
    for tensor, spec in MANIFEST["files"][f"{name}.io.safetensors"]["tensors"].items():
        if tensor.startswith("gen_") and tensor.endswith("_ids"):
            description = spec["description"]
            args = description[description.index("(") + 1 : description.index(") after")]
            settings = {}
            for item in args.split(", "):
                key, value = item.split("=", 1)
                if key != "condition":
                    settings[key] = ast.literal_eval(value)
            settings["seed"] = int(description.split("torch.manual_seed(")[1].split(")")[0])
            runs[tensor] = settings
    return runs


@pytest.fixture(scope="module")
def tokenizer(fixtures):
    return convert_tokenizer(
        load_official_config(fixtures.config_path("titok_vq_legacy")), fixtures.weights("titok_vq_legacy")
    )


def generator(fixtures, name):
    return convert_generator(
        load_official_config(fixtures.config_path(name)),
        load_official_weights(fixtures.path(f"{name}.weights.safetensors")),
    )


@pytest.mark.parametrize("name", GENERATORS)
@torch.no_grad()
def test_conditional_and_unconditional_logits(fixtures, name):
    model, io = generator(fixtures, name), fixtures.io(name)
    torch.testing.assert_close(model(io["input_ids"], io["labels"]).logits, io["logits_cond"], atol=1e-4, rtol=1e-4)
    # class_dropout_prob=1 replaces every label by the null class, as does the label value num_classes.
    unconditional = model(io["input_ids"], io["labels"], class_dropout_prob=1.0).logits
    torch.testing.assert_close(unconditional, io["logits_uncond"], atol=1e-4, rtol=1e-4)
    null = torch.full_like(io["labels"], model.config.num_classes)
    torch.testing.assert_close(model(io["input_ids"], null).logits, io["logits_uncond"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", GENERATORS)
@torch.no_grad()
def test_training_masking_and_loss(fixtures, name):
    model, io = generator(fixtures, name), fixtures.io(name)
    seed = int(
        MANIFEST["files"][f"{name}.io.safetensors"]["tensors"]["train_masked_tokens"]["description"]
        .split("manual_seed(")[1]
        .split(")")[0]
    )
    masked, mask = mask_tokens(io["train_targets"], model.config.mask_token_id, torch.Generator().manual_seed(seed))
    assert torch.equal(masked, io["train_masked_tokens"]) and torch.equal(mask, io["train_mask"])
    out = model(masked, io["labels"], labels=io["train_targets"], class_dropout_prob=0.0)
    torch.testing.assert_close(out.logits, io["train_logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.loss.reshape(1), io["mlm_loss"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.masked_token_accuracy.reshape(1), io["mlm_correct_tokens"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", GENERATORS)
def test_every_sampling_run_through_the_pipeline(fixtures, tokenizer, name):
    """gen_det_* runs are RNG-independent; gen_seeded_ids also checks that a generator seeded like the
    official torch.manual_seed reproduces the official sample (the scheduler consumes the same stream)."""
    model, io = generator(fixtures, name), fixtures.io(name)
    pipe = TiTokPipeline(tokenizer, model, TiTokMaskGITScheduler())
    pipe.set_progress_bar_config(disable=True)
    runs = sampling_runs(name)
    assert {"gen_det_sched_ids", "gen_det_constant_ids", "gen_det_nocfg_ids", "gen_seeded_ids"} <= set(runs)
    for tensor, run in runs.items():
        ids = pipe(
            io["gen_labels"].tolist(),
            num_inference_steps=run["num_sample_steps"],
            guidance_scale=run["guidance_scale"],
            guidance_schedule=run["guidance_decay"],
            temperature=run["randomize_temperature"],
            softmax_temperature_annealing=run["softmax_temperature_annealing"],
            generator=torch.Generator().manual_seed(run["seed"]),
            output_type="latent",
        ).images
        assert torch.equal(ids, io[tensor]), f"{tensor}: {ids.tolist()} vs {io[tensor].tolist()}"
    if "gen_seeded_pixels" in io:
        pixels = pipe(
            io["gen_labels"].tolist(),
            num_inference_steps=runs["gen_seeded_ids"]["num_sample_steps"],
            generator=torch.Generator().manual_seed(runs["gen_seeded_ids"]["seed"]),
            temperature=runs["gen_seeded_ids"]["randomize_temperature"],
            output_type="pt",
        ).images
        torch.testing.assert_close(pixels, io["gen_seeded_pixels"].clamp(0, 1), atol=1e-3, rtol=1e-4)


def test_global_rng_reproduces_official_seeded_run(fixtures, tokenizer):
    """Without a generator the sampler uses torch's global RNG, exactly like the official generate()."""
    name = "maskgit_vit"
    model, io = generator(fixtures, name), fixtures.io(name)
    run = sampling_runs(name)["gen_seeded_ids"]
    pipe = TiTokPipeline(tokenizer, model, TiTokMaskGITScheduler())
    pipe.set_progress_bar_config(disable=True)
    torch.manual_seed(run["seed"])
    ids = pipe(
        io["gen_labels"].tolist(),
        num_inference_steps=run["num_sample_steps"],
        guidance_scale=run["guidance_scale"],
        guidance_schedule=run["guidance_decay"],
        temperature=run["randomize_temperature"],
        softmax_temperature_annealing=run["softmax_temperature_annealing"],
        output_type="latent",
    ).images
    assert torch.equal(ids, io["gen_seeded_ids"])


@pytest.mark.parametrize("name", GENERATORS)
def test_converter_script_converts_generators(fixtures, name, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from hf_titok import TiTokMaskGIT

    script = Path(__file__).resolve().parent.parent / "conversion" / "convert_official_titok.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--kind",
            "generator",
            "--config",
            str(fixtures.config_path(name)),
            "--weights",
            str(fixtures.path(f"{name}.weights.safetensors")),
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    model, io = TiTokMaskGIT.from_pretrained(tmp_path), fixtures.io(name)
    with torch.no_grad():
        torch.testing.assert_close(model(io["input_ids"], io["labels"]).logits, io["logits_cond"], atol=1e-4, rtol=1e-4)
