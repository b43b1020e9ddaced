"""Decoding from a prefix of the tokens with a tokenizer trained for it (`prefix_decoding`): the pipeline's
`num_decoded_tokens`, and `hf-titok encode --num-tokens` writing a compressed prefix file that `decode` reads with
the model it names. (Parity with the official One-D-Piece: test_parity_onedpiece.py; refusals: test_bad_input.py.)"""

import numpy as np
import PIL.Image
import pytest
import torch

from hf_titok import TiTokImageProcessor, TiTokPipeline, TiTokTokenizer
from hf_titok.cli import main as cli

from conftest import tiny_pipeline, tiny_titok_config


@pytest.fixture(scope="module")
def pipe() -> TiTokPipeline:
    base = tiny_pipeline()
    torch.manual_seed(1)
    vqvae = TiTokTokenizer(tiny_titok_config("two_stage", prefix_decoding=True)).eval()
    pipeline = TiTokPipeline(vqvae=vqvae, transformer=base.transformer, scheduler=base.scheduler)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_the_pipeline_decodes_a_prefix_of_what_it_generated(pipe):
    def run(**kwargs):
        return pipe([1, 2], generator=torch.Generator().manual_seed(0), **kwargs).images

    ids = run(output_type="latent")
    assert ids.shape == (2, 8)
    coarse = run(output_type="pt", num_decoded_tokens=3)
    with torch.no_grad():
        expected = pipe.vqvae.decode(ids[:, :3]).clamp(0, 1)
    torch.testing.assert_close(coarse, expected, atol=1e-6, rtol=0)
    assert not torch.equal(coarse, run(output_type="pt"))  # the full decode differs
    # output_type="latent" still returns every generated token.
    assert torch.equal(run(output_type="latent", num_decoded_tokens=3), ids)


def test_encode_writes_a_compressed_prefix_that_decode_reads_with_its_model(pipe, tmp_path, capsys):
    folder = tmp_path / "tokenizer"
    pipe.vqvae.save_pretrained(folder)
    TiTokImageProcessor.for_image_size(32).save_pretrained(folder)
    image = tmp_path / "image.png"
    PIL.Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(image)
    tokens = tmp_path / "ids.npz"
    assert cli(["encode", str(image), "--model", str(folder), "--output", str(tokens), "--num-tokens", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 of 8 tokens per image: 18 bits (2.25 bytes) per image" in out  # codebook 64: 6 bits per id
    with np.load(tokens) as data:
        assert data["token_ids"].shape == (1, 3) and data["token_ids"].dtype == np.uint8
        assert str(data["model"]) == str(folder) and int(data["codebook_size"]) == 64
        prefix = torch.from_numpy(data["token_ids"].astype(np.int64))
    with torch.no_grad():
        full = pipe.vqvae.encode(TiTokImageProcessor.for_image_size(32)(PIL.Image.open(image))["pixel_values"])
    assert torch.equal(prefix, full.token_ids[:, :3])
    # decode takes the model the file names (no --model), and writes the prefix's image.
    assert cli(["decode", str(tokens), "--output-dir", str(tmp_path / "decoded")]) == 0
    assert "from 3 tokens each" in capsys.readouterr().out
    decoded = np.asarray(PIL.Image.open(tmp_path / "decoded" / "image.png"))
    with torch.no_grad():
        expected = TiTokImageProcessor.for_image_size(32).postprocess(pipe.vqvae.decode(prefix), output_type="np")
    np.testing.assert_array_equal(decoded, (expected[0] * 255).astype(np.uint8))
