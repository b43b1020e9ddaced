"""The package's structure: dependencies run one way with no import cycle (function-local imports included),
the sampling recipe has one owner and calls share no state, and files saved before the redesign still load."""

import ast
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import hf_titok
from hf_titok import TiTokMaskGIT, TiTokMaskGITScheduler, TiTokPipeline
from hf_titok.utils.sampling_settings import SAMPLING_SETTINGS

from conftest import FIXTURES, TESTS_DIR, tiny_pipeline

PACKAGE = Path(hf_titok.__file__).parent
LEGACY_PIPELINE = TESTS_DIR / "fixtures" / "pipeline_saved_by_0.1"

# The layers, bottom up: a module may import its own layer's modules (without cycles) and lower layers.
# Conversion, evaluation and training are siblings: none imports another. A layer names top-level modules and
# folders of the package; `models` holds one folder per family, `utils` what the families share.
LAYERS = [
    {"utils"},
    {"releases", "hub", "fast_path", "text_encoding", "visualization", "perceptual"},
    {"models"},
    {"families", "loaders"},
    {"data"},
    {"conversion", "evaluation", "training"},
    {"cli", "demo"},
]


def group(module: str) -> str:
    """`hf_titok.training.recipes` -> `training`; `hf_titok.models.titok.modeling_titok` -> `models`."""
    return module.split(".")[1]


