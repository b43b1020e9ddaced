"""Training recipes on tiny models and a tiny image folder: losses go down, callbacks fire, a killed run
resumes exactly, and two data-parallel CPU processes stay in sync."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import load_file

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, TiTokConfig, TiTokMaskGIT, TiTokPipeline, TiTokTokenizer
from hf_titok.data import Augmentation, load_image_dataset
from hf_titok.data.images import sample_rng
from hf_titok.perceptual import LPIPS, ConvNeXtSmall
from hf_titok.training import CodebookRestartCallback, NLayerDiscriminator, PerceptualLoss, load_recipe_config
from hf_titok.training import train as train_recipe
from hf_titok.training.pretokenize import pretokenize
from hf_titok.training.recipes import build_trainer
from hf_titok.training.trainer import last_checkpoint
from hf_titok.training.wrappers import TrainingModule

from conftest import host_reads_between_logging_steps

PROJECT = Path(__file__).resolve().parent.parent
TOKENIZER = dict(
    image_size=32,
    encoder_patch_size=8,
    decoder_patch_size=8,
    encoder_hidden_size=32,
    encoder_num_layers=2,
    encoder_num_heads=2,
    decoder_hidden_size=32,
    decoder_num_layers=2,
    decoder_num_heads=2,
    num_latent_tokens=8,
    token_size=8,
    codebook_size=32,
)
VQGAN = dict(
    image_size=32,
    hidden_channels=16,
    channel_mult=[1, 1, 2, 2],
    num_res_blocks=1,
    z_channels=8,
    codebook_size=64,
    norm_num_groups=8,
)
SINGLE_VQ = dict(TOKENIZER, decoder_head="pixels", legacy_encoder_layout=False, use_l2_norm=False)
SINGLE_VAE = dict(TOKENIZER, decoder_head="pixels", legacy_encoder_layout=False, quantize_mode="vae")
TWO_STAGE = dict(
    TOKENIZER, decoder_head="proxy_codes", legacy_encoder_layout=True, use_l2_norm=True, pixel_decoder_config=VQGAN
)
DISCRIMINATOR = {"hidden_channels": 16, "channel_mult": [1, 2], "num_groups": 8, "pool_size": 4}
GENERATOR = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
SAMPLING = {"num_inference_steps": 4}  # the exported pipeline's sampler (and the sample grids')


def training(**overrides):
    base = dict(
        max_steps=30,
        per_device_train_batch_size=8,
        learning_rate=2e-3,
        warmup_steps=2,
        logging_steps=10,
        save_steps=1000,
        use_cpu=True,
        disable_tqdm=True,
        discriminator_start=1000,
        end_learning_rate=1e-4,
    )
    return {**base, **overrides}


def make_image_folder(root: Path, classes=3, per_class=8, corrupt=True) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            array = np.zeros((36, 44, 3), np.uint8)
            array[..., c % 3] = 160 + 40 * (i % 3)
            array[: 18 + 2 * (i % 4)] //= 2
            array += (rng.random((36, 44, 3)) * 40).astype(np.uint8)
            PIL.Image.fromarray(array).save(folder / f"{i}.png")
    if corrupt:
        (root / "class0" / "corrupt.png").write_bytes(b"this is not a png")
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    make_image_folder(root / "images")
    torch.manual_seed(0)
    MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)).save_pretrained(root / "teacher")
    return root


def history(trainer, key):
    return [entry[key] for entry in trainer.state.log_history if key in entry]


def train(config, output_dir):
    return train_recipe(load_recipe_config(config), output_dir=str(output_dir))


# ---------------------------------------------------------------------------------------------------------
# Every recipe learns
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stage1(workspace):
    trainer = train(
        {
            "recipe": "stage1",
            "model": {"config": TWO_STAGE},
            "teacher": str(workspace / "teacher"),
            "data": {"source": str(workspace / "images")},
            "training": training(),
        },
        workspace / "stage1",
    )
    return trainer


@pytest.fixture(scope="module")
def single_vq(workspace):
    return train(
        {
            "recipe": "single_stage",
            "model": {"config": SINGLE_VQ},
            "data": {"source": str(workspace / "images")},
            "discriminator": DISCRIMINATOR,
            "training": training(),
        },
        workspace / "single_vq",
    )


def assert_decreases(values, name):
    assert len(values) >= 2 and values[-1] < values[0], f"{name} did not decrease: {values}"


def test_stage1_learns_the_proxy_codes(stage1, workspace):
    assert_decreases(history(stage1, "proxy_code_loss"), "proxy-code cross-entropy")
    assert history(stage1, "codebook_usage")[-1] > 0 and history(stage1, "codebook_perplexity")[-1] >= 1
    exported = TiTokTokenizer.from_pretrained(workspace / "stage1" / "final")
    assert exported.pixel_decoder is None and (workspace / "stage1" / "final" / "preprocessor_config.json").is_file()


def test_codebook_restart_reseeds_only_the_dead_entries():
    torch.manual_seed(0)
    wrapper = TrainingModule(TiTokTokenizer(TiTokConfig(**SINGLE_VQ)))
    weight = wrapper.model.quantizer.embedding.weight
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    weight.grad = torch.ones_like(weight)
    optimizer.step()
    before = weight.detach().clone()
    wrapper.last_token_ids = torch.tensor([[0, 1, 2, 3] * 2] * 4)  # 4 of 32 entries used
    wrapper.last_unquantized_latents = torch.randn(4, 8, 8) * 3
    callback = CodebookRestartCallback(codebook_size=32, restart_steps=5, seed=1)
    state = type("State", (), {"global_step": 4})()
    callback.on_step_end(None, state, None, model=wrapper, optimizer=optimizer)
    assert torch.equal(weight, before) and int(callback.counts.sum()) == 32  # not a restart step: only counts

    state.global_step = 5
    callback.on_step_end(None, state, None, model=wrapper, optimizer=optimizer)
    assert wrapper.extra_logs["codebook_restarted"] == 28 and int(callback.counts.sum()) == 0
    assert torch.equal(weight[:4], before[:4])
    pool = wrapper.last_unquantized_latents.flatten(0, 1)
    nearest = torch.cdist(weight[4:].detach(), pool).min(dim=1).values
    assert (nearest < 0.2).all() and (
        weight[4:] - before[4:]
    ).abs().amax() > 1  # copies of encoder outputs (+ small noise)
    assert torch.equal(wrapper.ema_model.quantizer.embedding.weight[4:], weight[4:])
    moments = optimizer.state[weight]
    assert not moments["exp_avg"][4:].any() and not moments["exp_avg_sq"][4:].any() and moments["exp_avg"][:4].all()

    # The same seed and step make the same choice; the window counts survive a checkpoint round trip.
    again = TrainingModule(TiTokTokenizer(TiTokConfig(**SINGLE_VQ)))
    again.last_token_ids, again.last_unquantized_latents = wrapper.last_token_ids, wrapper.last_unquantized_latents
    CodebookRestartCallback(32, 5, seed=1).on_step_end(None, state, None, model=again)
    assert torch.equal(again.model.quantizer.embedding.weight[4:], weight[4:])
    callback.counts[3] = 7
    restored = CodebookRestartCallback(**callback.state()["args"])
    restored.window_counts = json.loads(json.dumps(callback.state()["attributes"]))["window_counts"]
    assert torch.equal(restored.counts, callback.counts)
    with pytest.raises(ValueError, match="codebook_restart_steps must be positive"):
        CodebookRestartCallback(32, 0)


def test_codebook_restarts_resume_exactly(workspace, tmp_path):
    """A run resumed from checkpoint-10 makes the same restarts (every 7 steps: the window spans the checkpoint)."""
    config = {
        "recipe": "stage1",
        "model": {"config": TWO_STAGE},
        "teacher": str(workspace / "teacher"),
        "data": {"source": str(workspace / "images")},
        "training": training(max_steps=20, save_steps=10, codebook_restart_steps=7, logging_steps=7),
    }
    straight = train(config, tmp_path / "straight")
    assert history(straight, "codebook_restarted")[0] > 0
    import shutil

    shutil.copytree(
        tmp_path / "straight", tmp_path / "resumed", ignore=shutil.ignore_patterns("checkpoint-20", "final")
    )
    train(config, tmp_path / "resumed")
    a, b = (
        load_file(tmp_path / "straight" / "final" / "model.safetensors"),
        load_file(tmp_path / "resumed" / "final" / "model.safetensors"),
    )
    assert not [k for k in a if not torch.equal(a[k], b[k])]
    with pytest.raises(ValueError, match="codebook_restart_steps applies to VQ tokenizers"):
        build_trainer(
            load_recipe_config(
                {
                    "recipe": "single_stage",
                    "model": {"config": SINGLE_VAE},
                    "data": config["data"],
                    "discriminator": DISCRIMINATOR,
                    "training": training(codebook_restart_steps=5),
                }
            ),
            str(tmp_path / "bad"),
        )


def test_logged_values_are_the_step_means(workspace):
    from hf_titok.training import PixelTokenizerTraining

    torch.manual_seed(0)
    model = TiTokTokenizer(TiTokConfig(**SINGLE_VQ))
    wrapper = PixelTokenizerTraining(
        model, NLayerDiscriminator(hidden_channels=16, channel_mult=(1, 2), num_groups=8, pool_size=4), use_ema=False
    )
    images = [torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    with torch.no_grad():
        expected = [torch.nn.functional.mse_loss(model(x).reconstruction, x).item() for x in images]
        for x in images:
            wrapper(x)
    logs = wrapper.pop_logs()
    assert logs["reconstruction_loss"] == pytest.approx(sum(expected) / 2, rel=1e-4)
    assert wrapper.pop_logs() == {}


def test_single_stage_vq_learns(single_vq):
    assert_decreases(history(single_vq, "reconstruction_loss"), "reconstruction loss")
    assert history(single_vq, "skipped_images")[-1] >= 1  # the corrupt file was skipped, not fatal


@pytest.mark.parametrize("recipe, model", [("single_stage", {"config": SINGLE_VAE}), ("vqgan", {"config": VQGAN})])
def test_pixel_recipes_learn(workspace, tmp_path, recipe, model):
    trainer = train(
        {
            "recipe": recipe,
            "model": model,
            "data": {"source": str(workspace / "images")},
            "discriminator": DISCRIMINATOR,
            "training": training(),
        },
        tmp_path,
    )
    assert_decreases(history(trainer, "reconstruction_loss"), f"{recipe} reconstruction loss")
    if recipe == "single_stage":
        assert all(kl > 0 for kl in history(trainer, "kl_loss"))


def test_stage2_from_stage1_and_vqgan_freezes_the_encoder(stage1, workspace, tmp_path):
    config = {
        "recipe": "stage2",
        "model": {"init_from": str(workspace / "stage1" / "final"), "pixel_decoder_from": str(workspace / "teacher")},
        "data": {"source": str(workspace / "images")},
        "discriminator": DISCRIMINATOR,
        "training": training(discriminator_start=15, image_log_steps=10, use_ema=True),
    }
    trainer = train(config, tmp_path)
    assert_decreases(history(trainer, "reconstruction_loss"), "stage-2 reconstruction loss")
    stage1_model = TiTokTokenizer.from_pretrained(workspace / "stage1" / "final")
    wrapper = trainer.model
    # Freeze state: encoder and quantizer untouched, decoder trained.
    assert all(not p.requires_grad for p in wrapper.model.encoder.parameters())
    assert torch.equal(wrapper.model.encoder.layers[0].mlp.fc1.weight, stage1_model.encoder.layers[0].mlp.fc1.weight)
    assert torch.equal(wrapper.model.quantizer.embedding.weight, stage1_model.quantizer.embedding.weight)
    assert not torch.equal(
        wrapper.model.decoder.layers[0].mlp.fc1.weight, stage1_model.decoder.layers[0].mlp.fc1.weight
    )
    # GAN start: no adversarial terms before step 15, both after.
    generator_terms = history(trainer, "generator_gan_loss")
    discriminator_terms = history(trainer, "discriminator_loss")
    assert generator_terms[0] == 0 and discriminator_terms[0] == 0
    assert generator_terms[-1] != 0 and discriminator_terms[-1] > 0
    # EMA differs from the live weights; the export holds the EMA weights, with the image processor.
    live, ema = wrapper.model.decoder.layers[0].mlp.fc1.weight, wrapper.ema_model.decoder.layers[0].mlp.fc1.weight
    assert not torch.equal(live, ema)
    exported = TiTokTokenizer.from_pretrained(tmp_path / "final")
    assert torch.equal(exported.decoder.layers[0].mlp.fc1.weight, ema)
    assert exported.pixel_decoder is not None and exported.config.commitment_cost == 0.0
    # PNG grids every 10 steps and at the end.
    grids = sorted(p.name for p in (tmp_path / "images").glob("*.png"))
    assert grids == ["step_0000010.png", "step_0000020.png", "step_0000030.png"]
    assert PIL.Image.open(tmp_path / "images" / grids[-1]).size[0] > 8 * 32


def test_generator_on_the_fly_and_pretokenized(single_vq, workspace, tmp_path):
    tokenizer_dir = workspace / "single_vq" / "final"
    on_the_fly = train(
        {
            "recipe": "generator",
            "tokenizer": str(tokenizer_dir),
            "model": {"config": GENERATOR},
            "sampling": SAMPLING,
            "data": {"source": str(workspace / "images")},
            "training": training(image_log_steps=30),
        },
        tmp_path / "fly",
    )
    assert_decreases(history(on_the_fly, "mlm_loss"), "MaskGIT loss (ids on the fly)")
    pipe = TiTokPipeline.from_pretrained(tmp_path / "fly" / "final")  # the export is a full pipeline
    assert pipe.id2label == {0: "class0", 1: "class1", 2: "class2"} and pipe.transformer.config.num_classes == 3
    assert (tmp_path / "fly" / "images" / "step_0000030.png").is_file()

    tokens = pretokenize(str(tokenizer_dir), str(workspace / "images"), tmp_path / "tokens", batch_size=8)
    # 25 files, one corrupt: skipped (counted), not replaced by a neighbour that would then be there twice
    assert len(tokens) == 2 * 24 and tokens.features["label"].names == ["class0", "class1", "class2"]
    originals = [row for row in tokens if not row["flipped"]]
    flipped = [row for row in tokens if row["flipped"]]
    tokenizer = TiTokTokenizer.from_pretrained(tokenizer_dir)
    center = Augmentation(32, random_crop=False, random_flip=False)
    first = center(PIL.Image.open(workspace / "images" / "class0" / "0.png"), sample_rng(0, 0, 0))
    with torch.no_grad():
        assert originals[0]["token_ids"] == tokenizer.encode(first[None]).token_ids[0].tolist()
        assert flipped[0]["token_ids"] == tokenizer.encode(first.flip(-1)[None]).token_ids[0].tolist()
    pretokenized = train(
        {
            "recipe": "generator",
            "model": {"config": {**GENERATOR, "codebook_size": 32, "num_latent_tokens": 8}},
            "sampling": SAMPLING,
            "data": {"pretokenized": str(tmp_path / "tokens")},
            "training": training(),
        },
        tmp_path / "pre",
    )
    assert_decreases(history(pretokenized, "mlm_loss"), "MaskGIT loss (pre-tokenized)")
    assert isinstance(TiTokMaskGIT.from_pretrained(tmp_path / "pre" / "final"), TiTokMaskGIT)


# ---------------------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------------------


def test_optimizer_groups_and_schedules(workspace, tmp_path):
    config = load_recipe_config(
        {
            "recipe": "single_stage",
            "model": {"config": SINGLE_VQ},
            "data": {"source": str(workspace / "images")},
            "discriminator": DISCRIMINATOR,
            "training": training(
                discriminator_start=10, weight_decay=0.1, discriminator_learning_rate=5e-4, warmup_steps=4
            ),
        }
    )
    trainer = build_trainer(config, str(tmp_path))
    trainer.create_optimizer_and_scheduler(num_training_steps=30)
    wrapper, optimizer = trainer.model, trainer.optimizer
    names = {id(p): n for n, p in wrapper.named_parameters()}
    decayed = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert "model.encoder.layers.0.mlp.fc1.weight" in decayed
    for excluded in (
        "model.encoder.latent_tokens",
        "model.decoder.mask_token",
        "model.encoder.position_embedding",
        "model.quantizer.embedding.weight",
        "model.encoder.layers.0.layer_norm1.weight",
        "model.encoder.projection.bias",
    ):
        assert excluded not in decayed
    roles = {g["role"] for g in optimizer.param_groups}
    assert roles == {"model", "discriminator"}
    lambdas = trainer.lr_scheduler.lr_lambdas
    model_index = next(i for i, g in enumerate(optimizer.param_groups) if g["role"] == "model")
    disc_index = next(i for i, g in enumerate(optimizer.param_groups) if g["role"] == "discriminator")
    assert lambdas[model_index](0) == pytest.approx(0.25) and lambdas[model_index](4) == pytest.approx(1.0)
    assert lambdas[disc_index](9) == 0.0 and lambdas[disc_index](10) > 0
    assert lambdas[model_index](30) == pytest.approx(1e-4 / 2e-3)
    assert optimizer.param_groups[disc_index]["initial_lr"] == 5e-4


def test_augmentation_is_deterministic_per_sample_and_epoch():
    image = PIL.Image.fromarray((np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8))
    augment = Augmentation(32)
    a = augment(image, sample_rng(1, 0, 5))
    assert a.shape == (3, 32, 32) and torch.equal(a, augment(image, sample_rng(1, 0, 5)))
    others = [augment(image, sample_rng(1, epoch, 5)) for epoch in range(1, 8)]
    assert any(not torch.equal(a, other) for other in others)
    center = Augmentation(32, random_crop=False, random_flip=False)(image, sample_rng(0, 0, 0))
    resized = np.asarray(image.resize((48, 32), PIL.Image.BICUBIC), dtype=np.float32)[:, 8:40] / 255
    torch.testing.assert_close(center, torch.from_numpy(resized).permute(2, 0, 1), atol=1e-6, rtol=0)


def test_local_webdataset_shards_stream_like_imagenet(tmp_path):
    with tarfile.open(tmp_path / "imagenet1k-train-0000.tar", "w") as tar:
        for i in range(6):
            buffer = BytesIO()
            PIL.Image.fromarray(np.full((40, 50, 3), 30 * i, np.uint8)).save(buffer, format="JPEG")
            for suffix, payload in (("jpg", buffer.getvalue()), ("cls", str(i % 3).encode())):
                info = tarfile.TarInfo(f"sample{i:04d}.{suffix}")
                info.size = len(payload)
                tar.addfile(info, BytesIO(payload))
    dataset = load_image_dataset(str(tmp_path), "train", Augmentation(32), streaming=True)
    rows = list(dataset)
    assert len(rows) == 6 and rows[0]["pixel_values"].shape == (3, 32, 32)
    assert [row["labels"] for row in rows] == [0, 1, 2, 0, 1, 2]


def test_missing_perceptual_weights_turn_the_term_off_with_one_log(caplog):
    with caplog.at_level(logging.WARNING):
        loss = PerceptualLoss("lpips-convnext_s")
    assert not loss.enabled and loss(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)) == 0
    messages = [r.message for r in caplog.records if "perceptual loss" in r.message]
    assert len(messages) == 2 and "ConvNeXt term is off" in messages[0] and "LPIPS term is off" in messages[1]


def test_perceptual_networks_load_local_weights(tmp_path):
    torch.manual_seed(0)
    convnext = ConvNeXtSmall()
    torch.save(convnext.state_dict(), tmp_path / "convnext_small.pth")
    assert "features.5.26.block.3.weight" in convnext.state_dict() and "classifier.2.weight" in convnext.state_dict()
    vgg = LPIPS()
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, tmp_path / "vgg16.pth")
    torch.save(
        {f"lin{i}.model.1.weight": torch.rand_like(h.weight) for i, h in enumerate(vgg.heads)}, tmp_path / "heads.pth"
    )
    loss = PerceptualLoss(
        "lpips-convnext_s",
        str(tmp_path / "convnext_small.pth"),
        str(tmp_path / "vgg16.pth"),
        str(tmp_path / "heads.pth"),
    )
    assert loss.enabled and not any(p.requires_grad for p in loss.parameters())
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert loss(a, a) == 0 and loss(a, b) > 0
    with pytest.raises(FileNotFoundError, match="perceptual-network weights not found"):
        PerceptualLoss("convnext_s", str(tmp_path / "missing.pth"))


def test_discriminator_shapes():
    discriminator = NLayerDiscriminator()  # official size
    assert discriminator(torch.rand(1, 3, 256, 256)).shape == (1, 1, 16, 16)
    assert round(sum(p.numel() for p in discriminator.parameters()) / 1e6, 2) > 1


def test_config_errors(workspace, tmp_path):
    with pytest.raises(ValueError, match="recipe must be one of"):
        load_recipe_config({"recipe": "stage3"})
    with pytest.raises(ValueError, match="overrides look like"):
        load_recipe_config({"recipe": "stage1"}, ["training.max_steps"])
    assert load_recipe_config({"recipe": "stage1"}, ["training.max_steps=7"])["training"]["max_steps"] == 7
    with pytest.raises(ValueError, match="stage 1 needs `teacher:`"):
        build_trainer(
            load_recipe_config(
                {
                    "recipe": "stage1",
                    "model": {"config": TWO_STAGE},
                    "data": {"source": str(workspace / "images")},
                    "training": training(),
                }
            ),
            str(tmp_path),
        )
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        build_trainer(
            load_recipe_config(
                {
                    "recipe": "single_stage",
                    "model": {"config": SINGLE_VQ},
                    "data": {"source": "./nowhere"},
                    "training": training(),
                }
            ),
            str(tmp_path),
        )
    with pytest.raises(ValueError, match="stage 2 needs model.init_from"):
        build_trainer(
            load_recipe_config(
                {"recipe": "stage2", "model": {}, "data": {"source": str(workspace / "images")}, "training": training()}
            ),
            str(tmp_path),
        )
    result = subprocess.run(
        [sys.executable, str(PROJECT / "training" / "train_generator.py"), "--config", "titok_l32_stage1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "this entry point trains generator" in result.stderr


def test_shipped_configs_parse():
    from hf_titok.training.config import CONFIGS_DIR, shipped_configs

    names = shipped_configs()
    assert "titok_l32_stage1" in names and "fashion_mnist/generator" in names and len(names) >= 16
    for name in names:
        config = load_recipe_config(name)
        if not name.startswith("fashion_mnist/"):
            assert config["training"]["max_steps"] >= 250_000, name  # the shortest official: MaskGen-VQ stage 2
    assert load_recipe_config(CONFIGS_DIR / "titok_l32_stage1.yaml") == load_recipe_config("titok_l32_stage1.yaml")
    with pytest.raises(
        FileNotFoundError,
        match=r"titok_l32_stge1 is neither a file nor a shipped config \(did you mean 'titok_l32_stage1'",
    ):
        load_recipe_config("titok_l32_stge1")


def test_config_floats_without_a_dot_are_numbers(tmp_path):
    """PyYAML reads `3e-4` as a string (YAML 1.1); a learning rate written that way must still be a float."""
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "recipe: stage1\ntraining: {learning_rate: 3e-4, end_learning_rate: 1.0e-5, max_steps: 10, output_dir: out}\n"
    )
    config = load_recipe_config(
        path, ["training.weight_decay=2E-2", "training.adam_beta2=.99", "training.run_name=1e-3x"]
    )
    values = config["training"]
    assert values["learning_rate"] == 3e-4 and values["end_learning_rate"] == 1e-5 and values["weight_decay"] == 0.02
    assert values["adam_beta2"] == 0.99 and values["max_steps"] == 10 and values["run_name"] == "1e-3x"
    assert all(isinstance(values[key], float) for key in ("learning_rate", "weight_decay", "adam_beta2"))


def test_config_sections_are_typed_by_their_declarations():
    """A recipe's `loss:` schema is its loss dataclass (defaults and types in one place), `discriminator:` is
    NLayerDiscriminator's constructor: a string weight file and a float weight are told apart by their declared
    types, not by how their names end, and a key the recipe's loss does not have is refused."""
    import dataclasses

    from hf_titok.training.config import DISCRIMINATOR_SCHEMA, declared_types
    from hf_titok.training.recipes import RECIPES, TokenizerPixelLoss

    single = RECIPES["single_stage"]
    assert declared_types(type(single.loss)) == {
        "perceptual": str,
        "perceptual_weight": float,
        "quantizer_weight": float,
        "gan_weight": float,
        "lecam_weight": float,
        "convnext_weights": str,
        "lpips_vgg_weights": str,
        "lpips_head_weights": str,
        "kl_weight": float,
        "tail_token_drop": bool,
    }
    assert DISCRIMINATOR_SCHEMA == {"hidden_channels": int, "channel_mult": list, "num_groups": int, "pool_size": int}
    config = load_recipe_config({"recipe": "single_stage", "loss": {"kl_weight": 2e-6, "convnext_weights": "w.pt"}})
    assert config["loss"] == dataclasses.asdict(TokenizerPixelLoss(kl_weight=2e-6, convnext_weights="w.pt"))
    assert single.loss_settings(config) == TokenizerPixelLoss(kl_weight=2e-6, convnext_weights="w.pt")
    with pytest.raises(ValueError, match=r"loss.convnext_weights must be a string, got 3.*loss.kl_weight must be a n"):
        load_recipe_config({"recipe": "single_stage", "loss": {"convnext_weights": 3, "kl_weight": "small"}})
    with pytest.raises(ValueError, match=r"unknown key loss.kl_weight"):
        load_recipe_config({"recipe": "vqgan", "loss": {"kl_weight": 1e-6}})
    with pytest.raises(ValueError, match=r"unknown key loss.quantizer_weight"):
        load_recipe_config({"recipe": "generator", "loss": {"quantizer_weight": 1.0}})
    with pytest.raises(ValueError, match=r"discriminator.channel_mult must be a list"):
        load_recipe_config({"recipe": "vqgan", "discriminator": {"channel_mult": 4}})


