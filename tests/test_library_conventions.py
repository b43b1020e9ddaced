"""The conventions transformers' and diffusers' own common test suites check: hidden states and attentions as
`ModelOutput` fields, a `loss` a plain `Trainer` can train on, input embeddings, step-callback tensor inputs,
the scheduler's `compatibles`."""

import pytest
import torch
from diffusers.callbacks import PipelineCallback
from transformers import Trainer, TrainingArguments

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, TiTokMaskGIT, TiTokMaskGITScheduler, TiTokTokenizer

from conftest import tiny_maskgit_config, tiny_pipeline, tiny_tatitok_config, tiny_titok_config

VQGAN = dict(
    image_size=32, hidden_channels=32, channel_mult=[1, 1, 2, 2], num_res_blocks=1, z_channels=16, codebook_size=128
)


@pytest.mark.parametrize("kind", ["two_stage", "vae"])
@torch.no_grad()
def test_tokenizer_hidden_states_and_attentions(kind):
    config = tiny_titok_config(kind)
    model = TiTokTokenizer(config).eval()
    pixels = torch.rand(2, 3, 32, 32)
    plain = model(pixels)
    assert plain.encoder_hidden_states is None and plain.decoder_attentions is None
    out = model(pixels, output_hidden_states=True, output_attentions=True)
    encoder_length = 1 + config.encoder_grid_size**2 + config.num_latent_tokens
    decoder_length = 1 + config.decoder_grid_size**2 + config.num_latent_tokens
    assert len(out.encoder_hidden_states) == config.encoder_num_layers + 1
    assert len(out.decoder_hidden_states) == config.decoder_num_layers + 1
    assert out.encoder_hidden_states[0].shape == (2, encoder_length, config.encoder_hidden_size)
    assert out.decoder_hidden_states[-1].shape == (2, decoder_length, config.decoder_hidden_size)
    assert [a.shape for a in out.encoder_attentions] == [
        (2, config.encoder_num_heads, encoder_length, encoder_length)
    ] * 2
    assert len(out.decoder_attentions) == config.decoder_num_layers
    torch.testing.assert_close(
        out.decoder_attentions[0].sum(-1), torch.ones(2, config.decoder_num_heads, decoder_length)
    )
    # Asking for attentions runs eager attention for that call: same results as SDPA.
    torch.testing.assert_close(out.reconstruction, plain.reconstruction, atol=1e-5, rtol=0)
    encoded = model.encode(pixels, output_hidden_states=True, output_attentions=True)
    assert len(encoded.hidden_states) == 3 and len(encoded.attentions) == 2
    torch.testing.assert_close(encoded.hidden_states[-1], out.encoder_hidden_states[-1])
    # The config's flags are the defaults, as in transformers.
    model.config.output_hidden_states = True
    assert model(pixels).encoder_hidden_states is not None
    assert isinstance(model.get_input_embeddings(), torch.nn.Conv2d)


@pytest.mark.parametrize("kind", ["vq", "vae"])
@torch.no_grad()
def test_decode_returns_pixels_or_a_diffusers_decoder_output(kind):
    """`decode` returns the pixel tensor (as since 0.1 and the official `decode_tokens`); `return_dict=True`
    returns diffusers' `DecoderOutput`, so `VQModel`-style `decode(...).sample` works; likewise the VQGAN's."""
    from diffusers.models.autoencoders.vae import DecoderOutput

    model = TiTokTokenizer(tiny_titok_config("two_stage" if kind == "vq" else "vae")).eval()
    encoded = model.encode(torch.rand(2, 3, 32, 32))
    assert encoded.tokens is encoded[model.token_name]
    assert (
        set(encoded.tokens_and_losses()) <= {f for f in encoded.keys()}
        and model.token_name in encoded.tokens_and_losses()
    )
    pixels = model.decode(encoded.tokens)
    assert isinstance(pixels, torch.Tensor) and pixels.shape == (2, 3, 32, 32)
    out = model.decode(encoded.tokens, return_dict=True)
    assert isinstance(out, DecoderOutput) and torch.equal(out.sample, pixels)
    assert torch.equal(
        model.decode(encoded.tokens, batch_size=1, return_dict=True).sample, model.decode(encoded.tokens, batch_size=1)
    )
    assert torch.equal(
        model.decode_latents(encoded.latents, return_dict=True).sample, model.decode_latents(encoded.latents)
    )
    vqgan = MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)).eval()
    codes = vqgan.encode(torch.rand(1, 3, 32, 32)).codes
    assert torch.equal(vqgan.decode(codes, return_dict=True).sample, vqgan.decode(codes))


