"""RAR: a class-conditional decoder-only transformer over the ids of an image tokenizer, generated one token at a
time with a key/value cache (transformers' `Cache` classes: `DynamicCache`, or a `StaticCache` that
`torch.compile` can capture).

Training permutes the order the tokens are generated in (`training_orders`, `permute_tokens`); the model is told the
order through two position embeddings per token - its own image position and the position of the token it predicts
next (the "target-aware" embedding) - so that one model samples in raster order after training in random ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache, StaticCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

from ...fast_path import FastPathGuardMixin, generator_fast_path
from ...utils.input_checks import check_class_labels, values_checkable
from ...utils.loading import StrictLoadingMixin
from ...utils.remote_code import SavesCodeMixin
from ...utils.torch_utils import GeneratorType, rand_tensor, random_orders
from .configuration_rar import RARConfig


def training_orders(
    batch_size: int,
    num_tokens: int,
    random_ratio: float,
    generator: GeneratorType = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The generation orders of one training batch `[B, N]`: each row a uniformly random permutation of the image
    positions with probability `random_ratio`, else the raster order `0 .. N-1`.

    Draws `rand(B)` (the coins) then `rand(B, N)` (the permutations, as argsorts) whatever the ratio, on the device:
    no host read, and the stream's position does not depend on the data. (The official code tosses Python's
    `random` per row and draws `torch.randperm(N)` for the rows that get one: the same distribution, another
    stream.)"""
    coins = rand_tensor((batch_size,), generator=generator, device=device)
    permutations = random_orders(batch_size, num_tokens, generator=generator, device=device)
    raster = torch.arange(num_tokens, device=permutations.device).expand(batch_size, -1)
    return torch.where((coins < random_ratio).unsqueeze(-1), permutations, raster)


def permute_tokens(token_ids: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """Raster-order ids `[B, N]` in generation order: row b, step i holds the token at image position
    `orders[b, i]`."""
    return token_ids.gather(1, orders)


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official training loss: plain cross entropy (mean over all B x N tokens, no label smoothing) of the
    `[B, N+1, K]` logits without their last row (predicted after the final token) against the `[B, N]` labels in
    generation order; also the argmax accuracy (per sample, averaged)."""
    logits = logits[:, : labels.shape[1]].float()  # float32: a half-precision log-softmax over K ids loses precision
    loss = F.cross_entropy(logits.transpose(1, 2), labels)
    accuracy = (logits.argmax(dim=-1) == labels).float().mean(dim=1).mean()
    return loss, accuracy


def modulate(hidden_states: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return hidden_states * (1 + scale) + shift


class RARAttention(nn.Module):
    """Causal self-attention with a fused q/k/v projection (rows q, k, v; heads contiguous), a LayerNorm on each
    head's queries and keys (one affine shared by the heads), SDPA, and the key/value cache of `layer_idx`."""

    def __init__(self, config: RARConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.dropout = config.attention_dropout_prob
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.query_norm = nn.LayerNorm(self.head_dim, eps=config.layer_norm_eps)
        self.key_norm = nn.LayerNorm(self.head_dim, eps=config.layer_norm_eps)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, query_positions: torch.Tensor, past_key_values: Cache | None = None
    ) -> torch.Tensor:
        """`hidden_states` `[B, T, D]` at the sequence positions `query_positions` `[T]` -> `[B, T, D]`."""
        batch_size, length, _ = hidden_states.shape
        qkv = self.qkv_proj(hidden_states).view(batch_size, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        query, key = self.query_norm(query), self.key_norm(key)
        mask = None
        if past_key_values is not None:
            key, value = past_key_values.update(key, value, self.layer_idx)
            # The keys hold every earlier position (and, in a static cache, unwritten slots after them): a query
            # sees the keys up to its own position.
            mask = torch.arange(key.shape[2], device=key.device) <= query_positions.unsqueeze(-1)
        output = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None and length > 1,
        )
        return self.out_dropout(self.out_proj(output.transpose(1, 2).reshape(batch_size, length, -1)))


class RARMLP(nn.Module):
    def __init__(self, config: RARConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(hidden_states)))))


