"""The built-in Fashion-MNIST pipeline: loads offline, is reproducible, reconstructs well, and the demo runs."""

import argparse
import importlib.util
import json
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
from hf_titok.data.fashion_mnist import FASHION_MNIST_CLASSES, demo_test_images
from hf_titok.evaluation.metrics import psnr

from conftest import assert_builtin_folder

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pipe():
    pipeline = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_ships_inside_the_package_and_loads_offline(pipe):
    assert_builtin_folder(hf_titok.FASHION_MNIST_PIPELINE, max_megabytes=25)
    assert [pipe.id2label[i] for i in range(10)] == FASHION_MNIST_CLASSES
    assert pipe.vqvae.config.image_size == 32 and pipe.get_label_ids("sneaker") == [7]


def test_same_seed_same_images(pipe):
    a = pipe(
        ["Trouser", "Bag"], num_images_per_label=2, generator=torch.Generator().manual_seed(3), output_type="np"
    ).images
    b = pipe(
        ["Trouser", "Bag"], num_images_per_label=2, generator=torch.Generator().manual_seed(3), output_type="np"
    ).images
    c = pipe(
        ["Trouser", "Bag"], num_images_per_label=2, generator=torch.Generator().manual_seed(4), output_type="np"
    ).images
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@torch.no_grad()
def test_test_images_reconstruct_above_the_psnr_floor(pipe):
    images, _ = demo_test_images()
    pixel_values = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    ids = pipe.vqvae.encode(pixel_values).token_ids
    assert ids.shape == (30, pipe.vqvae.config.num_latent_tokens)
    reconstruction = pipe.vqvae.decode(ids).clamp(0, 1)
    # The shipped model measures 22.71 dB on the whole 10k test split (uint8 outputs) and 22.66 dB on these 30
    # images; the floor is the aim of 22 dB.
    assert float(psnr(reconstruction, pixel_values).mean()) > 22.0


def test_demo_writes_its_three_images(tmp_path):
    """What `make demo` runs, with a small grid: class-conditional samples (MaskGIT and RAR), reconstructions and text
    to image."""
    makefile = (PROJECT / "Makefile").read_text()
    assert "-m hf_titok.demo" in makefile
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_titok.demo",
            "--output-dir",
            str(tmp_path),
            "--samples-per-class",
            "2",
            "--reconstructions",
            "10",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    samples, rar_samples, reconstructions, prefix_reconstructions, text_samples = (
        PIL.Image.open(tmp_path / name)
        for name in (
            "samples.png",
            "rar_samples.png",
            "reconstructions.png",
            "prefix_reconstructions.png",
            "text_samples.png",
        )
    )
    assert prefix_reconstructions.size[0] > 7 * 64 and prefix_reconstructions.size[1] > 6 * 64  # input + 6 prefixes
    assert samples.size[1] > 10 * 64 and samples.size[0] > 2 * 64
    assert rar_samples.size == samples.size  # the same grid: a row per class
    assert reconstructions.size[0] > 10 * 64
    assert text_samples.size[1] > 10 * 64 and text_samples.size[0] > 2 * 64  # a row per prompt, labelled
    assert "tokens each, PSNR" in result.stdout and "10 prompts x 2 samples" in result.stdout


