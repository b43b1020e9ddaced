"""The ViT blocks of the TiTok tokenizer's encoder and decoder and of the MaskGIT generator: SDPA self-attention with
a fused q/k/v projection, the MLP, the pre-norm layer, a layer stack that records hidden states and attention
weights as transformers models do, and the ViT weight initialisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    """Reference (non-fused) attention; `attn_implementation="eager"` selects it."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    return torch.matmul(attn_weights, value).transpose(1, 2).contiguous(), attn_weights


class TiTokAttention(nn.Module):
    """Bidirectional multi-head self-attention with a fused q/k/v projection (rows stacked q, k, v).

    Runs through transformers' attention interface: SDPA by default, `eager` on request, and eager for a call
    that returns the attention weights (SDPA does not compute them).
    """

    def __init__(self, config, hidden_size: int, num_heads: int, qkv_bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = dropout
        # Without this the SDPA interface falls back to `is_causal=True`.
        self.is_causal = False
        self.qkv_proj = nn.Linear(hidden_size, 3 * hidden_size, bias=qkv_bias)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[B, L, W] -> (output [B, L, W], attention weights [B, heads, L, L] when `output_attentions`)."""
        batch_size, seq_len, _ = hidden_states.shape
        qkv = self.qkv_proj(hidden_states).view(batch_size, seq_len, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if output_attentions:
            attention_interface: Callable = eager_attention_forward
        else:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
                self.config._attn_implementation, eager_attention_forward
            )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            None,
            scaling=self.scaling,
            dropout=self.dropout if self.training else 0.0,
            is_causal=False,
        )
        return self.out_proj(attn_output.reshape(batch_size, seq_len, -1)), attn_weights


class TiTokMLP(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(hidden_states)))


class TiTokLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block: x += attn(ln1(x)); x += mlp(ln2(x))."""

    def __init__(
        self, config, hidden_size: int, num_heads: int, intermediate_size: int, eps: float, qkv_bias: bool = True
    ):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(hidden_size, eps=eps)
        self.self_attn = TiTokAttention(config, hidden_size, num_heads, qkv_bias=qkv_bias)
        self.layer_norm2 = nn.LayerNorm(hidden_size, eps=eps)
        self.mlp = TiTokMLP(hidden_size, intermediate_size)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_output, attn_weights = self.self_attn(self.layer_norm1(hidden_states), output_attentions)
        hidden_states = hidden_states + attn_output
        return hidden_states + self.mlp(self.layer_norm2(hidden_states)), attn_weights


class LayerStackOutput(NamedTuple):
    """What a stack of transformer layers returns: the last hidden states and, on request, every layer's
    input/output hidden states (`(input, after layer 1, ...)`) and attention weights."""

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None
    attentions: tuple[torch.Tensor, ...] | None


def run_layers(
    layers: nn.ModuleList, hidden_states: torch.Tensor, output_hidden_states: bool, output_attentions: bool
) -> LayerStackOutput:
    """Apply `layers` in order, collecting hidden states and attention weights as transformers models do."""
    all_hidden_states = (hidden_states,) if output_hidden_states else None
    all_attentions = () if output_attentions else None
    for layer in layers:
        hidden_states, attn_weights = layer(hidden_states, output_attentions)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        if output_attentions:
            all_attentions += (attn_weights,)
    return LayerStackOutput(hidden_states, all_hidden_states, all_attentions)


def init_dense_and_norm(
    module: nn.Module,
    std: float,
    dense: tuple[type[nn.Module], ...],
    norms: tuple[type[nn.Module], ...] = (nn.LayerNorm,),
) -> bool:
    """The ViT initialisation both TiTok models use: truncated-normal weights and zero biases for the `dense` layer
    types, ones and zeros for the `norms`. Returns whether `module` was one of those."""
    if isinstance(module, dense):
        init.trunc_normal_(module.weight, std=std)
        if getattr(module, "bias", None) is not None:
            init.zeros_(module.bias)
        return True
    if isinstance(module, norms):
        init.ones_(module.weight)
        init.zeros_(module.bias)
        return True
    return False


__all__ = [
    "LayerStackOutput",
    "TiTokAttention",
    "TiTokLayer",
    "TiTokMLP",
    "eager_attention_forward",
    "init_dense_and_norm",
    "run_layers",
]
