"""The conventions transformers' and diffusers' own common test suites check: hidden states and attentions as
`ModelOutput` fields, a `loss` a plain `Trainer` can train on, input embeddings, step-callback tensor inputs,
the scheduler's `compatibles`."""

import pytest
import torch
from diffusers.callbacks import PipelineCallback
from transformers import Trainer, TrainingArguments

from hf_titok import MaskGITVQGAN, MaskGITVQGANConfig, TiTokMaskGIT, TiTokMaskGITScheduler, TiTokTokenizer
from conftest import tiny_maskgit_config, tiny_pipeline, tiny_titok_config

VQGAN = dict(image_size=32, hidden_channels=32, channel_mult=[1, 1, 2, 2], num_res_blocks=1, z_channels=16, codebook_size=128)


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
    assert [a.shape for a in out.encoder_attentions] == [(2, config.encoder_num_heads, encoder_length, encoder_length)] * 2
    assert len(out.decoder_attentions) == config.decoder_num_layers
    torch.testing.assert_close(out.decoder_attentions[0].sum(-1), torch.ones(2, config.decoder_num_heads, decoder_length))
    # Asking for attentions runs eager attention for that call: same results as SDPA.
    torch.testing.assert_close(out.reconstruction, plain.reconstruction, atol=1e-5, rtol=0)
    encoded = model.encode(pixels, output_hidden_states=True, output_attentions=True)
    assert len(encoded.hidden_states) == 3 and len(encoded.attentions) == 2
    torch.testing.assert_close(encoded.hidden_states[-1], out.encoder_hidden_states[-1])
    # The config's flags are the defaults, as in transformers.
    model.config.output_hidden_states = True
    assert model(pixels).encoder_hidden_states is not None
    assert isinstance(model.get_input_embeddings(), torch.nn.Conv2d)


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
    assert out.encoder_hidden_states[-1].shape == (2, 64, 4, 4) and out.decoder_hidden_states[-1].shape == (2, 32, 32, 32)
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
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=6, per_device_train_batch_size=4, learning_rate=1e-3,
                             logging_steps=1, use_cpu=True, disable_tqdm=True, report_to="none", save_strategy="no")
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

    pipe(1, num_inference_steps=3, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents", "logits"],
         output_type="latent")
    assert seen == [["latents", "logits"]] * 3
    seen.clear()
    pipe(1, num_inference_steps=2, callback_on_step_end=lambda p, s, t, kw: seen.append(sorted(kw)) or {}, output_type="latent")
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
    assert len(callback.counts) == 4 and callback.counts[-1] == 0 and callback.counts == sorted(callback.counts, reverse=True)


def test_a_callback_returning_bad_ids_is_refused():
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match="latents returned by callback_on_step_end must lie in"):
        pipe(1, num_inference_steps=2, output_type="latent",
             callback_on_step_end=lambda p, s, t, kw: {"latents": kw["latents"] + 1000})


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