def test_cli_uses_the_builtin_model_by_default(pipe, tmp_path, capsys):
    assert cli(["generate", "--num-per-label", "1", "--output", str(tmp_path / "grid.png")]) == 0
    assert "wrote" in capsys.readouterr().out and PIL.Image.open(tmp_path / "grid.png").size[1] > 10 * 32
    image = tmp_path / "shoe.png"
    PIL.Image.fromarray(demo_test_images()[0][21]).save(image)
    assert cli(["reconstruct", str(image), "--output-dir", str(tmp_path / "recon")]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{image}: "))
    num_tokens = pipe.vqvae.config.num_latent_tokens
    _, count, ids = line.split(": ")
    assert count == f"{num_tokens} tokens" and len(ids.split()) == num_tokens


def test_packaging_takes_the_sweep_best_settings_and_writes_the_card(tmp_path):
    """training/fashion_mnist/package_model.py: the sweep's best settings become the shipped defaults."""
    sweep = tmp_path / "sweep.json"
    sweep.write_text(
        json.dumps(
            {
                "sweep_best": {
                    "num_inference_steps": 6,
                    "guidance_scale": 1.5,
                    "guidance_schedule": "constant",
                    "temperature": 3.0,
                }
            }
        )
    )
    builtin = json.loads((Path(hf_titok.FASHION_MNIST_PIPELINE) / "scheduler" / "scheduler_config.json").read_text())
    shipped_settings = {
        "num_inference_steps": 6,
        "guidance_scale": 1.5,
        "guidance_schedule": "constant",
        "guidance_scale_pow": builtin["guidance_scale_pow"],
        "temperature": 2.5,
        "softmax_temperature_annealing": True,
    }
    gfid = tmp_path / "gfid.json"
    gfid.write_text(
        json.dumps(
            {
                "protocol": "generation",
                "fid": 12.345,
                "num_images": 100,
                "per_class": 10,
                "seed": 0,
                "reference": "test_reference.npz (10000 images)",
                "sampling": shipped_settings,
            }
        )
    )
    script = [
        sys.executable,
        str(PROJECT / "training" / "fashion_mnist" / "package_model.py"),
        "--pipeline",
        hf_titok.FASHION_MNIST_PIPELINE,
        "--output-dir",
        str(tmp_path / "shipped"),
    ]
    result = subprocess.run(
        script + ["--settings", str(sweep), "--temperature", "2.5", "--fid-reports", str(gfid)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((tmp_path / "shipped" / "scheduler" / "scheduler_config.json").read_text())
    assert (
        config["num_inference_steps"],
        config["guidance_scale"],
        config["guidance_schedule"],
        config["temperature"],
    ) == (6, 1.5, "constant", 2.5)  # a flag wins over the sweep
    card = (tmp_path / "shipped" / "README.md").read_text()
    assert "Default sampling: 6 steps, guidance 1.5 (constant), temperature\n2.5" in card and "**gFID 12.35**" in card
    assert "no Inception Score" in card
    shipped = TiTokPipeline.from_pretrained(tmp_path / "shipped")
    assert shipped.transformer.dtype == torch.float32 and shipped.scheduler.config.num_inference_steps == 6
    assert "num_inference_steps" not in json.loads((tmp_path / "shipped" / "transformer" / "config.json").read_text())

    result = subprocess.run(script, capture_output=True, text=True)
    assert result.returncode == 2
    assert "no value for num_inference_steps, guidance_scale, guidance_schedule, temperature" in result.stderr
    # A report of samples made with other settings than the shipped defaults would mislabel the card.
    result = subprocess.run(
        script + ["--settings", str(sweep), "--fid-reports", str(gfid)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert f"{gfid} was measured with sampling settings" in result.stderr and "'temperature': 3.0" in result.stderr
    assert (tmp_path / "shipped" / "README.md").read_text() == card  # the refused run left the packaged model alone


def fashion_mnist_evaluate():
    """training/fashion_mnist/evaluate.py as a module (not importable by name: `evaluate` is 🤗 Evaluate's)."""
    spec = importlib.util.spec_from_file_location(
        "fmnist_evaluate", PROJECT / "training" / "fashion_mnist" / "evaluate.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_rule_picks_the_closest_to_the_data_among_those_as_recognisable_as_real_images():
    module = fashion_mnist_evaluate()
    rows = [
        {"settings": {"id": 1}, "class_consistency_mean": 0.99, "classifier_frechet_distance": 20.0},
        {"settings": {"id": 2}, "class_consistency_mean": 0.92, "classifier_frechet_distance": 50.0},
        {"settings": {"id": 3}, "class_consistency_mean": 0.86, "classifier_frechet_distance": 40.0},
        {"settings": {"id": 4}, "class_consistency_mean": 0.70, "classifier_frechet_distance": 10.0},
    ]
    # Real test images: 0.88. id 1 is far more recognisable than real images (less varied), id 4 far less.
    assert module.best_settings(rows, target=0.88) == {"id": 3}
    assert module.best_settings(rows, target=0.95) == {"id": 1}
    assert module.best_settings(rows, target=0.95, tolerance=0.01) == {"id": 2}  # none within it: the closest


def test_a_sweep_extends_earlier_comparable_sweeps_only(tmp_path, capsys):
    module = fashion_mnist_evaluate()
    header = {"pipeline": "gen/final", "per_class": 100, "classifier_test_accuracy_mean": 0.88}

    def row(steps):
        return {
            "settings": {"num_inference_steps": steps},
            "class_consistency_mean": 0.9,
            "classifier_frechet_distance": 1.0,
        }

    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({**header, "sweep": [row(2), row(3)]}))
    second.write_text(json.dumps({**header, "sweep": [row(3), row(4)]}))
    parser = argparse.ArgumentParser()
    rows = module.earlier_sweep_rows(parser, argparse.Namespace(sweep_from=[first, second]), header)
    assert [r["settings"]["num_inference_steps"] for r in rows] == [2, 3, 4]  # each setting once
    for change, message in [
        ({"per_class": 50}, "per_class 50 (here 100)"),
        ({"pipeline": "other"}, "pipeline 'other'"),
        ({"classifier_test_accuracy_mean": 0.9}, "classifier_test_accuracy_mean 0.9 (here 0.88)"),
    ]:
        first.write_text(json.dumps({**header, **change, "sweep": [row(2)]}))
        with pytest.raises(SystemExit):
            module.earlier_sweep_rows(parser, argparse.Namespace(sweep_from=[first]), header)
        assert f"--sweep-from {first} is not comparable with this run: {message}" in capsys.readouterr().err
    first.write_text(json.dumps(header))
    with pytest.raises(SystemExit):
        module.earlier_sweep_rows(parser, argparse.Namespace(sweep_from=[first]), header)
    assert "has no sweep rows" in capsys.readouterr().err


def test_the_saved_processor_reproduces_the_training_preprocessing(pipe):
    """The built-in model was trained on 28x28 images zero-padded to 32x32 (prepare_data.py): its saved processor
    must prepare a raw 28x28 image exactly so (a resize instead would cost ~8 dB of reconstruction PSNR)."""
    from importlib import resources

    from hf_titok.data.fashion_mnist import to_rgb32
    from hf_titok.models.titok.image_processing_titok import to_uint8

    with resources.files("hf_titok.data").joinpath("fashion_mnist_test_samples.npz").open("rb") as file:
        raw = np.load(file)["images"]  # uint8 [30, 28, 28], as in the Fashion-MNIST files
    assert pipe.image_processor.do_pad and pipe.image_processor.image_size == 32
    pixel_values = pipe.image_processor([PIL.Image.fromarray(image) for image in raw], return_tensors="pt").pixel_values
    expected = torch.from_numpy(to_rgb32(raw)).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(pixel_values, expected)
    with torch.no_grad():
        reconstruction = pipe.vqvae.decode(pipe.vqvae.encode(pixel_values).tokens)
    assert float(psnr(to_uint8(reconstruction).float() / 255, expected).mean()) > 22.0  # 22.67 dB measured
    # The CLI and the Space take the same processor from the pipeline folder.
    from hf_titok.loaders import load_tokenizer

    _, processor = load_tokenizer(hf_titok.FASHION_MNIST_PIPELINE)
    assert processor.to_dict() == pipe.image_processor.to_dict()
