"""The paper's 512x512 models (never released): presets with their parameter counts, the MaskGIT-VQGAN at 512,
a tiny 512-shaped pipeline end to end, one training step of each shipped 512 recipe, and generator class tables
resized for fine-tuning."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from hf_titok import (
    MaskGITVQGAN,
    MaskGITVQGANConfig,
    TiTokConfig,
    TiTokMaskGIT,
    TiTokMaskGITConfig,
    TiTokMaskGITScheduler,
    TiTokPipeline,
    TiTokTokenizer,
)
from hf_titok.releases import GENERATOR_PRESETS, PAPER_RESULTS_512, TOKENIZER_PRESETS
from hf_titok.training import load_recipe_config, train
from hf_titok.training.builders import load_vqgan_at
from hf_titok.training.config import CONFIGS_DIR as CONFIGS  # the configs shipped in the package

PRESETS_512 = ("titok_l64_512", "titok_b128_512")
# Tiny widths and depths; the geometry (512x512, patch 16, the preset's token count) stays the preset's.
TINY_VIT = dict(
    encoder_hidden_size=32,
    encoder_num_layers=1,
    encoder_num_heads=2,
    decoder_hidden_size=32,
    decoder_num_layers=1,
    decoder_num_heads=2,
)
TINY_VQGAN = dict(
    hidden_channels=8, channel_mult=[1, 1, 2, 2, 4], num_res_blocks=1, z_channels=8, codebook_size=64, norm_num_groups=4
)  # five levels: downsampling 16, as the MaskGIT-VQGAN
TINY_GENERATOR = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_tokenizer(name: str) -> TiTokTokenizer:
    with torch.device("meta"):
        return TiTokTokenizer(TiTokConfig.from_preset(name))


@pytest.mark.parametrize("name, base", [("titok_l64_512", "titok_l32"), ("titok_b128_512", "titok_b64")])
def test_512_tokenizer_presets_against_the_paper(name, base):
    preset = TOKENIZER_PRESETS[name]
    assert not preset.released and preset.image_size == 512 and preset.family == "two_stage"
    model, released = meta_tokenizer(name), meta_tokenizer(base)
    config = model.config
    assert config.decoder_grid_size == config.pixel_decoder_config.grid_size == 32  # 32x32 proxy codes
    # The same ViTs as the released 256 model of the same sizes; only the position embeddings of 1024 patches
    # (encoder: +1 class token row) and the extra latent tokens (encoder: tokens + positions; decoder: positions).
    width, extra_tokens = config.encoder_hidden_size, config.num_latent_tokens - released.config.num_latent_tokens
    extra = 2 * (32**2 - 16**2) * width + 3 * extra_tokens * width
    assert parameters(model) - parameters(released) == extra
    paper = PAPER_RESULTS_512[name]["tokenizer params (M)"] * 1e6
    assert abs(parameters(model) - paper) / paper < 0.025  # 642.73 M vs ~644 M; 206.14 M vs ~202 M (README)


@pytest.mark.parametrize("name", PRESETS_512)
def test_512_generator_presets(name):
    preset = GENERATOR_PRESETS[name]
    config = TiTokMaskGITConfig.from_preset(name)
    tokenizer = TiTokConfig.from_preset(name)
    assert not preset.released and config.num_latent_tokens == tokenizer.num_latent_tokens
    config.check_tokenizer(tokenizer)
    with torch.device("meta"):
        count = parameters(TiTokMaskGIT(config))
    scheduler = TiTokMaskGITScheduler.from_preset(name)
    assert scheduler.config.num_inference_steps == PAPER_RESULTS_512[name]["sampling steps"]
    if name == "titok_l64_512":  # the paper's 177 M MaskGIT-ViT
        assert config.architecture == "bert" and round(count / 1e6) == PAPER_RESULTS_512[name]["generator params (M)"]
    else:
        assert config.architecture == "uvit" and config.hidden_size == 1024  # MaskGIT-UViT-L


def test_the_256_vqgan_runs_at_512(tmp_path):
    torch.manual_seed(0)
    MaskGITVQGAN(MaskGITVQGANConfig(image_size=256, **TINY_VQGAN)).save_pretrained(tmp_path / "vqgan")
    vqgan = load_vqgan_at(str(tmp_path / "vqgan"), 512).eval()
    assert vqgan.config.image_size == 512 and vqgan.config.grid_size == 32
    original = MaskGITVQGAN.from_pretrained(tmp_path / "vqgan")
    assert all(torch.equal(a, b) for a, b in zip(vqgan.state_dict().values(), original.state_dict().values()))
    with torch.no_grad():
        codes = vqgan.encode(torch.rand(1, 3, 512, 512)).codes
        assert codes.shape == (1, 32 * 32)
        assert vqgan.decode(codes).shape == (1, 3, 512, 512)
    with pytest.raises(ValueError, match="256x256"):
        original.encode(torch.rand(1, 3, 512, 512))


@pytest.mark.parametrize("name", PRESETS_512)
def test_tiny_512_pipeline_encodes_generates_and_decodes(name):
    torch.manual_seed(0)
    tokenizer = TiTokTokenizer(
        TiTokConfig.from_preset(name, **TINY_VIT, pixel_decoder_config=dict(image_size=512, **TINY_VQGAN))
    ).eval()
    generator = TiTokMaskGIT(TiTokMaskGITConfig.from_preset(name, **TINY_GENERATOR, num_classes=10)).eval()
    pipe = TiTokPipeline(vqvae=tokenizer, transformer=generator, scheduler=TiTokMaskGITScheduler.from_preset(name))
    tokens = TiTokConfig.from_preset(name).num_latent_tokens
    images = pipe(
        class_labels=[3, 7], num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="pt"
    ).images
    assert images.shape == (2, 3, 512, 512) and images.min() >= 0 and images.max() <= 1
    with torch.no_grad():
        ids = tokenizer.encode(images).token_ids
        assert ids.shape == (2, tokens) and ids.dtype == torch.long
        assert tokenizer.decode(ids).shape == (2, 3, 512, 512)
    ids = pipe(
        class_labels=[3], num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="latent"
    ).images
    assert ids.shape == (1, tokens)


def image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(3):
            PIL.Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


def one_step(path: Path, output: Path, *overrides: str):
    common = [
        "training.max_steps=1",
        "training.per_device_train_batch_size=2",
        "training.warmup_steps=0",
        "training.save_steps=1000",
        "training.image_log_steps=0",
        "training.use_cpu=true",
        "training.disable_tqdm=true",
    ]
    return train(load_recipe_config(path, [*common, *overrides]), output_dir=str(output))


@pytest.mark.parametrize("name", PRESETS_512)
def test_one_step_of_each_512_recipe(name, tmp_path):
    images = image_folder(tmp_path / "images")
    torch.manual_seed(0)
    MaskGITVQGAN(MaskGITVQGANConfig(image_size=256, **TINY_VQGAN)).save_pretrained(tmp_path / "vqgan")  # as converted
    tiny_vqgan = "{" + ", ".join(f"{key}: {value}" for key, value in TINY_VQGAN.items()) + ", image_size: 512}"
    tiny_vit = (
        "{"
        + ", ".join(f"{key}: {value}" for key, value in TINY_VIT.items())
        + f", pixel_decoder_config: {tiny_vqgan}}}"
    )
    tiny_generator = "{" + ", ".join(f"{key}: {value}" for key, value in TINY_GENERATOR.items()) + "}"

    stage1 = one_step(
        CONFIGS / f"{name}_stage1.yaml",
        tmp_path / "stage1",
        f"model.config={tiny_vit}",
        f"teacher={tmp_path / 'vqgan'}",
        f"data.source={images}",
    )
    assert stage1.state.global_step == 1 and np.isfinite(stage1.state.log_history[-1]["train_loss"])
    stage1_model = TiTokTokenizer.from_pretrained(tmp_path / "stage1" / "final")
    assert stage1_model.config.image_size == 512 and stage1_model.config.decoder_grid_size == 32

    stage2 = one_step(
        CONFIGS / f"{name}_stage2.yaml",
        tmp_path / "stage2",
        f"model.init_from={tmp_path / 'stage1' / 'final'}",
        f"model.pixel_decoder_from={tmp_path / 'vqgan'}",
        f"data.source={images}",
        "discriminator={hidden_channels: 8, channel_mult: [1, 2], num_groups: 4, pool_size: 4}",
    )
    assert stage2.state.global_step == 1
    tokenizer = TiTokTokenizer.from_pretrained(tmp_path / "stage2" / "final")
    assert tokenizer.pixel_decoder is not None and tokenizer.config.pixel_decoder_config.grid_size == 32

    generator = one_step(
        CONFIGS / f"{name}_generator.yaml",
        tmp_path / "generator",
        f"model.config={tiny_generator}",
        f"tokenizer={tmp_path / 'stage2' / 'final'}",
        "data.pretokenized=null",
        f"data.source={images}",
    )
    assert generator.state.global_step == 1
    pipe = TiTokPipeline.from_pretrained(tmp_path / "generator" / "final")
    expected = TiTokMaskGITScheduler.from_preset(name).config
    assert all(
        pipe.scheduler.config[key] == expected[key] for key in ("num_inference_steps", "guidance_scale", "temperature")
    )
    ids = pipe(class_labels=[1], num_inference_steps=2, output_type="latent").images
    assert ids.shape == (1, TiTokConfig.from_preset(name).num_latent_tokens)


def test_512_recipe_refuses_a_256_crop(tmp_path):
    with pytest.raises(ValueError, match="data.crop_size=256 differs from the model's image_size=512"):
        one_step(
            CONFIGS / "titok_l64_512_stage1.yaml",
            tmp_path / "out",
            "data.crop_size=256",
            f"data.source={image_folder(tmp_path / 'images')}",
            "teacher=unused",
        )


def test_a_generator_preset_without_sampling_samples_with_the_preset():
    from hf_titok.training.builders import sampling_scheduler

    class Run:
        config = {"model": {"preset": "titok_b128_512"}}

    assert sampling_scheduler(Run).config.num_inference_steps == 64
    Run.config = {"model": {"preset": "titok_b128_512"}, "sampling": {"num_inference_steps": 12}}
    assert (
        sampling_scheduler(Run).config.num_inference_steps == 12
        and sampling_scheduler(Run).config.guidance_scale == 6.9
    )


# ---------------------------------------------------------------------------------------------------------
# New class tables for fine-tuning
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_classes, num_classes", [(True, 7), (True, 3), (False, 4)])
def test_resize_class_embeddings(keep_classes, num_classes):
    torch.manual_seed(0)
    model = TiTokMaskGIT(
        TiTokMaskGITConfig(codebook_size=16, num_latent_tokens=4, num_classes=5, **TINY_GENERATOR)
    ).eval()
    old, config = model.embed_tokens.weight.detach().clone(), model.config
    old_null, old_classes = old[config.null_class_id], old[config.class_token_offset : config.class_token_offset + 5]
    model.resize_class_embeddings(num_classes, keep_classes=keep_classes)
    new = model.embed_tokens.weight
    assert config.num_classes == num_classes and new.shape == (16 + num_classes + 2, 32)
    assert torch.equal(new[:17], old[:17])  # image ids and the mask id
    assert torch.equal(new[config.null_class_id], old_null)  # the unconditional embedding of guidance
    kept = min(5, num_classes) if keep_classes else 0
    classes = new[config.class_token_offset : config.class_token_offset + num_classes]
    assert torch.equal(classes[:kept], old_classes[:kept])
    assert torch.allclose(classes[kept:], old_classes.mean(0).expand(num_classes - kept, -1))
    assert new.requires_grad
    logits = model(torch.full((2, 4), 16), torch.tensor([num_classes - 1, num_classes])).logits
    assert logits.shape == (2, 4, 16)
    with pytest.raises(ValueError, match="class_labels must lie in"):
        model(torch.full((1, 4), 16), torch.tensor([num_classes + 1]))
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        model.resize_class_embeddings(0)