@pytest.mark.parametrize("architecture, num_outputs", [("bert", 3), ("uvit", 4)])
@torch.no_grad()
def test_generator_hidden_states_and_attentions(architecture, num_outputs):
    config = tiny_maskgit_config(architecture, num_hidden_layers=2 if architecture == "bert" else 2)
    model = TiTokMaskGIT(config).eval()
    ids, labels = torch.randint(0, 65, (2, 8)), torch.tensor([1, 10])
    out = model(ids, labels, output_hidden_states=True, output_attentions=True)
    # BERT: embeddings + 2 layers. U-ViT with 2 layers: input, 1 in-block, the middle block, 1 out-block.
    assert len(out.hidden_states) == num_outputs and out.hidden_states[0].shape == (2, 9, config.hidden_size)
    assert len(out.attentions) == num_outputs - 1 and out.attentions[0].shape == (2, config.num_attention_heads, 9, 9)
    torch.testing.assert_close(out.logits, model(ids, labels).logits, atol=1e-5, rtol=0)
    assert model.get_input_embeddings() is model.embed_tokens
    replacement = torch.nn.Embedding(config.vocab_size, config.hidden_size)
    model.set_input_embeddings(replacement)
    assert model.embed_tokens is replacement


@torch.no_grad()
def test_vqgan_hidden_states_and_loss():
    model = MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)).eval()
    pixels = torch.rand(2, 3, 32, 32)
    out = model(pixels, output_hidden_states=True)
    # encoder: conv_in, 4 levels, middle; decoder: conv_in, middle, 4 levels
    assert len(out.encoder_hidden_states) == 6 and len(out.decoder_hidden_states) == 6
    assert out.encoder_hidden_states[-1].shape == (2, 64, 4, 4) and out.decoder_hidden_states[-1].shape == (
        2,
        32,
        32,
        32,
    )
    expected = torch.nn.functional.mse_loss(out.reconstruction, pixels) + out.quantizer_loss
    torch.testing.assert_close(out.loss, expected)
    assert model(pixels).encoder_hidden_states is None


@torch.no_grad()
def test_tokenizer_loss_is_the_autoencoder_objective():
    pixels = torch.rand(2, 3, 32, 32)
    vq = TiTokTokenizer(tiny_titok_config("single_vq")).eval()
    out = vq(pixels)
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.reconstruction, pixels) + out.quantizer_loss)
    vae = TiTokTokenizer(tiny_titok_config("vae")).eval()
    out = vae(pixels)
    expected = torch.nn.functional.mse_loss(out.reconstruction, pixels) + vae.config.kl_weight * out.kl_loss
    torch.testing.assert_close(out.loss, expected)
    stage1 = TiTokTokenizer(tiny_titok_config("stage1")).eval()
    assert stage1(pixels).loss is None
    codes = torch.randint(0, 128, (2, 16))
    out = stage1(pixels, labels=codes)
    expected = torch.nn.functional.cross_entropy(out.proxy_logits.flatten(0, 1), codes.flatten()) + out.quantizer_loss
    torch.testing.assert_close(out.loss, expected)
    with pytest.raises(ValueError, match="labels must lie in"):
        stage1(pixels, labels=codes + 1000)
    with pytest.raises(ValueError, match="this tokenizer has a pixel head"):
        vq(pixels, labels=codes)


class PixelDataset(torch.utils.data.Dataset):
    def __init__(self, count=16):
        self.images = torch.rand(count, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return {"pixel_values": self.images[index]}


@pytest.mark.parametrize("name", ["single_vq", "vae", "vqgan"])
def test_a_plain_trainer_fine_tunes_the_autoencoders(name, tmp_path):
    torch.manual_seed(0)
    model = MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)) if name == "vqgan" else TiTokTokenizer(tiny_titok_config(name))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        use_cpu=True,
        disable_tqdm=True,
        report_to="none",
        save_strategy="no",
    )
    trainer = Trainer(model=model, args=args, train_dataset=PixelDataset())
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------------------------------
# diffusers conventions
# ---------------------------------------------------------------------------------------------------------


