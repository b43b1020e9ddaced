"""Parity of the converted CLIP text tower, TA-TiTok tokenizers and MaskGen generators (with their samplers)
with the outputs of the official code (`fixtures_family`; every size and run setting is read from the fixtures)."""

import json

import pytest
import torch
from transformers import CLIPTextModelWithProjection

from hf_titok import MaskGenKLScheduler, MaskGenPipeline, MaskGenVQScheduler, TATiTokTokenizer
from hf_titok.conversion import convert_model, load_official_config

ATOL, RTOL = 1e-4, 1e-4
PIXEL_ATOL = 1e-3
NEAR_TIE = 1e-5


def official_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Our token-major [B, N, C] -> the official [B, C, 1, N]."""
    return tokens.transpose(1, 2).unsqueeze(2)


def ours(official: torch.Tensor) -> torch.Tensor:
    """The official [B, C, 1, N] -> our [B, N, C]."""
    return official[:, :, 0].transpose(1, 2)


def assert_close_to_max(actual: torch.Tensor, expected: torch.Tensor, rtol: float = RTOL):
    """MaskGen-KL's reverse diffusion amplifies float error ~2e4-fold at its first step (alpha_bar ~ 2.4e-9), so
    its outputs are compared relative to their largest magnitude (fixtures README)."""
    error = ((actual - expected).abs().max() / expected.abs().max()).item()
    assert error < rtol, f"max error {error:.3g} of the largest magnitude"


# --------------------------------------------------------------------------------------------------
# CLIP text tower
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_clip_text_tower_gives_what_the_official_path_feeds_the_models(family, tmp_path):
    io = family.io("clip_text")
    model = family.model("clip_text")
    assert isinstance(model, CLIPTextModelWithProjection)
    out = model(io["input_ids"], output_hidden_states=True)
    for index in range(len(out.hidden_states)):
        torch.testing.assert_close(out.hidden_states[index], io[f"hidden_states_{index}"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(out.last_hidden_state, io["tatitok_text_guidance"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(out.hidden_states[-2], io["maskgen_condition"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(out.text_embeds, io["maskgen_condition_pooled"][:, 0], atol=ATOL, rtol=RTOL)
    # `hf_titok.text_encoding` reads the three in one pass.
    from hf_titok.text_encoding import clip_text_features

    features = clip_text_features(model, io["input_ids"])
    assert torch.equal(features.condition, out.hidden_states[-2]) and torch.equal(features.pooled, out.text_embeds)
    # The converted folder loads with transformers alone (no hf_titok class involved) and gives the same outputs.
    model.save_pretrained(tmp_path / "clip")
    reloaded = CLIPTextModelWithProjection.from_pretrained(tmp_path / "clip")
    assert torch.equal(reloaded(io["input_ids"]).text_embeds, out.text_embeds)
    assert reloaded.config.hidden_act == "quick_gelu" and reloaded.config.eos_token_id == 2


@torch.no_grad()
def test_clip_text_tower_with_exact_gelu_matches_open_clip_2_29(family):
    """open_clip >= 2.29 builds the OpenAI ViT-L-14-336 with exact GELU: `quick_gelu: false` converts to that."""
    config = json.loads(family.config_path("clip_text").read_text())
    config["open_clip"]["quick_gelu"] = False
    model = convert_model("clip-text", config, family.weights("clip_text"))
    io = family.io("clip_text")
    out = model(io["input_ids"], output_hidden_states=True)
    assert model.config.hidden_act == "gelu"
    torch.testing.assert_close(out.last_hidden_state, io["gelu_tatitok_text_guidance"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(out.hidden_states[-2], io["gelu_maskgen_condition"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(out.text_embeds, io["gelu_maskgen_condition_pooled"][:, 0], atol=ATOL, rtol=RTOL)


# --------------------------------------------------------------------------------------------------
# TA-TiTok
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_tatitok_vq_encodes_and_decodes_with_text_as_officially(family):
    io, model = family.io("tatitok_vq"), family.model("tatitok_vq")
    assert isinstance(model, TATiTokTokenizer) and model.is_vq
    pixels = family_pixels(family)
    encoded = model.encode(pixels)
    differ = (encoded.token_ids != io["indices"][:, 0]) & (io["vq_margin"][:, 0] >= NEAR_TIE)
    assert not differ.any()
    torch.testing.assert_close(official_tokens(encoded.unquantized_latents), io["z_pre_quant"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(official_tokens(encoded.latents), io["z_quantized"], atol=ATOL, rtol=RTOL)
    for name in ("quantizer_loss", "commitment_loss", "codebook_loss"):
        torch.testing.assert_close(encoded[name].reshape(1), io[name], atol=ATOL, rtol=RTOL)
    text = io["text_guidance"]
    torch.testing.assert_close(model.decoder.text_projection(text), io["dec_text_proj_out"], atol=ATOL, rtol=RTOL)
    decoded = model.decode(io["indices"][:, 0], text_embeddings=text)
    torch.testing.assert_close(decoded, io["decoded_pixels_from_tokens"], atol=PIXEL_ATOL, rtol=RTOL)
    torch.testing.assert_close(
        model.decode_latents(ours(io["z_quantized"]), text), io["decoded_pixels"], atol=PIXEL_ATOL, rtol=RTOL
    )
    # The same tokens with the empty caption (one row of text for the whole batch).
    null = model.decode(io["indices"][:, 0], text_embeddings=io["null_text_guidance"])
    torch.testing.assert_close(null, io["decoded_pixels_null_text"], atol=PIXEL_ATOL, rtol=RTOL)
    # forward = encode + decode with the text, and its loss.
    out = model(pixels, text_embeddings=text)
    torch.testing.assert_close(out.reconstruction, io["decoded_pixels"], atol=PIXEL_ATOL, rtol=RTOL)
    expected = torch.nn.functional.mse_loss(io["decoded_pixels"], pixels) + io["quantizer_loss"][0]
    torch.testing.assert_close(out.loss, expected, atol=1e-4, rtol=1e-4)


def family_pixels(family) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(family.dir / "inputs.io.safetensors"))["pixel_values"]


@torch.no_grad()
def test_tatitok_vae_posterior_sample_and_decoding(family):
    io, model = family.io("tatitok_vae"), family.model("tatitok_vae")
    assert not model.is_vq
    pixels = family_pixels(family)
    encoded = model.encode(pixels)
    torch.testing.assert_close(official_tokens(encoded.latents), io["posterior_mean"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(official_tokens(encoded.posterior_logvar), io["posterior_logvar"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(encoded.kl_loss, io["kl"].sum() / pixels.shape[0], atol=1e-3, rtol=RTOL)
    seed = family.manifest["files"]["tatitok_vae.io.safetensors"]["sample_seed"]
    sample = model.encode(pixels, sample_posterior=True, generator=torch.Generator().manual_seed(seed)).latents
    torch.testing.assert_close(official_tokens(sample), io["z_sample"], atol=ATOL, rtol=RTOL)
    text = io["text_guidance"]
    decoded = model.decode(encoded.latents, text_embeddings=text)
    torch.testing.assert_close(decoded, io["decoded_pixels_from_mean"], atol=PIXEL_ATOL, rtol=RTOL)
    from_sample = model.decode(ours(io["z_sample"]), text_embeddings=text)
    torch.testing.assert_close(from_sample, io["decoded_pixels_from_sample"], atol=PIXEL_ATOL, rtol=RTOL)


def test_tatitok_converted_folder_round_trip(family, tmp_path):
    """save_pretrained -> AutoModel.from_pretrained (hf_titok registers TA-TiTok) gives the same weights."""
    from transformers import AutoModel

    model = family.model("tatitok_vq")
    model.save_pretrained(tmp_path / "tok")
    reloaded = AutoModel.from_pretrained(tmp_path / "tok")
    assert type(reloaded) is TATiTokTokenizer and reloaded.config.model_type == "tatitok"
    for key, value in model.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key


# --------------------------------------------------------------------------------------------------
# MaskGen-VQ
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_maskgen_vq_conditioning_and_logits(family):
    io, model = family.io("maskgen_vq"), family.model("maskgen_vq")
    torch.testing.assert_close(
        model.aesthetic_embedding(io["aesthetic_score"]), io["aesthetic_embedding"], atol=ATOL, rtol=RTOL
    )
    torch.testing.assert_close(model.context_embedder(io["condition"]), io["text_embed_proj_out"], atol=ATOL, rtol=RTOL)
    temb = model.pooled_condition(io["condition_pooled"][:, 0], io["aesthetic_embedding"])
    torch.testing.assert_close(temb, io["cond_pooled_proj_out"][:, 0], atol=ATOL, rtol=RTOL)
    blocks_in = model.embeddings(io["input_ids"]) + model.position_embedding
    torch.testing.assert_close(blocks_in, io["blocks_in"], atol=ATOL, rtol=RTOL)
    context = model.context_embedder(io["condition"])
    context, hidden = model.transformer_blocks[0](blocks_in, context, temb)
    torch.testing.assert_close(hidden, io["block0_x_out"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(context, io["block0_context_out"], atol=ATOL, rtol=RTOL)
    logits = model(io["input_ids"], io["condition"], io["condition_pooled"][:, 0], io["aesthetic_score"]).logits
    torch.testing.assert_close(logits, io["logits_cond"], atol=ATOL, rtol=RTOL)
    rows = io["input_ids"].shape[0]
    null = model(
        io["input_ids"],
        io["null_condition"].expand(rows, -1, -1),
        io["null_condition_pooled"][:, 0].expand(rows, -1),
        io["aesthetic_score"],
    ).logits
    torch.testing.assert_close(null, io["logits_null"], atol=ATOL, rtol=RTOL)


def vq_pipeline(family, run: dict) -> MaskGenPipeline:
    scheduler = MaskGenVQScheduler(num_inference_steps=run["num_sample_steps"], prob_sorting=run["prob_sorting"])
    pipe = MaskGenPipeline(family.model("tatitok_vq"), family.model("maskgen_vq"), scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def embeds(io, decoder_text) -> dict:
    """The fixture's text as the pipeline's precomputed embeddings (SD3's names)."""
    return dict(
        prompt_embeds=io["condition"],
        pooled_prompt_embeds=io["condition_pooled"][:, 0],
        negative_prompt_embeds=io["null_condition"],
        negative_pooled_prompt_embeds=io["null_condition_pooled"][:, 0],
        decoder_prompt_embeds=decoder_text,
    )


@pytest.mark.parametrize(
    "name", ["det_cosine", "det_cosine_pow2", "det_linear", "det_flippedcosine", "det_none", "seeded"]
)
def test_maskgen_vq_sampling_is_token_exact(family, name):
    """Deterministic runs, and the seeded run: a generator seeded like the official `torch.manual_seed` draws the
    same Gumbel noise, so the ids are identical."""
    runs = family.runs("maskgen_vq")
    if name not in runs:
        pytest.skip(f"this fixture set has no {name} run")
    run, io = runs[name], family.io("maskgen_vq")
    pipe = vq_pipeline(family, run)
    ids = pipe(
        **embeds(io, family.io("tatitok_vq")["text_guidance"]),
        guidance_scale=run["guidance_scale"],
        guidance_schedule=run["guidance_decay"],
        guidance_scale_pow=run.get("guidance_decay_scale_pow"),
        temperature=run["randomize_temperature"],
        aesthetic_score=run["sample_aesthetic_score"],
        generator=torch.Generator().manual_seed(run["torch_manual_seed"]),
        output_type="latent",
    ).images
    assert torch.equal(ids, io[f"gen_{name}_ids"])
    if name == "seeded":
        pixels = pipe.vqvae.decode(ids, text_embeddings=family.io("tatitok_vq")["text_guidance"])
        torch.testing.assert_close(pixels, io["gen_seeded_pixels"], atol=PIXEL_ATOL, rtol=RTOL)


# --------------------------------------------------------------------------------------------------
# MaskGen-KL
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_maskgen_kl_conditioning_and_transformer(family):
    io, model = family.io("maskgen_kl"), family.model("maskgen_kl")
    torch.testing.assert_close(
        model.aesthetic_embedding(io["aesthetic_score"]), io["micro_condition"], atol=ATOL, rtol=RTOL
    )
    torch.testing.assert_close(model.context_embedder(io["condition"]), io["text_emb_out"], atol=ATOL, rtol=RTOL)
    temb = model.pooled_condition(io["condition_pooled"][:, 0], io["micro_condition"])
    torch.testing.assert_close(temb, io["text_pooled_emb_out"][:, 0], atol=ATOL, rtol=RTOL)
    embedded = model.token_norm(model.token_embedder(io["x_tokens"]))
    torch.testing.assert_close(embedded, io["z_proj_ln_out"], atol=ATOL, rtol=RTOL)
    condition = model(io["x_tokens"], io["mask"], io["condition"], io["condition_pooled"][:, 0], io["aesthetic_score"])
    torch.testing.assert_close(condition.condition, io["z"], atol=ATOL, rtol=RTOL)


@torch.no_grad()
def test_maskgen_kl_diffusion_head(family):
    io, head = family.io("maskgen_kl"), family.model("maskgen_kl").diffusion_head
    torch.testing.assert_close(head.time_embedding(io["head_t"]), io["head_t_embed"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(head(io["head_x"], io["head_t"], io["head_c"]), io["head_out"], atol=ATOL, rtol=RTOL)
    guided = head.guided(io["head_x"], io["head_t"], io["head_c"], family.settings["head_cfg_scale"])
    torch.testing.assert_close(guided, io["head_cfg_out"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(
        head(io["diff_x_t"], io["diff_t"], io["diff_z"]), io["diff_model_output"], atol=ATOL, rtol=RTOL
    )


def kl_scheduler(family, num_inference_steps: int | None = None) -> MaskGenKLScheduler:
    config = load_official_config(family.config_path("maskgen_kl"))
    steps = int(config["losses"]["num_sampling_steps"])
    return MaskGenKLScheduler(
        num_inference_steps=num_inference_steps or config["model"]["maskgen"]["num_iter"], num_diffusion_steps=steps
    )


@torch.no_grad()
def test_maskgen_kl_noise_schedule_and_reverse_diffusion(family):
    io, head = family.io("maskgen_kl"), family.model("maskgen_kl").diffusion_head
    scheduler = kl_scheduler(family)
    torch.testing.assert_close(torch.from_numpy(scheduler.train_betas), io["train_betas"], atol=1e-15, rtol=0)
    torch.testing.assert_close(torch.from_numpy(scheduler.betas), io["gen_betas"], atol=1e-15, rtol=0)
    assert torch.equal(scheduler.timestep_map, io["gen_timestep_map"])
    z, noise = io["psample_z"], io["psample_noise"]
    assert_close_to_max(scheduler.sample_tokens(head, z, None, noise, 0.0), io["psample_t0_out"])
    guided = scheduler.sample_tokens(
        head, torch.cat([z, io["psample_z_uncond"]]), family.settings["psample_cfg_scale"], noise, 0.0
    )
    assert_close_to_max(guided, io["psample_cfg_t0_out"])
    # Seeded: the noise of every step is drawn as officially (also at the last, noise-free step).
    seeded = scheduler.sample_tokens(
        head, z, None, noise, 1.0, generator=torch.Generator().manual_seed(family.settings["psample_seed"])
    )
    assert_close_to_max(seeded, io["psample_seeded_out"])


def kl_run(family, name: str):
    run, io = family.runs("maskgen_kl")[name], family.io("maskgen_kl")
    settings = dict(guidance_scale=run["cfg"], guidance_schedule=run["cfg_schedule"], temperature=run["temperature"])
    return run, io, settings


@pytest.mark.parametrize("name", ["t0_linear", "t0_constant", "t0_nocfg"])
def test_maskgen_kl_replayed_sampling(family, name):
    """The `t0_*` runs replayed from the recorded generation orders and initial noises (the official code draws
    the orders from numpy's global state; ours come from `generator`, or `token_orders=`)."""
    if name not in family.runs("maskgen_kl"):
        pytest.skip(f"this fixture set has no {name} run")
    run, io, settings = kl_run(family, name)
    orders = io[f"gen_{name}_orders"]
    batch_size, num_tokens = orders.shape
    scheduler = kl_scheduler(family, run["num_iter"]).for_call(**settings)
    scheduler.set_timesteps(num_tokens=num_tokens)
    # The recorded noise rows: step by step, within a step in row-major (image, position) order.
    recorded = io[f"gen_{name}_init_noise"]
    noise, row = torch.zeros(batch_size, num_tokens, recorded.shape[-1]), 0
    counts = []
    for step in range(run["num_iter"]):
        positions = scheduler.positions_at(orders, step)
        count = positions.numel()
        noise[torch.arange(batch_size)[:, None], positions] = recorded[row : row + count].view(*positions.shape, -1)
        row, counts = row + count, counts + [count]
    assert counts == io[f"gen_{name}_step_count"].tolist()
    expected_scales = io[f"gen_{name}_step_cfg"].tolist()
    assert [1.0 if s is None else s for s in scheduler.guidance_scales] == pytest.approx(expected_scales)

    pipe = MaskGenPipeline(
        family.model("tatitok_vae"), family.model("maskgen_kl"), kl_scheduler(family, run["num_iter"])
    )
    pipe.set_progress_bar_config(disable=True)
    tokens = pipe(
        **embeds(io, family.io("tatitok_vae")["text_guidance"]),
        aesthetic_score=run["aes_scores"],
        token_orders=orders,
        latents=noise,
        output_type="latent",
        **settings,
    ).images
    assert_close_to_max(official_tokens(tokens), io[f"gen_{name}_tokens"])


def test_maskgen_kl_seeded_run_with_the_recorded_orders(family):
    """With the recorded orders, a generator seeded like the official `torch.manual_seed` draws the same initial and
    diffusion noises step by step: the seeded run is reproduced, and its pixels."""
    if "seeded" not in family.runs("maskgen_kl"):
        pytest.skip("this fixture set has no seeded run")
    run, io, settings = kl_run(family, "seeded")
    pipe = MaskGenPipeline(
        family.model("tatitok_vae"), family.model("maskgen_kl"), kl_scheduler(family, run["num_iter"])
    )
    pipe.set_progress_bar_config(disable=True)
    text = family.io("tatitok_vae")["text_guidance"]
    tokens = pipe(
        **embeds(io, text),
        aesthetic_score=run["aes_scores"],
        token_orders=io["gen_seeded_orders"],
        generator=torch.Generator().manual_seed(run["torch_manual_seed"]),
        output_type="latent",
        **settings,
    ).images
    assert_close_to_max(official_tokens(tokens), io["gen_seeded_tokens"])
    pixels = pipe.vqvae.decode(ours(io["gen_seeded_tokens"]), text_embeddings=text)
    torch.testing.assert_close(pixels, io["gen_seeded_pixels"], atol=PIXEL_ATOL, rtol=RTOL)


# --------------------------------------------------------------------------------------------------
# Training: the masking and losses of the official training forwards
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_maskgen_vq_training_masking_and_mlm_loss(family):
    """MaskGen-VQ's training forward masks as TiTok's MaskGIT does (same draws, in the same order) and its MLM loss
    (label smoothing 0.1, unmasked positions weighted 0.1) is the official one."""
    from hf_titok.models.titok_maskgit.modeling_titok_maskgit import mask_tokens, masked_token_loss

    io, model = family.io("maskgen_vq"), family.model("maskgen_vq")
    torch.manual_seed(family.settings["train_seed"])
    masked, mask = mask_tokens(io["train_targets"], model.mask_token_id)
    assert torch.equal(masked, io["train_masked_ids"]) and torch.equal(mask, io["train_mask"])
    logits = model(masked, io["condition"], io["condition_pooled"][:, 0], io["aesthetic_score"]).logits
    torch.testing.assert_close(logits, io["train_logits"], atol=ATOL, rtol=RTOL)
    loss, accuracy = masked_token_loss(logits, io["train_targets"], mask, label_smoothing=0.1, unmasked_weight=0.1)
    torch.testing.assert_close(loss.reshape(1), io["mlm_loss"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(accuracy.reshape(1), io["mlm_correct_tokens"], atol=ATOL, rtol=RTOL)


@torch.no_grad()
def test_maskgen_kl_training_targets_and_masking(family):
    """MaskGen-KL's training input: the TA-TiTok posterior moments `[B, 2C*N]` sampled and scaled (the same draw
    after the same seed), the batch's one timestep masking the first ceil(N arccos(t) / (pi/2)) positions of each
    order, and the rows the diffusion loss sees (tiled `diffusion_batch_mul` times)."""
    from hf_titok.models.maskgen.modeling_maskgen import mask_in_random_order

    io, model = family.io("maskgen_kl"), family.model("maskgen_kl")
    batch, channels = io["train_tokens"].shape[0], model.config.token_channels
    moments = io["train_tokens"].reshape(batch, 2 * channels, 1, -1)
    mean, log_variance = ours(moments[:, :channels]), ours(moments[:, channels:].clamp(-30.0, 20.0))
    torch.manual_seed(family.settings["forward_seed"])
    noise = ours(torch.randn(official_tokens(mean).shape))
    sample = (mean + torch.exp(0.5 * log_variance) * noise) * model.config.scale_factor
    torch.testing.assert_close(sample, io["x_tokens"], atol=ATOL, rtol=RTOL)
    assert torch.equal(torch.rand(1), io["mask_timestep"])  # the next torch draw (the orders are numpy's)
    mask = mask_in_random_order(io["orders"], io["mask_timestep"])
    assert torch.equal(mask, io["mask"]) and mask.sum(dim=1).min() >= 1
    repeats = io["diff_target"].shape[0] // io["x_tokens"][..., 0].numel()
    assert torch.equal(io["x_tokens"].reshape(-1, channels).repeat(repeats, 1), io["diff_target"])
    assert torch.equal(io["mask"].reshape(-1).repeat(repeats), io["diff_mask"])


@torch.no_grad()
def test_maskgen_kl_diffusion_loss_terms(family):
    """The diffusion loss of the head (the official `DiffLoss`, which the released training forward never reaches:
    issue #117): x_t, the epsilon MSE, the variational bound in bits, their masked mean; and, drawn after the
    official seed, `DiffLoss.forward` itself (randint timesteps, then the noise)."""
    from hf_titok.models.maskgen.diffusion_maskgen import GaussianDiffusion, cosine_betas, masked_diffusion_loss

    io, head = family.io("maskgen_kl"), family.model("maskgen_kl").diffusion_head
    diffusion = GaussianDiffusion(cosine_betas(len(io["train_betas"])))
    x_t = diffusion.add_noise(io["diff_target"], io["diff_noise"], io["diff_t"])
    torch.testing.assert_close(x_t, io["diff_x_t"], atol=ATOL, rtol=RTOL)
    losses = diffusion.training_losses(io["diff_model_output"], io["diff_target"], x_t, io["diff_t"], io["diff_noise"])
    torch.testing.assert_close(losses["mse"], io["diff_mse"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(losses["vb"], io["diff_vb"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(losses["loss"], io["diff_loss_terms"], atol=ATOL, rtol=RTOL)
    masked_mean = (losses["loss"] * io["diff_mask"]).sum() / io["diff_mask"].sum()
    torch.testing.assert_close(masked_mean.reshape(1), io["diff_loss"], atol=ATOL, rtol=RTOL)
    torch.manual_seed(family.settings["diffloss_seed"])
    loss = masked_diffusion_loss(head, diffusion, io["diff_target"], io["diff_z"], io["diff_mask"], repeats=1)
    torch.testing.assert_close(loss.reshape(1), io["diffloss_forward_loss"], atol=ATOL, rtol=RTOL)


def test_the_diffusion_bound_trains_the_variance_and_the_mse_the_mean():
    """Gradients: the MSE reaches the epsilon channels only, the bound the variance channels only (the mean
    prediction is frozen in it, as in IDDPM's hybrid loss)."""
    from hf_titok.models.maskgen.diffusion_maskgen import GaussianDiffusion, cosine_betas

    diffusion = GaussianDiffusion(cosine_betas(1000))
    generator = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    timesteps = torch.tensor([0, 1, 10, 500, 998, 999])
    x_t = diffusion.add_noise(x0, noise, timesteps)
    output = torch.randn(6, 8, generator=generator).clamp(-1, 1).requires_grad_()
    losses = diffusion.training_losses(output, x0, x_t, timesteps, noise)
    (mse_grad,) = torch.autograd.grad(losses["mse"].sum(), output, retain_graph=True)
    (vb_grad,) = torch.autograd.grad(losses["vb"].sum(), output)
    assert mse_grad[:, 4:].abs().max() == 0 and mse_grad[:, :4].abs().min() > 0
    assert vb_grad[:, :4].abs().max() == 0 and vb_grad[:, 4:].abs().sum() > 0
    assert torch.isfinite(losses["loss"]).all() and (losses["vb"] >= 0).all()


def test_random_order_masking_bounds():
    """t = 0 masks every token, t = 1 exactly one (the ratio's floor), and the masked positions are the first of each
    image's order."""
    from hf_titok.models.maskgen.modeling_maskgen import mask_in_random_order

    orders = torch.stack([torch.randperm(8, generator=torch.Generator().manual_seed(i)) for i in range(3)])
    assert mask_in_random_order(orders, torch.tensor([0.0])).sum().item() == 24
    one = mask_in_random_order(orders, torch.tensor([1.0]))
    assert torch.equal(one.sum(dim=1), torch.ones(3)) and torch.equal(one.argmax(dim=1), orders[:, 0])
    half = mask_in_random_order(orders, torch.tensor([0.5]))  # arccos(0.5) / (pi/2) = 2/3: ceil(8 * 2/3) = 6
    assert torch.equal(half.sum(dim=1), torch.full((3,), 6.0))
    assert all(set(orders[i, :6].tolist()) == set(half[i].nonzero().flatten().tolist()) for i in range(3))
