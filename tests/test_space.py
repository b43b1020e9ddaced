"""The Spaces demo (spaces/app.py): its handlers called directly, then the running app driven in a real
browser (Playwright over the system Chromium), screenshots saved to $TITOK_TEST_ARTIFACTS (default
test-artifacts/)."""

import importlib.util
import math
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import pytest

from hf_titok import TiTokTokenizer

from conftest import tiny_titok_config

PROJECT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TITOK_TEST_ARTIFACTS", PROJECT / "test-artifacts"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def load_app():
    spec = importlib.util.spec_from_file_location("titok_space_app", PROJECT / "spaces" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


app = load_app()


def no_progress(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def model():
    return app.load_model(app.FASHION_MNIST_PIPELINE)


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    """A tiny random MaskGen-VQ pipeline, saved and loaded as the app loads one (pictures are noise)."""
    from conftest import tiny_maskgen_pipeline

    folder = tmp_path_factory.mktemp("maskgen")
    tiny_maskgen_pipeline("vq").save_pretrained(folder)
    return app.load_text_model(str(folder))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("uploads")
    (root / "fake.png").write_text("hello, I am text pretending to be a PNG")
    (root / "huge_bytes.png").write_bytes(os.urandom(11 * 2**20))
    PIL.Image.new("1", (7000, 7000)).save(root / "huge_pixels.png")  # 49 megapixels in a few kB
    return root


def pixels(image) -> np.ndarray:
    return np.asarray(image[0] if isinstance(image, tuple) else image)


# ---------------------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------------------


TEXT_DEFAULTS = dict(
    negative_prompt="",
    num_images=2,
    steps=4,
    guidance_scale=3.0,
    guidance_schedule="cosine",
    temperature=1.0,
    aesthetic_score=6.5,
    seed=5,
    random_seed=False,
)


def test_text_to_image_gives_images_and_the_seed(text_model):
    gallery, seed_used, download = app.text_to_image(text_model, "a red cube", **TEXT_DEFAULTS, progress=no_progress)
    assert len(gallery) == 2 and seed_used == "Seed used: 5" and PIL.Image.open(download).size[0] >= 64
    again, _, _ = app.text_to_image(text_model, "a red cube", **TEXT_DEFAULTS, progress=no_progress)
    assert np.array_equal(pixels(gallery[0]), pixels(again[0]))


@pytest.mark.parametrize(
    "prompt, change, message",
    [
        ("   ", {}, "the prompt is empty"),
        ("x" * 1001, {}, "shorten it"),
        ("a cat", {"aesthetic_score": 11}, "Aesthetic score must be between 0 and 10, got 11"),
        ("a cat", {"guidance_schedule": "power-cosine"}, "Guidance schedule must be one of cosine"),
        ("a cat", {"steps": 9}, "Steps must be between 1 and 8, got 9"),
        ("a cat", {"guidance_scale": -1}, "Guidance scale must be between 0 and 100"),
    ],
)
def test_text_to_image_explains_bad_input(text_model, prompt, change, message):
    with pytest.raises(gr.Error, match=re.escape(message)):
        app.text_to_image(text_model, prompt, **{**TEXT_DEFAULTS, **change}, progress=no_progress)


def test_the_text_model_must_be_a_maskgen_pipeline():
    with pytest.raises(app.ModelNotFoundError, match="not a text-to-image"):
        app.load_text_model(app.FASHION_MNIST_PIPELINE)


def test_generate_gives_the_requested_images_and_the_seed(model):
    gallery, seed_text, download = app.generate(model, 7, 3, 4, 2.0, "linear", 2.0, 11, False, progress=no_progress)
    assert len(gallery) == 3 and seed_text == "Seed used: 11"
    assert all(image.size == (128, 128) and image.mode == "RGB" for image, _ in gallery)
    assert gallery[0][1] == "Sneaker #1"
    assert PIL.Image.open(download).size[0] > 3 * 32
    again, _, _ = app.generate(model, 7, 3, 4, 2.0, "linear", 2.0, 11, False, progress=no_progress)
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(gallery, again))
    drawn, seed_text, _ = app.generate(
        model, app.UNCONDITIONAL, 1, 4, 0.0, "constant", 1.0, 0, True, progress=no_progress
    )
    seed = int(re.fullmatch(r"Seed used: (\d+)", seed_text).group(1))
    replay, _, _ = app.generate(model, app.UNCONDITIONAL, 1, 4, 0.0, "constant", 1.0, seed, False, progress=no_progress)
    assert np.array_equal(pixels(drawn[0]), pixels(replay[0])) and drawn[0][1] == "unconditional #1"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_images": 0}, "Number of images must be between 1 and 16, got 0."),
        ({"num_images": None}, "Number of images must be a whole number between 1 and 16, got None."),
        ({"steps": 100000}, "Steps must be between 1 and 64, got 100000."),
        ({"steps": 2.5}, "Steps must be a whole number between 1 and 64, got 2.5."),
        ({"guidance_scale": -1}, "Guidance scale must be between 0 and 100, got -1."),
        ({"temperature": math.nan}, "Temperature must be between 0 and 100, got nan."),
        ({"seed": -3}, "Seed must be between 0 and 2147483647, got -3."),
        ({"class_choice": 99}, "Unknown class id 99."),
    ],
)
def test_generate_explains_bad_settings(model, change, message):
    settings = dict(
        class_choice=0,
        num_images=2,
        steps=4,
        guidance_scale=2.0,
        guidance_schedule="linear",
        temperature=1.0,
        seed=0,
        random_seed=False,
    )
    with pytest.raises(gr.Error) as error:
        app.generate(model, *{**settings, **change}.values(), progress=no_progress)
    assert error.value.message == message


