"""TiTokMaskGIT, TiTokMaskGITScheduler and TiTokPipeline behaviour on tiny random models."""

import json

import huggingface_hub
import numpy as np
import PIL.Image
import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoModel

from hf_titok import (
    TiTokImageProcessor,
    TiTokMaskGIT,
    TiTokMaskGITConfig,
    TiTokMaskGITScheduler,
    TiTokPipeline,
    TiTokTokenizer,
    imagenet_id2label,
    mask_tokens,
)

from conftest import populate_hub_cache, tiny_maskgit_config, tiny_pipeline, tiny_titok_config


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("architecture", ["bert", "uvit"])
def test_output_types_and_shapes(architecture):
    pipe = tiny_pipeline(architecture)
    ids = pipe([1, 2], num_images_per_label=3, generator=seeded(0), output_type="latent").images
    assert ids.shape == (6, 8) and ids.dtype == torch.int64 and int(ids.max()) < 64 and int(ids.min()) >= 0
    pil = pipe([1], generator=seeded(0)).images
    assert len(pil) == 1 and isinstance(pil[0], PIL.Image.Image) and pil[0].size == (32, 32) and pil[0].mode == "RGB"
    array = pipe([1], generator=seeded(0), output_type="np").images
    assert array.shape == (1, 32, 32, 3) and array.dtype == np.float32 and 0 <= array.min() and array.max() <= 1
    tensor = pipe([1], generator=seeded(0), output_type="pt", return_dict=False)[0]
    assert tensor.shape == (1, 3, 32, 32)
    # "pil" is the uint8 truncation of "pt".
    assert np.array_equal(np.asarray(pil[0]), (tensor[0].permute(1, 2, 0) * 255).to(torch.uint8).numpy())


def test_same_seed_same_images_other_seed_other_images():
    pipe = tiny_pipeline()
    a = pipe([3, 4], generator=seeded(7), output_type="pt").images
    b = pipe([3, 4], generator=seeded(7), output_type="pt").images
    c = pipe([3, 4], generator=seeded(8), output_type="pt").images
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_rows_are_grouped_by_label_and_samples_differ():
    pipe = tiny_pipeline()
    seen = []
    pipe.transformer.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    ids = pipe([5, 6], num_images_per_label=2, generator=seeded(1), output_type="latent").images
    assert seen[0][:4].tolist() == [5, 5, 6, 6]
    assert not torch.equal(ids[0], ids[1])


@pytest.mark.parametrize("schedule, first_step_passes", [("constant", 2), ("linear", 1), ("power-cosine", 2)])
def test_one_batched_forward_per_step(schedule, first_step_passes):
    """Conditional and unconditional rows go through a single forward call per step."""
    pipe = tiny_pipeline()
    batches = []
    pipe.transformer.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    pipe([1, 2], num_inference_steps=5, guidance_schedule=schedule, guidance_scale=3.0, output_type="latent")
    assert len(batches) == 5
    assert batches[0] == 2 * first_step_passes and all(b == 4 for b in batches[1:])
    batches.clear()
    pipe([1, 2], num_inference_steps=5, guidance_scale=0.0, guidance_schedule="constant", output_type="latent")
    assert batches == [2] * 5


