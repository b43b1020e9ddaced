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
