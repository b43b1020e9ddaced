"""Training the text-aware family on tiny models and a tiny captioned image folder: the TA-TiTok recipe (VQ and
VAE) learns, reads each image's caption through the frozen text encoder, exports a TA-TiTok with its image
processor, and refuses a config it cannot train with an error naming the field."""

import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from hf_titok import TATiTokTokenizer
from hf_titok.training import load_recipe_config
from hf_titok.training import train as train_recipe
from hf_titok.training.recipes import build_trainer

from conftest import (
    assert_killed_run_resumes_exactly,
    host_reads_between_logging_steps,
    tiny_clip_text_encoder,
    tiny_clip_tokenizer,
    tiny_tatitok_config,
)

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
PHRASES = ["a {} square", "something {}", "a photo of {} paint"]
DISCRIMINATOR = {"hidden_channels": 16, "channel_mult": [1, 2], "num_groups": 8, "pool_size": 4}


def make_captioned_folder(root: Path, per_colour: int = 6) -> Path:
    """Images of three colours, captioned by colour (`metadata.jsonl`, the `datasets` imagefolder convention)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    rows = []
    for colour, rgb in COLOURS.items():
        for i in range(per_colour):
            array = np.clip(np.array(rgb) + rng.normal(0, 20, (36, 40, 3)), 0, 255).astype(np.uint8)
            array[: 12 + 3 * (i % 3)] //= 2
            name = f"{colour}{i}.png"
            PIL.Image.fromarray(array).save(root / name)
            rows.append({"file_name": name, "text": PHRASES[i % len(PHRASES)].format(colour)})
    (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def training(**overrides):
    base = dict(
        max_steps=24,
        per_device_train_batch_size=6,
        learning_rate=2e-3,
        warmup_steps=2,
        logging_steps=8,
        save_steps=1000,
        use_cpu=True,
        disable_tqdm=True,
        discriminator_start=1000,
        end_learning_rate=1e-4,
    )
    return {**base, **overrides}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("training_family")
    make_captioned_folder(root / "captioned")
    tiny_clip_text_encoder(32).save_pretrained(root / "clip")
    tiny_clip_tokenizer().save_pretrained(root / "clip")
    tiny_clip_text_encoder(16).save_pretrained(root / "clip16")
    tiny_clip_tokenizer().save_pretrained(root / "clip16")
    return root


def titok_folder(workspace) -> Path:
    """A class-conditional TiTok tokenizer (not text-aware): a checkpoint of another kind for the text recipes."""
    from hf_titok import TiTokConfig, TiTokTokenizer

    folder = workspace / "titok"
    if not folder.exists():
        config = tiny_tatitok_config("vq").to_diff_dict()
        fields = {key: value for key, value in config.items() if not key.startswith(("text_", "model_type", "transf"))}
        TiTokTokenizer(TiTokConfig(**fields)).save_pretrained(folder)
    return folder


def resolved(value, workspace, tokenizers=None):
    """`value` with the placeholder names of the bad-config tables replaced by the folders they stand for."""
    if isinstance(value, dict):
        return {key: resolved(item, workspace, tokenizers) for key, item in value.items()}
    names = {"CLIP16": workspace / "clip16", "TITOK": titok_folder(workspace) if value == "TITOK" else None}
    if tokenizers is not None:
        names.update(VAE=tokenizers["vae"], VQ=tokenizers["vq"])
    return str(names[value]) if isinstance(value, str) and names.get(value) is not None else value


def tatitok_config(workspace, kind: str = "vq", **sections) -> dict:
    config = tiny_tatitok_config(kind).to_diff_dict()
    config = {key: value for key, value in config.items() if key not in ("model_type", "transformers_version")}
    return {
        "recipe": "tatitok",
        "model": {"config": config},
        "text_encoder": str(workspace / "clip"),
        "data": {"source": str(workspace / "captioned")},
        "discriminator": DISCRIMINATOR,
        "training": training(image_log_steps=24),
        **sections,
    }


def history(trainer, key):
    return [entry[key] for entry in trainer.state.log_history if key in entry]


@pytest.mark.parametrize("kind", ["vq", "vae"])
def test_tatitok_learns_and_exports(workspace, tmp_path, kind):
    trainer = train_recipe(load_recipe_config(tatitok_config(workspace, kind)), output_dir=str(tmp_path))
    losses = history(trainer, "reconstruction_loss")
    assert len(losses) >= 2 and losses[-1] < losses[0], losses
    assert history(trainer, "skipped_captions")[-1] == 0
    exported = TATiTokTokenizer.from_pretrained(tmp_path / "final")
    assert exported.is_vq == (kind == "vq") and (tmp_path / "final" / "preprocessor_config.json").is_file()
    assert list((tmp_path / "images").glob("step_*.png"))  # reconstructions decoded with their captions


def test_the_decoder_reads_each_images_caption(workspace, tmp_path):
    """The wrapper feeds the text encoder's last_hidden_state of the batch's captions to the decoder: the same
    images with other captions give another loss."""
    trainer = build_trainer(load_recipe_config(tatitok_config(workspace)), str(tmp_path))
    wrapper = trainer.model.eval()
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    encoder = wrapper.helper("text_encoder", torch.device("cpu"))
    assert not any(p.requires_grad for p in encoder.parameters())
    with torch.no_grad():
        loss = wrapper(**batch)["loss"]
        other = wrapper(batch["pixel_values"], batch["input_ids"].roll(1, dims=0))["loss"]
    assert torch.isfinite(loss) and not torch.equal(loss, other)


def test_fine_tuning_starts_from_a_saved_tatitok(workspace, tmp_path):
    torch.manual_seed(3)
    start = TATiTokTokenizer(tiny_tatitok_config("vq")).eval()
    start.save_pretrained(tmp_path / "start")
    config = tatitok_config(workspace, model={"pretrained": str(tmp_path / "start")})
    trainer = build_trainer(load_recipe_config(config), str(tmp_path / "out"))
    assert all(
        torch.equal(a, b) for a, b in zip(trainer.model.model.state_dict().values(), start.state_dict().values())
    )


@pytest.mark.parametrize(
    "change, error, message",
    [
        (
            {"data": {"caption_column": "caption"}},
            ValueError,
            r"no caption column 'caption'; columns: \['image', 'text'\] \(set data.caption_column\)",
        ),
        (
            {"text_encoder": "CLIP16"},
            ValueError,
            "text_encoder: its hidden states are 16 wide, but the tokenizer reads text 32 wide",
        ),
        ({"text_encoder": "/nonexistent/clip"}, ValueError, "text_encoder: cannot load the CLIP text encoder"),
        ({"data": {"recaption_probability": "often"}}, ValueError, "data.recaption_probability must be a number"),
        (
            {"model": {"pretrained": "TITOK"}},
            ValueError,
            "model.pretrained: .* is the config of a 'titok' model, not of a TATiTokTokenizer",
        ),
        (
            {"model": {"preset": "tatitok_bl32_vq", "config": {"text_hiden_size": 3}}},
            ValueError,
            "unknown key model.config.text_hiden_size of TATiTokConfig.*did you mean 'text_hidden_size'",
        ),
    ],
)
def test_bad_tatitok_configs_name_the_field(workspace, tmp_path, change, error, message):
    config = tatitok_config(workspace)
    for section, value in resolved(change, workspace).items():
        config[section] = {**config[section], **value} if isinstance(value, dict) else value
    with pytest.raises(error, match=message):
        build_trainer(load_recipe_config(config), str(tmp_path))


# ---------------------------------------------------------------------------------------------------------
# MaskGen
# ---------------------------------------------------------------------------------------------------------

MASKGEN = dict(hidden_size=32, num_layers=2, num_attention_heads=2, aesthetic_embed_dim=16)
MASKGEN_KL = dict(MASKGEN, head_width=32, head_num_blocks=2)


@pytest.fixture(scope="module")
def tokenizers(workspace):
    """Tiny TA-TiTok tokenizers (VQ and VAE) saved as folders, the frozen tokenizers of the MaskGen recipes."""
    folders = {}
    for kind in ("vq", "vae"):
        torch.manual_seed(1)
        folders[kind] = workspace / f"tatitok_{kind}"
        TATiTokTokenizer(tiny_tatitok_config(kind)).eval().save_pretrained(folders[kind])
    return folders


def maskgen_config(workspace, tokenizers, kind: str = "vq", stage: int = 1, **sections) -> dict:
    return {
        "recipe": f"maskgen_{kind}_stage{stage}",
        "tokenizer": str(tokenizers["vq" if kind == "vq" else "vae"]),
        "text_encoder": str(workspace / "clip"),
        "model": {"config": MASKGEN if kind == "vq" else MASKGEN_KL},
        "data": {"source": str(workspace / "captioned")},
        "sampling": {"num_inference_steps": 2, **({"num_diffusion_steps": 3} if kind == "kl" else {})},
        "training": training(max_steps=24, image_log_steps=24, learning_rate=1e-3),
        **sections,
    }


@pytest.mark.parametrize("kind", ["vq", "kl"])
def test_maskgen_stage1_learns_and_exports_a_pipeline(workspace, tokenizers, tmp_path, kind):
    from hf_titok import MaskGenPipeline

    trainer = train_recipe(load_recipe_config(maskgen_config(workspace, tokenizers, kind)), output_dir=str(tmp_path))
    losses = history(trainer, "mlm_loss" if kind == "vq" else "diffusion_loss")
    assert len(losses) >= 2 and losses[-1] < losses[0], losses
    pipe = MaskGenPipeline.from_pretrained(tmp_path / "final")
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a red square", generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (32, 32)
    assert list((tmp_path / "images").glob("step_*.png"))  # prompt grids


def test_maskgen_stage2_starts_from_stage1(workspace, tokenizers, tmp_path):
    stage1 = train_recipe(
        load_recipe_config(maskgen_config(workspace, tokenizers, training=training(max_steps=2))),
        output_dir=str(tmp_path / "stage1"),
    )
    assert stage1.state.global_step == 2
    config = maskgen_config(workspace, tokenizers, stage=2, model={"init_from": str(tmp_path / "stage1" / "final")})
    trainer = build_trainer(load_recipe_config(config), str(tmp_path / "stage2"))
    start = stage1.model.export_model().state_dict()
    assert all(torch.equal(value, start[name]) for name, value in trainer.model.model.state_dict().items())
    assert trainer.args.learning_rate == 1e-3 and trainer.args.max_steps == 24  # the config's, over the defaults


@pytest.mark.parametrize(
    "change, message",
    [
        ({"recipe": "maskgen_vq_stage2", "model": {"config": MASKGEN}}, "stage 2 needs model.init_from: the stage-1"),
        ({"tokenizer": "VAE"}, "do not fit together: a MaskGen-VQ generator needs a TA-TiTok VQ tokenizer"),
        ({"text_encoder": "CLIP16"}, "do not fit together: the text encoder is 16 wide, but the tokenizer reads 32"),
        ({"model": {"config": {**MASKGEN, "codebook_size": 10}}}, "the generator's codebook_size=10 does not match"),
        (
            {"model": {"config": {**MASKGEN, "hiden_size": 8}}},
            "unknown key model.config.hiden_size of Mask.*hidden_size",
        ),
        ({"loss": {"text_dropout": "often"}}, "loss.text_dropout must be a number"),
        ({"tokenizer": "TITOK"}, "do not fit together: vqvae is a TiTok tokenizer, which is not text-aware"),
        ({"model": {"pretrained": "VQ"}}, "model.pretrained: .* config of a 'tatitok' model, not of a MaskGenVQ"),
    ],
)
def test_bad_maskgen_configs_name_the_field(workspace, tokenizers, tmp_path, change, message):
    config = maskgen_config(workspace, tokenizers)
    config.update(resolved(change, workspace, tokenizers))
    with pytest.raises(ValueError, match=message):
        build_trainer(load_recipe_config(config), str(tmp_path))


@pytest.mark.parametrize("kind", ["vq", "kl"])
def test_no_host_sync_in_a_maskgen_training_step(workspace, tokenizers, tmp_path, monkeypatch, kind):
    """Text encoding, text dropout, tokenizing, masking and the losses read nothing back to the host between
    logging steps (`conftest.host_reads_between_logging_steps`)."""
    config = maskgen_config(workspace, tokenizers, kind, training=training(max_steps=6, logging_steps=3))
    trainer = build_trainer(load_recipe_config(config), str(tmp_path / "out"))
    reads = host_reads_between_logging_steps(trainer, monkeypatch)
    assert trainer.state.global_step == 6 and reads == []


def test_a_killed_maskgen_run_resumes_to_exactly_the_uninterrupted_weights(workspace, tokenizers, tmp_path):
    """MaskGen-KL (posterior samples, random orders, the batch's timestep, per-row diffusion timesteps and noise,
    text dropout, EMA): SIGKILL after a checkpoint, run again, and the final weights equal an uninterrupted run's."""
    config = maskgen_config(
        workspace,
        tokenizers,
        "kl",
        training=training(max_steps=20, save_steps=5, save_total_limit=None, per_device_train_batch_size=4),
    )
    assert_killed_run_resumes_exactly(
        "train_maskgen.py",
        config,
        tmp_path,
        ("checkpoint-20/model.safetensors", "final/transformer/diffusion_pytorch_model.safetensors"),
    )