def test_defaults_come_from_the_scheduler_config(monkeypatch):
    pipe = tiny_pipeline(num_inference_steps=3, guidance_schedule="power-cosine", guidance_scale=5.0, temperature=1.5)
    used = []
    original = TiTokMaskGITScheduler.set_timesteps
    monkeypatch.setattr(
        TiTokMaskGITScheduler,
        "set_timesteps",
        lambda self, *args, **kwargs: (used.append(self), original(self, *args, **kwargs))[1],
    )
    pipe([0], output_type="latent")
    sampler = used[0]
    assert sampler is not pipe.scheduler  # each call samples with its own copy
    assert sampler.num_inference_steps == 3 and sampler.config.guidance_schedule == "power-cosine"
    assert sampler.config.guidance_scale == 5.0 and sampler.config.temperature == 1.5
    assert sampler.config.softmax_temperature_annealing is True
    pipe([0], guidance_scale=2.5, num_inference_steps=2, output_type="latent")
    assert used[1].config.guidance_scale == 2.5 and used[1].num_inference_steps == 2
    assert pipe.scheduler.config.guidance_scale == 5.0 and pipe.scheduler.timesteps is None  # left as it was
    # sampling_settings is what a call uses: the given values, the config's for the rest.
    assert pipe.sampling_settings(temperature=None, guidance_scale=1.0) == {
        "num_inference_steps": 3,
        "guidance_scale": 1.0,
        "guidance_schedule": "power-cosine",
        "guidance_scale_pow": pipe.scheduler.config.guidance_scale_pow,
        "temperature": 1.5,
        "softmax_temperature_annealing": True,
    }
    with pytest.raises(TypeError, match=r"unknown sampling settings \['steps'\]"):
        pipe.sampling_settings(steps=3)


def test_callback_on_step_end_sees_every_step_and_can_edit_ids():
    pipe = tiny_pipeline()
    steps = []

    def callback(pipeline, step, timestep, kwargs):
        steps.append((step, int(timestep), int((kwargs["latents"] == 64).sum())))
        return {"latents": kwargs["latents"]}

    pipe([1], num_inference_steps=4, callback_on_step_end=callback, output_type="latent")
    assert [s[:2] for s in steps] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    masked = [s[2] for s in steps]
    assert masked == sorted(masked, reverse=True) and masked[-1] == 0


def test_progress_bar_can_be_disabled(capsys):
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=False)
    pipe([1], num_inference_steps=3, output_type="latent")
    assert "3/3" in capsys.readouterr().err
    pipe.set_progress_bar_config(disable=True)
    pipe([1], num_inference_steps=3, output_type="latent")
    assert capsys.readouterr().err == ""


class TestClassLabels:
    pipe = tiny_pipeline(num_classes=1000, id2label=imagenet_id2label())

    def test_imagenet_names_synonyms_case_and_mixing(self):
        assert self.pipe.get_label_ids("tiger") == [292]
        assert self.pipe.get_label_ids(["Panthera Tigris", " GOLDFISH ", 0, np.int64(5), None]) == [292, 1, 0, 5, 1000]
        assert self.pipe.id2label[292] == "tiger, Panthera tigris" and len(imagenet_id2label()) == 1000

    def test_unconditional_is_none_for_callers_and_the_null_class_for_the_generator(self):
        assert self.pipe.resolve_labels(["Panthera Tigris", None, np.int64(5)]) == [292, None, 5]
        assert self.pipe.get_label_ids([None]) == [self.pipe.transformer.config.num_classes]

    def test_display_names(self):
        assert self.pipe.label_name("Panthera tigris") == "tiger" and self.pipe.label_name(292) == "tiger"
        assert self.pipe.label_name(1, with_id=True) == "1: goldfish"
        assert self.pipe.label_name(None) == self.pipe.label_name(None, with_id=True) == "unconditional"
        with pytest.raises(ValueError, match="class id 1000 is out of range"):
            self.pipe.label_name(1000)  # the null class is `None` to callers, never its id

    def test_unknown_name_lists_close_matches(self):
        with pytest.raises(ValueError, match=r"unknown class name 'tigr'; close matches: 'tiger'"):
            self.pipe.get_label_ids("tigr")
        with pytest.raises(ValueError, match=r"unknown class name 'qwertyuiop'$"):
            self.pipe.get_label_ids("qwertyuiop")

    def test_ambiguous_name(self):
        with pytest.raises(ValueError, match=r"'crane' is ambiguous \(134: crane; 517: crane\)"):
            self.pipe.get_label_ids("crane")

    def test_ids_out_of_range_and_wrong_types(self):
        with pytest.raises(ValueError, match="class id 1000 is out of range: this generator has classes 0..999"):
            self.pipe([1000])
        with pytest.raises(ValueError, match="class id -1 is out of range"):
            self.pipe(-1)
        with pytest.raises(TypeError, match="ints, class names or None, got float"):
            self.pipe([1.5])
        with pytest.raises(TypeError, match="got bool"):
            self.pipe([True])
        with pytest.raises(ValueError, match="class_labels is empty"):
            self.pipe([])

    def test_generates_from_names(self):
        ids = self.pipe(["tiger", 3], generator=seeded(0), output_type="latent").images
        assert ids.shape == (2, 8)


