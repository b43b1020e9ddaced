"""Every released checkpoint layout (official_keys/*.txt) converts completely, with the official
parameter counts. Tensors live on the meta device, so the 2.5 GB checkpoints cost nothing."""

import json

import pytest
import torch

from hf_titok import TITOK_MASKGIT_PRESETS, TITOK_PRESETS, TiTokConfig, TiTokMaskGIT, TiTokMaskGITConfig, TiTokTokenizer
from hf_titok.conversion import (
    convert_generator,
    convert_tokenizer,
    convert_vqgan,
    load_official_config,
    official_config,
    titok_config_from_official,
)
from hf_titok.releases import GENERATOR_PRESETS, TOKENIZER_PRESETS

from conftest import OFFICIAL_KEYS

# TiTok's releases (index.json) and One-D-Piece's (onedpiece_index.json: the TiTok fork's tokenizers, their stage-1
# layouts and generators, in the same format).
INDEX = {
    **json.loads((OFFICIAL_KEYS / "index.json").read_text())["models"],
    **json.loads((OFFICIAL_KEYS / "onedpiece_index.json").read_text())["models"],
}
TOKENIZER_LISTINGS = sorted(name for name, entry in INDEX.items() if entry["kind"].startswith("tokenizer"))
GENERATOR_LISTINGS = sorted(name for name, entry in INDEX.items() if entry["kind"] == "generator")
RELEASED_TOKENIZERS = sorted(name for name in TITOK_PRESETS if TOKENIZER_PRESETS[name].released)
RELEASED_GENERATORS = sorted(name for name in TITOK_MASKGIT_PRESETS if GENERATOR_PRESETS[name].released)


def meta_state_dict(name: str) -> dict[str, torch.Tensor]:
    state = {}
    for line in (OFFICIAL_KEYS / f"{name}.txt").read_text().splitlines():
        key, shape, dtype = line.split("\t")
        state[key] = torch.empty(json.loads(shape), dtype=getattr(torch, dtype), device="meta")
    return state


def test_listings_cover_every_release():
    assert len(TOKENIZER_LISTINGS) == 18  # 9 TiTok + 3 One-D-Piece releases, 3 + 3 stage-1 layouts
    assert len(GENERATOR_LISTINGS) == 6 and set(GENERATOR_LISTINGS) == {f"{n}_generator" for n in RELEASED_GENERATORS}
    assert {n for n in TOKENIZER_LISTINGS if not n.endswith("_stage1")} == set(RELEASED_TOKENIZERS)


@pytest.mark.parametrize("name", TOKENIZER_LISTINGS)
def test_tokenizer_listing_converts_completely(name):
    official = meta_state_dict(name)
    model = convert_tokenizer(official_config(name), official)
    assert sum(p.numel() for p in model.parameters()) == INDEX[name]["num_parameters"]
    assert len(model.state_dict()) == INDEX[name]["num_state_dict_tensors"] == len(official)
    if not name.endswith("_stage1"):
        # The converted config is exactly the named preset.
        assert model.config.to_dict() == TiTokConfig.from_preset(name).to_dict()


def test_vqgan_listing_converts_completely():
    official = meta_state_dict("maskgit_vqgan_f16_256")
    model = convert_vqgan(None, official)
    assert sum(p.numel() for p in model.parameters()) == INDEX["maskgit_vqgan_f16_256"]["num_parameters"]
    assert model.config.grid_size == 16 and model.config.codebook_size == 1024


@pytest.mark.parametrize("name", RELEASED_TOKENIZERS)
def test_preset_parameter_counts(name):
    with torch.device("meta"):
        model = TiTokTokenizer(TiTokConfig.from_preset(name))
    assert sum(p.numel() for p in model.parameters()) == INDEX[name]["num_parameters"]


