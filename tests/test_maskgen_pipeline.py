"""MaskGenPipeline and its parts on tiny random models: prompts and CLIP ids as open_clip makes them, precomputed
embeddings, callbacks and properties, generators (one per image), half precision, model and sequential offload,
torch.compile with zero graph breaks, no host reads in the sampling loops, and the README example."""

import logging

import numpy as np
import PIL.Image
import pytest
import torch
from accelerate import cpu_offload

from hf_titok import MaskGenPipeline
from hf_titok.text_encoding import OPEN_CLIP_PAD_ID, clip_text_features, tokenize_prompts

from conftest import readme_example, run_readme_example, tiny_clip_tokenizer, tiny_maskgen_pipeline

KINDS = ["vq", "kl"]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module", params=KINDS)
def pipe(request):
    return tiny_maskgen_pipeline(request.param)


def test_prompt_ids_follow_open_clip(caplog):
    """Start and end ids, padding with 0 to 77, and a long prompt cut with the end id kept last (and said)."""
    tokenizer = tiny_clip_tokenizer()
    start, end = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids = tokenize_prompts(tokenizer, ["A cat", ""])
    assert ids.shape == (2, 77) and ids[0, 0] == start and ids[1, :2].tolist() == [start, end]
    assert (ids[1, 2:] == OPEN_CLIP_PAD_ID).all() and ids[0].tolist().index(end) == 5  # a | c a t
    with caplog.at_level(logging.WARNING):
        long = tokenize_prompts(tokenizer, ["x" * 200])
    assert long[0, -1] == end and long.shape == (1, 77) and "CLIP reads 77 tokens" in caplog.text


def test_prompts_and_precomputed_embeddings_give_the_same_samples(pipe):
    """`prompt=` and the same text passed as prompt/negative/decoder embeddings (SD3's names) sample the same."""
    prompts = ["a red cube", "a blue ball"]
    expected = pipe(prompts, generator=seeded(0), output_type="pt").images
    ids = tokenize_prompts(pipe.tokenizer, prompts)
    null = tokenize_prompts(pipe.tokenizer, [""])
    with torch.no_grad():
        text, empty = clip_text_features(pipe.text_encoder, ids), clip_text_features(pipe.text_encoder, null)
    images = pipe(
        prompt_embeds=text.condition,
        pooled_prompt_embeds=text.pooled,
        negative_prompt_embeds=empty.condition,
        negative_pooled_prompt_embeds=empty.pooled,
        decoder_prompt_embeds=text.tokenizer_text,
        generator=seeded(0),
        output_type="pt",
    ).images
    assert torch.equal(images, expected)
    # A negative prompt changes the unconditional branch only.
    other = pipe(prompts, negative_prompt="blurry", generator=seeded(0), output_type="pt").images
    assert not torch.equal(other, expected)


def test_output_types_and_images_per_prompt(pipe):
    out = pipe(["a", "b"], num_images_per_prompt=3, generator=seeded(1), output_type="latent").images
    assert out.shape[0] == 6 and (out.dtype == torch.long) == (not pipe.is_kl)
    if pipe.is_kl:
        assert out.shape == (6, 8, 8) and out.is_floating_point()
    else:
        assert ((out >= 0) & (out < 64)).all()
    images = pipe("a", output_type="np", generator=seeded(1)).images
    assert images.shape == (1, 32, 32, 3) and 0 <= images.min() and images.max() <= 1
    assert pipe("a", output_type="pil", generator=seeded(1)).images[0].size == (32, 32)


def test_generator_lists_make_each_image_independent_of_the_batch(pipe):
    alone = pipe("a cat", generator=[seeded(7)], output_type="latent").images
    batch = pipe(["a dog", "a cat"], generator=[seeded(3), seeded(7)], output_type="latent").images
    if pipe.is_kl:  # float noise of batch-size-dependent kernels, amplified ~2e4-fold by the first diffusion step
        assert ((batch[1:] - alone).abs().max() / alone.abs().max()) < 1e-3
    else:
        assert torch.equal(batch[1:], alone)


def test_callbacks_see_each_step_and_can_interrupt(pipe):
    steps = []

    def callback(pipeline, step, timestep, tensors):
        steps.append((step, pipeline.num_timesteps, pipeline.guidance_scale, tuple(tensors["latents"].shape)))
        if step == 1:
            pipeline._interrupt = True
        return tensors

    pipe("a cat", generator=seeded(0), output_type="latent", callback_on_step_end=callback)
    assert [s[0] for s in steps] == [0, 1] and steps[0][1] == 4 and steps[0][2] == pipe.scheduler.config.guidance_scale


def test_half_precision(pipe):
    pipe_bf16 = tiny_maskgen_pipeline("kl" if pipe.is_kl else "vq").to(torch.bfloat16)
    images = pipe_bf16("a cat", generator=seeded(0), output_type="pt").images
    assert images.dtype == torch.float32 and torch.isfinite(images).all()
    latents = pipe_bf16("a cat", generator=seeded(0), output_type="latent").images
    assert torch.isfinite(latents.float()).all()


