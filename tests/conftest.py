"""Shared test setup: offline Hub, one torch process, and the official golden fixtures."""

import json
import os
import re
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import huggingface_hub  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

TESTS_DIR = Path(__file__).parent


def _data_dir(env_var: str, folder: str, marker: str, what: str) -> Path:
    """A fixture folder of the repository (`tests/<folder>`), or another set of the same format named by
    $<env_var> (e.g. fixtures made by the official code with other sizes and seeds)."""
    candidate = Path(os.environ.get(env_var) or TESTS_DIR / folder)
    if not (candidate / marker).is_file():
        raise RuntimeError(f"{what} not found: {candidate / marker} is missing (set {env_var} to another copy)")
    return candidate


def _fixtures_dir() -> Path:
    return _data_dir("TITOK_FIXTURES_DIR", "fixtures", "manifest.json", "official TiTok fixtures")


def _official_keys_dir() -> Path:
    return _data_dir("TITOK_OFFICIAL_KEYS_DIR", "official_keys", "index.json", "official key listings")


def _family_fixtures_dir() -> Path:
    return _data_dir(
        "TITOK_FAMILY_FIXTURES_DIR", "fixtures_family", "manifest.json", "official TA-TiTok/MaskGen fixtures"
    )


FIXTURES = _fixtures_dir()
FAMILY_FIXTURES = _family_fixtures_dir()
OFFICIAL_KEYS = _official_keys_dir()


class Fixtures:
    """Access to the golden fixture files by model name."""

    dir = FIXTURES

    def __init__(self):
        self.manifest = json.loads((FIXTURES / "manifest.json").read_text())

    def path(self, name: str) -> Path:
        return FIXTURES / name

    def io(self, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(FIXTURES / f"{name}.io.safetensors"))

    def weights(self, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(FIXTURES / f"{name}.weights.safetensors"))

    def config_path(self, name: str) -> Path:
        return FIXTURES / f"{name}.config.json"

    @property
    def pixel_values(self) -> torch.Tensor:
        return self.io("inputs")["pixel_values"]

    def vqgan_weights(self) -> dict[str, torch.Tensor]:
        """The full tiny MaskGIT-VQGAN state dict: the fixture stores its encoder and codebook, and its
        decoder only once, as the `pixel_decoder.*` entries of the two-stage tokenizer."""
        weights = self.weights("maskgit_vqgan")
        for key, value in self.weights("titok_vq_legacy").items():
            if key.startswith("pixel_decoder."):
                weights["decoder." + key[len("pixel_decoder.") :]] = value
        return weights


@pytest.fixture(scope="session")
def fixtures() -> Fixtures:
    return Fixtures()


class FamilyFixtures:
    """The TA-TiTok / MaskGen / CLIP-text fixtures by name (`clip_text`, `tatitok_vq`, `tatitok_vae`,
    `maskgen_vq`, `maskgen_kl`), and the models converted from them (cached)."""

    dir = FAMILY_FIXTURES
    KINDS = {
        "clip_text": "clip-text",
        "tatitok_vq": "tatitok",
        "tatitok_vae": "tatitok",
        "maskgen_vq": "maskgen-vq",
        "maskgen_kl": "maskgen-kl",
    }

    def __init__(self):
        self.manifest = json.loads((FAMILY_FIXTURES / "manifest.json").read_text())
        self._models = {}

    def io(self, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(FAMILY_FIXTURES / f"{name}.io.safetensors"))

    def weights(self, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(FAMILY_FIXTURES / f"{name}.weights.safetensors"))

    def config_path(self, name: str) -> Path:
        return FAMILY_FIXTURES / f"{name}.config.json"

    def runs(self, name: str) -> dict:
        """The sampling runs the fixture recorded (name -> official settings)."""
        return self.manifest["files"][f"{name}.io.safetensors"]["sampling_runs"]

    @property
    def settings(self) -> dict:
        return self.manifest["settings"]

    def model(self, name: str):
        """The fixture's model converted by `hf_titok.conversion.convert_model` (eval mode, shared: do not modify)."""
        if name not in self._models:
            from hf_titok.conversion import convert_model, load_official_config

            config = load_official_config(self.config_path(name))
            self._models[name] = convert_model(self.KINDS[name], config, self.weights(name))
        return self._models[name]


@pytest.fixture(scope="session")
def family() -> FamilyFixtures:
    return FamilyFixtures()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


README = TESTS_DIR.parent / "README.md"