# ---------------------------------------------------------------------------------------------------------
# Reliability and scale
# ---------------------------------------------------------------------------------------------------------


def write_config(path: Path, images: Path, **training_overrides) -> Path:
    config = {
        "recipe": "single_stage",
        "model": {"config": SINGLE_VAE},
        "data": {"source": str(images)},
        "discriminator": DISCRIMINATOR,
        "training": training(
            **{
                **dict(
                    max_steps=40,
                    save_steps=10,
                    save_total_limit=None,
                    discriminator_start=5,
                    per_device_train_batch_size=4,
                ),
                **training_overrides,
            }
        ),
    }
    import yaml

    path.write_text(yaml.safe_dump(config))
    return path


def test_sigkilled_run_resumes_to_exactly_the_uninterrupted_weights(workspace, tmp_path):
    """VAE sampling, GAN + LeCam, EMA, random crops/flips, mid-epoch resume: all must continue exactly."""
    config = write_config(tmp_path / "config.yaml", workspace / "images")
    script = [sys.executable, str(PROJECT / "training" / "train_tokenizer.py"), "--config", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    straight = subprocess.run(
        script + ["--output-dir", str(tmp_path / "straight")], capture_output=True, text=True, env=env
    )
    assert straight.returncode == 0, straight.stderr[-2000:]

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        script + ["--output-dir", str(interrupted)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.time() + 120
    while (
        not (interrupted / "checkpoint-20" / "trainer_state.json").is_file()
        and process.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (interrupted / "final").exists()
    resumed_from = last_checkpoint(str(interrupted))
    assert resumed_from is not None and int(resumed_from.rsplit("-", 1)[1]) < 40

    resumed = subprocess.run(script + ["--output-dir", str(interrupted)], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {resumed_from}" in resumed.stderr
    for name in ("checkpoint-40/model.safetensors", "final/model.safetensors"):
        a, b = load_file(tmp_path / "straight" / name), load_file(interrupted / name)
        assert a.keys() == b.keys()
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, f"{name}: {different[:5]}"


def test_a_damaged_newest_checkpoint_is_skipped_and_the_run_ends_the_same(workspace, tmp_path, caplog):
    """Truncate the newest checkpoint's weights: resuming skips it (a warning names it), continues from the previous
    complete one, and ends with exactly the weights of an uninterrupted run."""
    config = {
        "recipe": "single_stage",
        "model": {"config": SINGLE_VQ},
        "data": {"source": str(workspace / "images")},
        "discriminator": DISCRIMINATOR,
        "training": training(
            max_steps=20, save_steps=10, save_total_limit=None, discriminator_start=5, per_device_train_batch_size=4
        ),
    }
    train(config, tmp_path / "straight")
    shutil.copytree(tmp_path / "straight", tmp_path / "damaged", ignore=shutil.ignore_patterns("final"))
    newest = tmp_path / "damaged" / "checkpoint-20" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])
    assert last_checkpoint(str(tmp_path / "damaged")) == str(tmp_path / "damaged" / "checkpoint-10")
    assert "checkpoint-20" in caplog.text and "damaged files" in caplog.text
    train(config, tmp_path / "damaged")
    a, b = (
        load_file(tmp_path / "straight" / "final" / "model.safetensors"),
        load_file(tmp_path / "damaged" / "final" / "model.safetensors"),
    )
    assert a.keys() == b.keys() and not [k for k in a if not torch.equal(a[k], b[k])]


def test_incomplete_checkpoints_are_skipped(tmp_path):
    (tmp_path / "checkpoint-10").mkdir()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-20").mkdir()  # killed while writing
    assert last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-10")
    assert last_checkpoint(str(tmp_path / "none")) is None


def test_two_cpu_processes_hold_identical_weights(workspace, tmp_path):
    config = write_config(tmp_path / "config.yaml", workspace / "images", max_steps=6)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(PROJECT / "training" / "accelerate" / "cpu_2proc.yaml"),
            "--main_process_port",
            str(29500 + os.getpid() % 400),
            str(Path(__file__).parent / "ddp_worker.py"),
            str(config),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [
        json.loads(line.split(" ", 1)[1]) for line in result.stdout.splitlines() if line.startswith("RANK_RESULT ")
    ]
    assert sorted(r["rank"] for r in ranks) == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    a, b = (load_file(tmp_path / "out" / f"rank{r}.safetensors") for r in (0, 1))
    assert a.keys() == b.keys()
    different = {k: float((a[k] - b[k]).abs().max()) for k in a if not torch.equal(a[k], b[k])}
    assert not different, (different, result.stdout[-3000:])
    # Each process saw different samples (the data was split), yet the weights agree.
    assert ranks[0]["first_batch_checksum"] != ranks[1]["first_batch_checksum"]


def test_hf_titok_train_runs_shipped_configs_by_name(capsys):
    from hf_titok.cli import main

    assert main(["train", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "titok_l32_stage1" in listed and "recipe: stage1" in listed and "fashion_mnist/generator" in listed
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", "titok_l32_stge1"])
    assert exit_info.value.code == 2
    assert "did you mean 'titok_l32_stage1'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["pretokenize", "--help"])
    assert exit_info.value.code == 0 and "hf-titok pretokenize" in capsys.readouterr().out


@pytest.mark.parametrize("recipe", ["single_stage", "generator"])
def test_no_host_sync_in_a_training_step_between_logging_steps(recipe, workspace, tmp_path, monkeypatch):
    """Every way a tensor is read back to the host (`.item()`, `.tolist()`, `.cpu()`, `.numpy()`, `bool()`,
    `float()`, `int()`) is counted during the training steps that are not logging steps: none. (torch's AdamW
    keeps its step counter as a CPU scalar and reads it with `.item()`: no device is waited for, so the
    optimizer's own frames are left out.)"""
    if recipe == "single_stage":
        config = {"recipe": "single_stage", "model": {"config": SINGLE_VQ}, "discriminator": DISCRIMINATOR}
    else:
        tokenizer = tmp_path / "tokenizer"
        TiTokTokenizer(TiTokConfig(**SINGLE_VQ)).save_pretrained(tokenizer)
        config = {
            "recipe": "generator",
            "tokenizer": str(tokenizer),
            "model": {"config": GENERATOR},
            "sampling": SAMPLING,
        }
    config.update(data={"source": str(workspace / "images")}, training=training(max_steps=6, logging_steps=3))
    trainer = build_trainer(load_recipe_config(config), str(tmp_path / "out"))
    reads = host_reads_between_logging_steps(trainer, monkeypatch)
    assert trainer.state.global_step == 6 and any("loss" in entry for entry in trainer.state.log_history)
    assert reads == []


# ---- Tail Token Drop (One-D-Piece): an option of the TiTok recipes ----


def tail_token_drop_config(workspace, recipe: str, **sections) -> dict:
    return {
        "recipe": recipe,
        "data": {"source": str(workspace / "images")},
        "loss": {"tail_token_drop": True},
        "training": training(max_steps=20),
        **sections,
    }


def test_stage1_and_stage2_train_with_tail_token_drop(workspace, tmp_path):
    prefix = dict(TWO_STAGE, prefix_decoding=True)
    stage1 = train(
        tail_token_drop_config(workspace, "stage1", model={"config": prefix}, teacher=str(workspace / "teacher")),
        tmp_path / "stage1",
    )
    losses = history(stage1, "proxy_code_loss")
    assert len(losses) >= 2 and losses[-1] < losses[0]
    exported = TiTokTokenizer.from_pretrained(tmp_path / "stage1" / "final")
    assert exported.config.prefix_decoding
    stage2 = train(
        tail_token_drop_config(
            workspace,
            "stage2",
            model={"init_from": str(tmp_path / "stage1" / "final"), "pixel_decoder_from": str(workspace / "teacher")},
            discriminator=DISCRIMINATOR,
            loss={"tail_token_drop": True, "perceptual_weight": 0.0},
        ),
        tmp_path / "stage2",
    )
    assert history(stage2, "psnr")
    tokenizer = TiTokTokenizer.from_pretrained(tmp_path / "stage2" / "final")
    with torch.no_grad():
        ids = tokenizer.encode(torch.rand(2, 3, 32, 32)).token_ids
        assert tokenizer.decode(ids[:, :2]).shape == (2, 3, 32, 32)  # the exported tokenizer decodes prefixes


def test_tail_token_drop_makes_a_prefix_decoding_tokenizer(workspace, tmp_path):
    """Fine-tuning a tokenizer that had prefix decoding off (a TiTok release, say) with Tail Token Drop: the model it
    makes decodes prefixes, and its exported config says so (the EMA copy's too)."""
    config = tail_token_drop_config(
        workspace, "stage1", model={"config": TWO_STAGE}, teacher=str(workspace / "teacher")
    )
    trainer = build_trainer(load_recipe_config(config), output_dir=str(tmp_path / "run"))
    assert trainer.model.model.config.prefix_decoding and trainer.model.export_model().config.prefix_decoding


@pytest.mark.parametrize("size", ["s", "b", "l"])
def test_the_onedpiece_recipes_train_prefixes_in_both_stages(size):
    """The shipped One-D-Piece configs: the size's preset (256 tokens, prefix decoding), Tail Token Drop in stage 1
    and stage 2, the official batch per optimiser step (1024 then 512 images on 8 GPUs) and schedule lengths."""
    stage1, stage2 = (load_recipe_config(f"onedpiece_{size}256_stage{n}") for n in (1, 2))
    preset = TiTokConfig.from_preset(stage1["model"]["preset"])
    assert preset.num_latent_tokens == 256 and preset.prefix_decoding and preset.codebook_size == 4096
    assert stage1["loss"]["tail_token_drop"] and stage2["loss"]["tail_token_drop"]
    assert stage2["model"]["init_from"] == f"outputs/onedpiece_{size}256_stage1/final"
    for config, images_per_step, steps in ((stage1, 1024, 1_000_000), (stage2, 512, 500_000)):
        training_section = config["training"]
        per_gpu = training_section["per_device_train_batch_size"] * training_section["gradient_accumulation_steps"]
        assert 8 * per_gpu == images_per_step and training_section["max_steps"] == steps
