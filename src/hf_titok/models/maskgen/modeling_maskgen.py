"""MaskGen: text-to-image masked generators over TA-TiTok tokens (bytedance/1d-tokenizer modeling/maskgen.py), as
diffusers models. Both are MM-DiT stacks of diffusers' own `JointTransformerBlock` (SD3's block; the official
code imports it), conditioned on CLIP text and an aesthetic score:

- the token condition is CLIP's penultimate hidden states `[B, 77, 768]` projected to the width (the blocks'
  context stream);
- the pooled condition is `concat(CLIP text_embeds, aesthetic embedding)` projected to the width, the `temb` of
  every block and of the final adaptive norm (there is no timestep embedding);
- `MaskGenVQTransformer` predicts logits over TA-TiTok's codebook for every position (`input_ids` with masked
  positions at `codebook_size`; the head is tied to the token embeddings);
- `MaskGenKLTransformer` turns continuous tokens (masked positions replaced by a learned mask token) into one
  condition vector per position for `MaskGenDiffusionHead`, a small MLP that denoises that position's token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import JointTransformerBlock
from diffusers.models.modeling_utils import ModelMixin, get_parameter_dtype
from diffusers.models.normalization import AdaLayerNormContinuous
from diffusers.utils import BaseOutput
from torch import nn

from ...fast_path import FastPathGuardMixin, generator_fast_path
from ...utils.loading import OfficialFormatMixin
from ...utils.remote_code import SavesCodeMixin

# --------------------------------------------------------------------------------------------------
# Aesthetic-score and timestep embeddings (three different sinusoidal layouts, each as released)
# --------------------------------------------------------------------------------------------------

# Scores enter the sinusoids multiplied by this (a LAION aesthetic score of 6.5 is the angle 650).
AESTHETIC_SCALE = 100.0


def compute_dtype(module: nn.Module) -> torch.dtype:
    """The dtype `module` computes in, which its inputs are cast to. Under diffusers' layerwise casting a weight is
    stored in another dtype (e.g. float8) and cast at each call, so a weight's own dtype is not it. A module whose
    every weight is in an int8 layer of the CPU fast path (float32 in, float32 out) computes in float32."""
    if next(module.parameters(), None) is None:
        return torch.float32
    return get_parameter_dtype(module)


def sinusoidal_halves(values: torch.Tensor, dim: int, max_period: float, sin_first: bool = True) -> torch.Tensor:
    """`[B]` -> `[B, dim]`: sinusoids of `values * exp(-ln(max_period) * i / (dim / 2))` laid out as two halves
    (`[sin | cos]`, or `[cos | sin]` with `sin_first=False`)."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=values.device) / half
    )
    angles = values.float()[:, None] * frequencies[None]
    parts = [torch.sin(angles), torch.cos(angles)]
    return torch.cat(parts if sin_first else parts[::-1], dim=-1)