def layer(module: str) -> int:
    return next(index for index, names in enumerate(LAYERS) if group(module) in names)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> dict[str, set[str]]:
    """Every module of the package -> the package modules it imports anywhere (function bodies included)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py") if "evaluate_metric" not in path.parts}
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                candidates = [f"{source}.{alias.name}" for alias in node.names] + [source]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            for candidate in candidates:
                if candidate in modules and candidate != name:
                    targets.add(candidate)
                    break
        graph[name] = targets
    return graph


def test_no_import_cycles_and_dependencies_run_one_way():
    graph = package_imports()
    assert len(graph) > 30
    # No module but the root aggregator imports the root package (that would be a cycle through __init__).
    assert not [m for m, targets in graph.items() if "hf_titok" in targets and m != "hf_titok"]
    violations = []
    for module, targets in graph.items():
        if module == "hf_titok":
            continue
        for target in targets:
            if target == "hf_titok":
                continue
            if layer(target) > layer(module) or (
                layer(target) == layer(module) == 5 and group(target) != group(module)
            ):
                violations.append(f"{module} -> {target}")
    assert violations == []
    # Cycles (depth-first search over the whole graph).
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target) :] + [target] if target in path else [module, target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_sampling_settings_have_one_owner():
    pipe = tiny_pipeline(num_inference_steps=3, guidance_scale=1.5)
    # The transformer config holds no sampling settings; the scheduler config is the recipe.
    assert not set(SAMPLING_SETTINGS) & set(pipe.transformer.config.to_dict())
    assert pipe.sampling_settings()["num_inference_steps"] == 3 == pipe.scheduler.config.num_inference_steps
    # The default scheduler is built, and no caller copies a mask id into it.
    built = TiTokPipeline(pipe.vqvae, pipe.transformer)
    assert isinstance(built.scheduler, TiTokMaskGITScheduler) and "mask_token_id" not in built.scheduler.config
    assert TiTokMaskGITScheduler.from_preset("titok_s128").config.guidance_schedule == "power-cosine"


def test_concurrent_calls_with_different_settings_equal_sequential_calls():
    pipe = tiny_pipeline()
    requests = [
        dict(
            class_labels=[1, 2],
            num_inference_steps=steps,
            guidance_scale=scale,
            guidance_schedule=schedule,
            temperature=temperature,
            seed=seed,
        )
        for seed, (steps, scale, schedule, temperature) in enumerate(
            [
                (2, 0.0, "constant", 1.0),
                (8, 3.0, "linear", 2.0),
                (5, 4.0, "power-cosine", 0.5),
                (1, 1.0, "constant", 0.0),
                (7, 2.0, "linear", 3.0),
                (3, 6.0, "power-cosine", 1.5),
                (6, 0.5, "constant", 2.5),
                (4, 1.5, "linear", 0.0),
            ]
        )
    ]

    def sample(request):
        request = dict(request)
        generator = torch.Generator().manual_seed(request.pop("seed"))
        return pipe(**request, generator=generator, output_type="latent").images

    sequential = [sample(request) for request in requests]
    for _ in range(2):
        with ThreadPoolExecutor(max_workers=8) as pool:
            concurrent = list(pool.map(sample, requests))
        assert all(torch.equal(a, b) for a, b in zip(sequential, concurrent))
    assert pipe.scheduler.timesteps is None  # the shared scheduler was never set up by a call


def test_a_pipeline_saved_before_the_redesign_loads_and_samples_the_same(tmp_path):
    """hf_titok 0.1 kept the sampling settings in the generator config and a mask id in the scheduler config."""
    old_index = json.loads((LEGACY_PIPELINE / "model_index.json").read_text())
    assert "image_processor" not in old_index and "num_inference_steps" in json.loads(
        (LEGACY_PIPELINE / "transformer" / "config.json").read_text()
    )
    pipe = TiTokPipeline.from_pretrained(LEGACY_PIPELINE)
    pipe.set_progress_bar_config(disable=True)
    sampling = pipe.scheduler.config
    assert (
        sampling.num_inference_steps,
        sampling.guidance_scale,
        sampling.guidance_schedule,
        sampling.temperature,
        sampling.softmax_temperature_annealing,
    ) == (3, 1.5, "constant", 1.0, False)
    # The live configs have no legacy fields: the 0.1 keys were taken out as the files were read
    # (hf_titok.utils.legacy).
    assert not set(SAMPLING_SETTINGS) & set(pipe.transformer.config.to_dict())
    assert "mask_token_id" not in pipe.scheduler.config
    expected = load_file(str(LEGACY_PIPELINE.parent / "pipeline_saved_by_0.1.expected.safetensors"))["ids"]
    ids = pipe([0, 1, 2], generator=torch.Generator().manual_seed(0), output_type="latent").images
    assert torch.equal(ids, expected)
    assert pipe.get_label_ids("dog") == [1]
    # Saved again, it is in the new format and samples the same.
    pipe.save_pretrained(tmp_path)
    assert "num_inference_steps" not in json.loads((tmp_path / "transformer" / "config.json").read_text())
    assert json.loads((tmp_path / "scheduler" / "scheduler_config.json").read_text())["num_inference_steps"] == 3
    assert (tmp_path / "image_processor" / "preprocessor_config.json").is_file()
    again = TiTokPipeline.from_pretrained(tmp_path)
    again.set_progress_bar_config(disable=True)
    assert torch.equal(
        again([0, 1, 2], generator=torch.Generator().manual_seed(0), output_type="latent").images, expected
    )
    # A generator saved by 0.1 loads alone too: its sampler settings belong to a pipeline's scheduler and are
    # left out (a pipeline folder moves them there, above).
    shutil.copytree(LEGACY_PIPELINE / "transformer", tmp_path / "old_transformer")
    transformer = TiTokMaskGIT.from_pretrained(tmp_path / "old_transformer")
    assert not set(SAMPLING_SETTINGS) & set(transformer.config.to_dict())
    assert torch.equal(transformer.state_dict()["lm_head.weight"], pipe.transformer.state_dict()["lm_head.weight"])


def test_the_builtin_pipeline_loads_in_the_new_format():
    folder = Path(hf_titok.FASHION_MNIST_PIPELINE)
    assert "num_inference_steps" not in json.loads((folder / "transformer" / "config.json").read_text())
    pipe = TiTokPipeline.from_pretrained(folder)
    assert pipe.scheduler.config.num_inference_steps == 2 and pipe.image_processor is not None


def test_fixtures_are_reachable():
    assert (FIXTURES / "manifest.json").is_file() and LEGACY_PIPELINE.is_dir()


def test_each_release_fact_is_written_once():
    """The default scheduler samples with TiTok-L-32's official settings and the default VQGAN config is the
    released MaskGIT-VQGAN: both read from the release table, not copies of it."""
    from hf_titok import MaskGITVQGANConfig
    from hf_titok.releases import MASKGIT_VQGAN

    default, preset = TiTokMaskGITScheduler().config, TiTokMaskGITScheduler.from_preset("titok_l32").config
    assert {k: default[k] for k in preset if not k.startswith("_")} == {
        k: preset[k] for k in preset if not k.startswith("_")
    }
    config = MaskGITVQGANConfig()
    assert {key: getattr(config, key) for key in MASKGIT_VQGAN} == {
        **MASKGIT_VQGAN,
        "channel_mult": list(MASKGIT_VQGAN["channel_mult"]),
    }
    # uint8 <-> float: one pair of functions, exact inverses on 8-bit levels.
    from hf_titok.models.titok.image_processing_titok import to_float, to_uint8

    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_float(levels), rounding="round"), levels)


PIPELINES_SAVED_BY_0_2 = {
    "titok": TESTS_DIR / "fixtures" / "pipeline_saved_by_0.2",
    "maskgen_vq": TESTS_DIR / "fixtures" / "maskgen_vq_pipeline_saved_by_0.2",
    "maskgen_kl": TESTS_DIR / "fixtures" / "maskgen_kl_pipeline_saved_by_0.2",
}


@pytest.mark.parametrize("name", list(PIPELINES_SAVED_BY_0_2))
def test_pipelines_saved_by_0_2_load_and_sample_the_same(name, tmp_path):
    """Folders saved by hf_titok 0.2 (before the models moved into one folder per family) name their classes
    through the copies of the code they carry; the installed package loads its own classes for them and samples
    what 0.2 sampled (recorded when the folders were saved), and saving again gives today's layout."""
    from hf_titok import MaskGenPipeline

    folder = PIPELINES_SAVED_BY_0_2[name]
    expected = load_file(str(folder.parent / "pipelines_saved_by_0.2.expected.safetensors"))
    pipeline_class = TiTokPipeline if name == "titok" else MaskGenPipeline
    for source in (folder, tmp_path / "saved_again"):
        pipe = pipeline_class.from_pretrained(source)
        pipe.set_progress_bar_config(disable=True)
        assert type(pipe.vqvae).__module__.startswith("hf_titok.models.")
        if name == "titok":
            ids = pipe([0, 1, 2], generator=torch.Generator().manual_seed(0), output_type="latent").images
            pixels = pipe([1], generator=torch.Generator().manual_seed(1), output_type="pt").images
            assert torch.equal(ids, expected["titok_ids"])
        else:
            tokens = pipe(["a red cube", "two cats"], generator=torch.Generator().manual_seed(0), output_type="latent")
            pixels = pipe("a red cube", generator=torch.Generator().manual_seed(1), output_type="pt").images
            assert torch.equal(tokens.images.float(), expected[f"{name}_tokens"])
        torch.testing.assert_close(pixels, expected[f"{name}_pixels"], atol=1e-6, rtol=0)
        if source == folder:
            pipe.save_pretrained(tmp_path / "saved_again")
            assert (tmp_path / "saved_again" / "vqvae" / "modeling_titok.py").is_file()


