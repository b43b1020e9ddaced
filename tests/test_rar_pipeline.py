"""RARPipeline the diffusers way, on a tiny random RAR over a tiny MaskGIT-VQGAN (and over a TiTok tokenizer's 1-D
tokens): names and ids, generator lists, output types, step callbacks, half precision, offload, a compiled step with
the static cache, saving with the code, the command line and the evaluation command."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from accelerate import cpu_offload

from hf_titok import RARConfig, RARPipeline, RARScheduler, RARTransformer, TiTokTokenizer
from hf_titok.cli import main as cli

from conftest import TINY_RAR, tiny_rar_pipeline, tiny_titok_config


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def pipe() -> RARPipeline:
    return tiny_rar_pipeline(id2label={i: f"item {i}, thing{i}" for i in range(10)})


def test_labels_outputs_and_shapes(pipe):
    images = pipe(["item 3", 7, None], num_images_per_label=2, generator=seeded(0)).images
    assert len(images) == 6 and all(isinstance(image, PIL.Image.Image) and image.size == (32, 32) for image in images)
    ids = pipe(["thing3", 7], generator=seeded(0), output_type="latent").images
    assert ids.shape == (2, 16) and ids.dtype == torch.long and 0 <= int(ids.min()) and int(ids.max()) < 128
    pixels = pipe(["thing3", 7], generator=seeded(0), output_type="pt").images
    assert pixels.shape == (2, 3, 32, 32) and torch.equal(pixels, pipe.vqvae.decode(ids).clamp(0, 1))
    assert pipe(3, generator=seeded(0), output_type="np").images.shape == (1, 32, 32, 3)
    # The class changes the sample; the seed reproduces it.
    assert not torch.equal(ids[0], pipe(8, generator=seeded(0), output_type="latent").images[0])


def test_a_generator_per_image_makes_each_image_independent_of_the_batch(pipe):
    alone = pipe([4], generator=[seeded(7)], output_type="latent").images
    batch = pipe([1, 4], generator=[seeded(3), seeded(7)], output_type="latent").images
    assert torch.equal(batch[1], alone[0])


def test_cache_on_off_and_static_give_the_same_ids(pipe):
    ids = {
        name: pipe([2, 5], generator=seeded(1), output_type="latent", **kwargs).images
        for name, kwargs in {
            "dynamic": {},
            "static": {"cache_implementation": "static"},
            "none": {"use_cache": False},
        }.items()
    }
    assert torch.equal(ids["dynamic"], ids["static"]) and torch.equal(ids["dynamic"], ids["none"])


def test_guidance_is_one_batched_forward_and_a_callback_can_switch_it_off(pipe):
    batches = []
    handle = pipe.transformer.register_forward_pre_hook(lambda module, args: batches.append(tuple(args[0].shape)))

    def no_more_guidance(pipeline, step, timestep, tensors):
        if step == 3:
            pipeline._guidance_scale = 0.0
        return tensors

    try:
        pipe(
            [1, 2], guidance_scale=3.0, generator=seeded(0), output_type="latent", callback_on_step_end=no_more_guidance
        )
    finally:
        handle.remove()
    # Guided steps run 2 x 2 rows (conditional + unconditional), one new position each after the first; when the
    # guidance stops, the cache restarts with 2 rows and the prefix so far.
    assert batches[:4] == [(4, 0), (4, 1), (4, 1), (4, 1)] and batches[4] == (2, 4) and set(batches[5:]) == {(2, 1)}


def test_a_callback_can_replace_the_ids_and_interrupt(pipe):
    def force_first_token(pipeline, step, timestep, tensors):
        if step == 0:
            return {"latents": torch.full_like(tensors["latents"], 5)}
        return tensors

    ids = pipe([1], generator=seeded(0), output_type="latent", callback_on_step_end=force_first_token).images
    assert int(ids[0, 0]) == 5

    def stop(pipeline, step, timestep, tensors):
        if step == 3:
            pipeline._interrupt = True
        return tensors

    partial = pipe([1], generator=seeded(0), output_type="latent", callback_on_step_end=stop).images
    assert partial.shape == (1, 4)
    with pytest.raises(ValueError, match="interrupted .* after 4 of 16 tokens"):
        pipe([1], generator=seeded(0), callback_on_step_end=stop)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision(pipe, dtype):
    half = tiny_rar_pipeline()
    half.transformer.to(dtype)
    half.vqvae.to(dtype)
    labels, ids = torch.tensor([1, 2]), pipe([1, 2], generator=seeded(0), output_type="latent").images
    reference = pipe.transformer(ids, labels).logits
    logits = half.transformer(ids, labels).logits
    assert logits.dtype == dtype and (logits.float() - reference).abs().max() < 0.1
    pixels = half([1, 2], generator=seeded(0), output_type="pt").images
    assert pixels.dtype == torch.float32 and pixels.shape == (2, 3, 32, 32) and torch.isfinite(pixels).all()


def test_model_and_sequential_offload(tmp_path):
    reference = tiny_rar_pipeline()
    expected = reference([1, 2], generator=seeded(0), output_type="pt").images
    offloaded = tiny_rar_pipeline()
    offloaded.enable_model_cpu_offload(device="cpu")
    assert torch.equal(offloaded([1, 2], generator=seeded(0), output_type="pt").images, expected)
    sequential = tiny_rar_pipeline()
    for component in sequential.components.values():
        if isinstance(component, torch.nn.Module):
            cpu_offload(component, torch.device("cpu"), offload_buffers=len(component._parameters) > 0)
    assert sequential.transformer.position_embedding.device.type == "meta"
    assert torch.equal(sequential([1, 2], generator=seeded(0), output_type="pt").images, expected)


def test_a_compiled_step_with_the_static_cache_equals_eager(pipe):
    """One decode step at a fixed shape (the static cache): what `torch.compile` captures once for every step."""
    model = pipe.transformer
    labels, ids = torch.tensor([3, 4]), pipe([3, 4], generator=seeded(0), output_type="latent").images
    eager_cache, compiled_cache = model.static_cache(2), model.static_cache(2)
    model(ids[:, :0], labels, past_key_values=eager_cache)
    model(ids[:, :0], labels, past_key_values=compiled_cache)
    step = torch.compile(lambda new, cache: model(new, labels, past_key_values=cache, check_values=False).logits)
    for t in range(3):
        eager = model(ids[:, t : t + 1], labels, past_key_values=eager_cache).logits
        torch.testing.assert_close(step(ids[:, t : t + 1], compiled_cache), eager, atol=1e-5, rtol=1e-5)


def test_rar_over_a_titok_tokenizers_1d_tokens():
    tokenizer = TiTokTokenizer(tiny_titok_config("single_vq")).eval()
    config = tokenizer.config
    transformer = RARTransformer(
        RARConfig(**{**TINY_RAR, "codebook_size": config.codebook_size, "num_latent_tokens": config.num_latent_tokens})
    ).eval()
    pipe = RARPipeline(vqvae=tokenizer, transformer=transformer, scheduler=RARScheduler(guidance_scale=2.0))
    pipe.set_progress_bar_config(disable=True)
    ids = pipe([1, 2], generator=seeded(0), output_type="latent").images
    assert ids.shape == (2, config.num_latent_tokens)
    assert pipe([1, 2], generator=seeded(0), output_type="pt").images.shape == (2, 3, 32, 32)


def test_saved_pipeline_round_trips_and_carries_its_code(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["transformer"][1] == "RARTransformer" and index["vqvae"][1] == "MaskGITVQGAN"
    assert (tmp_path / "transformer" / "modeling_rar.py").is_file()
    loaded = RARPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.id2label == pipe.id2label and loaded.sampling_settings() == pipe.sampling_settings()
    same = [loaded(["item 1"], generator=seeded(0), output_type="latent").images]
    assert torch.equal(same[0], pipe(["item 1"], generator=seeded(0), output_type="latent").images)


def test_the_command_line_generates_and_evaluates(pipe, tmp_path, capsys):
    pipe.save_pretrained(tmp_path / "rar")
    grid = tmp_path / "grid.png"
    assert cli(["generate", "--model", str(tmp_path / "rar"), "--labels", "1", "thing2", "--output", str(grid)]) == 0
    assert "wrote" in capsys.readouterr().out and PIL.Image.open(grid).size[0] > 32
    assert cli(["generate", "--model", str(tmp_path / "rar"), "--labels", "1", "--steps", "4"]) == 2
    assert "unknown sampling settings ['num_inference_steps']" in capsys.readouterr().err
    assert (
        cli(
            [
                "evaluate",
                "generation",
                "--model",
                str(tmp_path / "rar"),
                "--classes",
                "1",
                "2",
                "--per-class",
                "2",
                "--guidance-scale",
                "1.5",
                "--output-dir",
                str(tmp_path / "samples"),
            ]
        )
        == 0
    )
    assert (tmp_path / "samples" / "samples.npz").is_file()


def test_the_space_serves_a_rar_pipeline(pipe, tmp_path):
    """Its Generate tab shows the settings RAR's sampler has (guidance, its power, temperature; no steps or
    schedule) and samples with them; a temperature of 0 is refused before sampling."""
    import gradio as gr
    from test_bad_input import load_space_app

    pipe.save_pretrained(tmp_path / "rar")
    app = load_space_app()
    model = app.load_model(str(tmp_path / "rar"))
    assert model.class_conditional and model.family.name == "rar"
    assert [name for name in app.GENERATE_SETTINGS if app.sampler_has(model.pipeline, name)] == [
        "guidance_scale",
        "temperature",
        "guidance_scale_pow",
    ]

    def no_progress(*args, **kwargs):
        pass

    gallery, seed_text, download = app.generate(
        model, 3, 2, None, 2.0, None, 1.0, 5, False, guidance_scale_pow=1.0, progress=no_progress
    )
    assert len(gallery) == 2 and "Seed used: 5" in seed_text and PIL.Image.open(download).size[0] > 64
    expected = pipe(3, num_images_per_label=2, guidance_scale=2.0, guidance_scale_pow=1.0, generator=seeded(5)).images
    shown = gallery[0][0]
    assert np.array_equal(np.asarray(shown.resize(expected[0].size, PIL.Image.NEAREST)), np.asarray(expected[0]))
    with pytest.raises(gr.Error, match="Temperature must be above 0"):
        app.generate(model, 3, 1, None, 2.0, None, 0.0, 5, False, progress=no_progress)
    app.build_demo(model)  # the UI builds with RAR's widgets
    _, _, summary, table = app.reconstruct(model, app.example_images()[0])  # through the MaskGIT-VQGAN
    assert "16 tokens from a codebook of 128" in summary and len(table["data"]) >= 1
