"""The RAR recipe on tiny models: against the official training tables (random-order ratio, learning rate, weight
decay groups: tests/fixtures_rar), it learns on ids made on the fly by a MaskGIT-VQGAN and on pre-tokenized ids,
anneals its random orders as a stage callback, exports a `RARPipeline`, reads nothing back to the host between
logging steps, and a killed run resumes to exactly the uninterrupted weights."""

import json
import os
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, RARConfig, RARPipeline, RARTransformer
from hf_titok.models.rar.convert_rar import RAR_RULES
from hf_titok.training import load_recipe_config
from hf_titok.training.callbacks import random_order_ratio
from hf_titok.training.pretokenize import pretokenize
from hf_titok.training.recipes import build_trainer
from hf_titok.training.trainer import cosine_with_warmup, is_decayed

from conftest import TESTS_DIR, assert_killed_run_resumes_exactly, host_reads_between_logging_steps
from test_training import VQGAN, assert_decreases, history, make_image_folder, train, training

RAR_FIXTURES = Path(os.environ.get("TITOK_RAR_FIXTURES_DIR") or TESTS_DIR / "fixtures_rar")
TABLES = load_file(str(RAR_FIXTURES / "rar_train.io.safetensors"))
OBSERVED = json.loads((RAR_FIXTURES / "manifest.json").read_text())["observations"]
TINY_RAR = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
SAMPLING = dict(guidance_scale=2.0, guidance_scale_pow=1.0, temperature=1.0)


def test_random_order_ratio_is_the_official_table():
    ratios = [random_order_ratio(int(step), 125_000, 187_500) for step in TABLES["ratio_steps"]]
    torch.testing.assert_close(torch.tensor(ratios, dtype=torch.float64), TABLES["ratio_values"], rtol=0, atol=1e-12)


def test_learning_rate_is_the_official_cosine_after_the_warm_up():
    """Warm-up included the official schedule is ours shifted by one step (ours starts at lr/warmup instead of 0,
    so that the first step trains), and past the last step ours stays at the end rate (the official formula rises
    again); in between they are equal."""
    base, end, warmup, total = 4e-4, 1e-5, 62_500, 250_000
    for step, official in zip(TABLES["lr_steps"].tolist(), TABLES["lr_values"].tolist()):
        ours = base * cosine_with_warmup(step, total, warmup, end / base)
        if warmup <= step <= total:
            assert ours == pytest.approx(official, rel=1e-9, abs=1e-15), step
        elif step < warmup:
            assert ours == pytest.approx(base * (step + 1) / warmup) and official == pytest.approx(base * step / warmup)


def test_weight_decay_groups_are_the_official_ones():
    """Our parameter names through the converter's renaming: the same parameters are decayed as by the official
    `create_optimizer` (whose final adaLN layer escapes decay by its name; `_no_weight_decay_names` keeps that)."""
    official = OBSERVED["weight_decay_groups_official_create_optimizer"]
    config = load_recipe_config({"recipe": "rar", "model": {"config": TINY_RAR}, "data": {"pretokenized": "x"}})
    assert config["training"]["weight_decay"] == 0.03  # the official group's ("group1 weight_decay=0.03")
    model = RARTransformer(RARConfig(codebook_size=64, num_latent_tokens=16, num_classes=10, **TINY_RAR))

    def ours(name: str) -> str:
        for pattern, replacement in RAR_RULES:
            if re.search(pattern, name):
                return re.sub(pattern, replacement, name, count=1)
        raise AssertionError(name)

    parameters = dict(model.named_parameters())
    decayed = {name for name, parameter in parameters.items() if is_decayed(name, parameter, model)}
    assert decayed == {ours(name) for name in official["group1 weight_decay=0.03"]}
    assert set(parameters) - decayed == {ours(name) for name in official["group0 weight_decay=0.0"]}
    assert (config["training"]["adam_beta1"], config["training"]["adam_beta2"]) == tuple(official["betas"])
    assert config["training"]["learning_rate"] == official["lr"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("rar_training")
    make_image_folder(root / "images")
    torch.manual_seed(0)
    MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)).save_pretrained(root / "vqgan")  # 4 x 4 codes of 64 entries
    return root


def rar_config(workspace, **changes):
    return {
        "recipe": "rar",
        "tokenizer": str(workspace / "vqgan"),
        "model": {"config": TINY_RAR},
        "loss": {"random_order_start": 10, "random_order_end": 20},
        "sampling": SAMPLING,
        "data": {"source": str(workspace / "images")},
        "training": training(),
        **changes,
    }


def test_rar_learns_anneals_its_orders_and_exports_a_pipeline(workspace, tmp_path):
    trainer = train(rar_config(workspace, training=training(image_log_steps=30)), tmp_path)
    assert_decreases(history(trainer, "ar_loss"), "RAR next-token loss")
    # The ratio the callback set before the last step of each logging window (steps 9, 19, 29).
    assert history(trainer, "random_order_ratio") == [1.0, pytest.approx(0.1), 0.0]
    pipe = RARPipeline.from_pretrained(tmp_path / "final")
    assert isinstance(pipe.vqvae, MaskGITVQGAN) and pipe.id2label == {0: "class0", 1: "class1", 2: "class2"}
    assert pipe.sampling_settings() == SAMPLING and pipe.transformer.config.num_latent_tokens == 16
    images = pipe(["class1", 2], generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert images.shape == (2, 3, 32, 32)
    assert (tmp_path / "images" / "step_0000030.png").is_file()


def test_rar_trains_on_vqgan_codes_pretokenized(workspace, tmp_path):
    tokens = pretokenize(str(workspace / "vqgan"), str(workspace / "images"), tmp_path / "tokens", batch_size=8)
    assert len(tokens) == 2 * 24 and len(tokens[0]["token_ids"]) == 16
    vqgan = MaskGITVQGAN.from_pretrained(workspace / "vqgan")
    trainer = train(
        {
            "recipe": "rar",
            "model": {"config": {**TINY_RAR, "codebook_size": 64, "num_latent_tokens": 16}},
            "data": {"pretokenized": str(tmp_path / "tokens")},
            "training": training(),
        },
        tmp_path / "out",
    )
    assert_decreases(history(trainer, "ar_loss"), "RAR next-token loss (pre-tokenized)")
    model = RARTransformer.from_pretrained(tmp_path / "out" / "final")
    model.config.check_tokenizer(vqgan.config)


def test_no_host_sync_in_a_rar_training_step(workspace, tmp_path, monkeypatch):
    config = rar_config(workspace, training=training(max_steps=6, logging_steps=3))
    trainer = build_trainer(load_recipe_config(config), str(tmp_path / "out"))
    reads = host_reads_between_logging_steps(trainer, monkeypatch)
    assert trainer.state.global_step == 6 and reads == []


def test_a_killed_rar_run_resumes_to_exactly_the_uninterrupted_weights(workspace, tmp_path):
    """Random orders (annealed across the kill), class dropout, the data order: SIGKILL after a checkpoint, run again,
    and the final weights equal an uninterrupted run's."""
    config = rar_config(
        workspace, training=training(max_steps=20, save_steps=5, save_total_limit=None, per_device_train_batch_size=4)
    )
    config["loss"] = {"random_order_start": 5, "random_order_end": 15}
    assert_killed_run_resumes_exactly(
        "train_generator.py",
        config,
        tmp_path,
        ("checkpoint-20/model.safetensors", "final/transformer/model.safetensors"),
    )