def test_uploads_are_checked_before_decoding(bad_files):
    cases = {
        None: "Upload an image or pick an example first.",
        bad_files / "fake.png": "fake.png is not an image this app can read",
        bad_files / "huge_bytes.png": "The file is 11.0 MB; the limit is 10 MB.",
        bad_files / "huge_pixels.png": "The image is 7000x7000 (49.0 megapixels); the limit is 36 megapixels.",
    }
    for path, message in cases.items():
        with pytest.raises(gr.Error) as error:
            app.open_upload(str(path) if path else None)
        assert error.value.message.startswith(message)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16"])
def test_reconstruct_any_image_mode(model, tmp_path, mode):
    rng = np.random.default_rng(0)
    image = PIL.Image.fromarray((rng.random((40, 30, 3)) * 255).astype(np.uint8))
    image = image.convert("I;16") if mode == "I;16" else image.convert(mode)
    path = tmp_path / ("image.jpg" if mode == "CMYK" else "image.png")
    image.save(path)
    shown, reconstruction, summary, table = app.reconstruct(model, str(path))
    assert shown.size == reconstruction.size == (128, 128)
    config = model.tokenizer.config
    assert re.fullmatch(
        rf"\*\*PSNR \d+\.\d\d dB\*\* — {config.num_latent_tokens} tokens from a codebook of {config.codebook_size}",
        summary,
    )
    ids = model.tokenizer.encode(app.model_input(model, str(path))).token_ids[0].tolist()
    assert [int(v) for row in table["data"] for v in row[1:]] == ids and len(
        table["data"]
    ) == config.num_latent_tokens // 8


def test_variations_resample_the_chosen_number_of_tokens(model):
    example = app.example_images()[0]
    gallery, info = app.variations(model, example, 8, 3, 0, 5, False, progress=no_progress)
    num_tokens = model.tokenizer.config.num_latent_tokens
    assert len(gallery) == 3 and info == f"Seed used: 5 — 8 of {num_tokens} tokens re-sampled"
    assert len({pixels(item).tobytes() for item in gallery}) > 1
    with pytest.raises(gr.Error, match=f"Tokens to re-sample must be between 1 and {num_tokens}, got 0."):
        app.variations(model, example, 0, 3, 0, 5, False, progress=no_progress)
    with pytest.raises(gr.Error, match="Number of variations must be between 1 and 8, got 9."):
        app.variations(model, example, 4, 9, 0, 5, False, progress=no_progress)


def test_imagenet_class_picker_lists_every_class_with_its_id(tmp_path):
    from hf_titok import imagenet_id2label

    from conftest import tiny_pipeline

    tiny_pipeline(num_classes=1000, id2label=imagenet_id2label()).save_pretrained(tmp_path / "imagenet_like")
    imagenet = app.load_model(str(tmp_path / "imagenet_like"))
    choices = dict(imagenet.class_choices)
    assert (
        len(choices) == 1001
        and choices["207: golden retriever"] == 207
        and choices["unconditional (no class)"] == app.UNCONDITIONAL
    )
    gallery, _, _ = app.generate(imagenet, 207, 1, 2, 1.0, "constant", 1.0, 0, False, progress=no_progress)
    assert gallery[0][1] == "golden retriever #1"


