"""Saved folders carry their code: with only torch, transformers and diffusers (importing hf_titok made
impossible in a subprocess), `AutoModel` / `AutoConfig` / `AutoImageProcessor` and `DiffusionPipeline` load them
with `trust_remote_code=True` and give the package's outputs; with hf_titok installed its own classes load them."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, TiTokImageProcessor, TiTokPipeline, TiTokTokenizer
from hf_titok.utils.remote_code import ENTRY_MODULE, copied_name, module_closure

from conftest import tiny_pipeline, tiny_titok_config

RUN_WITHOUT_HF_TITOK = """
import os, sys
sys.modules["hf_titok"] = None  # importing hf_titok is impossible here
try:
    import hf_titok
except ImportError:
    pass
else:
    raise SystemExit("hf_titok was importable")
import torch
from safetensors.torch import save_file
from diffusers import DiffusionPipeline
from transformers import AutoConfig, AutoImageProcessor, AutoModel
"""


def run_without_hf_titok(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_HF_TITOK + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )


def test_saved_pipeline_and_models_load_without_the_package(tmp_path):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "pipe")
    tokenizer = TiTokTokenizer(tiny_titok_config("vae")).eval()
    tokenizer.save_pretrained(tmp_path / "vae")
    vqgan = MaskGITVQGAN(
        MaskGITVQGANConfig(
            image_size=32,
            hidden_channels=16,
            channel_mult=[1, 2],
            num_res_blocks=1,
            z_channels=8,
            codebook_size=32,
            norm_num_groups=8,
        )
    ).eval()
    vqgan.save_pretrained(tmp_path / "vqgan")
    pixels = torch.rand(2, 3, 32, 32)
    torch.save(pixels, tmp_path / "pixels.pt")
    result = run_without_hf_titok(
        f"""
        pipe = DiffusionPipeline.from_pretrained("{tmp_path / "pipe"}", trust_remote_code=True)
        pipe.set_progress_bar_config(disable=True)
        assert type(pipe).__name__ == "TiTokPipeline" and not type(pipe).__module__.startswith("hf_titok")
        ids = pipe([1, 2], generator=torch.Generator().manual_seed(0), output_type="latent").images
        images = pipe([3], generator=torch.Generator().manual_seed(1), output_type="pt").images
        pixels = torch.load("{tmp_path / "pixels.pt"}")
        vae = AutoModel.from_pretrained("{tmp_path / "vae"}", trust_remote_code=True)
        vqgan = AutoModel.from_pretrained("{tmp_path / "vqgan"}", trust_remote_code=True)
        generator = AutoModel.from_pretrained("{tmp_path / "pipe" / "transformer"}", trust_remote_code=True)
        config = AutoConfig.from_pretrained("{tmp_path / "pipe" / "vqvae"}", trust_remote_code=True)
        processor = AutoImageProcessor.from_pretrained(
            "{tmp_path / "pipe" / "image_processor"}", trust_remote_code=True
        )
        with torch.no_grad():
            out = dict(ids=ids, images=images, vae_latents=vae.encode(pixels).latents,
                       vae_pixels=vae.decode(vae.encode(pixels).latents), vqgan_codes=vqgan.encode(pixels).codes,
                       logits=generator(ids, torch.tensor([1, 2])).logits,
                       processed=processor(torch.ones(2, 40, 40, 3).numpy(), return_tensors="pt")["pixel_values"])
        assert type(config).__name__ == "TiTokConfig" and config.num_latent_tokens == 8
        save_file({{k: v.contiguous() for k, v in out.items()}}, "out.safetensors")
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = load_file(str(tmp_path / "out.safetensors"))
    with torch.no_grad():
        assert torch.equal(
            got["ids"], pipe([1, 2], generator=torch.Generator().manual_seed(0), output_type="latent").images
        )
        assert torch.equal(
            got["images"], pipe([3], generator=torch.Generator().manual_seed(1), output_type="pt").images
        )
        latents = tokenizer.encode(pixels).latents
        assert torch.equal(got["vae_latents"], latents) and torch.equal(got["vae_pixels"], tokenizer.decode(latents))
        assert torch.equal(got["vqgan_codes"], vqgan.encode(pixels).codes)
        assert torch.equal(got["logits"], pipe.transformer(got["ids"], torch.tensor([1, 2])).logits)
    assert torch.equal(
        got["processed"], pipe.image_processor(torch.ones(2, 40, 40, 3).numpy(), return_tensors="pt")["pixel_values"]
    )


