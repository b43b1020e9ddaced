"""The built-in Fashion-MNIST pipeline: loads offline, is reproducible, reconstructs well, and the demo runs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import hf_titok
from hf_titok import TiTokPipeline
from hf_titok.cli import main as cli
from hf_titok.demo import demo_test_images
from hf_titok.fashion_mnist import FASHION_MNIST_CLASSES
from hf_titok.metrics import psnr

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pipe():
    pipeline = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_ships_inside_the_package_and_loads_offline(pipe):
    folder = Path(hf_titok.FASHION_MNIST_PIPELINE)
    assert folder.is_relative_to(Path(hf_titok.__file__).parent)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= 25e6, f"{size / 1e6:.1f} MB"
    assert all(f.suffix != ".bin" for f in folder.rglob("*"))  # safetensors only
    assert [pipe.id2label[i] for i in range(10)] == FASHION_MNIST_CLASSES
    assert pipe.vqvae.config.image_size == 32 and pipe.get_label_ids("sneaker") == [7]
    assert (folder / "README.md").is_file()


def test_same_seed_same_images(pipe):
    a = pipe(["Trouser", "Bag"], num_images_per_label=2, generator=torch.Generator().manual_seed(3), output_type="np").images
    b = pipe(["Trouser", "Bag"], num_images_per_label=2, generator=torch.Generator().manual_seed(3), output_type="np").images
    c = pipe(["Trouser", "Bag"], num_images_per_label=2, generator=torch.Generator().manual_seed(4), output_type="np").images
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@torch.no_grad()
def test_test_images_reconstruct_above_the_psnr_floor(pipe):
    images, _ = demo_test_images()
    pixel_values = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    ids = pipe.vqvae.encode(pixel_values).token_ids
    assert ids.shape == (30, pipe.vqvae.config.num_latent_tokens)
    reconstruction = pipe.vqvae.decode(ids).clamp(0, 1)
    # Regression floor: the shipped model measures 19.2 dB on the whole test split (19.5 here); the issue's
    # target of 22 dB is not reached yet.
    assert float(psnr(reconstruction, pixel_values).mean()) > 20.0  # 20.84 dB when shipped


def test_demo_writes_both_images(tmp_path):
    """What `make demo` runs, with a small grid."""
    makefile = (PROJECT / "Makefile").read_text()
    assert "-m hf_titok.demo" in makefile
    result = subprocess.run([sys.executable, "-m", "hf_titok.demo", "--output-dir", str(tmp_path), "--samples-per-class", "2",
                             "--reconstructions", "10"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    samples, reconstructions = PIL.Image.open(tmp_path / "samples.png"), PIL.Image.open(tmp_path / "reconstructions.png")
    assert samples.size[1] > 10 * 64 and samples.size[0] > 2 * 64
    assert reconstructions.size[0] > 10 * 64
    assert "tokens each, PSNR" in result.stdout


def test_cli_uses_the_builtin_model_by_default(tmp_path, capsys):
    assert cli(["generate", "--num-per-label", "1", "--output", str(tmp_path / "grid.png")]) == 0
    assert "wrote" in capsys.readouterr().out and PIL.Image.open(tmp_path / "grid.png").size[1] > 10 * 32
    image = tmp_path / "shoe.png"
    PIL.Image.fromarray(demo_test_images()[0][21]).save(image)
    assert cli(["reconstruct", str(image), "--output-dir", str(tmp_path / "recon")]) == 0
    assert ": 32 tokens:" in capsys.readouterr().out
