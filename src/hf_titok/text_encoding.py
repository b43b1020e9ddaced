"""Text for TA-TiTok and MaskGen: CLIP ViT-L/14-336 through transformers (`CLIPTokenizer`,
`CLIPTextModelWithProjection`), with the token ids and outputs the official open_clip path feeds the models.

Which CLIP outputs each model takes (one text-encoder pass gives all three):

| consumer | what | transformers output |
|---|---|---|
| TA-TiTok decoder | all blocks, then the final LayerNorm, every position | `last_hidden_state` `[B, 77, 768]` |
| MaskGen token condition | the penultimate block's output, no final LayerNorm | `hidden_states[-2]` `[B, 77, 768]` |
| MaskGen pooled condition | final LayerNorm at the end-of-text token, then the projection | `text_embeds` `[B, 768]` |

Token ids follow open_clip: `[start] + ids + [end]`, cut at 77 (the last id forced to `end`), padded with id 0.
Padding is part of the signal (every position enters both models, and no attention mask is passed); the
transformers tokenizer of the OpenAI checkpoints pads with the end id instead, so `tokenize_prompts` pads itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

# The text encoder of every TA-TiTok and MaskGen release (open_clip 'ViT-L-14-336', pretrained='openai').
CLIP_TEXT_ENCODER = "openai/clip-vit-large-patch14-336"
# open_clip pads with id 0.
OPEN_CLIP_PAD_ID = 0


@dataclass
class CLIPTextFeatures:
    """The CLIP outputs TA-TiTok and MaskGen read (see the module docstring)."""

    tokenizer_text: torch.Tensor  # [B, L, W]: TA-TiTok's text_embeddings
    condition: torch.Tensor  # [B, L, W]: MaskGen's prompt_embeds
    pooled: torch.Tensor  # [B, P]: MaskGen's pooled_prompt_embeds


def check_prompts(prompts, what: str = "prompt") -> list[str]:
    """A prompt or a list of prompts -> a non-empty list of non-empty strings, or a clear error."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError(f"{what} must be a string or a non-empty list of strings, got {prompts!r}")
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"{what} {index} must be a string, got {type(prompt).__name__}")
        if what == "prompt" and not prompt.strip():
            raise ValueError(
                f"prompt {index} is empty: describe the image (the empty text is the unconditional branch of "
                "guidance, which the pipeline adds itself)"
            )
    return list(prompts)


def tokenize_prompts(tokenizer, prompts: list[str], max_length: int = 77) -> torch.Tensor:
    """Prompts -> open_clip token ids `[B, max_length]` with a transformers `CLIPTokenizer`: start and end ids
    added, cut at `max_length` (the end id kept last, as CLIP does; the cut part is logged), padded with 0."""
    rows = []
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=True, truncation=False)["input_ids"]
        if len(ids) > max_length:
            cut = tokenizer.decode(ids[max_length - 1 : -1])
            logger.warning(
                "CLIP reads %d tokens: this part of the prompt was cut and has no effect: %r", max_length, cut
            )
            ids = ids[: max_length - 1] + ids[-1:]
        rows.append(ids + [OPEN_CLIP_PAD_ID] * (max_length - len(ids)))
    return torch.tensor(rows, dtype=torch.long)


def clip_text_features(text_encoder, input_ids: torch.Tensor, device=None) -> CLIPTextFeatures:
    """One pass of a `CLIPTextModelWithProjection` over open_clip token ids (no attention mask: padding counts),
    on `device` (default: where `input_ids` are; under offload the encoder's own weights may sit on `meta`)."""
    output = text_encoder(input_ids.to(device) if device is not None else input_ids, output_hidden_states=True)
    return CLIPTextFeatures(output.last_hidden_state, output.hidden_states[-2], output.text_embeds)


def train_clip_tokenizer(texts, vocab_size: int = 1000):
    """A CLIP tokenizer (transformers' `CLIPTokenizer`: CLIP's normalisation, word split, byte-level BPE with `</w>`
    word ends; `AutoTokenizer` loads it) whose merges are learnt from `texts`, for a small text encoder trained here
    (the built-in text-to-image model): at most `vocab_size` entries, start and end tokens first."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer().train_new_from_iterator(texts, vocab_size=vocab_size)


__all__ = [
    "CLIPTextFeatures",
    "CLIP_TEXT_ENCODER",
    "OPEN_CLIP_PAD_ID",
    "check_prompts",
    "clip_text_features",
    "tokenize_prompts",
    "train_clip_tokenizer",
]
