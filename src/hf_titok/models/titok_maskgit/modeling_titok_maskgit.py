"""MaskGIT over TiTok tokens: a class-conditional bidirectional transformer predicting masked image ids.

Two released architectures share the embedding/head layout: a post-LN BERT encoder (TiTok-L-32 and B-64
generators) and a U-ViT with long skips (TiTok-S-128 generator). The sequence is `[class token, N image
ids]`; the logits of the N image positions over the K image ids are returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

from ...fast_path import FastPathGuardMixin, generator_fast_path
from ...utils.input_checks import check_class_labels, check_token_ids
from ...utils.loading import StrictLoadingMixin
from ...utils.remote_code import SavesCodeMixin
from ...utils.vit import (
    LayerStackOutput,
    TiTokAttention,
    TiTokLayer,
    TiTokMLP,
    init_dense_and_norm,
    run_layers,
)
from .configuration_titok_maskgit import TiTokMaskGITConfig


def mask_tokens(
    token_ids: torch.Tensor, mask_token_id: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MaskGIT training-time masking with the arccos schedule.

    Per sample, t ~ U(0, 1), the masked fraction is arccos(t) / (pi / 2) (clamped to [1e-6, 1]), the number
    masked is round(N * fraction) (at least 1) and the positions are chosen by random scores. Draws
    `rand(B)` then `rand(B, N)` from `generator` (the order of the official implementation, so the same seed
    masks the same positions). Returns `(masked_ids, mask)` with `mask` True where masked.
    """
    batch_size, num_tokens = token_ids.shape
    timesteps = torch.rand(batch_size, generator=generator, device=token_ids.device)
    mask_ratio = (torch.acos(timesteps) / (math.pi * 0.5)).clamp(1e-6, 1.0)
    num_masked = (num_tokens * mask_ratio).round().clamp(min=1)
    scores = torch.rand(batch_size, num_tokens, generator=generator, device=token_ids.device)
    mask = scores.argsort(dim=-1) < num_masked.unsqueeze(-1)
    return torch.where(mask, torch.full_like(token_ids, mask_token_id), token_ids), mask


def masked_token_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    label_smoothing: float = 0.1,
    unmasked_weight: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official MaskGIT loss: label-smoothed cross-entropy at every position, weighted 1 where masked and
    `unmasked_weight` elsewhere, normalised by the weight sum. Also returns the accuracy on masked positions
    (per-sample, averaged)."""
    # float32: a half-precision log-softmax over K ids loses the small probabilities label smoothing needs
    losses = F.cross_entropy(logits.float().transpose(1, 2), targets, label_smoothing=label_smoothing, reduction="none")
    mask = mask.to(losses.dtype)
    weights = (1.0 - mask) * unmasked_weight + mask
    loss = (losses * weights).sum() / (weights.sum() + 1e-8)
    correct = ((logits.argmax(dim=-1) == targets) * mask).sum(dim=1) / (mask.sum(dim=1) + 1e-8)
    return loss, correct.mean()


class TiTokMaskGITBertLayer(GradientCheckpointingLayer):
    """Post-LN BERT layer: x = LN(x + drop(attn(x))); x = LN(x + drop(mlp(x)))."""

    def __init__(self, config: TiTokMaskGITConfig):
        super().__init__()
        self.self_attn = TiTokAttention(
            config, config.hidden_size, config.num_attention_heads, dropout=config.attention_dropout_prob
        )
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = TiTokMLP(config.hidden_size, config.intermediate_size)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_output, attn_weights = self.self_attn(hidden_states, output_attentions)
        hidden_states = self.layer_norm1(hidden_states + self.dropout(attn_output))
        return self.layer_norm2(hidden_states + self.dropout(self.mlp(hidden_states))), attn_weights


class TiTokMaskGITBertEncoder(nn.Module):
    """Embedding LayerNorm + dropout, then post-LN layers."""

    def __init__(self, config: TiTokMaskGITConfig):
        super().__init__()
        self.embedding_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.embedding_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList(TiTokMaskGITBertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self, embeddings: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> LayerStackOutput:
        hidden_states = self.embedding_dropout(self.embedding_layernorm(embeddings))
        return run_layers(self.layers, hidden_states, output_hidden_states, output_attentions)


class TiTokMaskGITUViTLayer(TiTokLayer):
    """Pre-norm U-ViT block (no q/k/v bias); blocks of the second half first fuse the long skip:
    x = skip_linear(concat([x, skip]))."""

    def __init__(self, config: TiTokMaskGITConfig, with_skip: bool = False):
        super().__init__(
            config,
            config.hidden_size,
            config.num_attention_heads,
            config.intermediate_size,
            config.layer_norm_eps,
            qkv_bias=False,
        )
        self.skip_linear = nn.Linear(2 * config.hidden_size, config.hidden_size) if with_skip else None

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False, skip: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.skip_linear is not None:
            hidden_states = self.skip_linear(torch.cat([hidden_states, skip], dim=-1))
        return super().forward(hidden_states, output_attentions)


class TiTokMaskGITUViTEncoder(nn.Module):
    """`num_hidden_layers // 2` in-blocks, a middle block, as many out-blocks (out-block i takes the skip of
    in-block `n - 1 - i`), then a final LayerNorm."""

    def __init__(self, config: TiTokMaskGITConfig):
        super().__init__()
        half = config.num_hidden_layers // 2
        self.in_blocks = nn.ModuleList(TiTokMaskGITUViTLayer(config) for _ in range(half))
        self.mid_block = TiTokMaskGITUViTLayer(config)
        self.out_blocks = nn.ModuleList(TiTokMaskGITUViTLayer(config, with_skip=True) for _ in range(half))
        self.final_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, embeddings: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> LayerStackOutput:
        """`hidden_states` are the input and each block's output (in-blocks, middle, out-blocks)."""
        hidden_states, skips = embeddings, []
        all_hidden_states, all_attentions = [embeddings], []
        for index, block in enumerate([*self.in_blocks, self.mid_block, *self.out_blocks]):
            skip = skips.pop() if index > len(self.in_blocks) else None
            hidden_states, attn_weights = block(hidden_states, output_attentions, skip)
            if index < len(self.in_blocks):
                skips.append(hidden_states)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
            all_attentions.append(attn_weights)
        return LayerStackOutput(
            self.final_layernorm(hidden_states),
            tuple(all_hidden_states) if output_hidden_states else None,
            tuple(all_attentions) if output_attentions else None,
        )