def readme_example(name: str, **settings) -> str:
    """The README's fenced Python block after `<!-- example: NAME -->`, with its settings lines
    (`KEY = value` at the top level) set to `settings`; each must exist, so the README cannot drift."""
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no example {name!r}"
    code = match.group(1)
    for key, value in settings.items():
        code, count = re.subn(rf"^{key} = .*$", f"{key} = {value!r}", code, flags=re.M)
        assert count == 1, f"example {name!r} has no setting {key}"
    return code


def run_readme_example(code: str, folder: Path, monkeypatch) -> dict:
    """Runs a README block verbatim in `folder`; returns its namespace."""
    monkeypatch.chdir(folder)
    namespace = {"__name__": "readme_example"}
    exec(compile(code, f"README.md example in {folder}", "exec"), namespace)
    return namespace


def assert_builtin_folder(folder: str, max_megabytes: float) -> None:
    """A built-in model's folder: inside the installed package, at most `max_megabytes`, safetensors weights and no
    pickles or code copies (the installed package loads it), a model card."""
    import hf_titok

    folder = Path(folder)
    assert folder.is_relative_to(Path(hf_titok.__file__).parent)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= max_megabytes * 1e6, f"{size / 1e6:.1f} MB"
    assert all(f.suffix not in (".bin", ".py") for f in folder.rglob("*"))
    assert (folder / "README.md").is_file()


def tiny_titok_config(kind: str = "two_stage", **overrides):
    """Small random-weight TiTok configs of each kind: `two_stage` (proxy codes + pixel decoder),
    `stage1`, `single_vq` and `vae`."""
    from hf_titok import TiTokConfig

    base = dict(
        image_size=32,
        encoder_patch_size=8,
        decoder_patch_size=8,
        encoder_hidden_size=32,
        encoder_num_layers=2,
        encoder_num_heads=2,
        decoder_hidden_size=48,
        decoder_num_layers=2,
        decoder_num_heads=3,
        num_latent_tokens=8,
        token_size=8,
        codebook_size=64,
    )
    pixel = dict(
        image_size=32, hidden_channels=32, channel_mult=[1, 1, 2, 2], num_res_blocks=1, z_channels=16, codebook_size=128
    )
    kinds = {
        "two_stage": dict(
            decoder_head="proxy_codes", legacy_encoder_layout=True, use_l2_norm=True, pixel_decoder_config=pixel
        ),
        "stage1": dict(
            decoder_head="proxy_codes",
            legacy_encoder_layout=True,
            use_l2_norm=True,
            include_pixel_decoder=False,
            pixel_decoder_config=pixel,
        ),
        "single_vq": dict(decoder_head="pixels", legacy_encoder_layout=False, use_l2_norm=False),
        "vae": dict(decoder_head="pixels", legacy_encoder_layout=False, quantize_mode="vae"),
    }
    return TiTokConfig(**{**base, **kinds[kind], **overrides})


def tiny_maskgit_config(architecture: str = "bert", **overrides):
    """A small generator over the ids of `tiny_titok_config()` (K=64, N=8)."""
    from hf_titok import TiTokMaskGITConfig

    base = dict(
        architecture=architecture,
        codebook_size=64,
        num_latent_tokens=8,
        num_classes=10,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        layer_norm_eps=1e-12 if architecture == "bert" else 1e-5,
    )
    return TiTokMaskGITConfig(**{**base, **overrides})


# The tiny pipeline's sampling defaults (its scheduler config).
TINY_SAMPLING = dict(num_inference_steps=4, guidance_scale=2.0, guidance_schedule="linear", temperature=2.0)