def test_remote_code_runs_only_when_trusted(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path / "pipe")
    result = run_without_hf_titok(
        f"""
        for load in (lambda: DiffusionPipeline.from_pretrained("{tmp_path / "pipe"}"),
                     lambda: AutoModel.from_pretrained("{tmp_path / "pipe" / "vqvae"}", trust_remote_code=False)):
            try:
                load()
            except ValueError as error:
                assert "trust_remote_code=True" in str(error), error
            else:
                raise SystemExit("remote code ran without trust_remote_code")
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_with_the_package_installed_its_own_classes_load_the_folder(tmp_path):
    from transformers import AutoModel

    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == [ENTRY_MODULE, "TiTokPipeline"] and index["vqvae"] == [
        ENTRY_MODULE,
        "TiTokTokenizer",
    ]
    config = json.loads((tmp_path / "vqvae" / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_titok.TiTokConfig",
        "AutoModel": "modeling_titok.TiTokTokenizer",
    }
    assert json.loads((tmp_path / "image_processor" / "preprocessor_config.json").read_text())["auto_map"] == {
        "AutoImageProcessor": "image_processing_titok.TiTokImageProcessor"
    }
    for folder, module in [
        (tmp_path, "models.titok_maskgit.pipeline_titok"),
        (tmp_path / "vqvae", "models.titok.modeling_titok"),
        (tmp_path / "transformer", "models.titok_maskgit.modeling_titok_maskgit"),
        (tmp_path / "scheduler", "models.titok_maskgit.scheduling_titok_maskgit"),
        (tmp_path / "image_processor", "models.titok.image_processing_titok"),
    ]:
        copies = {f"{copied_name(name)}.py" for name in module_closure(module)}
        assert copies <= {p.name for p in folder.glob("*.py")}, folder
    again = TiTokPipeline.from_pretrained(tmp_path)  # no trust_remote_code: the package's classes
    assert type(again.vqvae) is TiTokTokenizer and type(again.image_processor) is TiTokImageProcessor
    assert type(AutoModel.from_pretrained(tmp_path / "vqvae")) is TiTokTokenizer
    a = pipe([0], generator=torch.Generator().manual_seed(0), output_type="latent").images
    again.set_progress_bar_config(disable=True)
    assert torch.equal(a, again([0], generator=torch.Generator().manual_seed(0), output_type="latent").images)


def test_the_code_has_no_import_the_loaders_cannot_satisfy():
    """transformers refuses remote code whose imports (outside try blocks) are not installed, and both loaders
    copy only sibling modules imported relatively: the copied modules import nothing of hf_titok absolutely
    and only torch, transformers, diffusers, huggingface_hub, safetensors, numpy and PIL."""
    from transformers.dynamic_module_utils import get_imports

    from hf_titok.utils.remote_code import PACKAGE_DIR

    allowed = {"torch", "transformers", "diffusers", "huggingface_hub", "safetensors", "numpy", "PIL"}
    modules = set()
    for root in (
        "models.titok_maskgit.pipeline_titok",
        "models.titok.modeling_titok",
        "models.titok_maskgit.modeling_titok_maskgit",
        "models.maskgit_vqgan.modeling_maskgit_vqgan",
        "models.titok.image_processing_titok",
        "models.titok_maskgit.scheduling_titok_maskgit",
        "models.tatitok.modeling_tatitok",
        "models.maskgen.pipeline_maskgen",
    ):
        modules |= set(module_closure(root))
    for name in modules:
        imports = set(get_imports(PACKAGE_DIR.joinpath(*name.split(".")).with_suffix(".py")))
        assert imports <= allowed | set(sys.stdlib_module_names), (
            name,
            imports - allowed - set(sys.stdlib_module_names),
        )


@pytest.mark.parametrize("kind", ["tokenizer", "generator"])
def test_converted_official_repos_carry_the_code(kind, fixtures, tmp_path):
    from hf_titok.conversion import convert

    name, config = {"tokenizer": ("titok_vq_legacy", "titok_vq_legacy"), "generator": ("maskgit_vit", "maskgit_vit")}[
        kind
    ]
    convert(kind, fixtures.config_path(config), fixtures.path(f"{name}.weights.safetensors"), tmp_path)
    assert "auto_map" in json.loads((tmp_path / "config.json").read_text())
    assert (tmp_path / f"{ENTRY_MODULE}.py").is_file()


class MyTokenizer(TiTokTokenizer):
    """A user's subclass, defined outside the package."""


def test_a_subclass_defined_elsewhere_saves_without_code(tmp_path):
    """Only the package's own classes carry code: a user's subclass has none here to copy, so its folder is saved
    without code or auto_map (it loads with the user's package) instead of failing."""
    model = MyTokenizer(tiny_titok_config("vae")).eval()
    model.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.py")) and "auto_map" not in json.loads((tmp_path / "config.json").read_text())
    loaded = MyTokenizer.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_saved_maskgen_pipelines_load_without_the_package(tmp_path):
    """MaskGen pipelines (VQ and KL) and a TA-TiTok tokenizer, saved by the package, load in a process where
    hf_titok cannot be imported (DiffusionPipeline / AutoModel with trust_remote_code) and sample the same."""
    from conftest import tiny_maskgen_pipeline

    pipes = {kind: tiny_maskgen_pipeline(kind) for kind in ("vq", "kl")}
    for kind, pipe in pipes.items():
        pipe.save_pretrained(tmp_path / kind)
    result = run_without_hf_titok(
        f"""
        out = {{}}
        for kind in ("vq", "kl"):
            pipe = DiffusionPipeline.from_pretrained("{tmp_path}/" + kind, trust_remote_code=True)
            pipe.set_progress_bar_config(disable=True)
            assert type(pipe).__name__ == "MaskGenPipeline" and not type(pipe).__module__.startswith("hf_titok")
            out[kind] = pipe(["A red cube", "two cats"], generator=torch.Generator().manual_seed(0),
                             output_type="latent").images.float()
            out[kind + "_pixels"] = pipe("A red cube", generator=torch.Generator().manual_seed(1),
                                         output_type="pt").images
        tokenizer = AutoModel.from_pretrained("{tmp_path}/vq/vqvae", trust_remote_code=True)
        assert type(tokenizer).__name__ == "TATiTokTokenizer"
        save_file({{k: v.contiguous() for k, v in out.items()}}, "out.safetensors")
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = load_file(str(tmp_path / "out.safetensors"))
    for kind, pipe in pipes.items():
        ids = pipe(["A red cube", "two cats"], generator=torch.Generator().manual_seed(0), output_type="latent").images
        assert torch.equal(got[kind], ids.float())
        pixels = pipe("A red cube", generator=torch.Generator().manual_seed(1), output_type="pt").images
        assert torch.equal(got[kind + "_pixels"], pixels)


def test_saved_rar_pipelines_load_without_the_package(tmp_path):
    """A RAR pipeline (RARTransformer + MaskGIT-VQGAN), saved by the package, loads where hf_titok cannot be imported
    (DiffusionPipeline / AutoModel with trust_remote_code) and samples the same ids and pixels."""
    from conftest import tiny_rar_pipeline

    pipe = tiny_rar_pipeline()
    pipe.save_pretrained(tmp_path / "rar")
    result = run_without_hf_titok(
        f"""
        pipe = DiffusionPipeline.from_pretrained("{tmp_path}/rar", trust_remote_code=True)
        pipe.set_progress_bar_config(disable=True)
        assert type(pipe).__name__ == "RARPipeline" and not type(pipe).__module__.startswith("hf_titok")
        ids = pipe([1, 2], generator=torch.Generator().manual_seed(0), output_type="latent").images
        pixels = pipe([3], generator=torch.Generator().manual_seed(1), output_type="pt").images
        model = AutoModel.from_pretrained("{tmp_path}/rar/transformer", trust_remote_code=True)
        assert type(model).__name__ == "RARTransformer"
        save_file({{"ids": ids.float(), "pixels": pixels}}, "out.safetensors")
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = load_file(str(tmp_path / "out.safetensors"))
    ids = pipe([1, 2], generator=torch.Generator().manual_seed(0), output_type="latent").images
    assert torch.equal(got["ids"], ids.float())
    assert torch.equal(got["pixels"], pipe([3], generator=torch.Generator().manual_seed(1), output_type="pt").images)