def test_a_tokenizer_alone_reconstructs_but_does_not_generate(tmp_path):
    TiTokTokenizer(tiny_titok_config("vae")).save_pretrained(tmp_path / "vae")
    alone = app.load_model(str(tmp_path / "vae"))
    assert alone.pipeline is None and not alone.is_vq
    _, _, summary, table = app.reconstruct(alone, app.example_images()[0])
    assert "8 continuous tokens of 8 channels (VAE)" in summary and len(table["data"]) == 8
    with pytest.raises(gr.Error, match="tokenizer without a generator"):
        app.generate(alone, 0, 1, 1, 0, "constant", 0, 0, False, progress=no_progress)
    app.build_demo(alone)  # the UI builds without the generator parts
    with pytest.raises(app.ModelNotFoundError, match="model directory not found"):
        app.load_model(str(tmp_path / "missing"))


def test_a_tokenizer_that_decodes_prefixes_gets_the_tokens_kept_slider(model, tmp_path):
    """Reconstruction from the first k tokens: the slider is there only for a tokenizer trained for prefixes."""
    from hf_titok import TiTokImageProcessor

    folder = tmp_path / "prefix"
    TiTokTokenizer(tiny_titok_config("single_vq", prefix_decoding=True)).save_pretrained(folder)
    TiTokImageProcessor.for_image_size(32).save_pretrained(folder)
    prefix = app.load_model(str(folder))
    assert app.decodes_prefixes(prefix) and not app.decodes_prefixes(model)
    example = app.example_images()[0]
    _, coarse, summary, table = app.reconstruct(prefix, example, None, 3)
    assert "the first 3 of 8 tokens from a codebook of 64" in summary and len(table["data"][0]) - 1 == 8
    assert [v for v in table["data"][0][1:] if v] == [
        str(v) for v in prefix.tokenizer.encode(app.model_input(prefix, example)).token_ids[0, :3].tolist()
    ]
    full = app.reconstruct(prefix, example, None, 8)[1]
    assert not np.array_equal(pixels(coarse), pixels(full))
    with pytest.raises(gr.Error, match="Tokens kept must be between 1 and 8, got 0"):
        app.reconstruct(prefix, example, None, 0)

    def slider(demo):
        return next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "tokens-kept")

    assert slider(app.build_demo(prefix)).visible and not slider(app.build_demo(model)).visible


@pytest.mark.parametrize("kind", ["vq", "kl"])
def test_a_text_to_image_pipeline_as_the_model_serves_the_text_tab(kind, tmp_path):
    """A saved MaskGen pipeline given as --model: the registry says it generates from text, so the app serves it
    in the text tab (no class picker), and its TA-TiTok reconstructs with a caption."""
    from conftest import tiny_maskgen_pipeline

    tiny_maskgen_pipeline(kind).save_pretrained(tmp_path / kind)
    model = app.load_model(str(tmp_path / kind))
    assert model.text_to_image and not model.class_conditional and model.reads_text
    assert model.family.name == f"maskgen_{kind}" and model.class_choices == []
    with pytest.raises(gr.Error, match="generates from text: use the Text to image tab"):
        app.generate(model, 0, 1, 2, 1.0, "linear", 1.0, 0, False, progress=no_progress)
    settings = {**TEXT_DEFAULTS, "guidance_schedule": model.pipeline.sampling_settings()["guidance_schedule"]}
    gallery, seed_used, _ = app.text_to_image(model.pipeline, "a red cube", **settings, progress=no_progress)
    assert len(gallery) == 2 and seed_used == "Seed used: 5"
    example = app.example_images()[0]
    with pytest.raises(gr.Error, match="decodes with text: write a caption"):
        app.reconstruct(model, example)
    shown, reconstruction, summary, _ = app.reconstruct(model, example, "a shoe")
    other = app.reconstruct(model, example, "a completely different caption")[1]
    assert "PSNR" in summary and not np.array_equal(pixels(reconstruction), pixels(other))  # the text is read
    demo = app.build_demo(model)  # the text tab comes from the model itself
    assert any(getattr(block, "elem_id", None) == "t2i-button" for block in demo.blocks.values())


def test_a_text_aware_tokenizer_alone_reconstructs_with_a_caption(tmp_path):
    from hf_titok import TATiTokTokenizer

    from conftest import tiny_clip_text_encoder, tiny_clip_tokenizer, tiny_tatitok_config

    TATiTokTokenizer(tiny_tatitok_config("vq")).save_pretrained(tmp_path / "tatitok")
    tiny_clip_text_encoder().save_pretrained(tmp_path / "clip")
    tiny_clip_tokenizer().save_pretrained(tmp_path / "clip")
    model = app.load_model(str(tmp_path / "tatitok"), text_encoder=str(tmp_path / "clip"))
    assert model.pipeline is None and model.reads_text and model.family.name == "tatitok"
    _, _, summary, table = app.reconstruct(model, app.example_images()[0], "a shoe")
    assert "8 tokens" in summary and len(table["data"]) == 1
    app.build_demo(model)


