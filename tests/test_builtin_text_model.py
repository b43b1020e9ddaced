"""The built-in Fashion-MNIST text-to-image pipeline: ships inside the package, loads offline with the classes users
expect (AutoTokenizer for its tokenizer), is reproducible, its TA-TiTok reconstructs with captions, and the command
line and the demo use it by default."""

import json
import subprocess
import sys
from pathlib import Path

import PIL.Image
import pytest
import torch
from transformers import AutoTokenizer, CLIPTextModelWithProjection

import hf_titok
from hf_titok import MaskGenPipeline, TATiTokTokenizer
from hf_titok.cli import main as cli
from hf_titok.data.fashion_mnist import demo_test_images, fashion_mnist_caption
from hf_titok.evaluation.metrics import psnr
from hf_titok.text_encoding import clip_text_features, tokenize_prompts

from conftest import assert_builtin_folder, tiny_maskgen_pipeline

# The shipped TA-TiTok measures 20.84 dB on the whole 10k test split (uint8 outputs, its card) and 20.97 dB on the
# 30 test images below; the floor leaves room for float differences between CPUs.
PSNR_FLOOR = 20.5


@pytest.fixture(scope="module")
def pipe():
    pipeline = MaskGenPipeline.from_pretrained(hf_titok.FASHION_MNIST_TEXT_PIPELINE)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_ships_inside_the_package_and_loads_offline(pipe):
    folder = Path(hf_titok.FASHION_MNIST_TEXT_PIPELINE)
    assert_builtin_folder(folder, max_megabytes=20)
    assert isinstance(pipe.vqvae, TATiTokTokenizer) and pipe.vqvae.config.image_size == 32
    assert pipe.transformer.dtype == torch.float32  # stored in float16, loaded as float32
    # The text encoder and its tokenizer load with transformers alone, as any CLIP text tower.
    assert isinstance(CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder"), CLIPTextModelWithProjection)
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    assert tokenizer.convert_ids_to_tokens(tokenizer("a sneaker")["input_ids"])[1:-1] == ["a</w>", "sneaker</w>"]


def test_a_prompt_gives_the_same_image_for_the_same_seed(pipe):
    first = pipe("a photo of a sneaker", generator=torch.Generator().manual_seed(0), output_type="pt").images
    again = pipe("a photo of a sneaker", generator=torch.Generator().manual_seed(0), output_type="pt").images
    other = pipe("a photo of a dress", generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert first.shape == (1, 3, 32, 32) and torch.equal(first, again) and not torch.equal(first, other)


def test_test_images_reconstruct_with_their_captions(pipe):
    """The shipped TA-TiTok's PSNR on these 30 test images (decoded with their test captions) stays near what its
    card reports for the whole test split."""
    images, labels = demo_test_images()
    pixel_values = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    captions = [fashion_mnist_caption(int(label), index, "test") for index, label in enumerate(labels)]
    text = clip_text_features(pipe.text_encoder, tokenize_prompts(pipe.tokenizer, captions)).tokenizer_text
    with torch.no_grad():
        reconstruction = pipe.vqvae.decode(pipe.vqvae.encode(pixel_values).token_ids, text_embeddings=text)
    assert float(psnr(reconstruction.clamp(0, 1), pixel_values).mean()) > PSNR_FLOOR


def test_generate_with_a_prompt_uses_it_by_default(tmp_path, capsys):
    assert (
        cli(["generate", "--prompt", "a photo of a bag", "--num-per-label", "2", "--output", str(tmp_path / "g.png")])
        == 0
    )
    assert "wrote" in capsys.readouterr().out and PIL.Image.open(tmp_path / "g.png").size[0] >= 2 * 32


def test_the_wheel_ships_every_built_in_model():
    """Each folder under `hf_titok/pretrained` is package data (a wheel without it fails the demo)."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    patterns = setup["options.package_data"]["hf_titok"].split()
    folders = [p.name for p in (Path(hf_titok.__file__).parent / "pretrained").iterdir() if p.is_dir()]
    assert "fashion_mnist_text" in folders
    for folder in folders:
        assert {f"pretrained/{folder}/*", f"pretrained/{folder}/*/*"} <= set(patterns), folder


def test_packaging_a_text_pipeline_sets_its_settings_and_strips_the_code(tmp_path):
    """training/fashion_mnist/package_text_model.py: the given settings as defaults, the generator stored in float16
    and loading as float32, no code copies (the installed package loads it), the card."""
    tiny_maskgen_pipeline("vq").save_pretrained(tmp_path / "trained")
    script = Path(__file__).resolve().parent.parent / "training" / "fashion_mnist" / "package_text_model.py"
    command = [
        sys.executable,
        str(script),
        "--pipeline",
        str(tmp_path / "trained"),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    result = subprocess.run(command + ["--steps", "4", "--guidance-scale", "2.0"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    shipped = MaskGenPipeline.from_pretrained(tmp_path / "out")
    settings = shipped.sampling_settings()
    assert (settings["num_inference_steps"], settings["guidance_scale"]) == (4, 2.0)
    assert shipped.transformer.dtype == torch.float32
    assert not list((tmp_path / "out").rglob("*.py"))
    assert json.loads((tmp_path / "out" / "model_index.json").read_text())["transformer"][0].startswith("hf_titok.")
    assert "# The built-in Fashion-MNIST text-to-image model" in (tmp_path / "out" / "README.md").read_text()
