"""The family registry (`hf_titok.families`) is the one place that lists the families: every path that loads,
converts, recognises or serves a model resolves a folder of each family through it; and the one scheduler API every
sampler follows (`hf_titok.utils.scheduling_utils`)."""

import dataclasses
import json

import pytest
import torch

from hf_titok import (
    MaskGITVQGAN,
    MaskGITVQGANConfig,
    TATiTokTokenizer,
    TiTokConfig,
    TiTokMaskGITScheduler,
    TiTokTokenizer,
)
from hf_titok.families import (
    FAMILIES,
    Family,
    checkpoint_kinds,
    family_of_class,
    family_of_kind,
    family_of_model,
    family_of_saved_folder,
    family_of_weights,
    sampler_settings_of,
)
from hf_titok.loaders import family_of, load_pipeline, load_tokenizer
from hf_titok.releases import RELEASES
from hf_titok.utils.sampling_settings import SETTINGS

from conftest import (
    OFFICIAL_KEYS,
    TINY_VQGAN,
    tiny_maskgen_pipeline,
    tiny_pipeline,
    tiny_rar_pipeline,
    tiny_tatitok_config,
    tiny_titok_config,
)

SAVED = {
    "titok": lambda: TiTokTokenizer(tiny_titok_config("single_vq")),
    "maskgit_vqgan": lambda: MaskGITVQGAN(MaskGITVQGANConfig(**TINY_VQGAN)),
    "titok_maskgit": lambda: tiny_pipeline(),
    "tatitok": lambda: TATiTokTokenizer(tiny_tatitok_config("vq")),
    "maskgen_vq": lambda: tiny_maskgen_pipeline("vq"),
    "maskgen_kl": lambda: tiny_maskgen_pipeline("kl"),
    "rar": lambda: tiny_rar_pipeline(),
}


def test_every_family_has_an_entry_and_a_folder():
    """Every family of the package (`models/<name>/`) is in the registry, and the registry names nothing else."""
    from hf_titok.utils.remote_code import PACKAGE_DIR

    folders = {path.name for path in (PACKAGE_DIR / "models").iterdir() if (path / "__init__.py").is_file()}
    assert {name.removesuffix("_vq").removesuffix("_kl") for name in FAMILIES} == folders
    assert set(SAVED) | {"clip_text"} == set(FAMILIES)


@pytest.mark.parametrize("name", list(SAVED))
def test_a_saved_folder_of_each_family_resolves_through_the_registry(name, tmp_path):
    family = FAMILIES[name]
    saved = SAVED[name]()
    saved.save_pretrained(tmp_path)
    assert family_of_saved_folder(tmp_path) is family
    assert family_of(str(tmp_path))[0] is family and family_of_model(saved) is family
    if family.pipeline_class is not None:
        pipe = load_pipeline(str(tmp_path))
        assert type(pipe) is family.pipeline_class and family_of_model(pipe) is family
        tokenizer, _ = load_tokenizer(str(tmp_path))  # a pipeline's tokenizer, of its tokenizer family
        assert type(tokenizer) is FAMILIES[family.tokenizer_family].model_class
    elif family.role == "tokenizer":
        tokenizer, processor = load_tokenizer(str(tmp_path))
        assert type(tokenizer) is family.model_class and processor.image_size == 32
    if family.role in ("tokenizer", "generator"):
        from test_bad_input import load_space_app

        space_model = load_space_app().load_model(str(tmp_path), text_encoder=_clip_folder(tmp_path))
        assert space_model.family is (family if family.pipeline_class else family_of_model(space_model.tokenizer))


def _clip_folder(tmp_path):
    from conftest import tiny_clip_text_encoder, tiny_clip_tokenizer

    folder = tmp_path.parent / f"{tmp_path.name}_clip"
    tiny_clip_text_encoder().save_pretrained(folder)
    tiny_clip_tokenizer().save_pretrained(folder)
    return str(folder)