def sinusoidal_interleaved(values: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """`[B]` -> `[B, dim]`: `sin(values * base^(-2i/dim))` in the even slots, `cos` in the odd ones."""
    exponents = torch.arange(dim // 2, dtype=torch.float32, device=values.device) * 2 / dim
    angles = values.float()[:, None] / torch.pow(base, exponents)[None]
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1)


def check_aesthetic_score(score: torch.Tensor, batch_size: int) -> torch.Tensor:
    """A float or `[B]` tensor of aesthetic scores -> `[batch_size]` float32."""
    if not torch.is_tensor(score):
        score = torch.tensor(float(score))
    score = score.float().reshape(-1)
    return score.expand(batch_size) if score.numel() == 1 else score


# --------------------------------------------------------------------------------------------------
# The shared MM-DiT trunk
# --------------------------------------------------------------------------------------------------


def mask_in_random_order(orders: torch.LongTensor, timestep: torch.Tensor) -> torch.Tensor:
    """MaskGen-KL's training masking (MAR's): with one `timestep` t ~ U(0, 1) `[1]` for the batch, the first
    ceil(N arccos(t) / (pi / 2)) positions of each image's random order `[B, N]` are masked (the ratio clamped to
    at least 1e-6: never none). Returns the mask `[B, N]` as floats (1 = masked), computed on the device."""
    num_tokens = orders.shape[1]
    num_masked = torch.ceil(num_tokens * (torch.acos(timestep.float()) / (math.pi / 2)).clamp(min=1e-6))
    positions = torch.arange(num_tokens, device=orders.device).expand_as(orders)
    ranks = torch.empty_like(orders).scatter_(1, orders, positions)  # where each position stands in its order
    return (ranks < num_masked.reshape(-1, 1)).float()


class MaskGenTransformerMixin:
    """The conditioning projections, the `JointTransformerBlock` stack and the final adaptive norm that both
    MaskGen models share (`_build_trunk`, `_run_trunk`)."""

    def _build_trunk(
        self,
        hidden_size: int,
        num_layers: int,
        num_attention_heads: int,
        text_hidden_size: int,
        pooled_projection_dim: int,
        aesthetic_embed_dim: int,
    ) -> None:
        if hidden_size % num_attention_heads:
            raise ValueError(f"hidden_size={hidden_size} is not divisible by num_attention_heads={num_attention_heads}")
        self.context_embedder = nn.Linear(text_hidden_size, hidden_size)
        self.pooled_embedder = nn.Linear(pooled_projection_dim + aesthetic_embed_dim, hidden_size)
        head_dim = hidden_size // num_attention_heads
        # The last block only updates the image stream (its text output would be unused).
        self.transformer_blocks = nn.ModuleList(
            JointTransformerBlock(hidden_size, num_attention_heads, head_dim, context_pre_only=index == num_layers - 1)
            for index in range(num_layers)
        )
        self.norm_out = AdaLayerNormContinuous(hidden_size, hidden_size, elementwise_affine=False, eps=1e-6)
        self.gradient_checkpointing = False

    def enable_fast_path(self):
        """Switch on the CPU fast path in place (`hf_titok.fast_path`): int8 linear layers (the blocks, the
        projections, the output head; MaskGen-KL's diffusion head too). The samplers stay float32."""
        return generator_fast_path(self)

    def pooled_condition(self, pooled_prompt_embeds: torch.Tensor, aesthetic_embedding: torch.Tensor) -> torch.Tensor:
        """`[B, P]` CLIP text_embeds + `[B, M]` aesthetic embedding -> the blocks' `temb` `[B, D]`."""
        dtype = compute_dtype(self)
        return self.pooled_embedder(torch.cat([pooled_prompt_embeds.to(dtype), aesthetic_embedding.to(dtype)], -1))

    def _run_trunk(self, hidden_states, prompt_embeds, temb) -> torch.Tensor:
        context = self.context_embedder(prompt_embeds.to(compute_dtype(self)))
        for block in self.transformer_blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                context, hidden_states = self._gradient_checkpointing_func(block, hidden_states, context, temb)
            else:
                context, hidden_states = block(hidden_states, context, temb)
        return self.norm_out(hidden_states, temb)


class TiedTokenEmbedding(nn.Embedding):
    """MaskGen-VQ's token table, also its output head: `forward(input_ids)` embeds, `forward(hidden_states=h,
    num_logits=K)` gives `h @ weight[:K].T` (no bias). Both go through `forward`, so offload hooks place the one
    weight for either use."""

    def forward(self, input_ids=None, hidden_states=None, num_logits: int | None = None):
        if hidden_states is not None:
            return F.linear(hidden_states, self.weight[:num_logits])
        return super().forward(input_ids)


@dataclass
class MaskGenVQOutput(BaseOutput):
    """Output of [`MaskGenVQTransformer`]: `logits` `[B, N, codebook_size]` over TA-TiTok's codebook."""

    logits: torch.Tensor


@dataclass
class MaskGenKLOutput(BaseOutput):
    """Output of [`MaskGenKLTransformer`]: `condition` `[B, N, hidden_size]`, what the diffusion head denoises
    each position's token with."""

    condition: torch.Tensor


class MaskGenVQTransformer(
    FastPathGuardMixin, OfficialFormatMixin, SavesCodeMixin, ModelMixin, ConfigMixin, MaskGenTransformerMixin
):
    """MaskGen-VQ: a masked transformer over TA-TiTok VQ ids, conditioned on text and an aesthetic score.

    Args:
        codebook_size (`int`, defaults to 8192): TA-TiTok's codebook; the id `codebook_size` is the mask token.
        num_latent_tokens (`int`, defaults to 128): tokens per image.
        hidden_size, num_layers, num_attention_heads (`int`, defaults to 1024, 16, 16): the MM-DiT (MaskGen-L).
        text_hidden_size (`int`, defaults to 768): width of CLIP's hidden states (the token condition).
        pooled_projection_dim (`int`, defaults to 768): width of CLIP's projected `text_embeds`.
        aesthetic_embed_dim (`int`, defaults to 256): width of the aesthetic-score sinusoids (`[sin | cos]`
            halves, max period 1000, of `100 * score`).
        unused_embeddings (`int`, defaults to 1001): rows the released embedding table has beyond the ids and the
            mask token (class rows of an ImageNet variant, never used); kept so that converted weights load.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["JointTransformerBlock"]

    @register_to_config
    def __init__(
        self,
        codebook_size: int = 8192,
        num_latent_tokens: int = 128,
        hidden_size: int = 1024,
        num_layers: int = 16,
        num_attention_heads: int = 16,
        text_hidden_size: int = 768,
        pooled_projection_dim: int = 768,
        aesthetic_embed_dim: int = 256,
        unused_embeddings: int = 1001,
    ):
        super().__init__()
        self.embeddings = TiedTokenEmbedding(codebook_size + 1 + unused_embeddings, hidden_size)
        self.position_embedding = nn.Parameter(torch.zeros(1, num_latent_tokens, hidden_size))
        self._build_trunk(
            hidden_size, num_layers, num_attention_heads, text_hidden_size, pooled_projection_dim, aesthetic_embed_dim
        )

    @property
    def mask_token_id(self) -> int:
        return self.config.codebook_size

    def aesthetic_embedding(self, aesthetic_score: torch.Tensor) -> torch.Tensor:
        """`[B]` scores -> `[B, aesthetic_embed_dim]` (`[sin | cos]` halves, max period 1000, of 100 x score)."""
        return sinusoidal_halves(aesthetic_score * AESTHETIC_SCALE, self.config.aesthetic_embed_dim, 1000.0)

    def forward(
        self,
        input_ids: torch.LongTensor,
        prompt_embeds: torch.Tensor,
        pooled_prompt_embeds: torch.Tensor,
        aesthetic_score: torch.Tensor | float,
        return_dict: bool = True,
    ) -> MaskGenVQOutput | tuple:
        """ids `[B, N]` (masked positions = `codebook_size`), CLIP penultimate states `[B, 77, 768]`, CLIP
        `text_embeds` `[B, 768]` and aesthetic scores (`[B]` or one float) -> logits `[B, N, codebook_size]`."""
        aesthetic = self.aesthetic_embedding(check_aesthetic_score(aesthetic_score, input_ids.shape[0]))
        temb = self.pooled_condition(pooled_prompt_embeds, aesthetic.to(input_ids.device))
        hidden_states = self.embeddings(input_ids) + self.position_embedding
        hidden_states = self._run_trunk(hidden_states, prompt_embeds, temb)
        # The head is tied to the embeddings of the codebook ids (no bias).
        logits = self.embeddings(hidden_states=hidden_states, num_logits=self.config.codebook_size)
        return MaskGenVQOutput(logits) if return_dict else (logits,)


# --------------------------------------------------------------------------------------------------
# MaskGen-KL and its diffusion head
# --------------------------------------------------------------------------------------------------


class TimestepEmbedding(nn.Module):
    """Diffusion timesteps (0..999, the original scale) -> `[B, width]`: `[cos | sin]` of 256 frequencies
    (max period 10000), then Linear-SiLU-Linear."""

    def __init__(self, width: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.linear_1 = nn.Linear(frequency_dim, width)
        self.linear_2 = nn.Linear(width, width)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        features = sinusoidal_halves(timesteps, self.frequency_dim, 10000.0, sin_first=False)
        return self.linear_2(F.silu(self.linear_1(features.to(compute_dtype(self)))))


class DiffusionHeadBlock(nn.Module):
    """Residual MLP block modulated by the condition: x + gate * MLP(LN(x) * (1 + scale) + shift)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.linear_1 = nn.Linear(width, width)
        self.linear_2 = nn.Linear(width, width)
        self.modulation = nn.Linear(width, 3 * width)

    def forward(self, hidden_states: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        """`modulation`: this block's `[..., 3 * width]` (shift | scale | gate), from the head's `modulations`."""
        shift, scale, gate = modulation.chunk(3, dim=-1)
        modulated = self.norm(hidden_states) * (1 + scale) + shift
        return hidden_states + gate * self.linear_2(F.silu(self.linear_1(modulated)))


class MaskGenDiffusionHead(nn.Module):
    """The per-token denoiser of MaskGen-KL (official `SimpleMLPAdaLN`): noisy token `[M, C]`, timestep `[M]` and
    condition `[M, D]` -> `[M, 2C]`: the noise prediction and the variance interpolation values in [-1, 1].

    Two parts: `modulations(timesteps, condition)` (the embedding of timestep + condition and every adaLN
    modulation computed from it: 60% of the head's weights) and `denoise(noisy_tokens, modulations)` (the residual
    MLP on the token). In sampling the timesteps of the reverse diffusion are known in advance and the condition
    is fixed within a token step, so the sampler computes the modulations of all its diffusion steps in one batched
    call (`step_modulations`) and runs only `denoise` per step: the same arithmetic as calling the head per step."""

    def __init__(self, token_channels: int, condition_size: int, width: int, num_blocks: int):
        super().__init__()
        self.time_embedding = TimestepEmbedding(width)
        self.condition_embedding = nn.Linear(condition_size, width)
        self.input_projection = nn.Linear(token_channels, width)
        self.blocks = nn.ModuleList(DiffusionHeadBlock(width) for _ in range(num_blocks))
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.modulation_out = nn.Linear(width, 2 * width)
        self.proj_out = nn.Linear(width, 2 * token_channels)

    def _modulations_of(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        activated = F.silu(embedding)
        return [block.modulation(activated) for block in self.blocks] + [self.modulation_out(activated)]

    def modulations(self, timesteps: torch.Tensor, condition: torch.Tensor) -> list[torch.Tensor]:
        """Per row: timestep `[M]` and condition `[M, D]` -> each block's modulation `[M, 3 * width]`, then the
        output layer's `[M, 2 * width]`."""
        dtype = compute_dtype(self)
        return self._modulations_of(self.time_embedding(timesteps) + self.condition_embedding(condition.to(dtype)))

    def step_modulations(self, timesteps: torch.Tensor, condition: torch.Tensor) -> list[torch.Tensor]:
        """Every pair of a timestep `[S]` and a condition row `[M, D]` -> the modulations `[S, M, ...]`
        (`modulations` of each step's rows, in one batched call: the weights are read once, not S times)."""
        dtype = compute_dtype(self)
        embedding = self.time_embedding(timesteps).unsqueeze(1) + self.condition_embedding(condition.to(dtype))
        return self._modulations_of(embedding)

    def denoise(self, noisy_tokens: torch.Tensor, modulations: list[torch.Tensor]) -> torch.Tensor:
        """Noisy tokens `[M, C]` with their rows' `modulations` -> `[M, 2C]`."""
        hidden_states = self.input_projection(noisy_tokens.to(compute_dtype(self)))
        for block, modulation in zip(self.blocks, modulations):
            hidden_states = block(hidden_states, modulation)
        shift, scale = modulations[-1].chunk(2, dim=-1)
        return self.proj_out(self.norm_out(hidden_states) * (1 + scale) + shift)

    def forward(self, noisy_tokens: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.denoise(noisy_tokens, self.modulations(timesteps, condition))

    def guided_denoise(self, noisy_tokens: torch.Tensor, modulations: list[torch.Tensor], guidance_scale):
        """Classifier-free guidance over a doubled batch `[conditional; unconditional]` (the first half's tokens
        are used for both; `modulations` of the doubled rows): eps = eps_u + s (eps_c - eps_u) in both halves; the
        variance values stay per half. `guidance_scale`: a number or a 0-dim tensor (no host read)."""
        half = noisy_tokens[: noisy_tokens.shape[0] // 2]
        output = self.denoise(torch.cat([half, half]), modulations)
        channels = noisy_tokens.shape[-1]
        eps, variance = output[:, :channels], output[:, channels:]
        eps_cond, eps_uncond = eps.chunk(2)
        eps_guided = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
        return torch.cat([torch.cat([eps_guided, eps_guided]), variance], dim=-1)

    def guided(
        self, noisy_tokens: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor, guidance_scale
    ) -> torch.Tensor:
        """`guided_denoise` with the modulations of per-row timesteps `[2M]` and conditions `[2M, D]`."""
        return self.guided_denoise(noisy_tokens, self.modulations(timesteps, condition), guidance_scale)


class MaskGenKLTransformer(
    FastPathGuardMixin, OfficialFormatMixin, SavesCodeMixin, ModelMixin, ConfigMixin, MaskGenTransformerMixin
):
    """MaskGen-KL: a masked transformer over TA-TiTok VAE tokens whose per-position outputs condition a diffusion
    head that samples each token (MAR-style).

    Args:
        token_channels (`int`, defaults to 16): channels of a TA-TiTok VAE token.
        num_latent_tokens (`int`, defaults to 32): tokens per image.
        hidden_size, num_layers, num_attention_heads (`int`, defaults to 1024, 16, 16): the MM-DiT (MaskGen-L).
        text_hidden_size, pooled_projection_dim (`int`, defaults to 768): CLIP's widths.
        aesthetic_embed_dim (`int`, defaults to 256): width of the aesthetic-score sinusoids (interleaved
            sin/cos, base 10000, of `100 * score`).
        head_width, head_num_blocks (`int`, defaults to 1024, 8): the diffusion head MLP.
        scale_factor (`float`, defaults to 0.7525): TA-TiTok latents are multiplied by it for the generator;
            generated tokens are divided by it before decoding.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["JointTransformerBlock"]

    @register_to_config
    def __init__(
        self,
        token_channels: int = 16,
        num_latent_tokens: int = 32,
        hidden_size: int = 1024,
        num_layers: int = 16,
        num_attention_heads: int = 16,
        text_hidden_size: int = 768,
        pooled_projection_dim: int = 768,
        aesthetic_embed_dim: int = 256,
        head_width: int = 1024,
        head_num_blocks: int = 8,
        scale_factor: float = 0.7525,
    ):
        super().__init__()
        self.token_embedder = nn.Linear(token_channels, hidden_size)
        self.token_norm = nn.LayerNorm(hidden_size, eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.position_embedding = nn.Parameter(torch.zeros(1, num_latent_tokens, hidden_size))
        self.diffusion_position_embedding = nn.Parameter(torch.zeros(1, num_latent_tokens, hidden_size))
        self._build_trunk(
            hidden_size, num_layers, num_attention_heads, text_hidden_size, pooled_projection_dim, aesthetic_embed_dim
        )
        self.diffusion_head = MaskGenDiffusionHead(token_channels, hidden_size, head_width, head_num_blocks)

    def aesthetic_embedding(self, aesthetic_score: torch.Tensor) -> torch.Tensor:
        """`[B]` scores -> `[B, aesthetic_embed_dim]` (interleaved sin/cos, base 10000, of 100 x score)."""
        return sinusoidal_interleaved(aesthetic_score * AESTHETIC_SCALE, self.config.aesthetic_embed_dim)

    def forward(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        prompt_embeds: torch.Tensor,
        pooled_prompt_embeds: torch.Tensor,
        aesthetic_score: torch.Tensor | float,
        return_dict: bool = True,
    ) -> MaskGenKLOutput | tuple:
        """Scaled tokens `[B, N, C]` with `mask` `[B, N]` (True/1 = masked: replaced by the mask token), CLIP
        penultimate states, `text_embeds` and aesthetic scores -> the diffusion condition `[B, N, hidden_size]`."""
        aesthetic = self.aesthetic_embedding(check_aesthetic_score(aesthetic_score, tokens.shape[0]))
        temb = self.pooled_condition(pooled_prompt_embeds, aesthetic.to(tokens.device))
        hidden_states = self.token_norm(self.token_embedder(tokens.to(compute_dtype(self))))
        masked = mask.bool().unsqueeze(-1)
        hidden_states = torch.where(masked, self.mask_token.to(hidden_states.dtype), hidden_states)
        hidden_states = self._run_trunk(hidden_states + self.position_embedding, prompt_embeds, temb)
        condition = hidden_states + self.diffusion_position_embedding
        return MaskGenKLOutput(condition) if return_dict else (condition,)


__all__ = [
    "AESTHETIC_SCALE",
    "mask_in_random_order",
    "MaskGenDiffusionHead",
    "MaskGenKLOutput",
    "MaskGenKLTransformer",
    "MaskGenVQOutput",
    "MaskGenVQTransformer",
    "sinusoidal_halves",
    "sinusoidal_interleaved",
]