def test_l32_is_641_05_million_parameters():
    config = titok_config_from_official(official_config("titok_l32"))
    with torch.device("meta"):
        model = TiTokTokenizer(config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 641.05


def folded_parameters(config: TiTokMaskGITConfig) -> int:
    """Parameters the converter folds away: BERT's 2-row token-type table (row 0 is added to every
    position embedding, row 1 is never used)."""
    return 2 * config.hidden_size if config.architecture == "bert" else 0


@pytest.mark.parametrize("name", GENERATOR_LISTINGS)
def test_generator_listing_converts_completely(name, tmp_path):
    release = name.removesuffix("_generator")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(official_config(release)))  # with the ${...} interpolation
    official = meta_state_dict(name)
    if "model.embeddings.word_embeddings.weight" in official:  # BERT: old transformers also saved this buffer
        official["model.embeddings.position_ids"] = torch.empty(1, 33, dtype=torch.int64, device="meta")
    model = convert_generator(load_official_config(config_file), official)
    count = sum(p.numel() for p in model.parameters())
    assert count + folded_parameters(model.config) == INDEX[name]["num_parameters"]
    assert model.lm_head.out_features == 4096 and model.embed_tokens.num_embeddings == 4096 + 1000 + 2
    # The converted config is the named preset, sampling defaults included.
    expected = TiTokMaskGITConfig.from_preset(release).to_dict()
    assert model.config.to_dict() == expected


@pytest.mark.parametrize("name", RELEASED_GENERATORS)
def test_generator_preset_parameter_counts(name):
    config = TiTokMaskGITConfig.from_preset(name)
    with torch.device("meta"):
        model = TiTokMaskGIT(config)
    count = sum(p.numel() for p in model.parameters())
    assert count + folded_parameters(config) == INDEX[f"{name}_generator"]["num_parameters"]


# ---- TA-TiTok, MaskGen and the CLIP text tower (official_keys/family_index.json) ----

FAMILY_INDEX = json.loads((OFFICIAL_KEYS / "family_index.json").read_text())["models"]
FAMILY_KINDS = {
    "tatitok-tokenizer": "tatitok",
    "maskgen-vq-generator": "maskgen-vq",
    "maskgen-kl-generator": "maskgen-kl",
}


@pytest.mark.parametrize("name", sorted(n for n, e in FAMILY_INDEX.items() if e["kind"] in FAMILY_KINDS))
def test_family_listing_converts_completely(name):
    """Every TA-TiTok / MaskGen layout converts with every key mapped, the official parameter count, and the
    release table's architecture (the training layout's extra `quantize.embed_prob` buffer is dropped)."""
    from hf_titok import TATiTokConfig
    from hf_titok.conversion import convert_model, family_official_config
    from hf_titok.releases import MASKGEN_PRESETS

    release = name.removesuffix("_trainingcfg")
    model = convert_model(
        FAMILY_KINDS[FAMILY_INDEX[name]["kind"]], family_official_config(release), meta_state_dict(name)
    )
    assert sum(p.numel() for p in model.parameters()) == FAMILY_INDEX[name]["num_parameters"]
    if release in MASKGEN_PRESETS:
        assert {k: model.config[k] for k in MASKGEN_PRESETS[release].transformer_kwargs()} == (
            MASKGEN_PRESETS[release].transformer_kwargs()
        )
    else:
        assert model.config.to_dict() == TATiTokConfig.from_preset(release).to_dict()


def test_clip_text_listing_converts_to_the_transformers_layout():
    """open_clip's ViT-L-14-336 text tower converts to exactly the keys and shapes of transformers'
    CLIPTextModelWithProjection (both listings are the official harness's)."""
    from hf_titok.conversion import convert_checkpoint

    open_clip_config = {
        "embed_dim": 768,
        "quick_gelu": True,
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 768, "heads": 12, "layers": 12},
    }
    config, state_dict = convert_checkpoint("clip-text", open_clip_config, meta_state_dict("openclip_vit_l14_336_text"))
    expected = meta_state_dict("hf_clip_text_with_projection_l14_336")
    assert {k: tuple(v.shape) for k, v in state_dict.items()} == {
        k: tuple(v.shape) for k, v in expected.items() if k != "text_model.embeddings.position_ids"
    }
    assert config.hidden_size == 768 and config.projection_dim == 768 and config.hidden_act == "quick_gelu"