class RARBlock(GradientCheckpointingLayer):
    """Pre-norm block with adaLN modulation by the per-position condition:
    x += gate1 * attn(modulate(norm1(x), shift1, scale1)); x += gate2 * mlp(modulate(norm2(x), shift2, scale2))."""

    def __init__(self, config: RARConfig, layer_idx: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = RARAttention(config, layer_idx)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = RARMLP(config)
        # SiLU(condition) -> shift, scale, gate of the attention, then of the MLP
        self.modulation = nn.Linear(config.hidden_size, 6 * config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        condition: torch.Tensor,
        query_positions: torch.Tensor,
        past_key_values: Cache | None = None,
    ) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(condition)).chunk(6, dim=-1)
        attended = self.self_attn(modulate(self.norm1(hidden_states), shift1, scale1), query_positions, past_key_values)
        hidden_states = hidden_states + gate1 * attended
        return hidden_states + gate2 * self.mlp(modulate(self.norm2(hidden_states), shift2, scale2))


@dataclass
class RAROutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, returned with `labels`): the next-token cross entropy.
        logits (`torch.FloatTensor` of shape `(batch_size, length, codebook_size)`):
            Scores over the K image ids. Row j predicts generation step `s + j`, where `s` is the number of image
            tokens before this call's first one: a call without cache (or the first, filling one) returns
            `n + 1` rows for `n` image tokens (the class position predicts step 0), a later call one row per new
            token.
        token_accuracy (`torch.FloatTensor` of shape `()`, returned with `labels`): argmax accuracy.
        past_key_values (`Cache`, returned with `use_cache=True`): the keys and values of every position so far.
        hidden_states (`tuple(torch.FloatTensor)`, returned with `output_hidden_states=True`):
            the blocks' input and each block's output, `[B, T, hidden_size]` (T: the positions of this call,
            the start token included on a first call).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    token_accuracy: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class RARPreTrainedModel(SavesCodeMixin, FastPathGuardMixin, StrictLoadingMixin, PreTrainedModel):
    config: RARConfig
    config_class = RARConfig
    base_model_prefix = "rar"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = False
    _can_compile_fullgraph = True
    _supports_static_cache = True
    _no_split_modules = ["RARBlock"]
    # The official optimizer leaves the final adaLN layer out of weight decay because its name,
    # `adaln_before_head`, contains "ln" (its no-decay rule); ours is named for what it is.
    _no_weight_decay_names = ("final_modulation",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The official initialisation: truncated-normal (std `initializer_range`) linear layers, embeddings and
        position tables, zero biases, unit norms, a zero start token, and zero adaLN modulations (each block and
        the final layer start as the identity of their un-modulated form)."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.trunc_normal_(module.weight, std=std)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm) and module.weight is not None:
            init.ones_(module.weight)
            init.zeros_(module.bias)
        if isinstance(module, (RARBlock, RARTransformer)):
            modulation = module.modulation if isinstance(module, RARBlock) else module.final_modulation
            init.zeros_(modulation.weight)
            init.zeros_(modulation.bias)
        if isinstance(module, RARTransformer):
            init.zeros_(module.start_token)
            for table in (module.position_embedding, module.target_position_embedding, module.condition_embedding):
                init.trunc_normal_(table, std=std)


class RARTransformer(RARPreTrainedModel):
    """RAR's class-conditional autoregressive transformer over image-token ids.

    `forward(input_ids, class_labels)` with ids in generation order -> logits of the next ids; `orders` says which
    image position each generation step fills (default: raster). With `labels` (training) also the loss. Sampling
    lives in [`RARScheduler`] / [`RARPipeline`]: one call per token with `past_key_values` (a `DynamicCache`, or
    `RARTransformer.static_cache(batch_size)` for `torch.compile`).
    """

    def __init__(self, config: RARConfig):
        super().__init__(config)
        width, num_tokens = config.hidden_size, config.num_latent_tokens
        self.embed_tokens = nn.Embedding(config.vocab_size, width)
        self.start_token = nn.Parameter(torch.empty(1, 1, width))
        # Rows: the start token, the class token, then image positions 0 .. N-1.
        self.position_embedding = nn.Parameter(torch.empty(num_tokens + 2, width))
        # The image position of the token predicted next (target-aware), added to the position before it.
        self.target_position_embedding = nn.Parameter(torch.empty(num_tokens, width))
        # Added to the class embedding to make each sequence position's adaLN condition.
        self.condition_embedding = nn.Parameter(torch.empty(num_tokens + 2, width))
        self.layers = nn.ModuleList(RARBlock(config, index) for index in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(width, eps=config.layer_norm_eps, elementwise_affine=False)
        self.final_modulation = nn.Linear(width, 2 * width)  # SiLU(condition) -> shift, scale
        self.lm_head = nn.Linear(width, config.codebook_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def enable_fast_path(self) -> "RARTransformer":
        """Switch on the CPU fast path in place (`hf_titok.fast_path`): int8 linear layers (attention, MLPs, adaLN
        modulations, output head); the KV cache, position tables and the sampler stay float32."""
        return generator_fast_path(self)

    def static_cache(self, batch_size: int) -> StaticCache:
        """A cache of fixed size for a whole sequence of `batch_size` rows, which `torch.compile` can capture (its
        tensors are allocated on the first call, on the model's device and in its dtype)."""
        del batch_size  # allocated lazily from the first keys
        return StaticCache(config=self.config, max_cache_len=self.config.max_sequence_length)

    def forward(
        self,
        input_ids: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        orders: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
        use_cache: bool | None = None,
        class_dropout_prob: float | None = None,
        generator: torch.Generator | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        check_values: bool = True,
    ) -> RAROutput | tuple:
        """
        Args:
            input_ids: `[B, n]` image ids in `[0, K)` in generation order: the whole sequence (training), a prefix
                (`n` may be 0: the first sampling step), or, with a filled `past_key_values`, the new tokens only.
            class_labels: `[B]` classes in `[0, num_classes]` (`num_classes` = unconditional, the null class);
                `None`: every row unconditional.
            orders: `[B, N]` the image position of each generation step (a permutation per row); default raster.
            labels: `[B, N]` target ids in generation order (training: `permute_tokens(ids, orders)`); needs the
                whole sequence without cache. Returns the loss and accuracy of `next_token_loss`.
            past_key_values: the cache of earlier calls (transformers' `Cache`); with `use_cache=True` and none
                given a `DynamicCache` is started. Give it empty on the first call.
            class_dropout_prob: probability of replacing each class by the null class (classifier-free guidance
                training). Defaults to `config.class_dropout_prob` in training mode and 0 in eval mode.
            generator: RNG of the class dropout.
            check_values: check that ids and class labels are in range (a host read; the pipeline checks its
                inputs once and turns this off inside its loop).
        """
        config = self.config
        return_dict = config.return_dict if return_dict is None else return_dict
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache()
        cached = 0 if past_key_values is None else past_key_values.get_seq_length()
        first_call = isinstance(cached, int) and cached == 0
        self._check_inputs(input_ids, orders, labels, first_call, check_values)
        batch_size, length = input_ids.shape
        device = input_ids.device
        if class_labels is None:
            class_labels = torch.full((batch_size,), config.num_classes, device=device)
        check_class_labels(class_labels, batch_size, config.num_classes, check_values)
        if class_dropout_prob is None:
            class_dropout_prob = config.class_dropout_prob if self.training else 0.0
        class_tokens = class_labels.long() + config.class_token_offset
        if class_dropout_prob > 0:
            drop = torch.rand(class_tokens.shape, generator=generator, device=device) < class_dropout_prob
            class_tokens = torch.where(drop, torch.full_like(class_tokens, config.null_class_id), class_tokens)
        class_embedding = self.embed_tokens(class_tokens).unsqueeze(1)

        # Generation steps of this call's image tokens, and the sequence positions of its rows.
        first_step = 0 if first_call else cached - 2
        steps = first_step + torch.arange(length, device=device)
        positions = self._image_positions(orders, steps, batch_size)
        next_positions = self._image_positions(orders, steps + 1, batch_size)
        hidden_states = (
            self.embed_tokens(input_ids.long())
            + self.position_embedding[positions + 2]
            + self._target_embedding(next_positions)
        )
        if first_call:
            first_target = self._image_positions(orders, steps[:0].new_zeros(1), batch_size)
            start = self.start_token + self.position_embedding[0]
            class_row = class_embedding + self.position_embedding[1] + self._target_embedding(first_target)
            hidden_states = torch.cat([start.expand(batch_size, -1, -1), class_row, hidden_states], dim=1)
            query_positions = torch.arange(length + 2, device=device)
        else:
            query_positions = cached + torch.arange(length, device=device)
        condition = class_embedding + self.condition_embedding[query_positions]

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states, condition, query_positions, past_key_values)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
        if first_call:  # the start token predicts nothing
            hidden_states, condition = hidden_states[:, 1:], condition[:, 1:]
        shift, scale = self.final_modulation(F.silu(condition)).chunk(2, dim=-1)
        logits = self.lm_head(modulate(self.final_norm(hidden_states), shift, scale))
        loss = accuracy = None
        if labels is not None:
            loss, accuracy = next_token_loss(logits, labels)
        output = RAROutput(
            loss=loss,
            logits=logits,
            token_accuracy=accuracy,
            past_key_values=past_key_values if use_cache or past_key_values is not None else None,
            hidden_states=all_hidden_states,
        )
        return output if return_dict else output.to_tuple()

    def _image_positions(self, orders: torch.Tensor | None, steps: torch.Tensor, batch_size: int) -> torch.Tensor:
        """`[B, n]` the image position filled at each of `steps`; N (no position) for the step after the last."""
        num_tokens = self.config.num_latent_tokens
        if orders is None:
            return steps.clamp(max=num_tokens).expand(batch_size, -1)
        padded = F.pad(orders, (0, 1), value=num_tokens)
        return padded.gather(1, steps.clamp(max=num_tokens).expand(batch_size, -1))

    def _target_embedding(self, next_positions: torch.Tensor) -> torch.Tensor:
        """The target-aware embedding of the positions predicted next: zero after the last token (position N; a
        mask rather than a padded copy of the table, which every forward would make)."""
        last = self.config.num_latent_tokens - 1
        rows = self.target_position_embedding[next_positions.clamp(max=last)]
        return rows * (next_positions <= last).unsqueeze(-1).to(rows.dtype)

    def _check_inputs(self, input_ids, orders, labels, first_call: bool, check_values: bool) -> None:
        config = self.config
        num_tokens, codebook_size = config.num_latent_tokens, config.codebook_size
        if not isinstance(input_ids, torch.Tensor) or input_ids.is_floating_point() or input_ids.dtype == torch.bool:
            given = getattr(input_ids, "dtype", type(input_ids).__name__)
            raise TypeError(f"input_ids must be an integer tensor [B, n] with n <= {num_tokens}, got {given}")
        if input_ids.ndim != 2 or input_ids.shape[0] == 0 or input_ids.shape[1] > num_tokens:
            raise ValueError(
                f"input_ids must have shape [B, n] with B >= 1 and n <= {num_tokens} (the model's tokens per image), "
                f"got {tuple(input_ids.shape)}"
            )
        if not first_call and input_ids.shape[1] == 0:
            raise ValueError("input_ids is empty: with a filled past_key_values give the new tokens")
        if values_checkable(check_values) and input_ids.numel():
            low, high = (value.item() for value in input_ids.aminmax())
            if low < 0 or high >= codebook_size:
                raise ValueError(
                    f"input_ids must lie in [0, {codebook_size - 1}] (codebook size {codebook_size}), got values in "
                    f"[{low}, {high}]"
                )
        if orders is not None:
            if orders.is_floating_point() or orders.shape != (input_ids.shape[0], num_tokens):
                raise ValueError(
                    f"orders must be an integer tensor [{input_ids.shape[0]}, {num_tokens}] (a permutation of the "
                    f"image positions per row), got {orders.dtype} {tuple(orders.shape)}"
                )
            if values_checkable(check_values):
                expected = torch.arange(num_tokens, device=orders.device).expand_as(orders)
                if not torch.equal(orders.sort(dim=1).values, expected):
                    raise ValueError(f"each row of orders must be a permutation of 0 .. {num_tokens - 1}")
        if labels is not None and (
            not first_call or input_ids.shape[1] != num_tokens or labels.shape != input_ids.shape
        ):
            raise ValueError(
                f"labels need the whole sequence without a filled cache: input_ids and labels of shape "
                f"[B, {num_tokens}], got {tuple(input_ids.shape)} and {tuple(labels.shape)}"
            )


__all__ = [
    "RAROutput",
    "RARPreTrainedModel",
    "RARTransformer",
    "modulate",
    "next_token_loss",
    "permute_tokens",
    "training_orders",
]