def test_the_guidance_schedule_names_are_declared_once():
    """The release table's schedule fields are the declared schedule types, whose names the checks use."""
    import typing

    from hf_titok.releases import GENERATOR_PRESETS, MASKGEN_PRESETS, MaskGenPreset, SamplingPreset
    from hf_titok.utils.sampling_settings import (
        GUIDANCE_SCHEDULES,
        MASKGEN_KL_GUIDANCE_SCHEDULES,
        MASKGEN_VQ_GUIDANCE_SCHEDULES,
        SETTINGS,
    )

    def names(hint) -> set:
        options = typing.get_args(hint)
        return set(options) if all(isinstance(o, str) for o in options) else set().union(*map(names, options))

    assert names(typing.get_type_hints(SamplingPreset)["guidance_schedule"]) == set(GUIDANCE_SCHEDULES)
    maskgen_names = set(MASKGEN_VQ_GUIDANCE_SCHEDULES) | set(MASKGEN_KL_GUIDANCE_SCHEDULES)
    assert names(typing.get_type_hints(MaskGenPreset)["guidance_schedule"]) == maskgen_names
    assert SETTINGS["guidance_schedule"].choices == GUIDANCE_SCHEDULES
    for preset in GENERATOR_PRESETS.values():
        assert preset.sampling.guidance_schedule in GUIDANCE_SCHEDULES
    for preset in MASKGEN_PRESETS.values():
        kind = MASKGEN_VQ_GUIDANCE_SCHEDULES if preset.kind == "vq" else MASKGEN_KL_GUIDANCE_SCHEDULES
        assert preset.guidance_schedule in kind


def test_the_sampler_settings_are_declared_once(monkeypatch):
    """One declaration (hf_titok.utils.sampling_settings): the release table's presets, the scheduler config, the
    pipeline's arguments, both commands' flags and the recipe schema follow it, and a call checks each once."""
    import argparse
    import dataclasses
    import inspect

    from hf_titok.cli import build_parser
    from hf_titok.releases import SamplingPreset
    from hf_titok.training.config import SECTION_SCHEMAS
    from hf_titok.utils.sampling_settings import SAMPLER_SETTINGS, SAMPLING_SETTINGS, SamplerSetting

    assert tuple(field.name for field in dataclasses.fields(SamplingPreset)) == SAMPLING_SETTINGS
    assert set(SAMPLING_SETTINGS) <= set(TiTokMaskGITScheduler().config)
    assert set(SAMPLING_SETTINGS) <= set(inspect.signature(TiTokPipeline.__call__).parameters)
    assert {name: SECTION_SCHEMAS["sampling"][name] for name in SAMPLING_SETTINGS} == {
        s.name: s.type for s in SAMPLER_SETTINGS
    }
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    evaluate = next(a for a in commands["evaluate"]._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in (commands["generate"], evaluate["generation"]):
        flags = {
            action.dest: action.option_strings[0] for action in command._actions if action.dest in SAMPLING_SETTINGS
        }
        assert flags == {s.name: s.flag for s in SAMPLER_SETTINGS}
    checked = []
    original = SamplerSetting.check
    monkeypatch.setattr(SamplerSetting, "check", lambda self, value: checked.append(self.name) or original(self, value))
    pipe = tiny_pipeline()
    checked.clear()  # (building the pipeline's scheduler checked its config)
    pipe([1], num_inference_steps=3, guidance_scale=1.0, output_type="latent")
    assert checked.count("num_inference_steps") == 1 and checked.count("guidance_scale") == 1
