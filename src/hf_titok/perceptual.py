"""The perceptual networks of TiTok, without torchvision: what the stage-2 loss (`hf_titok.training`) and the
LPIPS metric (`hf_titok.evaluation`) compare images with.

- `ConvNeXtSmall`: ConvNeXt-S in torchvision's key layout, so `convnext_small-0c510722.pth` loads into it
  (with `weights_only=True`); the official loss compares its ImageNet logits.
- `LPIPS`: LPIPS-VGG (Zhang et al. 2018): torchvision's VGG16 `features` layout plus the linear heads of the
  `lpips` package (`vgg.pth`, keys `lin{k}.model.1.weight`).

Weights come from local files (nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_state_dict_file(path: str | Path) -> dict:
    """A state dict from `.safetensors` or a torch pickle read with `weights_only=True` (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"perceptual-network weights not found: {path}")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


class _Permute(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class CNBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim),
            _Permute(0, 2, 3, 1),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            _Permute(0, 3, 1, 2),
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

    def forward(self, x):
        return x + self.layer_scale * self.block(x)


class ConvNeXtSmall(nn.Module):
    """ConvNeXt-S (depths 3/3/27/3, widths 96..768) in torchvision's module layout, eval only."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        widths, depths = (96, 192, 384, 768), (3, 3, 27, 3)
        layers = [nn.Sequential(nn.Conv2d(3, widths[0], kernel_size=4, stride=4), LayerNorm2d(widths[0], eps=1e-6))]
        for i, (width, depth) in enumerate(zip(widths, depths)):
            layers.append(nn.Sequential(*[CNBlock(width) for _ in range(depth)]))
            if i < 3:
                layers.append(
                    nn.Sequential(
                        LayerNorm2d(width, eps=1e-6), nn.Conv2d(width, widths[i + 1], kernel_size=2, stride=2)
                    )
                )
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            LayerNorm2d(widths[-1], eps=1e-6), nn.Flatten(1), nn.Linear(widths[-1], num_classes)
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_LPIPS_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in torchvision's vgg16.features


class LPIPS(nn.Module):
    """LPIPS-VGG distance, per image: inputs in [0, 1] (mapped to [-1, 1] as LPIPS expects)."""

    def __init__(self):
        super().__init__()
        layers, channels = [], 3
        for item in _VGG16:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=False)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 128, 256, 512, 512))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def load_weights(self, vgg_path: str | Path, heads_path: str | Path) -> None:
        vgg = load_state_dict_file(vgg_path)
        self.features.load_state_dict({k[len("features.") :]: v for k, v in vgg.items() if k.startswith("features.")})
        heads = load_state_dict_file(heads_path)
        for i, head in enumerate(self.heads):
            head.weight.data.copy_(heads[f"lin{i}.model.1.weight"])

    def _taps(self, x):
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _LPIPS_TAPS:
                outputs.append(x)
                if index == _LPIPS_TAPS[-1]:
                    break
        return outputs

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = self._taps(((input * 2 - 1) - self.shift) / self.scale)
        b = self._taps(((target * 2 - 1) - self.shift) / self.scale)
        total = 0.0
        for head, fa, fb in zip(self.heads, a, b):
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + head((fa - fb) ** 2).mean(dim=(2, 3))
        return total.flatten()


__all__ = ["ConvNeXtSmall", "IMAGENET_MEAN", "IMAGENET_STD", "LPIPS", "load_state_dict_file"]