def test_the_sampler_widgets_follow_the_declarations(model, text_model):
    """Bounds, choices and defaults of the Space's sampler widgets are the samplers' declarations (the work a
    request asks for - steps - is bounded tighter)."""
    for pipe in (model.pipeline, text_model):
        for setting in pipe._sampler().settings:
            if setting.name not in ("num_inference_steps", "guidance_scale", "guidance_schedule", "temperature"):
                continue
            widget = app.setting_widget(pipe, setting.name, high=app.MAX_STEPS)
            assert widget.value == pipe.sampling_settings()[setting.name]
            if setting.choices is not None:
                assert [choice[0] for choice in widget.choices] == list(setting.choices)
            elif setting.type is float:
                assert (widget.minimum, widget.maximum) == (setting.low, app.MAX_STEPS)
                assert app.setting_widget(pipe, setting.name).maximum == setting.high


# ---------------------------------------------------------------------------------------------------------
# In a browser
# ---------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model, text_model):
    demo = app.build_demo(model, text_model)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        message = "the browser tests need Chromium (apt-get install chromium)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server, request):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server, wait_until="networkidle")
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    page.close()


def loaded_images(page, selector: str, count: int) -> list[dict]:
    """Wait until `count` images under `selector` have loaded; their natural sizes and sources."""
    page.wait_for_function(
        "([selector, count]) => { const images = [...document.querySelectorAll(selector + ' img')];"
        " return images.length >= count && images.slice(0, count).every(i => i.complete && i.naturalWidth > 0); }",
        arg=[selector, count],
        timeout=120_000,
    )
    return page.eval_on_selector_all(
        f"{selector} img", "images => images.map(i => ({w: i.naturalWidth, h: i.naturalHeight, src: i.src}))"
    )


def fetched_image(page, source: str) -> PIL.Image.Image:
    from io import BytesIO

    response = page.request.get(source)
    assert response.ok, source
    return PIL.Image.open(BytesIO(response.body()))


def set_number(page, element_id: str, value) -> None:
    page.locator(f"#{element_id} input").fill(str(value))


def expect_error(page, message: str, timeout: float = 30.0) -> None:
    """Gradio shows a handler's gr.Error as a toast."""
    deadline, toasts = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        toasts = page.locator(".toast-body").all_inner_texts()
        if any(message in " ".join(toast.split()) for toast in toasts):
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"no error toast {message!r}; toasts: {toasts}")


def test_browser_generate(page):
    set_number(page, "num-images", 3)
    page.click("#generate-button")
    images = loaded_images(page, "#samples", 3)
    assert len(images) == 3 and all(i["w"] == i["h"] == 128 for i in images)
    assert fetched_image(page, images[0]["src"]).size == (128, 128)
    page.get_by_text("Seed used: 0").wait_for(state="visible")
    assert page.locator("#samples-download a").first.get_attribute("href")  # the PNG grid is downloadable