def test_callback_on_step_end_tensor_inputs():
    pipe = tiny_pipeline()
    seen = []

    def callback(pipeline, step, timestep, kwargs):
        seen.append(sorted(kwargs))
        assert kwargs["logits"].shape == (1, 8, 64) and kwargs["logits"].dtype == torch.float32
        return {}

    pipe(
        1,
        num_inference_steps=3,
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "logits"],
        output_type="latent",
    )
    assert seen == [["latents", "logits"]] * 3
    seen.clear()
    pipe(
        1,
        num_inference_steps=2,
        callback_on_step_end=lambda p, s, t, kw: seen.append(sorted(kw)) or {},
        output_type="latent",
    )
    assert seen == [["latents"]] * 2
    with pytest.raises(ValueError, match=r"\['noise'\] are not among the tensors.*\['latents', 'logits'\]"):
        pipe(1, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["noise"])


def test_pipeline_callback_objects_and_their_tensor_inputs():
    class CountMasked(PipelineCallback):
        tensor_inputs = ["latents"]

        def __init__(self):
            super().__init__(cutoff_step_ratio=1.0)
            self.counts = []

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            self.counts.append(int((callback_kwargs["latents"] == 64).sum()))
            return callback_kwargs

    callback = CountMasked()
    tiny_pipeline()(1, num_inference_steps=4, callback_on_step_end=callback, output_type="latent")
    assert (
        len(callback.counts) == 4
        and callback.counts[-1] == 0
        and callback.counts == sorted(callback.counts, reverse=True)
    )


def test_a_callback_returning_bad_ids_is_refused():
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match="latents returned by callback_on_step_end must lie in"):
        pipe(
            1,
            num_inference_steps=2,
            output_type="latent",
            callback_on_step_end=lambda p, s, t, kw: {"latents": kw["latents"] + 1000},
        )


def test_class_labels_may_be_nested_lists_arrays_or_tensors():
    import numpy as np

    pipe = tiny_pipeline()
    assert pipe.get_label_ids([[1, 2], (3,)]) == [1, 2, 3]
    assert pipe.get_label_ids(torch.tensor([[4], [5]])) == [4, 5]
    assert pipe.get_label_ids(torch.tensor(6)) == [6]
    assert pipe.get_label_ids(np.array([7, 8])) == [7, 8]
    assert pipe.get_label_ids([torch.tensor(1), None]) == [1, 10]
    with pytest.raises(TypeError, match="integer class ids, got dtype torch.float32"):
        pipe.get_label_ids(torch.tensor([1.0]))


def test_scheduler_compatibles_and_from_config():
    scheduler = TiTokMaskGITScheduler(num_inference_steps=5)
    assert scheduler.compatibles == [TiTokMaskGITScheduler]
    again = TiTokMaskGITScheduler.from_config(scheduler.config)
    assert again.config.num_inference_steps == 5


# ---------------------------------------------------------------------------------------------------------
# The suites' failures of the last round (transformers 5.25 ModelTesterMixin / ConfigTester /
# ImageProcessingTestMixin, diffusers PipelineTesterMixin), one test each, in our own words
# ---------------------------------------------------------------------------------------------------------


def test_forward_outputs_have_the_common_hidden_states_and_attentions_fields():
    """test_hidden_states_output / test_attention_outputs / test_retain_grad_hidden_states_attentions."""
    config = tiny_titok_config("single_vq")
    model = TiTokTokenizer(config).train()
    out = model(torch.rand(2, 3, 32, 32), output_hidden_states=True, output_attentions=True)
    assert out.hidden_states == out.encoder_hidden_states + out.decoder_hidden_states
    assert out.attentions == out.encoder_attentions + out.decoder_attentions
    assert len(out.hidden_states) == config.encoder_num_layers + 1 + config.decoder_num_layers + 1
    assert model(torch.rand(2, 3, 32, 32)).hidden_states is None
    first, attention = out.hidden_states[0], out.attentions[0]
    first.retain_grad()
    attention.retain_grad()
    out.loss.backward()
    assert first.grad is not None and attention.grad is not None
    vqgan = MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN))
    maps = vqgan(torch.rand(1, 3, 32, 32), output_hidden_states=True)
    assert maps.hidden_states == maps.encoder_hidden_states + maps.decoder_hidden_states