@pytest.mark.parametrize("kind", ["vq", "kl"])
def test_pretokenized_captioned_data_trains_maskgen_without_the_tokenizer_or_text_encoder(
    workspace, tokenizers, tmp_path, kind
):
    """`pretokenize` with a TA-TiTok writes its ids (VQ) or posterior moments (VAE), each caption and score and the
    CLIP features a MaskGen step reads; training on it runs neither the tokenizer nor the text encoder, and the
    features equal the text encoder's."""
    from hf_titok.text_encoding import clip_text_features, tokenize_prompts
    from hf_titok.training.pretokenize import pretokenize

    tokenizer = tokenizers["vq" if kind == "vq" else "vae"]
    dataset = pretokenize(
        str(tokenizer), str(workspace / "captioned"), tmp_path / "tokens", text_encoder=str(workspace / "clip")
    )
    assert len(dataset) == 18 and not any(dataset["flipped"])  # captioned data: no flips by default
    assert {"caption", "aesthetic_score", "prompt_embeds", "pooled_prompt_embeds"} <= set(dataset.column_names)
    assert ("token_ids" if kind == "vq" else "latent_moments") in dataset.column_names
    row = dataset[0]
    encoder, text_tokenizer = tiny_clip_text_encoder(32), tiny_clip_tokenizer()
    features = clip_text_features(encoder, tokenize_prompts(text_tokenizer, [row["caption"]]))
    torch.testing.assert_close(torch.tensor(row["prompt_embeds"]).float(), features.condition[0], atol=2e-2, rtol=1e-2)
    if kind == "kl":
        model = TATiTokTokenizer.from_pretrained(tokenizer)
        assert np.asarray(row["latent_moments"]).shape == (8, 2 * model.config.token_size)
    config = maskgen_config(workspace, tokenizers, kind, training=training(max_steps=24, image_log_steps=0))
    config["data"] = {"pretokenized": str(tmp_path / "tokens")}
    trainer = build_trainer(load_recipe_config(config), str(tmp_path / "out"))
    trainer.model.set_helper("text_encoder", None)  # neither is needed: a call would fail
    trainer.model.set_helper("tokenizer", None)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    assert "input_ids" not in batch and "pixel_values" not in batch
    trainer.train()
    losses = history(trainer, "mlm_loss" if kind == "vq" else "diffusion_loss")
    assert losses[-1] < losses[0], losses