def test_model_and_sequential_offload_give_the_same_images(pipe):
    kind = "kl" if pipe.is_kl else "vq"
    expected = pipe("a cat", generator=seeded(0), output_type="pt").images
    offloaded = tiny_maskgen_pipeline(kind)
    offloaded.enable_model_cpu_offload(device="cpu")
    assert torch.equal(offloaded("a cat", generator=seeded(0), output_type="pt").images, expected)
    sequential = tiny_maskgen_pipeline(kind)
    for component in sequential.components.values():
        if isinstance(component, torch.nn.Module):
            cpu_offload(component, torch.device("cpu"), offload_buffers=len(component._parameters) > 0)
    assert torch.equal(sequential("a cat", generator=seeded(0), output_type="pt").images, expected)


@torch.no_grad()
def test_transformers_and_decoder_compile_with_zero_graph_breaks(pipe):
    torch._dynamo.reset()
    cond, pooled, score = torch.randn(2, 77, 32), torch.randn(2, 32), torch.tensor([6.5, 5.0])
    if pipe.is_kl:
        inputs = (torch.randn(2, 8, 8), torch.rand(2, 8) > 0.5, cond, pooled, score)
    else:
        inputs = (torch.randint(0, 65, (2, 8)), cond, pooled, score)
    explanation = torch._dynamo.explain(pipe.transformer)(*inputs)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(pipe.transformer, fullgraph=True)
    torch.testing.assert_close(compiled(*inputs)[0], pipe.transformer(*inputs)[0], atol=1e-5, rtol=1e-5)
    tokens = inputs[0] if not pipe.is_kl else torch.randn(2, 8, 8)
    decode = lambda tokens, text: pipe.vqvae.decode(tokens, text_embeddings=text)  # noqa: E731
    explanation = torch._dynamo.explain(decode)(tokens.clamp(max=63) if not pipe.is_kl else tokens, cond)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    if pipe.is_kl:
        head = pipe.transformer.diffusion_head
        explanation = torch._dynamo.explain(head)(
            torch.randn(4, 8), torch.tensor([0, 10, 500, 999]), torch.randn(4, 32)
        )
        assert explanation.graph_break_count == 0, explanation.break_reasons


def test_the_sampling_loop_never_reads_tensors_back(pipe, monkeypatch):
    """Between the text encoding and the decoding, nothing is read back to the host (`.item()`, `.tolist()`,
    `bool()`, `int()`, `.cpu()`/`.numpy()` of a tensor): no GPU sync per step."""
    reads = []
    names = ["item", "tolist", "__bool__", "__int__", "__float__", "cpu", "numpy"]
    originals = {name: getattr(torch.Tensor, name) for name in names}
    active = {"on": False}

    def spy(name):
        def read(self, *args, **kwargs):
            if active["on"]:
                reads.append(name)
            return originals[name](self, *args, **kwargs)

        return read

    run_loop = pipe._sample_tokens if pipe.is_kl else pipe._sample_ids

    def watched(*args, **kwargs):
        active["on"] = True
        try:
            return run_loop(*args, **kwargs)
        finally:
            active["on"] = False

    for name in names:
        monkeypatch.setattr(torch.Tensor, name, spy(name))
    monkeypatch.setattr(pipe, "_sample_tokens" if pipe.is_kl else "_sample_ids", watched)
    pipe(["a cat", "a dog"], generator=seeded(0), output_type="latent")
    # (the progress bar reads the schedule's host-side step indices, which never were on a device)
    assert reads == [], reads


# ---------------------------------------------------------------------------------------------------------
# Variations: mask part of an image's tokens and re-sample them conditioned on the prompt
# ---------------------------------------------------------------------------------------------------------


def test_variations_keep_the_unmasked_tokens_and_schedule_over_the_masked(pipe):
    torch.manual_seed(3)
    images = torch.rand(2, 3, 32, 32)
    encoded = pipe.vqvae.encode(images)
    masked_after_steps = []

    def watch(pipeline, step, timestep, tensors):
        masked_after_steps.append(
            (tensors["latents"] == pipe.transformer.mask_token_id).sum(1).tolist() if not pipe.is_kl else step
        )
        return tensors

    call = dict(image=images, strength=0.5, num_images_per_prompt=3, output_type="latent")
    out = pipe(["a red cube", "a blue ball"], callback_on_step_end=watch, generator=seeded(0), **call).images
    assert out.shape[0] == 6
    if pipe.is_kl:
        original = encoded.latents.repeat_interleave(3, dim=0)
        # round(0.5 * 8) = 4 tokens re-sampled per image: the other 4 are the image's own (scaled and scaled back)
        unchanged = ((out - original).abs() <= 1e-6 * original.abs().max()).all(dim=-1)
        assert (unchanged.sum(1) == 4).all()
        # in at most 4 steps (4 asked for), the schedule counting over the 4 masked tokens
        assert masked_after_steps == [0, 1, 2, 3]
    else:
        original = encoded.token_ids.repeat_interleave(3, dim=0)
        assert not (out == pipe.transformer.mask_token_id).any() and ((out == original).sum(1) >= 4).all()
        # after step 1 of 4, floor(4 * arccos(1/4) / (pi/2)) = 3 of the 4 masked positions remain masked
        assert masked_after_steps[0] == [3] * 6 and masked_after_steps[-1] == [0] * 6
    assert len({tuple(row.flatten().tolist()) for row in out}) > 1  # the variations differ
    assert torch.equal(pipe(["a red cube", "a blue ball"], generator=seeded(0), **call).images, out)  # reproducible