def test_from_pretrained_with_a_config_and_a_state_dict_only():
    for model in (
        TiTokTokenizer(tiny_titok_config("vae")),
        TiTokMaskGIT(tiny_maskgit_config()),
        MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)),
    ):
        loaded = type(model).from_pretrained(None, config=model.config, state_dict=model.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    with pytest.raises(ValueError, match="release= names an official release"):
        TiTokTokenizer.from_pretrained(None, config=model.config, state_dict=model.state_dict(), release="titok_l32")


def test_saved_without_tied_weights_loads_with_nothing_missing(tmp_path):
    """test_load_save_without_tied_weights: none of the models ties weights, so nothing is left out."""
    for index, model in enumerate(
        (TiTokTokenizer(tiny_titok_config("two_stage")), TiTokMaskGIT(tiny_maskgit_config("uvit")))
    ):
        model.config.tie_word_embeddings = False
        model.save_pretrained(tmp_path / str(index))
        _, info = type(model).from_pretrained(tmp_path / str(index), output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]


def test_resize_token_embeddings_is_refused_with_the_way_to_resize_classes():
    model = TiTokMaskGIT(tiny_maskgit_config())
    with pytest.raises(
        NotImplementedError, match=r"follows the tokenizer .*use resize_class_embeddings\(num_classes\)"
    ):
        model.resize_token_embeddings(100)
    assert model.resize_class_embeddings(12).config.num_classes == 12


def test_configs_have_the_common_property_names_and_round_trip_through_json(tmp_path):
    titok = tiny_titok_config("two_stage")
    assert (titok.hidden_size, titok.num_hidden_layers, titok.num_attention_heads) == (
        titok.encoder_hidden_size,
        titok.encoder_num_layers,
        titok.encoder_num_heads,
    )
    vqgan = MaskGITVQGANConfig(**VQGAN)
    assert vqgan.hidden_size == vqgan.hidden_channels == 32
    for config in (titok, vqgan, tiny_maskgit_config("uvit")):
        config.to_json_file(tmp_path / "config.json")
        assert type(config).from_json_file(tmp_path / "config.json").to_dict() == config.to_dict()
        assert type(config).from_dict(config.to_dict()).to_dict() == config.to_dict()
        import json

        written = json.loads(config.to_json_string(use_diff=False))
        assert {k: v for k, v in written.items() if k != "transformers_version"} == json.loads(
            json.dumps({k: v for k, v in config.to_dict().items() if k != "transformers_version"})
        )


@torch.no_grad()
def test_generator_forward_without_class_labels_is_unconditional():
    model = TiTokMaskGIT(tiny_maskgit_config()).eval()
    ids = torch.full((2, 8), model.config.mask_token_id)
    null = torch.full((2,), model.config.num_classes)
    assert torch.equal(model(ids).logits, model(ids, null).logits)
    assert torch.equal(model(input_ids=ids).logits, model(ids, class_labels=null).logits)


def test_step_callbacks_read_and_change_guidance_and_can_interrupt():
    """test_callback_cfg / test_callback_inputs: guidance_scale, num_timesteps, do_classifier_free_guidance and
    interrupt, read and changed mid-sampling as in every diffusers pipeline."""
    pipe = tiny_pipeline()
    seen = []

    def increase_guidance(pipeline, step, timestep, kwargs):
        seen.append((pipeline.guidance_scale, pipeline.do_classifier_free_guidance, pipeline.num_timesteps))
        pipeline._guidance_scale += 1.0
        return kwargs

    pipe([1], guidance_scale=2.0, num_inference_steps=4, output_type="latent", callback_on_step_end=increase_guidance)
    assert seen == [(2.0, True, 4), (3.0, True, 4), (4.0, True, 4), (5.0, True, 4)]
    assert pipe.guidance_scale == 2.0 + pipe.num_timesteps
    # Turning guidance off mid-way changes the samples from that step on (one forward pass without null rows).
    calls = []
    pipe.transformer.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))

    def no_guidance(pipeline, step, timestep, kwargs):
        pipeline._guidance_scale = 0.0
        return kwargs

    pipe(
        [1],
        guidance_scale=2.0,
        guidance_schedule="constant",
        num_inference_steps=4,
        output_type="latent",
        callback_on_step_end=no_guidance,
    )
    assert calls == [2, 1, 1, 1] and not pipe.do_classifier_free_guidance

    def stop(pipeline, step, timestep, kwargs):
        pipeline._interrupt = step == 1
        return kwargs

    calls.clear()
    ids = pipe([1], num_inference_steps=4, output_type="latent", callback_on_step_end=stop).images
    assert len(calls) == 2 and pipe.interrupt and bool((ids == pipe.transformer.config.mask_token_id).any())
    with pytest.raises(ValueError, match="interrupted .* output_type='latent' returns the ids so far"):
        pipe([1], num_inference_steps=4, callback_on_step_end=stop)
    pipe([1], num_inference_steps=4, output_type="latent")
    assert not pipe.interrupt  # each call starts afresh