def test_bad_sampling_arguments():
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match="num_inference_steps must be an integer >= 1, got 0"):
        pipe([1], num_inference_steps=0)
    with pytest.raises(ValueError, match=r"guidance_scale must lie in \[0, 100\], got -1"):
        pipe([1], guidance_scale=-1.0)
    with pytest.raises(ValueError, match="guidance_schedule must be one of"):
        pipe([1], guidance_schedule="cosine")
    with pytest.raises(ValueError, match=r"temperature must lie in \[0, 100\], got -0.1"):
        pipe([1], temperature=-0.1)
    with pytest.raises(ValueError, match="num_images_per_label must be an integer >= 1"):
        pipe([1], num_images_per_label=0)
    with pytest.raises(ValueError, match="output_type must be one of"):
        pipe([1], output_type="jpeg")
    with pytest.raises(RuntimeError, match="set_timesteps"):
        TiTokMaskGITScheduler().step(torch.zeros(1, 8, 64), 0, torch.zeros(1, 8, dtype=torch.long))


def test_wrong_components_are_refused():
    pipe = tiny_pipeline()
    vqvae, transformer, scheduler = pipe.vqvae, pipe.transformer, pipe.scheduler
    with pytest.raises(TypeError, match="vqvae must be a TiTokTokenizer, got TiTokMaskGIT"):
        TiTokPipeline(transformer, transformer, scheduler)
    with pytest.raises(TypeError, match="transformer must be a TiTokMaskGIT"):
        TiTokPipeline(vqvae, vqvae, scheduler)
    with pytest.raises(TypeError, match="scheduler must be a TiTokMaskGITScheduler"):
        TiTokPipeline(vqvae, transformer, "scheduler")
    with pytest.raises(ValueError, match="discrete ids of a VQ tokenizer, not a VAE"):
        TiTokPipeline(TiTokTokenizer(tiny_titok_config("vae")), transformer, scheduler)
    with pytest.raises(ValueError, match="disagree on num_latent_tokens: 8 vs 16"):
        TiTokPipeline(vqvae, TiTokMaskGIT(tiny_maskgit_config(num_latent_tokens=16)), scheduler)
    # No scheduler: the default one (the mask id is derived from the logits, never copied).
    assert TiTokPipeline(vqvae, transformer).scheduler.config == TiTokMaskGITScheduler().config
    with pytest.raises(ValueError, match="id2label must name every class 0..9"):
        TiTokPipeline(vqvae, transformer, scheduler, id2label={0: "a"})


def test_save_and_load_round_trip(tmp_path):
    labels = {i: f"thing{i}, synonym{i}" for i in range(10)}
    pipe = tiny_pipeline(id2label=labels)
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    # Entries name the folder's copy of the code (remote code, tests/test_remote_code.py); the installed package
    # maps them to its own classes.
    assert index["vqvae"] == ["hf_titok_remote", "TiTokTokenizer"]
    assert index["transformer"] == ["hf_titok_remote", "TiTokMaskGIT"]
    assert index["scheduler"] == ["hf_titok_remote", "TiTokMaskGITScheduler"]
    assert index["id2label"]["3"] == "thing3, synonym3"  # JSON keys are strings on disk
    loaded = TiTokPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.id2label == labels and loaded.get_label_ids("Synonym3") == [3]
    for name in ("vqvae", "transformer"):
        original, reloaded = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert all(torch.equal(original[k], reloaded[k]) for k in original)
    a = pipe(["thing1", 2], generator=seeded(3), output_type="pt").images
    b = loaded(["thing1", 2], generator=seeded(3), output_type="pt").images
    assert torch.equal(a, b)


