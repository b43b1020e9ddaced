"""The built-in Fashion-MNIST RAR: autoregressive over the 32 1-D tokens of the built-in TiTok tokenizer, shipped
inside the package; loads offline, its tokenizer is the built-in TiTok's, sampling is reproducible and
class-conditional, the KV cache changes nothing, and the demo, the command line and the evaluation script use it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import hf_titok
from hf_titok import RARPipeline, TiTokPipeline, TiTokTokenizer
from hf_titok.cli import main as cli
from hf_titok.data.fashion_mnist import FASHION_MNIST_CLASSES

from conftest import assert_builtin_folder, tiny_rar_pipeline

PACKAGE_SCRIPT = Path(__file__).resolve().parent.parent / "training" / "fashion_mnist" / "package_model.py"


@pytest.fixture(scope="module")
def pipe():
    pipeline = RARPipeline.from_pretrained(hf_titok.FASHION_MNIST_RAR_PIPELINE)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_ships_inside_the_package_over_the_builtin_titok_tokens(pipe):
    assert_builtin_folder(hf_titok.FASHION_MNIST_RAR_PIPELINE, max_megabytes=25)
    assert [pipe.id2label[i] for i in range(10)] == FASHION_MNIST_CLASSES
    assert pipe.transformer.dtype == torch.float32  # stored in float16, loaded as float32
    # Its tokenizer is the built-in TiTok's, weight for weight: the ids it generates are that tokenizer's.
    titok = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE).vqvae
    assert isinstance(pipe.vqvae, TiTokTokenizer)
    assert pipe.transformer.config.num_latent_tokens == titok.config.num_latent_tokens == 32
    assert pipe.transformer.config.codebook_size == titok.config.codebook_size
    own, builtin = pipe.vqvae.state_dict(), titok.state_dict()
    assert own.keys() == builtin.keys() and all(torch.equal(own[k], builtin[k]) for k in own)


def test_same_seed_same_images_with_and_without_the_cache(pipe):
    def sample(seed, **kwargs):
        generator = torch.Generator().manual_seed(seed)
        return pipe(["Trouser", "Bag"], num_images_per_label=2, generator=generator, output_type="latent", **kwargs)

    ids = sample(3).images
    assert ids.shape == (4, 32) and ids.dtype == torch.long and int(ids.max()) < pipe.vqvae.config.codebook_size
    assert torch.equal(ids, sample(3).images) and not torch.equal(ids, sample(4).images)
    assert torch.equal(ids, sample(3, use_cache=False).images)


def test_samples_depend_on_the_class(pipe):
    """A class-conditional model: the images of one class are closer to each other than to another class's."""
    images = pipe(
        ["Trouser", "Sandal"], num_images_per_label=8, generator=torch.Generator().manual_seed(0), output_type="np"
    ).images.reshape(2, 8, -1)
    means = images.mean(1)
    within = np.abs(images - means[:, None]).mean()
    between = np.abs(means[0] - means[1]).mean()
    assert between > within / 2, (between, within)


def test_generate_uses_it_by_model_path(tmp_path, capsys):
    output = tmp_path / "rar.png"
    assert (
        cli(
            [
                "generate",
                "--model",
                hf_titok.FASHION_MNIST_RAR_PIPELINE,
                "--num-per-label",
                "1",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out and output.is_file()


def test_packaging_a_rar_pipeline_sets_its_settings_and_strips_the_code(tmp_path):
    """training/fashion_mnist/package_model.py with a RAR pipeline: RAR's settings (a sweep's or flags), the
    generator in float16 loading as float32, no code copies (the installed package loads it), RAR's card."""

    tiny_rar_pipeline().save_pretrained(tmp_path / "trained")
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"sweep_best": {"guidance_scale": 3.0, "guidance_scale_pow": 1.0, "temperature": 0.9}}))
    script = Path(__file__).resolve().parent.parent / "training" / "fashion_mnist" / "package_model.py"
    command = [
        sys.executable,
        str(script),
        "--pipeline",
        str(tmp_path / "trained"),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    result = subprocess.run(
        command + ["--settings", str(sweep), "--temperature", "0.8"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    shipped = RARPipeline.from_pretrained(tmp_path / "out")
    assert shipped.sampling_settings() == {"guidance_scale": 3.0, "guidance_scale_pow": 1.0, "temperature": 0.8}
    assert shipped.transformer.dtype == torch.float32
    weights = load_file(str(tmp_path / "out" / "transformer" / "model.safetensors"))
    assert all(value.dtype == torch.float16 for value in weights.values() if value.is_floating_point())
    assert not list((tmp_path / "out").rglob("*.py"))
    assert json.loads((tmp_path / "out" / "model_index.json").read_text())["transformer"][0].startswith("hf_titok.")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "RAR over TiTok's 1-D tokens" in card and "guidance 3.0 (power 1.0)" in card
    # MaskGIT's settings are refused by name.
    result = subprocess.run(command + ["--steps", "4"], capture_output=True, text=True)
    assert result.returncode == 2 and "RARScheduler has no setting num_inference_steps" in result.stderr