def test_variants_save_and_load(tmp_path):
    """test_loading_with_variants / test_serialization_with_variants."""
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path, variant="fp16")
    assert (tmp_path / "vqvae" / "model.fp16.safetensors").is_file() and not (
        tmp_path / "vqvae" / "model.safetensors"
    ).exists()
    loaded = type(pipe).from_pretrained(tmp_path, variant="fp16")
    loaded.set_progress_bar_config(disable=True)
    same = [p([1], generator=torch.Generator().manual_seed(0), output_type="latent").images for p in (pipe, loaded)]
    assert torch.equal(*same)


def test_sequential_offload_with_the_cpu_as_execution_device():
    """enable_sequential_cpu_offload(device="cpu") as diffusers' own test calls it."""
    reference = tiny_pipeline()
    expected = reference([1, 2], generator=torch.Generator().manual_seed(0), output_type="pt").images
    pipe = tiny_pipeline()
    pipe.enable_sequential_cpu_offload(device="cpu")
    assert pipe.transformer.position_embedding.device.type == "meta" and pipe._execution_device.type == "cpu"
    images = pipe([1, 2], generator=torch.Generator().manual_seed(0), output_type="pt").images
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=0)


def test_image_processor_takes_the_standard_per_call_overrides():
    from PIL import Image

    from hf_titok import TiTokImageProcessor

    processor = TiTokImageProcessor.for_image_size(32)
    image = Image.new("RGB", (48, 40), (200, 10, 10))
    assert processor(image, size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})[
        "pixel_values"
    ].shape == (1, 3, 16, 16)
    assert processor(image, size=24)["pixel_values"].shape == (1, 3, 24, 24)
    nearest = processor(image, resample=0)["pixel_values"]
    assert nearest.shape == (1, 3, 32, 32) and processor(image, do_convert_rgb=False, do_normalize=False)[
        "pixel_values"
    ].shape == (1, 3, 32, 32)
    assert processor(Image.new("RGB", (20, 20)), do_pad=True)["pixel_values"][0, :, 0, 0].tolist() == [0, 0, 0]
    for overrides, error, words in [
        (dict(do_convert_rgb=False), ValueError, "is a L image: do_convert_rgb=False needs RGB images"),
        (dict(do_normalize=True), ValueError, "do_normalize=True is not possible: TiTok takes pixels in"),
        (dict(size={"height": 16, "width": 20}), ValueError, "one positive square side"),
        (dict(size=16, crop_size=24), ValueError, "size and crop_size must both be"),
        (dict(resample="bilinear"), ValueError, "resample must be a PIL resampling filter"),
        (dict(do_pad="yes"), TypeError, "do_pad must be True or False"),
        (dict(image_mean=[0.5]), ValueError, r"image_mean=\[0.5\] is not possible: TiTok takes pixels in \[0, 1\]"),
        (dict(image_std=2), ValueError, "image_std=2 is not possible: .*without mean/std normalisation"),
        (dict(input_data_format="nhwc"), ValueError, "input_data_format must be 'channels_first', 'channels_last'"),
        (dict(data_format="channels_last"), ValueError, r"pixel_values are \[B, 3, S, S\]"),
        (dict(do_flip=True), TypeError, "takes images, return_tensors and the overrides"),
    ]:
        with pytest.raises(error, match=words):
            processor(Image.new("L", (32, 32)), **overrides)


def test_postprocess_refuses_non_finite_pixels_for_8_bit_images():
    from hf_titok import TiTokImageProcessor

    pixels = torch.rand(1, 3, 8, 8)
    pixels[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="1 pixel values are NaN or infinite.*float16 overflow"):
        TiTokImageProcessor.postprocess(pixels, output_type="pil")
    assert torch.isnan(TiTokImageProcessor.postprocess(pixels, output_type="pt")).any()  # floats stay as they are


def test_optional_components_saved_as_none_load_as_none(tmp_path):
    """test_save_load_optional_components: a component set to None is saved as null and comes back None; calls
    then use the defaults (the scheduler's settings, the standard processor)."""
    pipe = tiny_pipeline()
    default = type(pipe)(pipe.vqvae, pipe.transformer)  # left out: the default ones are built
    assert isinstance(default.scheduler, TiTokMaskGITScheduler) and default.image_processor is not None
    bare = type(pipe)(pipe.vqvae, pipe.transformer, scheduler=None, image_processor=None)
    bare.set_progress_bar_config(disable=True)
    bare.save_pretrained(tmp_path)
    loaded = type(pipe).from_pretrained(tmp_path)
    assert loaded.scheduler is None and loaded.image_processor is None and loaded.processor.image_size == 32
    loaded.set_progress_bar_config(disable=True)
    default.set_progress_bar_config(disable=True)
    assert loaded.sampling_settings() == default.sampling_settings()
    same = [p([1], generator=torch.Generator().manual_seed(0), output_type="pt").images for p in (default, loaded)]
    assert torch.equal(*same)
    assert len(loaded([1], image=torch.rand(1, 3, 32, 32), output_type="pil").images) == 1