def test_from_pretrained_hub_id_through_offline_cache(tmp_path, monkeypatch):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "saved")
    cache = tmp_path / "hub"
    populate_hub_cache(cache, "some-org/titok-tiny", tmp_path / "saved")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    loaded = TiTokPipeline.from_pretrained("some-org/titok-tiny")
    loaded.set_progress_bar_config(disable=True)
    assert torch.equal(
        pipe([1], generator=seeded(0), output_type="latent").images,
        loaded([1], generator=seeded(0), output_type="latent").images,
    )
    also = TiTokPipeline.from_pretrained("some-org/titok-tiny", cache_dir=str(cache))
    assert isinstance(also.transformer, TiTokMaskGIT)
    with pytest.raises(Exception, match="Cannot find an appropriate cached snapshot"):
        TiTokPipeline.from_pretrained("some-org/missing")


@pytest.mark.parametrize("architecture", ["bert", "uvit"])
def test_generator_round_trip_keeps_a_k_wide_head(architecture, tmp_path):
    torch.manual_seed(0)
    model = TiTokMaskGIT(tiny_maskgit_config(architecture)).eval()
    assert model.lm_head.weight.shape == (64, 32)
    assert model.lm_head.weight.data_ptr() != model.embed_tokens.weight.data_ptr()
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert type(reloaded) is TiTokMaskGIT
    assert reloaded.lm_head.weight.shape == (64, 32) and reloaded.lm_head.out_features == 64
    assert reloaded.lm_head.weight.data_ptr() != reloaded.embed_tokens.weight.data_ptr()
    ids = torch.randint(0, 65, (2, 8), generator=seeded(0))
    with torch.no_grad():
        assert reloaded(ids, torch.tensor([1, 10])).logits.shape == (2, 8, 64)
        assert torch.equal(model(ids, torch.tensor([1, 10])).logits, reloaded(ids, torch.tensor([1, 10])).logits)
    with pytest.raises(StrictDataclassClassValidationError, match="cannot tie"):
        tiny_maskgit_config(tie_word_embeddings=True)


def test_generator_training_loss_and_class_dropout():
    torch.manual_seed(0)
    model = TiTokMaskGIT(tiny_maskgit_config()).train()
    targets = torch.randint(0, 64, (4, 8), generator=seeded(1))
    masked, mask = mask_tokens(targets, 64, seeded(2))
    assert mask.any(dim=1).all() and torch.equal(masked[mask], torch.full_like(masked[mask], 64))
    assert torch.equal(masked[~mask], targets[~mask])
    out = model(masked, torch.tensor([0, 1, 2, 3]), labels=targets, generator=seeded(3))
    out.loss.backward()
    assert out.loss.ndim == 0 and model.lm_head.weight.grad.abs().sum() > 0
    # Class dropout: with p=1 every row is the null class; in eval mode the default is no dropout.
    seen = []
    model.embed_tokens.register_forward_hook(lambda module, args, output: seen.append(args[0][:, 0].clone()))
    model(masked, torch.tensor([0, 1, 2, 3]), class_dropout_prob=1.0)
    model.eval()(masked, torch.tensor([0, 1, 2, 3]))
    assert seen[0].tolist() == [64 + 10 + 1] * 4 and seen[1].tolist() == [65, 66, 67, 68]


