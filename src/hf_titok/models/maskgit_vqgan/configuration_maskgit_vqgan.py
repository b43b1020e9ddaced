"""Configuration of the MaskGIT-VQGAN, TiTok's proxy-code teacher and pixel decoder."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ...releases import MASKGIT_VQGAN
from ...utils.input_checks import check_config_values


@strict
class MaskGITVQGANConfig(PreTrainedConfig):
    r"""
    Configuration of [`MaskGITVQGAN`], the convolutional VQGAN of MaskGIT (Chang et al., 2022) that
    TiTok uses twice: its encoder + quantizer produce the *proxy codes* that supervise TiTok's first
    training stage, and its decoder turns TiTok's proxy-code predictions into pixels in the two-stage
    tokenizers (TiTok-L-32, B-64, S-128). The defaults are the released ImageNet f16 model
    (`maskgit-vqgan-imagenet-f16-256`): 256x256 images -> 16x16 codes out of 1024.

    Args:
        image_size (`int`, *optional*, defaults to 256):
            Side of the square input image.
        num_channels (`int`, *optional*, defaults to 3):
            Image channels (RGB).
        hidden_channels (`int`, *optional*, defaults to 128):
            Base width of the convolutional trunk; level `i` has `hidden_channels * channel_mult[i]` channels.
        channel_mult (`list[int]`, *optional*, defaults to `(1, 1, 2, 2, 4)`):
            Width multiplier per resolution level. The encoder halves the resolution after every level but
            the last, so the downsampling factor is `2 ** (len(channel_mult) - 1)`.
        num_res_blocks (`int`, *optional*, defaults to 2):
            Residual blocks per level.
        z_channels (`int`, *optional*, defaults to 256):
            Channels of the latent grid, which is also the codebook vector size.
        codebook_size (`int`, *optional*, defaults to 1024):
            Number of codebook entries (the proxy-code vocabulary of two-stage TiTok).
        commitment_cost (`float`, *optional*, defaults to 0.25):
            Weight of the commitment term when the VQGAN itself is trained.
        dropout (`float`, *optional*, defaults to 0.0):
            Dropout inside the residual blocks (0 in every released model).
        norm_num_groups (`int`, *optional*, defaults to 32):
            Groups of every GroupNorm.
        norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of every GroupNorm.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of conv weights and the codebook.
    """

    model_type = "titok_maskgit_vqgan"
    # transformers' common property name, for code (and test suites) that read it from any config.
    attribute_map = {"hidden_size": "hidden_channels"}

    image_size: int = 256
    num_channels: int = 3
    hidden_channels: int = MASKGIT_VQGAN["hidden_channels"]
    channel_mult: list[int] | tuple[int, ...] = MASKGIT_VQGAN["channel_mult"]
    num_res_blocks: int = MASKGIT_VQGAN["num_res_blocks"]
    z_channels: int = MASKGIT_VQGAN["z_channels"]
    codebook_size: int = MASKGIT_VQGAN["codebook_size"]
    commitment_cost: float | int = 0.25
    dropout: float | int = 0.0
    norm_num_groups: int = 32
    norm_eps: float = 1e-6
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.channel_mult = list(self.channel_mult)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Part of `@strict` validation: sizes that the modules could not be built with."""
        super().validate_architecture()
        check_config_values(
            self,
            positive_ints=(
                "image_size",
                "num_channels",
                "hidden_channels",
                "num_res_blocks",
                "z_channels",
                "codebook_size",
                "norm_num_groups",
            ),
            positive_floats=("norm_eps", "initializer_range"),
            non_negative_floats=("commitment_cost",),
            probabilities=("dropout",),
        )
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(f"channel_mult must be a non-empty list of positive ints, got {self.channel_mult}")
        if self.image_size % self.downsample_factor:
            raise ValueError(
                f"image_size={self.image_size} is not divisible by the downsampling factor "
                f"{self.downsample_factor} implied by channel_mult={self.channel_mult}"
            )
        for mult in self.channel_mult:
            if (self.hidden_channels * mult) % self.norm_num_groups:
                raise ValueError(
                    f"hidden_channels * channel_mult = {self.hidden_channels * mult} is not divisible by "
                    f"norm_num_groups={self.norm_num_groups}"
                )

    @property
    def downsample_factor(self) -> int:
        """Side of the image patch that one code covers (16 for the released model)."""
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def grid_size(self) -> int:
        """Side of the code grid (16 for 256x256 images)."""
        return self.image_size // self.downsample_factor

    @property
    def num_latent_tokens(self) -> int:
        """Codes per image, row-major over the grid: the tokens of a generator over them (RAR)."""
        return self.grid_size**2


__all__ = ["MaskGITVQGANConfig"]