# ---------------------------------------------------------------------------------------------------------
# The suites' remaining failures (transformers 5.25 ModelTesterMixin / ImageProcessingTestMixin, diffusers main
# PipelineTesterMixin / ModelTesterMixin / SchedulerCommonTest), TiTok's classes and the family's, each written
# from the suite's own steps
# ---------------------------------------------------------------------------------------------------------


def _every_transformers_model():
    from hf_titok import TATiTokTokenizer

    return {
        "titok_two_stage": lambda: TiTokTokenizer(tiny_titok_config("two_stage")),
        "titok_stage1": lambda: TiTokTokenizer(tiny_titok_config("stage1")),
        "titok_single_vq": lambda: TiTokTokenizer(tiny_titok_config("single_vq")),
        "titok_vae": lambda: TiTokTokenizer(tiny_titok_config("vae")),
        "vqgan": lambda: MaskGITVQGAN(MaskGITVQGANConfig(**VQGAN)),
        "maskgit_bert": lambda: TiTokMaskGIT(tiny_maskgit_config("bert")),
        "maskgit_uvit": lambda: TiTokMaskGIT(tiny_maskgit_config("uvit")),
        "tatitok_vq": lambda: TATiTokTokenizer(tiny_tatitok_config("vq")),
        "tatitok_vae": lambda: TATiTokTokenizer(tiny_tatitok_config("vae")),
    }


@pytest.mark.parametrize("name", list(_every_transformers_model()))
def test_model_weights_reload_no_missing_tied_weights(name, tmp_path):
    """transformers' steps: save (with tie_word_embeddings=False), replace every weight on file by a placeholder,
    reload with `output_loading_info=True`: the report lists exactly the model's parameters and persistent buffers
    as missing (asking for the report means acting on it, so strict loading returns it instead of raising)."""
    from safetensors.torch import save_file

    model = _every_transformers_model()[name]()
    model.config.tie_word_embeddings = False
    model.save_pretrained(tmp_path)
    save_file({"tensor": torch.tensor([1, 2])}, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    reloaded, info = type(model).from_pretrained(tmp_path, output_loading_info=True)
    names = {name for name, _ in reloaded.named_parameters()} | {name for name, _ in reloaded.named_buffers()}
    persistent = set(reloaded.state_dict())
    missing = set(info["missing_keys"])
    assert missing - names == set()  # nothing reported that the model does not have
    assert (names & persistent) - missing == set()  # every real weight reported
    assert info["unexpected_keys"] == {"tensor"} or set(info["unexpected_keys"]) == {"tensor"}
    with pytest.raises(ValueError, match="missing weights: .*pass strict=False"):
        type(model).from_pretrained(tmp_path)  # without the report: strict as ever


@pytest.mark.parametrize("name", list(_every_transformers_model()))
def test_retain_grad_hidden_states_attentions(name):
    """transformers' steps, with the output flags given to `forward` (the config refuses `output_attentions` with
    SDPA attention): `outputs[0]` (the first field set: the loss or the decoded output, never integer ids)
    backpropagates into the first hidden state and, where the model has attention, the first attention map."""
    import inspect

    model = _every_transformers_model()[name]()
    parameters = inspect.signature(model.forward).parameters
    flags = {flag: True for flag in ("output_hidden_states", "output_attentions") if flag in parameters}
    inputs = {"pixel_values": torch.rand(2, 3, 32, 32), **flags}
    if name.startswith("maskgit"):
        inputs = {"input_ids": torch.randint(0, 64, (2, 8)), "class_labels": torch.tensor([1, 2]), **flags}
    if name.startswith("tatitok"):
        inputs["text_embeddings"] = torch.randn(2, 77, 32)
    outputs = model(**inputs)
    output = outputs[0]
    assert output.is_floating_point() and output.requires_grad
    hidden_states = outputs.hidden_states[0]
    hidden_states.retain_grad()
    attentions = getattr(outputs, "attentions", None)
    if attentions is not None:
        attentions[0].retain_grad()
    output.flatten()[0].backward(retain_graph=True)
    assert hidden_states.grad is not None
    if attentions is not None:
        assert attentions[0].grad is not None


def test_image_processor_takes_numpy_images_with_4_channels_as_the_suite_passes_them():
    """ImageProcessingTestMixin.test_call_numpy_4_channels: `input_data_format` and the identity mean/std."""
    import numpy as np

    from hf_titok import TiTokImageProcessor

    processor = TiTokImageProcessor.for_image_size(32)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (30 + 2 * i, 40, 4), dtype=np.uint8) for i in range(3)]
    single = processor(images[0], return_tensors="pt", input_data_format="channels_last", image_mean=0, image_std=1)
    batch = processor(images, return_tensors="pt", input_data_format="channels_last", image_mean=0.0, image_std=1.0)
    assert single.pixel_values.shape == (1, 3, 32, 32) and batch.pixel_values.shape == (3, 3, 32, 32)
    assert torch.equal(single.pixel_values[0], batch.pixel_values[0])
    rgb = processor(images[0][..., :3]).pixel_values  # the alpha channel is dropped
    assert torch.equal(single.pixel_values, rgb)
    channels_first = [np.moveaxis(image, -1, 0) for image in images]
    assert torch.equal(processor(channels_first, input_data_format="channels_first").pixel_values, batch.pixel_values)
    # a 4x4 RGB image is ambiguous by shape: the explicit format decides
    tiny = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    as_last = processor(tiny, input_data_format="channels_last").pixel_values
    as_first = processor(tiny, input_data_format="channels_first").pixel_values
    assert as_last.shape == as_first.shape == (1, 3, 32, 32) and not torch.equal(as_last, as_first)