def test_variations_at_full_strength_ignore_the_image(pipe):
    """strength=1 masks every token: two different images give the same samples as sampling without an image
    (the same random numbers are drawn)."""
    first = pipe("a cat", image=torch.zeros(1, 3, 32, 32), strength=1.0, generator=seeded(4), output_type="latent")
    second = pipe("a cat", image=torch.ones(1, 3, 32, 32), strength=1.0, generator=seeded(4), output_type="latent")
    assert torch.equal(first.images, second.images)
    scratch = pipe("a cat", generator=seeded(4), output_type="latent").images
    torch.testing.assert_close(first.images, scratch, rtol=0, atol=1e-6 * scratch.abs().max().item())


def test_variations_pair_prompts_and_images(pipe):
    grey = PIL.Image.fromarray((np.arange(40 * 50) % 251).astype(np.uint8).reshape(40, 50), mode="L")
    # one prompt for several images, several prompts for one image, one each
    assert len(pipe("a cat", image=[grey, grey.convert("RGBA")], generator=seeded(1)).images) == 2
    out = pipe(["a cat", "a dog", "a cow"], image=grey, strength=0.01, generator=seeded(1), output_type="latent")
    assert out.images.shape[0] == 3
    # strength 0.01 still re-samples one token, in one step: the rest are the image's tokens
    pixel_values = pipe.processor(grey, return_tensors="pt").pixel_values
    encoded = pipe.vqvae.encode(pixel_values)
    if pipe.is_kl:
        kept = ((out.images - encoded.latents).abs() <= 1e-6 * encoded.latents.abs().max()).all(dim=-1)
        assert (kept.sum(1) == 7).all()
    else:
        assert ((out.images != encoded.token_ids).sum(1) <= 1).all()
    with pytest.raises(ValueError, match="one prompt for all images, one image for all prompts, or one prompt per"):
        pipe(["a", "b", "c"], image=[grey, grey])
    with pytest.raises(ValueError, match="it needs image="):
        pipe("a cat", strength=0.5)


def test_readme_text_to_image_example_on_tiny_stand_ins(tmp_path, monkeypatch):
    """The README's text-to-image block, run verbatim with the official ids pointed at tiny saved stand-ins."""
    for kind in KINDS:
        tiny_maskgen_pipeline(kind).save_pretrained(tmp_path / kind)
    real = MaskGenPipeline.from_pretrained.__func__
    ids = {"turkeyju/generator_maskgen_vq_l": tmp_path / "vq", "turkeyju/generator_maskgen_kl_l": tmp_path / "kl"}
    monkeypatch.setattr(
        MaskGenPipeline, "from_pretrained", classmethod(lambda cls, name, **kw: real(cls, ids.get(name, name), **kw))
    )
    done = run_readme_example(readme_example("text-to-image"), tmp_path, monkeypatch)
    assert isinstance(done["image"], PIL.Image.Image) and len(done["images"]) == 2
    assert done["variation"].size == done["images"][1].size


@torch.no_grad()
def test_the_diffusion_heads_batched_modulations_are_its_per_step_calls():
    """The sampler computes the head's modulations of all its diffusion steps in batched calls and runs only the
    token MLP per step: the same arithmetic as one head call per step (the official order), in any chunking."""
    pipe = tiny_maskgen_pipeline("kl", num_diffusion_steps=6)
    head, scheduler = pipe.transformer.diffusion_head, pipe.scheduler
    condition = torch.randn(4, pipe.transformer.config.hidden_size, generator=torch.Generator().manual_seed(0))
    noisy = torch.randn(4, pipe.transformer.config.token_channels, generator=torch.Generator().manual_seed(1))
    timesteps = scheduler.timestep_map.flip(0)
    batched = head.step_modulations(timesteps, condition)
    for step, timestep in enumerate(timesteps):
        per_step = head(noisy, timestep.expand(4), condition)
        assert torch.allclose(head.denoise(noisy, [m[step] for m in batched]), per_step, atol=1e-6, rtol=1e-5)

    def sample(rows: int) -> torch.Tensor:
        scheduler.MODULATION_ROWS = rows
        try:
            return scheduler.sample_tokens(head, condition, 2.0, noisy[:2], 1.0, torch.Generator().manual_seed(2))
        finally:
            del scheduler.MODULATION_ROWS

    whole = sample(1024)
    for rows in (1, 4, 9):  # one step per call, one, two steps
        assert torch.allclose(sample(rows), whole, atol=1e-5, rtol=1e-5)