def test_browser_reconstruct_and_variations(page, model):
    num_tokens, codebook_size = model.tokenizer.config.num_latent_tokens, model.tokenizer.config.codebook_size
    page.get_by_role("tab", name="Reconstruct").click()
    page.locator("#examples img").nth(1).click()
    loaded_images(page, "#model-input", 1)
    page.click("#reconstruct-button")
    reconstruction = loaded_images(page, "#reconstruction", 1)[0]
    assert fetched_image(page, reconstruction["src"]).size == (128, 128)
    page.get_by_text(re.compile(r"PSNR \d+\.\d\d dB")).wait_for(state="visible", timeout=30_000)
    page.get_by_text("+7").wait_for(state="visible")  # the token table's last column
    numbers = re.findall(r"\b\d+\b", page.locator("#token-ids").inner_text().split("+7", 1)[1])
    assert len(numbers) == num_tokens + num_tokens // 8  # rows of 8 ids, each after its offset
    assert numbers[::9] == [str(8 * i) for i in range(num_tokens // 8)]
    assert all(0 <= int(n) < codebook_size for i, n in enumerate(numbers) if i % 9)
    set_number(page, "num-variations", 3)
    page.click("#variations-button")
    variations = loaded_images(page, "#variations", 3)
    assert all(v["w"] == 128 for v in variations[:3])
    page.get_by_text(f"8 of {num_tokens} tokens re-sampled").wait_for(state="visible")


def test_browser_text_to_image(page):
    page.get_by_role("tab", name="Text to image").click()
    page.locator("#prompt textarea").fill("")
    page.click("#t2i-button")
    expect_error(page, "the prompt is empty")
    page.locator("#prompt textarea").fill("a cabin in the snow")
    set_number(page, "aesthetic-score", 12)
    page.click("#t2i-button")
    expect_error(page, "Aesthetic score must be between 0 and 10, got 12")
    set_number(page, "aesthetic-score", 6.5)
    set_number(page, "t2i-steps", 4)
    page.click("#t2i-button")
    images = loaded_images(page, "#t2i-images", 2)
    assert all(image["w"] == 128 for image in images[:2])  # 32x32 shown upscaled
    page.get_by_text("Seed used: 0").wait_for(state="visible")


def test_browser_bad_settings_get_messages_and_the_app_keeps_serving(page):
    set_number(page, "num-images", 0)
    page.click("#generate-button")
    expect_error(page, "Number of images must be between 1 and 16, got 0.")
    set_number(page, "num-images", 1)
    set_number(page, "steps", 100000)
    page.click("#generate-button")
    expect_error(page, "Steps must be between 1 and 64, got 100000.")
    set_number(page, "steps", 4)
    page.click("#generate-button")
    assert len(loaded_images(page, "#samples", 1)) >= 1


@pytest.mark.parametrize(
    "name, message",
    [
        ("fake.png", "fake.png is not an image this app can read"),
        ("huge_pixels.png", "(49.0 megapixels); the limit is 36 megapixels."),
        ("huge_bytes.png", "The file is 11.0 MB; the limit is 10 MB."),
    ],
    ids=["not_an_image", "too_many_pixels", "too_many_bytes"],
)
def test_browser_bad_uploads_get_messages(page, bad_files, name, message):
    page.get_by_role("tab", name="Reconstruct").click()
    page.locator("#upload input[type=file]").set_input_files(str(bad_files / name))
    expect_error(page, message)
    page.click("#reconstruct-button")
    expect_error(page, message)


# ---------------------------------------------------------------------------------------------------------
# The Space folder
# ---------------------------------------------------------------------------------------------------------


def test_space_folder_is_ready_to_push(tmp_path, monkeypatch):
    import configparser
    import subprocess

    import huggingface_hub

    card = huggingface_hub.SpaceCard.load(PROJECT / "spaces" / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.license == "apache-2.0"
    assert card.data.title and card.data.sdk_version.split(".")[0] == gr.__version__.split(".")[0]
    requirements = [
        line.strip()
        for line in (PROJECT / "spaces" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "--"))
    ]
    setup = configparser.ConfigParser()
    setup.read(PROJECT / "setup.cfg")
    package = [line.strip() for line in setup["options"]["install_requires"].splitlines() if line.strip()]
    assert {r for r in requirements if not r.startswith(("torch", "gradio"))} == {
        r for r in package if not r.startswith("torch")
    }
    assert "torch==2.13.0" in requirements and any(r.startswith("gradio") for r in requirements)

    spec = importlib.util.spec_from_file_location("push_space", PROJECT / "spaces" / "push_space.py")
    push_space = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(push_space)
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs))

        def upload_folder(self, folder_path, repo_id, **kwargs):
            calls.append(("upload", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
            return "https://huggingface.co/spaces/me/titok/commit/1"

    monkeypatch.setattr(push_space, "HfApi", FakeApi)
    push_space.main(["--repo-id", "me/titok", "--output-dir", str(tmp_path / "space")])
    assert calls[0] == (
        "create",
        "me/titok",
        {"repo_type": "space", "space_sdk": "gradio", "private": False, "exist_ok": True},
    )
    assert calls[1] == ("upload", "me/titok", ["README.md", "app.py", "hf_titok", "requirements.txt"])
    staged = tmp_path / "space"
    assert (staged / "hf_titok" / "pretrained" / "fashion_mnist" / "model_index.json").is_file()
    assert not list(staged.rglob("__pycache__"))
    # On the Space, app.py's folder comes first on sys.path: the copied package is the one imported.
    found = subprocess.run(
        [sys.executable, "-c", "import hf_titok; print(hf_titok.__file__)"],
        cwd=staged,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert found.stdout.strip() == str(staged / "hf_titok" / "__init__.py"), found.stderr[-2000:]