def _tiny_pipelines():
    from conftest import tiny_maskgen_pipeline

    return {
        "titok": lambda: tiny_pipeline(),
        "maskgen_vq": lambda: tiny_maskgen_pipeline("vq"),
        "maskgen_kl": lambda: tiny_maskgen_pipeline("kl"),
    }


def _embeds_call(pipe, **settings):
    """A call of `pipe` with everything a pipeline without optional components can take (MaskGen: embeddings)."""
    generator = torch.Generator().manual_seed(0)
    if type(pipe).__name__ == "TiTokPipeline":
        return pipe([1, 2], generator=generator, num_inference_steps=4, output_type="pt", **settings).images
    torch.manual_seed(1)
    text = dict(
        prompt_embeds=torch.randn(2, 77, 32),
        pooled_prompt_embeds=torch.randn(2, 32),
        negative_prompt_embeds=torch.randn(1, 77, 32),
        negative_pooled_prompt_embeds=torch.randn(1, 32),
        decoder_prompt_embeds=torch.randn(2, 77, 32),
    )
    return pipe(**text, generator=generator, num_inference_steps=4, output_type="pt", **settings).images


@pytest.mark.parametrize("name", list(_tiny_pipelines()))
def test_save_load_optional_components(name, tmp_path, monkeypatch):
    """diffusers' steps: every optional component set to None, saved (safe_serialization=False), loaded: each is
    still None and the output the same. The loader passes None for a null entry itself, so the constructor's
    defaults are not built whichever way diffusers' loader treats null entries (its main branch leaves them out)."""
    from diffusers import DiffusionPipeline

    pipe = _tiny_pipelines()[name]()
    for component in pipe._optional_components:
        setattr(pipe, component, None)
    expected = _embeds_call(pipe)
    pipe.save_pretrained(tmp_path, safe_serialization=False)
    passed = {}
    load = DiffusionPipeline.from_pretrained.__func__

    def spy(cls, folder, **kwargs):
        passed.update(kwargs)
        return load(cls, folder, **kwargs)

    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", classmethod(spy))
    loaded = type(pipe).from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    for component in pipe._optional_components:
        assert getattr(loaded, component) is None, f"{component} did not stay None"
        assert component in passed and passed[component] is None
    torch.testing.assert_close(_embeds_call(loaded), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["vq", "kl"])
def test_maskgen_serialization_with_variants(kind, tmp_path):
    """diffusers' test_serialization_with_variants: every model component is saved as the variant (the MaskGen
    transformers' save_pretrained names `variant`, which diffusers passes only to signatures that name it)."""
    from conftest import tiny_maskgen_pipeline

    pipe = tiny_maskgen_pipeline(kind)
    pipe.save_pretrained(tmp_path, variant="fp16")
    for component, filename in (
        ("transformer", "diffusion_pytorch_model.fp16.safetensors"),
        ("vqvae", "model.fp16.safetensors"),
        ("text_encoder", "model.fp16.safetensors"),
    ):
        assert (tmp_path / component / filename).is_file(), component
        assert not (tmp_path / component / filename.replace(".fp16", "")).exists(), component
    loaded = type(pipe).from_pretrained(tmp_path, variant="fp16")
    for ours, theirs in zip(pipe.transformer.state_dict().values(), loaded.transformer.state_dict().values()):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("kind", ["vq", "kl"])
