"""TA-TiTok and MaskGen releases load directly from their Hub ids (converted in memory), offline: the tiny
official-format fixtures are laid out as the Hub cache of the official ids, with a tiny CLIP text encoder as
`openai/clip-vit-large-patch14-336`."""

import json
import logging

import pytest
import torch

from hf_titok import (
    MaskGenKLScheduler,
    MaskGenKLTransformer,
    MaskGenPipeline,
    MaskGenVQScheduler,
    MaskGenVQTransformer,
    TATiTokTokenizer,
    TiTokPipeline,
    TiTokTokenizer,
)
from hf_titok.conversion import direct
from hf_titok.releases import FAMILY_BIN_REPO, RELEASES

from conftest import populate_hub_cache

VQ_GENERATOR = RELEASES["maskgen_vq_l"].repo_id
KL_GENERATOR = RELEASES["maskgen_kl_l"].repo_id


def embeds(io, decoder_text) -> dict:
    return dict(
        prompt_embeds=io["condition"],
        pooled_prompt_embeds=io["condition_pooled"][:, 0],
        negative_prompt_embeds=io["null_condition"],
        negative_pooled_prompt_embeds=io["null_condition_pooled"][:, 0],
        decoder_prompt_embeds=decoder_text,
    )


def test_maskgen_vq_pipeline_from_its_release_id(family_cache, family, caplog):
    """One line pairs the generator with its TA-TiTok (the release table's) and the official CLIP encoder, and
    samples token-exactly as the official code."""
    with caplog.at_level(logging.WARNING):
        pipe = MaskGenPipeline.from_pretrained(VQ_GENERATOR)
    assert "converted in memory" in caplog.text
    assert isinstance(pipe.transformer, MaskGenVQTransformer) and isinstance(pipe.vqvae, TATiTokTokenizer)
    assert isinstance(pipe.scheduler, MaskGenVQScheduler) and type(pipe.text_encoder).__name__.startswith("CLIPText")
    for key, value in family.model("maskgen_vq").state_dict().items():
        assert torch.equal(pipe.transformer.state_dict()[key], value), key
    pipe.set_progress_bar_config(disable=True)
    run, io = family.runs("maskgen_vq")["det_cosine"], family.io("maskgen_vq")
    ids = pipe(
        **embeds(io, family.io("tatitok_vq")["text_guidance"]),
        num_inference_steps=run["num_sample_steps"],
        guidance_scale=run["guidance_scale"],
        guidance_schedule="cosine",
        temperature=0.0,
        output_type="latent",
    ).images
    assert torch.equal(ids, io["gen_det_cosine_ids"])
    # The official config's sampler, and prompts through the CLIP encoder found under the official id.
    assert pipe.scheduler.config.guidance_scale == 12.0
    images = pipe(["a jay", "a cabin"], num_inference_steps=4, generator=torch.Generator().manual_seed(0)).images
    assert len(images) == 2 and images[0].size == (32, 32)


def test_maskgen_kl_pipeline_from_its_release_id_and_dtype(family_cache, family):
    pipe = MaskGenPipeline.from_pretrained(KL_GENERATOR)
    assert isinstance(pipe.transformer, MaskGenKLTransformer) and isinstance(pipe.scheduler, MaskGenKLScheduler)
    assert pipe.scheduler.config.num_diffusion_steps == 4  # losses.num_sampling_steps of the fixture's config
    pipe.set_progress_bar_config(disable=True)
    tokens = pipe("a jay", num_inference_steps=4, generator=torch.Generator().manual_seed(0), output_type="latent")
    assert tokens.images.shape == (1, 8, 8) and torch.isfinite(tokens.images).all()
    half = MaskGenPipeline.from_pretrained(KL_GENERATOR, dtype=torch.bfloat16)
    assert half.transformer.dtype == half.vqvae.dtype == half.text_encoder.dtype == torch.bfloat16


def test_models_load_alone_from_their_release_ids(family_cache, family, tmp_path):
    tokenizer = TATiTokTokenizer.from_pretrained(RELEASES["tatitok_bl32_vae"].repo_id)
    for key, value in family.model("tatitok_vae").state_dict().items():
        assert torch.equal(tokenizer.state_dict()[key], value), key
    transformer = MaskGenKLTransformer.from_pretrained(KL_GENERATOR)
    for key, value in family.model("maskgen_kl").state_dict().items():
        assert torch.equal(transformer.state_dict()[key], value), key
    # Saved, it is a diffusers model folder that loads as one.
    transformer.save_pretrained(tmp_path / "kl")
    again = MaskGenKLTransformer.from_pretrained(tmp_path / "kl")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in transformer.state_dict().items())


def test_fun_research_bin_files_with_release(family_cache, family, tmp_path, monkeypatch):
    """`fun-research/TA-TiTok` holds plain `.bin` state dicts; `release=` names one and its config comes from the
    release table (here the table's entries are pointed at the tiny fixtures' configs)."""
    from hf_titok.conversion import load_official_config

    folder = tmp_path / "bins"
    folder.mkdir()
    for release, name in (("tatitok_bl128_vq", "tatitok_vq"), ("maskgen_vq_l", "maskgen_vq")):
        torch.save(family.weights(name), folder / RELEASES[release].bin_filename)
    populate_hub_cache(family_cache, FAMILY_BIN_REPO, folder)
    configs = {"tatitok_bl128_vq": "tatitok_vq", "maskgen_vq_l": "maskgen_vq"}
    monkeypatch.setattr(
        direct, "release_official_config", lambda name: load_official_config(family.config_path(configs[name]))
    )
    pipe = MaskGenPipeline.from_pretrained(FAMILY_BIN_REPO, release="maskgen_vq_l")
    for key, value in family.model("tatitok_vq").state_dict().items():
        assert torch.equal(pipe.vqvae.state_dict()[key], value), key
    with pytest.raises(ValueError, match="holds the .bin files of several releases"):
        TATiTokTokenizer.from_pretrained(FAMILY_BIN_REPO)


def test_wrong_class_and_wrong_pipeline_errors(family_cache):
    with pytest.raises(ValueError, match="load it with MaskGenPipeline"):
        TiTokPipeline.from_pretrained(VQ_GENERATOR)
    with pytest.raises(ValueError, match="load it with TATiTokTokenizer"):
        TiTokTokenizer.from_pretrained(RELEASES["tatitok_bl32_vae"].repo_id)
    with pytest.raises(ValueError, match="load it with MaskGenPipeline"):
        TATiTokTokenizer.from_pretrained(VQ_GENERATOR)


def test_converted_pipeline_folder_round_trip(family_cache, tmp_path):
    pipe = MaskGenPipeline.from_pretrained(VQ_GENERATOR)
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["text_encoder"][1] == "CLIPTextModelWithProjection" and index["tokenizer"][1] == "CLIPTokenizer"
    again = MaskGenPipeline.from_pretrained(tmp_path / "pipe")
    for a, b in ((pipe, again),):
        a.set_progress_bar_config(disable=True)
        b.set_progress_bar_config(disable=True)
    first = pipe("a jay", num_inference_steps=4, generator=torch.Generator().manual_seed(3), output_type="latent")
    second = again("a jay", num_inference_steps=4, generator=torch.Generator().manual_seed(3), output_type="latent")
    assert torch.equal(first.images, second.images)