def test_classes_kinds_and_releases_resolve_to_their_family():
    for family in FAMILIES.values():
        assert family_of_kind(family.kind) is family and family_of_class(family.model_class) is family
        if family.config_class is not None:
            assert family_of_class(family.config_class) is family
        for release in family.releases:
            assert family_of_kind(release.kind) is family
    assert {release.kind for release in RELEASES.values()} <= set(checkpoint_kinds())
    # The most derived class wins: a TATiTokTokenizer is also a TiTokTokenizer.
    assert family_of_class(TATiTokTokenizer).name == "tatitok" and family_of_class(TiTokTokenizer).name == "titok"
    assert family_of_class(torch.nn.Linear) is None


def test_every_official_key_listing_is_recognised_as_its_family():
    """The converters' key signatures tell every released layout apart (the largest matching signature wins: a
    TA-TiTok state dict holds TiTok's keys, MaskGen-VQ's has a `pos_embed` like the U-ViT generator's)."""
    expected = {
        "tokenizer": "titok",
        "tokenizer-stage1": "titok",
        "generator": "titok_maskgit",
        "pixel-tokenizer": "maskgit_vqgan",
        "tatitok-tokenizer": "tatitok",
        "maskgen-vq-generator": "maskgen_vq",
        "maskgen-kl-generator": "maskgen_kl",
        "rar-generator": "rar",
    }
    index = json.loads((OFFICIAL_KEYS / "index.json").read_text())["models"]
    checked = 0
    for name, entry in index.items():
        if entry["kind"] not in expected:
            continue  # text encoders and families filed later
        keys = [line.split("\t")[0] for line in (OFFICIAL_KEYS / f"{name}.txt").read_text().splitlines()]
        family = family_of_weights(keys)
        assert family is not None and family.name == expected[entry["kind"]], name
        checked += 1
    assert checked >= 30


def test_a_family_added_to_the_registry_reaches_the_loaders_and_the_command_line(tmp_path, monkeypatch):
    """The registry is where families are listed: an entry added there alone is found by folder, by class and by
    kind, and the command line offers its kind."""
    from hf_titok.cli import build_parser
    from hf_titok.families import FAMILIES as registry

    class ToyConfig(TiTokConfig):
        model_type = "toy_titok"

    class ToyTokenizer(TiTokTokenizer):
        config_class = ToyConfig

    toy = dataclasses.replace(
        registry["titok"],
        name="toy",
        title="toy tokenizer",
        kind="toy",
        model_class=ToyTokenizer,
        config_class=ToyConfig,
    )
    monkeypatch.setitem(registry, "toy", toy)
    model = ToyTokenizer(ToyConfig(**tiny_titok_config("single_vq").to_diff_dict()))
    model.save_pretrained(tmp_path)
    assert family_of_saved_folder(tmp_path) is toy and family_of_class(ToyTokenizer) is toy
    assert family_of_kind("toy") is toy and "toy" in checkpoint_kinds()
    parser = build_parser()
    convert = next(a for a in parser._actions if a.dest == "command").choices["convert"]
    assert "toy" in next(a for a in convert._actions if a.dest == "kind").choices


# ---------------------------------------------------------------------------------------------------------
# One scheduler API
# ---------------------------------------------------------------------------------------------------------


def _schedulers():
    return {family.name: family.scheduler_class for family in FAMILIES.values() if family.scheduler_class}


def test_every_sampler_declares_its_settings_from_the_one_table():
    for name, scheduler_class in _schedulers().items():
        scheduler = scheduler_class()
        for setting in scheduler_class.settings:
            # The same setting everywhere (name, type, flag); a sampler may bound it its own way (RAR: temperature
            # > 0, guidance power 0 allowed), which the command line's merged declaration then admits.
            declared = SETTINGS[setting.name]
            assert (setting.type, setting.flag) == (declared.type, declared.flag), (name, setting.name)
            assert setting.name in scheduler.config  # the config holds its default
        assert set(scheduler.sampling_settings()) == set(scheduler_class.setting_names())
        for method in ("for_call", "set_timesteps", "guidance_scale_at", "step"):
            assert callable(getattr(scheduler, method)), (name, method)
    # The command line's generate flags are every sampler's settings, merged.
    merged = {setting.name: setting for setting in sampler_settings_of()}
    for scheduler_class in _schedulers().values():
        for setting in scheduler_class.settings:
            assert setting.name in merged and set(setting.choices or ()) <= set(merged[setting.name].choices or ())
            if setting.low is not None:
                command_line = merged[setting.name]
                assert command_line.low <= setting.low and (command_line.high or 0) >= (setting.high or 0)
                if setting.low == command_line.low and setting.low_inclusive:
                    assert command_line.low_inclusive, setting.name


