"""The command line with TA-TiTok and MaskGen: `convert` of every family kind (and the open_clip text tower),
`generate --prompt`, `reconstruct`/`decode --prompt`, and their errors - offline, on the tiny fixtures."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPTextModelWithProjection

from hf_titok import MaskGenPipeline, TATiTokTokenizer
from hf_titok.cli import main
from hf_titok.releases import RELEASES

VQ_GENERATOR = RELEASES["maskgen_vq_l"].repo_id
VQ_TOKENIZER = RELEASES["tatitok_bl128_vq"].repo_id


def image_files(folder, count=2):
    paths = []
    for index in range(count):
        path = folder / f"image{index}.png"
        PIL.Image.fromarray(np.random.default_rng(index).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_convert_clip_text_tower_loads_with_transformers_alone(family, tmp_path, capsys):
    weights = tmp_path / "open_clip.safetensors"
    save_file(family.weights("clip_text"), str(weights))
    code = main(
        [
            "convert",
            "--kind",
            "clip-text",
            "--config",
            str(family.config_path("clip_text")),
            "--weights",
            str(weights),
            "--output-dir",
            str(tmp_path / "clip"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    model = CLIPTextModelWithProjection.from_pretrained(tmp_path / "clip")
    assert not (tmp_path / "clip" / "preprocessor_config.json").exists()
    io = family.io("clip_text")
    with torch.no_grad():
        out = model(io["input_ids"], output_hidden_states=True)
    torch.testing.assert_close(out.hidden_states[-2], io["maskgen_condition"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.text_embeds, io["maskgen_condition_pooled"][:, 0], atol=1e-4, rtol=1e-4)


def test_convert_family_repos(family_cache, family, tmp_path, capsys):
    assert main(["convert", "--repo-id", VQ_TOKENIZER, "--output-dir", str(tmp_path / "tok")]) == 0
    from transformers import AutoModel

    tokenizer = AutoModel.from_pretrained(tmp_path / "tok")
    assert isinstance(tokenizer, TATiTokTokenizer)
    card = (tmp_path / "tok" / "README.md").read_text()
    assert "rFID | 1.53" in card and "text_embeddings=text" in card
    assert main(["convert", "--release", "maskgen_vq_l", "--output-dir", str(tmp_path / "pipe")]) == 0
    assert "MaskGenPipeline" in capsys.readouterr().out
    pipe = MaskGenPipeline.from_pretrained(tmp_path / "pipe")
    for key, value in family.model("maskgen_vq").state_dict().items():
        assert torch.equal(pipe.transformer.state_dict()[key], value), key
    card = (tmp_path / "pipe" / "README.md").read_text()
    assert "MJHQ-30K FID | 7.74" in card and "GenEval | 0.53" in card and "pipeline_tag: text-to-image" in card


def test_generate_from_prompts(family_cache, tmp_path, capsys):
    output = tmp_path / "grid.png"
    code = main(
        [
            "generate",
            "--model",
            VQ_GENERATOR,
            "--prompt",
            "a jay",
            "a cabin in the snow",
            "--num-per-label",
            "2",
            "--steps",
            "4",
            "--guidance-schedule",
            "linear",
            "--output",
            str(output),
            "--out-dir",
            str(tmp_path / "pngs"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert PIL.Image.open(output).size[0] > 64 and len(list((tmp_path / "pngs").glob("*.png"))) == 4


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--prompt", "a jay", "--labels", "1"], "not both"),
        (["--prompt", "  "], "prompt 0 is empty"),
        (["--prompt", "a jay", "--guidance-schedule", "power-cosine"], "guidance_schedule must be one of"),
        (["--prompt", "a jay", "--aesthetic-score", "12"], "aesthetic_score must be a number in [0, 10]"),
        (["--prompt", "a jay", "--softmax-annealing"], "MaskGen always anneals"),
    ],
)
def test_generate_from_prompts_errors(family_cache, tmp_path, capsys, arguments, message):
    code = main(["generate", "--model", VQ_GENERATOR, "--output", str(tmp_path / "g.png"), *arguments])
    assert code == 2
    assert message in capsys.readouterr().err


def test_reconstruct_and_decode_with_a_prompt(family_cache, tmp_path, capsys):
    images = image_files(tmp_path)
    code = main(
        ["reconstruct", *images, "--model", VQ_TOKENIZER, "--prompt", "a photo", "--output-dir", str(tmp_path / "r")]
    )
    assert code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "r").glob("*_reconstruction.png"))) == 2
    assert main(["encode", *images, "--model", VQ_TOKENIZER, "--output", str(tmp_path / "ids.json")]) == 0
    ids = json.loads((tmp_path / "ids.json").read_text())["token_ids"]
    assert np.asarray(ids).shape == (2, 8)
    code = main(
        [
            "decode",
            str(tmp_path / "ids.json"),
            "--model",
            VQ_TOKENIZER,
            "--prompt",
            "one",
            "two",
            "--output-dir",
            str(tmp_path / "d"),
        ]
    )
    assert code == 0 and len(list((tmp_path / "d").glob("*.png"))) == 2
    capsys.readouterr()
    # TA-TiTok without text, or the wrong number of captions, or text for a TiTok tokenizer
    assert main(["reconstruct", *images, "--model", VQ_TOKENIZER, "--output-dir", str(tmp_path / "x")]) == 2
    assert "TA-TiTok decodes with text: give --prompt" in capsys.readouterr().err
    assert main(["reconstruct", *images, "--model", VQ_TOKENIZER, "--prompt", "a", "b", "c"]) == 2
    assert "one per image (got 3)" in capsys.readouterr().err
    assert main(["reconstruct", *images, "--prompt", "a photo"]) == 2  # the built-in TiTok model
    assert "not text-aware" in capsys.readouterr().err