@dataclass
class TiTokMaskGITOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, returned with `labels`):
            The MaskGIT loss (label-smoothed cross-entropy, unmasked positions down-weighted).
        logits (`torch.FloatTensor` of shape `(batch_size, num_latent_tokens, codebook_size)`):
            Scores over the K image ids at each image position (the class position is dropped).
        masked_token_accuracy (`torch.FloatTensor` of shape `()`, returned with `labels`):
            Accuracy of the argmax at masked positions.
        hidden_states (`tuple(torch.FloatTensor)`, returned with `output_hidden_states=True`):
            `[B, 1 + num_latent_tokens, hidden_size]`: the transformer's input (embeddings + positions) and the
            output of each layer (U-ViT: each in-block, the middle block, each out-block).
        attentions (`tuple(torch.FloatTensor)`, returned with `output_attentions=True`):
            The attention weights `[B, heads, L, L]` of each layer.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    masked_token_accuracy: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class TiTokMaskGITPreTrainedModel(SavesCodeMixin, FastPathGuardMixin, StrictLoadingMixin, PreTrainedModel):
    config: TiTokMaskGITConfig
    config_class = TiTokMaskGITConfig
    base_model_prefix = "maskgit"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = False
    _can_compile_fullgraph = True
    _no_split_modules = ["TiTokMaskGITBertLayer", "TiTokMaskGITUViTLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if not init_dense_and_norm(module, std, (nn.Linear, nn.Embedding)) and isinstance(module, TiTokMaskGIT):
            init.trunc_normal_(module.position_embedding, std=std)


class TiTokMaskGIT(TiTokMaskGITPreTrainedModel):
    """Class-conditional MaskGIT generator over TiTok token ids.

    `forward(input_ids, class_labels)` -> logits `[B, N, K]`; with `labels` (the unmasked target ids) also the
    training loss. `input_ids` hold image ids and `config.mask_token_id` at masked positions; class labels are
    in `[0, num_classes]`, `num_classes` meaning "no class" (the null token of classifier-free guidance).
    Sampling lives in [`TiTokMaskGITScheduler`] / [`TiTokPipeline`].
    """

    def __init__(self, config: TiTokMaskGITConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Parameter(torch.empty(config.num_latent_tokens + 1, config.hidden_size))
        self.encoder = (
            TiTokMaskGITBertEncoder(config) if config.architecture == "bert" else TiTokMaskGITUViTEncoder(config)
        )
        self.lm_head = nn.Linear(config.hidden_size, config.codebook_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def enable_fast_path(self) -> "TiTokMaskGIT":
        """Switch on the CPU fast path in place (`hf_titok.fast_path`): int8 linear layers; the sampler stays
        float32. Inference only."""
        return generator_fast_path(self)

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def resize_token_embeddings(self, *args, **kwargs):
        """Refused: the embedding table holds the tokenizer's image ids (its codebook), the mask id and the
        classes, so its size is fixed by the tokenizer. To change the classes use `resize_class_embeddings`."""
        raise NotImplementedError(
            "TiTokMaskGIT's input embeddings are the tokenizer's codebook ids, the mask id and the classes: "
            "their count follows the tokenizer and cannot be resized. To train on another set of classes use "
            "resize_class_embeddings(num_classes)"
        )

    @torch.no_grad()
    def resize_class_embeddings(self, num_classes: int, keep_classes: bool = True) -> "TiTokMaskGIT":
        """Give the generator `num_classes` classes (fine-tuning on a new label set), in place.

        The image ids, the mask id and the null class (the unconditional embedding classifier-free guidance
        needs) keep their trained embeddings. With `keep_classes=True` classes `0 .. min(old, new) - 1` keep
        theirs too (the table grows, or is cut); `keep_classes=False` replaces every class. New class rows start
        at the mean of the old class embeddings (transformers' mean resizing of token embeddings): a neutral
        "some class" start that the fine-tuning then separates. `config.num_classes` follows; the pipeline's
        `id2label` must name the new classes (`TiTokPipeline(..., id2label=...)`)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        config, old = self.config, self.embed_tokens.weight
        offset, old_count = config.class_token_offset, config.num_classes
        old_classes = old[offset : offset + old_count]
        kept = min(old_count, num_classes) if keep_classes else 0
        classes = old_classes.mean(0, keepdim=True).expand(num_classes, -1).clone()
        classes[:kept] = old_classes[:kept]
        weight = torch.cat([old[:offset], classes, old[config.null_class_id : config.null_class_id + 1]])
        self.embed_tokens = nn.Embedding.from_pretrained(weight, freeze=not old.requires_grad)
        config.num_classes = num_classes
        return self

    def forward(
        self,
        input_ids: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        class_dropout_prob: float | None = None,
        generator: torch.Generator | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        check_values: bool = True,
    ) -> TiTokMaskGITOutput | tuple:
        """
        Args:
            input_ids: `[B, N]` image ids in `[0, K]` (K = mask).
            class_labels: `[B]` classes in `[0, num_classes]` (`num_classes` = unconditional); `None`: every row
                unconditional (the null class).
            labels: `[B, N]` target image ids; positions where `input_ids` is the mask id count fully in the
                loss, the others with `config.unmasked_token_loss_weight`.
            class_dropout_prob: probability of replacing each class by the null class (classifier-free
                guidance training). Defaults to `config.class_dropout_prob` in training mode and 0 in eval mode.
            generator: RNG of the class dropout.
            output_hidden_states, output_attentions: also return every layer's hidden states / attention
                weights (defaults: the config's).
            check_values: check that ids and class labels are in range. That reads them back to the host (a
                device sync); [`TiTokPipeline`] checks its inputs once and turns this off inside its sampling
                loop. Compiled and exported graphs skip it (shapes and dtypes are always checked).
        """
        config = self.config
        return_dict = config.return_dict if return_dict is None else return_dict
        if output_hidden_states is None:
            output_hidden_states = config.output_hidden_states
        if output_attentions is None:
            output_attentions = config.output_attentions
        check_token_ids(input_ids, config.num_latent_tokens, config.codebook_size + 1, "input_ids", check_values)
        if class_labels is None:
            class_labels = torch.full(input_ids.shape[:1], config.num_classes, device=input_ids.device)
        check_class_labels(class_labels, input_ids.shape[0], config.num_classes, check_values)
        if class_dropout_prob is None:
            class_dropout_prob = config.class_dropout_prob if self.training else 0.0
        class_tokens = class_labels.long() + config.class_token_offset
        if class_dropout_prob > 0:
            drop = torch.rand(class_tokens.shape, generator=generator, device=class_tokens.device) < class_dropout_prob
            class_tokens = torch.where(drop, torch.full_like(class_tokens, config.null_class_id), class_tokens)
        tokens = torch.cat([class_tokens.unsqueeze(1), input_ids.long()], dim=1)
        stack = self.encoder(
            self.embed_tokens(tokens) + self.position_embedding, output_hidden_states, output_attentions
        )
        logits = self.lm_head(stack.last_hidden_state[:, 1:])
        loss = accuracy = None
        if labels is not None:
            check_token_ids(labels, config.num_latent_tokens, config.codebook_size, "labels", check_values)
            loss, accuracy = masked_token_loss(
                logits,
                labels,
                input_ids == config.mask_token_id,
                config.label_smoothing,
                config.unmasked_token_loss_weight,
            )
        output = TiTokMaskGITOutput(
            loss=loss,
            logits=logits,
            masked_token_accuracy=accuracy,
            hidden_states=stack.hidden_states,
            attentions=stack.attentions,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["TiTokMaskGIT", "TiTokMaskGITPreTrainedModel", "TiTokMaskGITOutput", "mask_tokens", "masked_token_loss"]
