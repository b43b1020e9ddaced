"""The perceptual term of the official stage-2 recipe: `"convnext_s"` (MSE between the ImageNet logits of a
ConvNeXt-Small for the input and the reconstruction, both resized to 224, bilinear with antialias,
ImageNet-normalised), `"lpips"` (LPIPS-VGG), or their sum. Weights come from local files named in the training
config; with none, the term is disabled and the log says so once."""

from __future__ import annotations

import logging
import re

import torch
import torch.nn.functional as F
from torch import nn

from ..perceptual import IMAGENET_MEAN, IMAGENET_STD, LPIPS, ConvNeXtSmall, load_state_dict_file

logger = logging.getLogger(__name__)


class PerceptualLoss(nn.Module):
    """The official perceptual term: `"convnext_s"`, `"lpips"`, `"lpips-convnext_s"` (their sum) or
    `"lpips-convnext_s-A-B"` (A x LPIPS + B x ConvNeXt: TA-TiTok's `lpips-convnext_s-1.0-0.1`), from local weight
    files. Missing files leave the term off (0) with one log line. The networks are frozen."""

    def __init__(
        self,
        kind: str = "convnext_s",
        convnext_weights: str | None = None,
        lpips_vgg_weights: str | None = None,
        lpips_head_weights: str | None = None,
    ):
        super().__init__()
        weighted = re.fullmatch(r"lpips-convnext_s-(\d+(?:\.\d*)?)-(\d+(?:\.\d*)?)", kind)
        if kind not in ("convnext_s", "lpips", "lpips-convnext_s", "none") and not weighted:
            raise ValueError(
                f"perceptual loss must be convnext_s, lpips, lpips-convnext_s, lpips-convnext_s-A-B (A, B: the "
                f"weights of the two terms) or none, got {kind!r}"
            )
        self.lpips_weight, self.convnext_weight = (float(weighted[1]), float(weighted[2])) if weighted else (1.0, 1.0)
        self.convnext = self.lpips = None
        if "convnext" in kind:
            if convnext_weights:
                self.convnext = ConvNeXtSmall()
                self.convnext.load_state_dict(load_state_dict_file(convnext_weights))
            else:
                logger.warning(
                    "perceptual loss: no ConvNeXt-S weights given (convnext_weights); the ConvNeXt term is off"
                )
        if "lpips" in kind:
            if lpips_vgg_weights and lpips_head_weights:
                self.lpips = LPIPS()
                self.lpips.load_weights(lpips_vgg_weights, lpips_head_weights)
            else:
                logger.warning(
                    "perceptual loss: no LPIPS weights given (lpips_vgg_weights + lpips_head_weights); the "
                    "LPIPS term is off"
                )
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def enabled(self) -> bool:
        return self.convnext is not None or self.lpips is not None

    def train(self, mode: bool = True):  # always eval (frozen statistics, no dropout)
        return super().train(False)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = input.new_zeros(())
        if self.convnext is not None:

            def logits(x):
                x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
                return self.convnext((x - self.mean) / self.std)

            loss = loss + self.convnext_weight * F.mse_loss(logits(input), logits(target))
        if self.lpips is not None:
            loss = loss + self.lpips_weight * self.lpips(input, target).mean()
        return loss


__all__ = ["PerceptualLoss"]