@pytest.mark.parametrize("name", ["titok_maskgit", "maskgen_vq", "maskgen_kl"])
def test_settings_pass_the_same_way_and_are_checked_by_their_sampler(name):
    scheduler_class = _schedulers()[name]
    base = scheduler_class()
    run = base.for_call(num_inference_steps=3, guidance_scale=2.0, temperature=None)
    assert run is not base and run.config.num_inference_steps == 3 and run.config.guidance_scale == 2.0
    assert base.config.num_inference_steps != 3 or base.config.guidance_scale != 2.0  # the base is unchanged
    run.set_timesteps(device="cpu", num_tokens=8)
    assert run.timesteps.tolist() == [0, 1, 2] and len(run.guidance_scales) == 3
    with pytest.raises(ValueError, match="exceeds the 2 tokens"):
        run.set_timesteps(num_tokens=2)
    with pytest.raises(TypeError, match=r"unknown sampling settings \['steps'\]"):
        base.for_call(steps=3)
    with pytest.raises(ValueError, match="guidance_scale must lie in"):
        base.for_call(guidance_scale=-1.0)


@pytest.mark.parametrize(
    "name, schedules",
    [
        ("titok_maskgit", ("constant", "linear", "power-cosine")),
        ("maskgen_vq", ("cosine", "flippedcosine", "linear", "none")),
        ("maskgen_kl", ("linear", "constant")),
    ],
)
def test_a_guidance_scale_of_zero_means_no_guidance_for_every_sampler(name, schedules):
    for schedule in schedules:
        run = _schedulers()[name]().for_call(num_inference_steps=4, guidance_scale=0.0, guidance_schedule=schedule)
        run.set_timesteps(num_tokens=8)
        assert all(run.guidance_scale_at(t) is None for t in run.timesteps.tolist()), schedule
        guided = _schedulers()[name]().for_call(num_inference_steps=4, guidance_scale=3.0, guidance_schedule=schedule)
        guided.set_timesteps(num_tokens=8)
        assert any(guided.guidance_scale_at(t) is not None for t in guided.timesteps.tolist()), schedule


@pytest.mark.parametrize("kind", ["vq", "kl"])
def test_a_step_callback_that_changes_the_guidance_is_honoured_by_maskgen(kind):
    """As in TiTokPipeline: `pipe._guidance_scale = 0` in a callback turns the unconditional rows off from the next
    step on (the transformer then sees one row per image)."""
    constant = "none" if kind == "vq" else "constant"  # each sampler's name for a constant scale
    pipe = tiny_maskgen_pipeline(kind, guidance_scale=3.0, guidance_schedule=constant)
    batches = []
    handle = pipe.transformer.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))

    def no_more_guidance(pipeline, step, timestep, kwargs):
        pipeline._guidance_scale = 0.0
        assert pipeline.guidance_scale == 0.0 and not pipeline.do_classifier_free_guidance
        return kwargs

    try:
        pipe("a cat", num_inference_steps=4, callback_on_step_end=no_more_guidance, output_type="latent")
    finally:
        handle.remove()
    assert batches == [2, 1, 1, 1]


def test_the_titok_sampler_takes_the_same_api(tmp_path):
    scheduler = TiTokMaskGITScheduler(num_inference_steps=4, guidance_scale=2.0, guidance_schedule="linear")
    scheduler.set_timesteps(num_tokens=8)
    assert scheduler.guidance_scale_at(0) is None and scheduler.guidance_scale_at(1) == pytest.approx(0.5)
    assert isinstance(FAMILIES["titok_maskgit"], Family)
