"""The built-in tokenizer that decodes prefixes (the built-in TiTok's decoder fine-tuned with Tail Token Drop):
ships inside the package, gives the built-in tokenizer's ids (its encoder and codebook are those, frozen), decodes
any prefix of them with quality growing with the tokens kept, where the plain tokenizer refuses."""

import copy
from pathlib import Path

import pytest
import torch

import hf_titok
from hf_titok import TiTokImageProcessor, TiTokPipeline, TiTokTokenizer
from hf_titok.data.fashion_mnist import demo_test_images
from hf_titok.evaluation.metrics import psnr
from hf_titok.models.titok.image_processing_titok import to_float, to_uint8

from conftest import assert_builtin_folder


@pytest.fixture(scope="module")
def tokenizer() -> TiTokTokenizer:
    return TiTokTokenizer.from_pretrained(hf_titok.FASHION_MNIST_PREFIX_TOKENIZER).eval()


@pytest.fixture(scope="module")
def pixel_values() -> torch.Tensor:
    images, _ = demo_test_images()
    processor = TiTokImageProcessor.from_pretrained(hf_titok.FASHION_MNIST_PREFIX_TOKENIZER)
    return processor(list(images), return_tensors="pt")["pixel_values"]


def test_ships_inside_the_package_with_the_builtin_tokenizers_ids(tokenizer, pixel_values):
    assert_builtin_folder(hf_titok.FASHION_MNIST_PREFIX_TOKENIZER, max_megabytes=12)
    assert tokenizer.config.prefix_decoding and tokenizer.config.num_latent_tokens == 32
    builtin = TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE).vqvae
    with torch.no_grad():
        assert torch.equal(tokenizer.encode(pixel_values).token_ids, builtin.encode(pixel_values).token_ids)
    with pytest.raises(ValueError, match="this tokenizer was not trained to decode a prefix"):
        builtin.decode(builtin.encode(pixel_values).token_ids[:, :8])


def prefix_psnr(tokenizer, ids, pixel_values, lengths=(1, 2, 4, 8, 16, 32)) -> list[float]:
    return [float(psnr(to_float(to_uint8(tokenizer.decode(ids[:, :k]))), pixel_values).mean()) for k in lengths]


@torch.no_grad()
def test_quality_grows_with_the_tokens_kept_and_beats_a_plain_decoder(tokenizer, pixel_values):
    """Measured on these 30 images: 13.0, 14.4, 16.1, 18.5, 19.6, 21.7 dB from 1, 2, 4, 8, 16, 32 tokens; the
    built-in decoder, made to decode prefixes it was not trained for, 10.8, 11.4, 12.0, 15.0, 16.7, 22.7 dB (the
    10k test split: README "Variable-length tokens")."""
    ids = tokenizer.encode(pixel_values).token_ids
    values = prefix_psnr(tokenizer, ids, pixel_values)
    assert values == sorted(values) and values[-1] - values[0] > 6.0, values
    assert values[0] > 12.0, values  # one token already gives a coarse garment, far from noise
    plain = copy.deepcopy(TiTokPipeline.from_pretrained(hf_titok.FASHION_MNIST_PIPELINE).vqvae)
    plain.config.prefix_decoding = True  # switched off its refusal, to measure what the refusal protects from
    baseline = prefix_psnr(plain, ids, pixel_values)
    assert all(ours > theirs + 1.5 for ours, theirs in zip(values[:-1], baseline[:-1])), (values, baseline)
    assert abs(values[-1] - baseline[-1]) < 1.5, (values, baseline)  # the full sequence costs under 1.5 dB


def test_packaging_script_ships_a_prefix_tokenizer_with_its_curve(tmp_path):
    """training/fashion_mnist/package_prefix_tokenizer.py: the tokenizer and its processor without code copies, the
    card with an evaluate_prefixes.py table; a tokenizer that does not decode prefixes is refused."""
    import json
    import subprocess
    import sys

    from conftest import tiny_titok_config

    script = Path(__file__).resolve().parent.parent / "training" / "fashion_mnist" / "package_prefix_tokenizer.py"
    processor = TiTokImageProcessor.for_image_size(32)
    for name, prefix in (("plain", False), ("prefix", True)):
        TiTokTokenizer(tiny_titok_config("single_vq", prefix_decoding=prefix)).save_pretrained(tmp_path / name)
        processor.save_pretrained(tmp_path / name)
    rows = [{"num_tokens": k, "psnr": 10.0 + k, "ssim": 0.1 * k} for k in (1, 2, 4, 8)]
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"num_images": 7, "curves": {"Tail Token Drop": rows, "built-in": rows}}))

    def package(name):
        command = [sys.executable, str(script), "--tokenizer", str(tmp_path / name), "--output-dir"]
        return subprocess.run(
            command + [str(tmp_path / f"out_{name}"), "--report", str(report)], capture_output=True, text=True
        )

    refused = package("plain")
    assert refused.returncode == 2 and "does not decode prefixes" in refused.stderr
    assert not (tmp_path / "out_plain").exists()
    result = package("prefix")
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "out_prefix"
    assert not list(out.glob("*.py")) and "auto_map" not in (out / "config.json").read_text()
    assert TiTokTokenizer.from_pretrained(out).config.prefix_decoding
    assert TiTokImageProcessor.from_pretrained(out).crop_size["height"] == 32
    card = (out / "README.md").read_text()
    assert "| 8 | 18.00 dB / 0.800 | 18.00 dB / 0.800 |" in card and "7 test images" in card