# ---------------------------------------------------------------------------------------------------------
# The text encoder of a model trained here
# ---------------------------------------------------------------------------------------------------------

CLIP = {
    "text_config": dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, vocab_size=300
    ),
    "vision_config": dict(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    ),
    "projection_dim": 16,
}


def test_clip_learns_its_tokenizer_and_exports_a_text_encoder_the_text_recipes_read(workspace, tmp_path):
    """The `clip` recipe learns a CLIP tokenizer from the captions, trains CLIPModel's contrastive loss (it falls),
    and exports the text tower with its projection and the tokenizer, which `text_encoder:` of the TA-TiTok recipe
    then loads (its width checked)."""
    from transformers import AutoTokenizer, CLIPTextModelWithProjection

    config = {
        "recipe": "clip",
        "model": {"config": CLIP},
        "data": {"source": str(workspace / "captioned")},
        "training": training(max_steps=24, learning_rate=2e-3),
    }
    trainer = train_recipe(load_recipe_config(config), output_dir=str(tmp_path / "clip"))
    losses = history(trainer, "contrastive_loss")
    assert len(losses) >= 2 and losses[-1] < losses[0], losses
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "clip" / "final")
    encoder = CLIPTextModelWithProjection.from_pretrained(tmp_path / "clip" / "final")
    assert len(tokenizer) <= 400 and encoder.config.vocab_size == len(tokenizer)
    assert encoder.config.eos_token_id == tokenizer.eos_token_id and encoder.config.projection_dim == 16
    assert tokenizer.convert_ids_to_tokens(tokenizer("a red square")["input_ids"])[1:-1] == [
        "a</w>",
        "red</w>",
        "square</w>",
    ]
    text_aware = tatitok_config(workspace, text_encoder=str(tmp_path / "clip" / "final"))
    text_aware["model"]["config"]["text_hidden_size"] = 32
    assert (
        build_trainer(load_recipe_config(text_aware), str(tmp_path / "tatitok"))
        .model.helper("text_encoder", torch.device("cpu"))
        .config.hidden_size
        == 32
    )