def tiny_pipeline(architecture: str = "bert", id2label=None, **overrides):
    """A tiny random pipeline; `overrides` are sampling settings (scheduler config) or generator config fields."""
    from hf_titok import TiTokMaskGIT, TiTokMaskGITScheduler, TiTokPipeline, TiTokTokenizer
    from hf_titok.releases import SAMPLING_SETTINGS

    sampling = {**TINY_SAMPLING, **{k: v for k, v in overrides.items() if k in SAMPLING_SETTINGS}}
    overrides = {k: v for k, v in overrides.items() if k not in SAMPLING_SETTINGS}
    torch.manual_seed(0)
    vqvae = TiTokTokenizer(tiny_titok_config("two_stage")).eval()
    transformer = TiTokMaskGIT(tiny_maskgit_config(architecture, **overrides)).eval()
    pipe = TiTokPipeline(
        vqvae=vqvae, transformer=transformer, scheduler=TiTokMaskGITScheduler(**sampling), id2label=id2label
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


TINY_RAR = dict(
    codebook_size=128, num_latent_tokens=16, num_classes=10, hidden_size=32, num_hidden_layers=2, num_attention_heads=4
)
# A MaskGIT-VQGAN whose 4 x 4 codes (32 px, downsampling 8) are the tiny RAR's 16 tokens.
TINY_VQGAN = dict(
    image_size=32, hidden_channels=32, channel_mult=[1, 1, 2, 2], num_res_blocks=1, z_channels=16, codebook_size=128
)


def tiny_rar_pipeline(vqvae=None, id2label=None, **scheduler_settings):
    """A tiny random RAR pipeline over a tiny MaskGIT-VQGAN (or `vqvae`, e.g. a TiTok tokenizer of 16 tokens)."""
    from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, RARConfig, RARPipeline, RARScheduler, RARTransformer

    torch.manual_seed(0)
    vqvae = MaskGITVQGAN(MaskGITVQGANConfig(**TINY_VQGAN)).eval() if vqvae is None else vqvae
    transformer = RARTransformer(RARConfig(**{**TINY_RAR, "intermediate_size": 64})).eval()
    # The official initialisation zeroes every adaLN modulation (a random model would ignore its class): draw them.
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if "modulation" in name:
                parameter.normal_(std=0.02)
    pipe = RARPipeline(
        vqvae=vqvae, transformer=transformer, scheduler=RARScheduler(**scheduler_settings), id2label=id2label
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_clip_tokenizer():
    """A CLIP tokenizer over single bytes (no merges): every character is a token; start/end are the last ids."""
    from transformers import CLIPTokenizer

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), 256)]
    extra = [byte for byte in range(256) if byte not in printable]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab = {char: index for index, char in enumerate(chars)}  # "!" is id 0, open_clip's padding
    vocab.update({char + "</w>": len(chars) + index for index, char in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return CLIPTokenizer(vocab=vocab, merges=[])


def tiny_clip_text_encoder(width: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=514,
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=width,
        bos_token_id=512,
        eos_token_id=2,
        pad_token_id=1,
    )
    return CLIPTextModelWithProjection(config).eval()


def tiny_tatitok_config(kind: str = "vq", **overrides):
    from hf_titok import TATiTokConfig

    base = dict(
        image_size=32,
        encoder_patch_size=8,
        decoder_patch_size=8,
        encoder_hidden_size=32,
        encoder_num_layers=2,
        encoder_num_heads=2,
        decoder_hidden_size=48,
        decoder_num_layers=2,
        decoder_num_heads=3,
        num_latent_tokens=8,
        text_hidden_size=32,
    )
    if kind == "vq":
        base.update(token_size=12, codebook_size=64)
    else:
        base.update(quantize_mode="vae", token_size=8)
    return TATiTokConfig(**{**base, **overrides})


def tiny_maskgen_pipeline(kind: str = "vq", text_encoder: bool = True, **scheduler_settings):
    """A tiny random MaskGen pipeline (`kind` "vq" or "kl") with a tiny CLIP text encoder and tokenizer."""
    from hf_titok import (
        MaskGenKLScheduler,
        MaskGenKLTransformer,
        MaskGenPipeline,
        MaskGenVQScheduler,
        MaskGenVQTransformer,
        TATiTokTokenizer,
    )

    torch.manual_seed(0)
    trunk = dict(
        num_latent_tokens=8,
        hidden_size=32,
        num_layers=2,
        num_attention_heads=2,
        text_hidden_size=32,
        pooled_projection_dim=32,
        aesthetic_embed_dim=16,
    )
    vqvae = TATiTokTokenizer(tiny_tatitok_config(kind)).eval()
    if kind == "vq":
        transformer = MaskGenVQTransformer(codebook_size=64, unused_embeddings=11, **trunk).eval()
        scheduler = MaskGenVQScheduler(**{"num_inference_steps": 4, **scheduler_settings})
    else:
        transformer = MaskGenKLTransformer(token_channels=8, head_width=32, head_num_blocks=2, **trunk).eval()
        scheduler = MaskGenKLScheduler(**{"num_inference_steps": 4, "num_diffusion_steps": 4, **scheduler_settings})
    pipe = MaskGenPipeline(
        vqvae,
        transformer,
        scheduler,
        text_encoder=tiny_clip_text_encoder() if text_encoder else None,
        tokenizer=tiny_clip_tokenizer() if text_encoder else None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty offline Hub cache that hf_hub_download/snapshot_download/from_pretrained read."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def populate_hub_cache(cache_dir, repo_id: str, folder) -> None:
    """Lay out `folder` as the Hub cache snapshot of `repo_id` (what a download would have left), so that
    `from_pretrained(repo_id)` resolves offline."""
    import hashlib
    import shutil

    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


def _family_release(name: str) -> str:
    from hf_titok.releases import RELEASES

    return RELEASES[name].repo_id


# Family release id -> the fixture in that layout (the `family_cache` fixture).
FAMILY_REPOS = {
    _family_release("tatitok_bl128_vq"): "tatitok_vq",
    _family_release("tatitok_bl32_vae"): "tatitok_vae",
    _family_release("maskgen_vq_l"): "maskgen_vq",
    _family_release("maskgen_kl_l"): "maskgen_kl",
}


@pytest.fixture
def family_cache(hub_cache, family, tmp_path):
    """The official family repos (Hub format: the official config.json + model.safetensors) and a tiny CLIP text
    encoder under the official CLIP id, in an offline Hub cache."""
    from safetensors.torch import save_file

    from hf_titok.text_encoding import CLIP_TEXT_ENCODER

    for repo_id, name in FAMILY_REPOS.items():
        folder = tmp_path / "repos" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(family.config_path(name).read_text())
        save_file(family.weights(name), str(folder / "model.safetensors"))
        populate_hub_cache(hub_cache, repo_id, folder)
    clip = tmp_path / "repos" / "clip"
    tiny_clip_text_encoder().save_pretrained(clip)
    tiny_clip_tokenizer().save_pretrained(clip)
    populate_hub_cache(hub_cache, CLIP_TEXT_ENCODER, clip)
    return hub_cache


# The ways a tensor is read back to the host.
HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


def host_reads_between_logging_steps(trainer, monkeypatch) -> list[str]:
    """Train `trainer` and return every host read of a tensor (`HOST_READS`) made during a training step that is
    not a logging step ("<read> at <file>:<line>"). torch's AdamW keeps its step counter as a CPU scalar and reads
    it with `.item()`: no device is waited for, so the optimizer's own frames are left out."""
    import traceback

    from transformers import TrainerCallback

    reads, window = [], {"open": False}

    class Window(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            window["open"] = (state.global_step + 1) % args.logging_steps != 0

        def on_step_end(self, args, state, control, **kwargs):
            window["open"] = False

    def spy(name, original):
        def read(self, *args, **kwargs):
            if window["open"]:
                frame = traceback.extract_stack(limit=2)[0]
                if "/torch/optim/" not in frame.filename:
                    reads.append(f"{name} at {frame.filename}:{frame.lineno}")
            return original(self, *args, **kwargs)

        return read

    trainer.add_callback(Window())
    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, spy(name, getattr(torch.Tensor, name)))
    trainer.train()
    monkeypatch.undo()
    return reads


def assert_killed_run_resumes_exactly(
    script: str, config: dict, tmp_path, compared: tuple[str, ...], kill_after: int = 10, max_steps: int = 20
) -> None:
    """Train `config` with the entry point `script` (training/<name>.py) straight through, and again with a SIGKILL
    once checkpoint-`kill_after` exists, then resumed: the resumed run says where it resumed from and the files
    `compared` (relative to the output folders) hold exactly the uninterrupted run's tensors."""
    import signal
    import subprocess
    import sys
    import time

    import yaml
    from safetensors.torch import load_file

    from hf_titok.training.trainer import last_checkpoint

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, str(TESTS_DIR.parent / "training" / script), "--config", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    straight = subprocess.run(
        command + ["--output-dir", str(tmp_path / "straight")], capture_output=True, text=True, env=env
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        command + ["--output-dir", str(interrupted)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.time() + 120
    while not (interrupted / f"checkpoint-{kill_after}" / "trainer_state.json").is_file() and process.poll() is None:
        assert time.time() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    resumed_from = last_checkpoint(str(interrupted))
    assert resumed_from is not None and int(resumed_from.rsplit("-", 1)[1]) < max_steps
    resumed = subprocess.run(command + ["--output-dir", str(interrupted)], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {resumed_from}" in resumed.stderr
    for name in compared:
        a, b = load_file(tmp_path / "straight" / name), load_file(interrupted / name)
        assert a.keys() == b.keys() and not [key for key in a if not torch.equal(a[key], b[key])], name