def test_maskgen_layerwise_casting_inference(kind):
    """diffusers' test_layerwise_casting_inference: weights stored in float8, computed in bfloat16; inputs are cast
    to the compute dtype, not to a weight's storage dtype. Close to the bfloat16 model's output."""
    from conftest import tiny_maskgen_pipeline

    transformer = tiny_maskgen_pipeline(kind).transformer.to(torch.bfloat16)
    torch.manual_seed(0)
    text, pooled, score = torch.randn(2, 77, 32), torch.randn(2, 32), torch.full((2,), 6.5)
    if kind == "vq":
        inputs = (torch.randint(0, 64, (2, 8)), text, pooled, score)
    else:
        inputs = (torch.randn(2, 8, 8), torch.rand(2, 8) < 0.5, text, pooled, score)
    reference = transformer(*inputs)[0].float()
    transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
    output = transformer(*inputs)[0]
    assert output.dtype == torch.bfloat16 and torch.isfinite(output).all()
    assert (output.float() - reference).abs().max() < 0.25 * reference.abs().max()
    if kind == "kl":
        condition = output[0, :4].float()
        noise = transformer.diffusion_head(torch.randn(4, 8), torch.tensor([1, 2, 3, 4]), condition)
        assert noise.dtype == torch.bfloat16 and noise.shape == (4, 16)


@pytest.mark.parametrize("kind", ["vq", "kl"])
def test_maskgen_encode_prompt_works_in_isolation(kind):
    """diffusers' steps: a pipeline holding only the text encoder and tokenizer (vqvae=None, transformer=None,
    ...) runs `encode_prompt` with the call's text arguments alone (every other parameter has a default); a
    pipeline without text encoder samples the same images from the names `encode_prompt` returns."""
    import ast
    import inspect
    import textwrap

    from diffusers.utils.source_code_parsing_utils import ReturnNameVisitor

    from hf_titok import MaskGenPipeline

    from conftest import tiny_maskgen_pipeline

    full = tiny_maskgen_pipeline(kind)
    components = full.components
    text_only = MaskGenPipeline(**{k: v if ("text" in k or "tokenizer" in k) else None for k, v in components.items()})
    signature = inspect.signature(MaskGenPipeline.encode_prompt)
    required = [p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty]
    assert required == ["self"]
    inputs = dict(prompt=["a jay", "a cabin"], negative_prompt="blurry", num_inference_steps=4, output_type="pt")
    encode_inputs = {key: inputs.pop(key) for key in list(inputs) if key in signature.parameters}
    with torch.no_grad():
        encoded = text_only.encode_prompt(**encode_inputs)
    visitor = ReturnNameVisitor()
    visitor.visit(ast.parse(textwrap.dedent(inspect.getsource(MaskGenPipeline.encode_prompt))))
    call_parameters = inspect.signature(MaskGenPipeline.__call__).parameters
    assert all(name in call_parameters for name in visitor.return_names)
    embeds = dict(zip(visitor.return_names, encoded))
    without_text = MaskGenPipeline(
        **{k: None if ("text" in k or "tokenizer" in k) else v for k, v in components.items()}
    )
    without_text.set_progress_bar_config(disable=True)
    images = without_text(**inputs, **embeds, generator=torch.Generator().manual_seed(0)).images
    expected = full(
        ["a jay", "a cabin"],
        negative_prompt="blurry",
        num_inference_steps=4,
        output_type="pt",
        generator=torch.Generator().manual_seed(0),
    ).images
    torch.testing.assert_close(images, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="no transformer .*encode prompts only"):
        text_only("a jay")


def test_family_schedulers_declare_their_compatibles():
    """SchedulerCommonTest.test_compatibles: a non-empty list of classes that each load the config."""
    from hf_titok import MaskGenKLScheduler, MaskGenVQScheduler

    for scheduler_class in (MaskGenVQScheduler, MaskGenKLScheduler, TiTokMaskGITScheduler):
        scheduler = scheduler_class()
        assert scheduler.compatibles and all(c is not None for c in scheduler.compatibles)
        for compatible in scheduler.compatibles:
            again = compatible.from_config(scheduler.config)
            assert dict(again.config) == dict(scheduler.config)