def test_generator_input_errors():
    model = TiTokMaskGIT(tiny_maskgit_config()).eval()
    ids = torch.zeros(2, 8, dtype=torch.long)
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 64\]"):
        model(torch.full((2, 8), 65), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"input_ids must have shape \[B, 8\]"):
        model(torch.zeros(2, 9, dtype=torch.long), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"class_labels must lie in \[0, 10\]"):
        model(ids, torch.tensor([0, 11]))
    with pytest.raises(ValueError, match=r"class_labels must have shape \[2\]"):
        model(ids, torch.tensor([0]))
    with pytest.raises(TypeError, match="class_labels must be an integer tensor"):
        model(ids, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="unknown TiTok generator preset"):
        TiTokMaskGITConfig.from_preset("titok_x")
    with pytest.raises(ValueError, match="guidance_schedule must be one of"):
        TiTokMaskGITScheduler(guidance_schedule="cosine")
    with pytest.raises(StrictDataclassClassValidationError, match="a U-ViT needs an even num_hidden_layers"):
        TiTokMaskGITConfig(architecture="uvit", num_hidden_layers=3)


# ---------------------------------------------------------------------------------------------------------
# Variations: re-mask part of an image's tokens and re-sample them
# ---------------------------------------------------------------------------------------------------------


def test_variations_keep_the_unmasked_tokens_and_resample_the_rest():
    pipe = tiny_pipeline()
    torch.manual_seed(3)
    images = torch.rand(2, 3, 32, 32)
    original = pipe.vqvae.encode(images).token_ids
    masked_counts = []

    def count_masked(pipeline, step, timestep, kwargs):
        masked_counts.append((kwargs["latents"] == pipe.transformer.config.mask_token_id).sum(1).tolist())
        return kwargs

    ids = pipe(
        [1, 2],
        image=images,
        strength=0.5,
        num_images_per_label=3,
        num_inference_steps=4,
        generator=seeded(0),
        output_type="latent",
        callback_on_step_end=count_masked,
    ).images
    assert ids.shape == (6, 8) and not (ids == pipe.transformer.config.mask_token_id).any()
    expected = original.repeat_interleave(3, dim=0)
    # round(0.5 * 8) = 4 positions per row re-sampled: at least the other 4 are the image's own tokens.
    assert ((ids == expected).sum(1) >= 4).all()
    # The schedule runs over the 4 masked positions: after step 1 floor(4 * arccos(1/4) / (pi/2)) = 3 remain.
    assert masked_counts[0] == [3] * 6 and masked_counts[-1] == [0] * 6 and len(masked_counts) == 4
    assert len({tuple(row) for row in ids.tolist()}) > 1  # the variations differ
    again = pipe(
        [1, 2],
        image=images,
        strength=0.5,
        num_images_per_label=3,
        num_inference_steps=4,
        generator=seeded(0),
        output_type="latent",
    ).images
    assert torch.equal(ids, again)


def test_variations_from_pil_images_one_label_or_unconditional_and_few_tokens():
    pipe = tiny_pipeline()
    grey = PIL.Image.fromarray((np.arange(40 * 50) % 251).astype(np.uint8).reshape(40, 50), mode="L")
    out = pipe("class 3", image=[grey, grey.convert("RGBA")], num_images_per_label=2, generator=seeded(1)).images
    assert len(out) == 4 and out[0].size == (32, 32)
    unconditional = pipe(
        None, image=grey, strength=0.01, num_inference_steps=12, generator=seeded(1), output_type="latent"
    ).images
    # strength 0.01 still re-samples one token (in one step, not 12): the rest is the image's tokens.
    pixel_values = TiTokImageProcessor.for_image_size(32)(grey, return_tensors="pt").pixel_values
    assert unconditional.shape == (1, 8)
    assert int((unconditional != pipe.vqvae.encode(pixel_values).token_ids).sum()) <= 1


def test_variation_input_errors():
    pipe = tiny_pipeline()
    images = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"strength must be a number in \(0, 1\]"):
        pipe([1], image=images, strength=0)
    with pytest.raises(ValueError, match="one class label for all images or one per image: got 3 labels for 2 images"):
        pipe([1, 2, 3], image=images)
    with pytest.raises(ValueError, match="this model takes 32x32 images, got 16x16"):
        pipe([1], image=torch.rand(1, 3, 16, 16))
