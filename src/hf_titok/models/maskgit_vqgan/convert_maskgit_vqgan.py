"""The official MaskGIT-VQGAN checkpoint (the `PretrainedTokenizer` of bytedance/1d-tokenizer,
`maskgit-vqgan-imagenet-f16-256.bin`) -> [`MaskGITVQGAN`]. Official configs carry no VQGAN section; the test
harness adds `pixel_vqgan` (a VQGAN's own channel config) and `_harness.pixel_decoder` (that of a two-stage
tokenizer's pixel decoder)."""

from __future__ import annotations

from collections.abc import Mapping

from ...releases import MASKGIT_VQGAN
from ...utils.official_format import ConversionError, Converter
from .configuration_maskgit_vqgan import MaskGITVQGANConfig
from .modeling_maskgit_vqgan import MaskGITVQGAN


def vqgan_kwargs(spec: Mapping, image_size: int) -> dict:
    """The [`MaskGITVQGANConfig`] arguments of an official VQGAN channel config."""
    kwargs = {
        key: spec[key]
        for key in ("hidden_channels", "channel_mult", "num_res_blocks", "z_channels", "codebook_size")
        if key in spec
    }
    kwargs["image_size"] = spec.get("resolution", image_size)
    if "dropout" in spec:
        kwargs["dropout"] = spec["dropout"]
    if "num_resolutions" in spec and spec["num_resolutions"] != len(
        kwargs.get("channel_mult", MASKGIT_VQGAN["channel_mult"])
    ):
        raise ConversionError(
            f"num_resolutions={spec['num_resolutions']} disagrees with channel_mult={spec.get('channel_mult')}"
        )
    return kwargs


def vqgan_config_from_official(official: Mapping | None) -> MaskGITVQGANConfig:
    """The MaskGIT-VQGAN config: the `pixel_vqgan` (or `_harness.pixel_decoder`) channel config when the
    given config has one, the released f16-256 model otherwise."""
    official = official or {}
    spec = official.get("pixel_vqgan") or official.get("_harness", {}).get("pixel_decoder") or MASKGIT_VQGAN
    image_size = official.get("dataset", {}).get("preprocessing", {}).get("crop_size", 256)
    return MaskGITVQGANConfig(**vqgan_kwargs(spec, image_size))


VQGAN_RULES = [
    (r"^quantize\.embedding\.weight$", "quantizer.embedding.weight"),
    (r"^(encoder|decoder)\.", r"\1."),
]


def prepare_vqgan_checkpoint(official_config, official_weights):
    return MaskGITVQGAN, vqgan_config_from_official(official_config), VQGAN_RULES, official_weights


CONVERTER = Converter(
    "MaskGIT-VQGAN",
    prepare_vqgan_checkpoint,
    signatures=(frozenset({"encoder.conv_in.weight", "quantize.embedding.weight"}),),
    needs_config=False,  # the released VQGAN's sizes are the table's (`MASKGIT_VQGAN`)
)

__all__ = ["CONVERTER", "VQGAN_RULES", "vqgan_config_from_official", "vqgan_kwargs"]
