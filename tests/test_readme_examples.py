"""The README's Python fine-tuning examples, run as they are written there on tiny models in a scratch folder.

Each example is the fenced block after its `<!-- example: NAME -->` marker. Only its settings lines
(`NAME = value` at the top level) are changed, to tiny step counts and batches; everything else runs verbatim,
so the README cannot drift from code that works."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import load_file

from hf_titok import (
    TiTokConfig,
    TiTokImageProcessor,
    TiTokMaskGIT,
    TiTokMaskGITConfig,
    TiTokMaskGITScheduler,
    TiTokPipeline,
    TiTokTokenizer,
)
from hf_titok.data import imagenet_id2label

from conftest import readme_example, run_readme_example

VQGAN = dict(
    image_size=32,
    hidden_channels=16,
    channel_mult=[1, 1, 2, 2],
    num_res_blocks=1,
    z_channels=8,
    codebook_size=64,
    norm_num_groups=8,
)
TOKENIZER = dict(
    image_size=32,
    encoder_patch_size=8,
    decoder_patch_size=8,
    encoder_hidden_size=32,
    encoder_num_layers=1,
    encoder_num_heads=2,
    decoder_hidden_size=32,
    decoder_num_layers=1,
    decoder_num_heads=2,
    num_latent_tokens=8,
    token_size=8,
    codebook_size=32,
    decoder_head="proxy_codes",
    legacy_encoder_layout=True,
    use_l2_norm=True,
    pixel_decoder_config=VQGAN,
)
GENERATOR = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    codebook_size=32,
    num_latent_tokens=8,
    num_classes=1000,
)
NEW_CLASSES = ("cactus", "teapot", "violin")


def image_folder(root: Path, classes: tuple[str, ...], per_class: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            array = (rng.random((36, 44, 3)) * 60).astype(np.uint8)
            array[..., c % 3] += 150
            PIL.Image.fromarray(array).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Stand-ins for `hf-titok convert` outputs: a two-stage tokenizer folder and a 1000-class ImageNet pipeline."""
    root = tmp_path_factory.mktemp("readme")
    torch.manual_seed(0)
    tokenizer = TiTokTokenizer(TiTokConfig(**TOKENIZER)).eval()
    processor = TiTokImageProcessor.for_image_size(32)
    tokenizer.save_pretrained(root / "titok-l32")
    processor.save_pretrained(root / "titok-l32")
    generator = TiTokMaskGIT(TiTokMaskGITConfig(**GENERATOR)).eval()
    scheduler = TiTokMaskGITScheduler(num_inference_steps=2)
    TiTokPipeline(tokenizer, generator, scheduler, processor, id2label=imagenet_id2label()).save_pretrained(
        root / "titok-l32-pipeline"
    )
    image_folder(root / "my_images", ("a", "b"))
    image_folder(root / "my_labelled_images", NEW_CLASSES)
    return root


def test_finetune_tokenizer_example(converted, tmp_path, monkeypatch):
    for name in ("titok-l32", "titok-l32-pipeline", "my_images"):
        (tmp_path / name).symlink_to(converted / name)
    code = readme_example("finetune-tokenizer", STEPS=3, BATCH_SIZE=2)
    namespace = run_readme_example(code, tmp_path, monkeypatch)

    before, after = (
        load_file(converted / "titok-l32" / "model.safetensors"),
        load_file(tmp_path / "my-titok-l32" / "model.safetensors"),
    )
    frozen = [key for key in before if key.startswith(("encoder.", "quantizer."))]
    trained = [key for key in before if key.startswith(("decoder.", "pixel_decoder."))]
    assert frozen and all(torch.equal(before[key], after[key]) for key in frozen)
    assert any(not torch.equal(before[key], after[key]) for key in trained)
    card = (tmp_path / "my-titok-l32" / "README.md").read_text()
    assert "library_name: hf_titok" in card and "8 tokens" in card
    assert (tmp_path / "my-titok-l32" / "preprocessor_config.json").is_file()
    # The reload samples through the fine-tuned decoder.
    sampled_with = namespace["pipe"].vqvae.state_dict()
    assert all(torch.equal(sampled_with[key], after[key]) for key in after)
    assert PIL.Image.open(tmp_path / "tiger.png").size == (32, 32)


@pytest.mark.parametrize("keep_old_classes", [False, True])
def test_finetune_generator_example(converted, tmp_path, monkeypatch, keep_old_classes):
    for name in ("titok-l32-pipeline", "my_labelled_images"):
        (tmp_path / name).symlink_to(converted / name)
    code = readme_example("finetune-generator", STEPS=3, BATCH_SIZE=2, KEEP_OLD_CLASSES=keep_old_classes)
    namespace = run_readme_example(code, tmp_path, monkeypatch)

    reloaded = TiTokPipeline.from_pretrained(tmp_path / "my-titok-generator")
    first = 1000 if keep_old_classes else 0
    expected = {
        **(imagenet_id2label() if keep_old_classes else {}),
        **{first + i: n for i, n in enumerate(NEW_CLASSES)},
    }
    assert reloaded.id2label == expected
    assert reloaded.transformer.config.num_classes == len(expected)
    assert reloaded.transformer.embed_tokens.num_embeddings == 32 + len(expected) + 2
    original = TiTokPipeline.from_pretrained(converted / "titok-l32-pipeline").transformer
    table, old = reloaded.transformer.embed_tokens.weight, original.embed_tokens.weight
    if keep_old_classes:  # no ImageNet image was seen: those class rows got no gradient and are unchanged
        assert torch.equal(table[33:1033], old[33:1033])
    card = (tmp_path / "my-titok-generator" / "README.md").read_text()
    first_two = [name.split(",")[0].strip() for name in list(expected.values())[:2]]
    assert f"class_labels={first_two!r}" in card  # its usage snippet samples classes of this table by name
    assert PIL.Image.open(tmp_path / "my_sample.png").size == (32, 32)
    # The sample was drawn for the first new class, by name.
    assert namespace["new_names"] == list(NEW_CLASSES)


def test_examples_name_only_real_settings():
    with pytest.raises(AssertionError, match="no setting"):
        readme_example("finetune-tokenizer", NOT_A_SETTING=1)
