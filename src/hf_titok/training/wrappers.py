"""Training wrappers: one `nn.Module` per recipe, holding the HF model being trained, its EMA copy and the
training-only parts (teacher, discriminator, perceptual network), and returning `{"loss": ...}` for the
Trainer. The exported model is `export_model()` (the EMA weights when EMA is on).

All randomness inside `forward` (VAE sampling, MaskGIT masking, class dropout) uses torch's global RNG,
which the Trainer checkpoints, so resumed runs continue exactly.
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..models.maskgen.diffusion_maskgen import GaussianDiffusion, cosine_betas, masked_diffusion_loss
from ..models.maskgen.modeling_maskgen import mask_in_random_order
from ..models.maskgit_vqgan.modeling_maskgit_vqgan import MaskGITVQGAN
from ..models.rar.modeling_rar import RARTransformer, permute_tokens, training_orders
from ..models.titok.image_processing_titok import to_uint8
from ..models.titok.modeling_titok import TiTokTokenizer
from ..models.titok_maskgit.modeling_titok_maskgit import mask_tokens, masked_token_loss
from ..text_encoding import clip_text_features
from ..utils.torch_utils import random_orders
from .discriminator import LeCamRegularizer, hinge_discriminator_loss
from .losses import PerceptualLoss

logger = logging.getLogger(__name__)


class TrainingModule(nn.Module):
    """Base of the recipe wrappers: `model` (trained), optional `ema_model`, log values and frozen helpers
    that are deliberately *not* registered as sub-modules (not checkpointed, not wrapped by DDP)."""

    discriminator: nn.Module | None = None

    def __init__(self, model: nn.Module, use_ema: bool = True):
        super().__init__()
        self.model = model
        self.ema_model = copy.deepcopy(model).requires_grad_(False).eval() if use_ema else None
        self.extra_logs: dict[str, float] = {}
        self._log_sums: dict[str, float] = {}
        self._log_count = 0
        self.last_token_ids: torch.Tensor | None = None
        # Encoder outputs before quantization of the last batch (VQ tokenizer recipes): the pool dead codebook
        # entries are re-seeded from (CodebookRestartCallback).
        self.last_unquantized_latents: torch.Tensor | None = None
        self.gan_factor = 0.0
        self._helpers: dict[str, nn.Module] = {}

    def set_helper(self, name: str, module: nn.Module | None) -> None:
        """A frozen helper network (teacher, perceptual net, frozen tokenizer), kept out of the state dict."""
        if module is not None:
            module.requires_grad_(False).eval()
        self._helpers[name] = module

    def helper(self, name: str, device: torch.device) -> nn.Module | None:
        module = self._helpers.get(name)
        if module is not None and next(module.parameters(), torch.empty(0, device=device)).device != device:
            module.to(device)
        return module

    def export_model(self) -> nn.Module:
        return self.ema_model if self.ema_model is not None else self.model

    def record(self, **values: torch.Tensor) -> None:
        """Accumulate this step's scalar values (one call per training forward) on their device: nothing is read
        back to the host until the trainer logs their means at a logging step (`pop_logs`). Evaluation forwards
        are not recorded."""
        if not self.training:
            return
        for name, value in values.items():
            value = torch.as_tensor(value).detach().float()
            self._log_sums[name] = self._log_sums[name] + value if name in self._log_sums else value
        self._log_count += 1

    def pop_logs(self) -> dict[str, float]:
        """The means recorded since the last call (read to the host here, once per logging step)."""
        logs = {name: round(float(total) / max(self._log_count, 1), 6) for name, total in self._log_sums.items()}
        logs.update(self.extra_logs)
        self._log_sums, self._log_count, self.extra_logs = {}, 0, {}
        return logs

    def train(self, mode: bool = True):
        super().train(mode)
        if self.ema_model is not None:
            self.ema_model.eval()
        return self


class GANLoss(nn.Module):
    """PatchGAN hinge loss with LeCam regularisation. The generator term sees the discriminator with
    detached weights, the discriminator term sees detached images, so one backward trains both correctly."""

    def __init__(
        self,
        discriminator: nn.Module,
        generator_weight: float = 0.01,
        lecam_weight: float = 0.001,
        lecam_decay: float = 0.999,
    ):
        super().__init__()
        self.discriminator = discriminator
        self.lecam = LeCamRegularizer(lecam_decay)
        self.generator_weight, self.lecam_weight = generator_weight, lecam_weight

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return -functional_call(self.discriminator, frozen, (fake,)).mean() * self.generator_weight

    def discriminator_loss(
        self, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        real_logits, fake_logits = self.discriminator(real.detach()), self.discriminator(fake.detach())
        loss = hinge_discriminator_loss(real_logits, fake_logits)
        if self.lecam_weight > 0:
            loss = loss + self.lecam_weight * self.lecam(real_logits, fake_logits)
        return loss, real_logits.mean(), fake_logits.mean()


class PixelLossMixin:
    """Reconstruction (L2) + perceptual + GAN terms shared by the VQGAN and pixel-space tokenizer recipes."""

    @property
    def discriminator(self) -> nn.Module:
        return self.gan.discriminator

    def _pixel_step(
        self,
        reconstruction: torch.Tensor,
        target: torch.Tensor,
        regulariser: torch.Tensor,
        logs: dict[str, torch.Tensor],
        reconstruction_scale: torch.Tensor | None = None,
    ) -> dict:
        """The step's loss: L2 (divided by `reconstruction_scale` when given) + perceptual + `regulariser` (the
        weighted quantizer or KL term) + the GAN terms; records every term with `logs`."""
        reconstruction_loss = F.mse_loss(reconstruction, target)
        if reconstruction_scale is not None:
            reconstruction_loss = reconstruction_loss / reconstruction_scale
        perceptual = self.helper("perceptual", target.device)
        perceptual_loss = (
            perceptual(reconstruction, target) * self.perceptual_weight
            if perceptual is not None and perceptual.enabled
            else reconstruction.new_zeros(())
        )
        generator_loss = self.gan.generator_loss(reconstruction) * self.gan_factor
        discriminator_loss, real_logit, fake_logit = self.gan.discriminator_loss(target, reconstruction)
        # Before the GAN starts the discriminator still runs with weight 0, so DDP sees every parameter used.
        discriminator_loss = discriminator_loss * self.gan_factor
        loss = reconstruction_loss + perceptual_loss + regulariser + generator_loss + discriminator_loss
        self.record(
            reconstruction_loss=reconstruction_loss,
            perceptual_loss=perceptual_loss,
            generator_gan_loss=generator_loss,
            discriminator_loss=discriminator_loss,
            logits_real=real_logit,
            logits_fake=fake_logit,
            **logs,
        )
        return self._outputs(loss, reconstruction, target)

    def _outputs(self, loss, reconstruction, target) -> dict:
        """In evaluation (`Trainer.evaluate`) also the uint8 reconstructions and targets: the predictions that
        `hf_titok.metrics.make_compute_metrics` scores."""
        if self.training:
            return {"loss": loss}
        return {"loss": loss, "reconstruction": to_uint8(reconstruction.detach()), "target": to_uint8(target, "round")}


class VQGANTraining(PixelLossMixin, TrainingModule):
    """Recipe 1: train the MaskGIT-VQGAN itself (L2 + perceptual + quantizer + PatchGAN/LeCam)."""

    def __init__(
        self,
        model: MaskGITVQGAN,
        discriminator: nn.Module,
        perceptual: PerceptualLoss | None = None,
        perceptual_weight: float = 0.1,
        quantizer_weight: float = 1.0,
        gan_weight: float = 0.01,
        lecam_weight: float = 0.001,
        use_ema: bool = True,
    ):
        super().__init__(model, use_ema)
        self.gan = GANLoss(discriminator, gan_weight, lecam_weight)
        self.set_helper("perceptual", perceptual)
        self.perceptual_weight, self.quantizer_weight = perceptual_weight, quantizer_weight

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        out = self.model(pixel_values)
        self.last_token_ids = out.codes
        return self._pixel_step(
            out.reconstruction,
            pixel_values,
            self.quantizer_weight * out.quantizer_loss,
            {"quantizer_loss": out.quantizer_loss},
        )


def tail_token_drop_length(model: TiTokTokenizer, enabled: bool) -> int | None:
    """The number of tokens this step decodes: with One-D-Piece's Tail Token Drop, one prefix length k uniform on
    {1, ..., N} for the whole batch, drawn as the official code draws it - `torch.randint(1, N + 1, (1,))` on torch's
    global CPU generator, which the Trainer seeds and checkpoints (a resumed run draws the same lengths; a CPU
    number, so no device read); None (all tokens) otherwise. The quantizer still sees every token."""
    if not enabled:
        return None
    return int(torch.randint(1, model.config.num_latent_tokens + 1, (1,)))


def enable_tail_token_drop(model: TiTokTokenizer, enabled: bool) -> None:
    """Tail Token Drop trains the decoder on prefixes: the model it makes decodes them, so its config says so
    (`prefix_decoding`; fine-tuning a tokenizer that had it off, such as a TiTok release, turns it on)."""
    if enabled and not model.config.prefix_decoding:
        logger.info("loss.tail_token_drop: the tokenizer is trained to decode prefixes (config.prefix_decoding=True)")
        model.config.prefix_decoding = True


class Stage1Training(TrainingModule):
    """Recipe 2: TiTok (stage-1 layout) predicts the proxy codes of a frozen MaskGIT-VQGAN teacher:
    cross-entropy over the VQGAN codebook per decoder patch + `quantizer_weight` x quantizer loss."""

    def __init__(
        self,
        model: TiTokTokenizer,
        teacher: MaskGITVQGAN,
        quantizer_weight: float = 1.0,
        use_ema: bool = True,
        tail_token_drop: bool = False,
    ):
        enable_tail_token_drop(model, tail_token_drop)  # before the EMA copy is made
        super().__init__(model, use_ema)
        self.tail_token_drop = tail_token_drop
        if model.config.decoder_head != "proxy_codes":
            raise ValueError("stage-1 training needs a tokenizer with decoder_head='proxy_codes'")
        if (
            teacher.config.codebook_size != model.config.num_proxy_codes
            or teacher.config.grid_size != model.config.decoder_grid_size
        ):
            raise ValueError(
                f"the teacher VQGAN ({teacher.config.codebook_size} codes on a {teacher.config.grid_size}^2 "
                f"grid) does not match the tokenizer's proxy-code head ({model.config.num_proxy_codes} codes, "
                f"{model.config.decoder_grid_size}^2)"
            )
        self.set_helper("teacher", teacher)
        self.quantizer_weight = quantizer_weight

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        with torch.no_grad():
            codes = self.helper("teacher", pixel_values.device).encode(pixel_values).codes
        out = self.model(pixel_values, num_decoded_tokens=tail_token_drop_length(self.model, self.tail_token_drop))
        self.last_token_ids, self.last_unquantized_latents = out.token_ids, out.unquantized_latents
        cross_entropy = F.cross_entropy(out.proxy_logits.flatten(0, 1), codes.flatten())
        loss = cross_entropy + self.quantizer_weight * out.quantizer_loss
        accuracy = (out.proxy_logits.argmax(-1) == codes).float().mean()
        self.record(proxy_code_loss=cross_entropy, quantizer_loss=out.quantizer_loss, proxy_code_accuracy=accuracy)
        return {"loss": loss}


class PixelTokenizerTraining(PixelLossMixin, TrainingModule):
    """Recipes 3 and 4: tokenizer trained on pixels (stage 2 = decoder fine-tuning with encoder and quantizer
    frozen; single-stage VQ or VAE from scratch). L2 + perceptual + PatchGAN/LeCam (+ quantizer loss, or for
    VAE: reconstruction / exp(logvar) + kl_weight x KL)."""

    def __init__(
        self,
        model: TiTokTokenizer,
        discriminator: nn.Module,
        perceptual: PerceptualLoss | None = None,
        perceptual_weight: float = 0.1,
        quantizer_weight: float = 0.0,
        kl_weight: float = 1e-6,
        gan_weight: float = 0.01,
        lecam_weight: float = 0.001,
        use_ema: bool = True,
        tail_token_drop: bool = False,
    ):
        enable_tail_token_drop(model, tail_token_drop)  # before the EMA copy is made
        super().__init__(model, use_ema)
        self.tail_token_drop = tail_token_drop
        if model.config.decoder_head == "proxy_codes" and model.pixel_decoder is None:
            raise ValueError(
                "pixel-space training of a proxy-code tokenizer needs its pixel decoder (include_pixel_decoder=True)"
            )
        self.gan = GANLoss(discriminator, gan_weight, lecam_weight)
        self.set_helper("perceptual", perceptual)
        self.perceptual_weight, self.quantizer_weight, self.kl_weight = perceptual_weight, quantizer_weight, kl_weight
        # The official VAE loss divides the reconstruction term by exp(logvar) of a fixed logvar (0).
        self.register_buffer("logvar", torch.zeros(()))

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        return self._tokenizer_step(pixel_values)

    def _tokenizer_step(self, pixel_values: torch.Tensor, **decoder_inputs) -> dict:
        """The step's loss on `pixel_values`, the tokenizer's decoder given `decoder_inputs` (TA-TiTok: text)."""
        num_decoded_tokens = tail_token_drop_length(self.model, self.tail_token_drop)
        out = self.model(pixel_values, num_decoded_tokens=num_decoded_tokens, **decoder_inputs)
        self.last_token_ids, self.last_unquantized_latents = out.token_ids, out.unquantized_latents
        psnr = -10 * torch.log10(F.mse_loss(out.reconstruction.detach().clamp(0, 1), pixel_values))
        if self.model.is_vq:
            return self._pixel_step(
                out.reconstruction,
                pixel_values,
                self.quantizer_weight * out.quantizer_loss,
                {"psnr": psnr, "quantizer_loss": out.quantizer_loss},
            )
        return self._pixel_step(
            out.reconstruction,
            pixel_values,
            self.kl_weight * out.kl_loss,
            {"psnr": psnr, "kl_loss": out.kl_loss},
            reconstruction_scale=torch.exp(self.logvar),
        )


class TextAwareTokenizerTraining(PixelTokenizerTraining):
    """The TA-TiTok recipe: `PixelTokenizerTraining` whose decoder reads each image's caption - the frozen CLIP
    text encoder's `last_hidden_state` of the batch's open_clip ids (`input_ids`), computed without gradients."""

    def __init__(self, model: TiTokTokenizer, discriminator: nn.Module, text_encoder: nn.Module, **kwargs):
        super().__init__(model, discriminator, **kwargs)
        self.set_helper("text_encoder", text_encoder)

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, aesthetic_score: torch.Tensor | None = None
    ) -> dict:
        text_encoder = self.helper("text_encoder", pixel_values.device)
        with torch.no_grad():
            text = clip_text_features(text_encoder, input_ids).tokenizer_text
        return self._tokenizer_step(pixel_values, text_embeddings=text)


class ClassConditionalTraining(TrainingModule):
    """What the class-conditional generator recipes share: the frozen tokenizer (checked against the generator)
    and each step's ids - pre-tokenized in the batch, or from the tokenizer on the fly."""

    def __init__(self, model: nn.Module, tokenizer: nn.Module | None = None, use_ema: bool = True):
        super().__init__(model, use_ema)
        if tokenizer is not None:
            model.config.check_tokenizer(tokenizer.config)
        self.set_helper("tokenizer", tokenizer)

    def token_ids(
        self, labels: torch.Tensor, token_ids: torch.Tensor | None, pixel_values: torch.Tensor | None
    ) -> torch.Tensor:
        if token_ids is None:
            tokenizer = self.helper("tokenizer", labels.device)
            if tokenizer is None or pixel_values is None:
                raise ValueError("generator training needs token_ids, or pixel_values and a frozen tokenizer")
            with torch.no_grad():
                token_ids = tokenizer.encode(pixel_values).token_ids
        self.last_token_ids = token_ids
        return token_ids


class GeneratorTraining(ClassConditionalTraining):
    """Recipe 5: MaskGIT training on token ids (pre-tokenized, or from a frozen tokenizer on the fly):
    arccos masking, class dropout, label-smoothed loss with unmasked positions down-weighted."""

    def forward(
        self, labels: torch.Tensor, token_ids: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None
    ) -> dict:
        token_ids = self.token_ids(labels, token_ids, pixel_values)
        masked, _ = mask_tokens(token_ids, self.model.config.mask_token_id)
        out = self.model(masked, labels, labels=token_ids)
        self.record(mlm_loss=out.loss, masked_token_accuracy=out.masked_token_accuracy)
        return {"loss": out.loss}


class RARTraining(ClassConditionalTraining):
    """RAR: next-token cross entropy with the tokens in a random order for a fraction `random_ratio` of the rows
    (the rest in raster order) - the ratio the `RandomOrderCallback` sets at every step -, class dropout in the
    model (`config.class_dropout_prob`). Orders and dropout are drawn on the device: no host read."""

    def __init__(self, model: RARTransformer, tokenizer: nn.Module | None = None, use_ema: bool = False):
        super().__init__(model, tokenizer, use_ema)
        self.random_ratio = 1.0

    def forward(
        self, labels: torch.Tensor, token_ids: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None
    ) -> dict:
        token_ids = self.token_ids(labels, token_ids, pixel_values)
        batch_size, num_tokens = token_ids.shape
        orders = training_orders(batch_size, num_tokens, self.random_ratio, device=token_ids.device)
        in_order = permute_tokens(token_ids, orders)
        out = self.model(in_order, labels, orders=orders, labels=in_order, check_values=False)
        self.record(ar_loss=out.loss, token_accuracy=out.token_accuracy)
        return {"loss": out.loss}


class MaskGenTraining(TrainingModule):
    """What the MaskGen recipes share: each step's prompt features - from the frozen CLIP text encoder over the
    batch's open_clip ids, or pre-tokenized in the batch -, each prompt replaced by the empty prompt's features
    (computed once) with probability `text_dropout` (classifier-free guidance training; one uniform draw per image,
    before the masking draws), and the image tokens: pre-tokenized in the batch, or from the frozen TA-TiTok."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: TiTokTokenizer | None,
        text_encoder: nn.Module,
        empty_prompt_ids: torch.Tensor,
        text_dropout: float = 0.1,
        use_ema: bool = True,
    ):
        super().__init__(model, use_ema)
        self.set_helper("tokenizer", tokenizer)
        self.set_helper("text_encoder", text_encoder)
        with torch.no_grad():
            empty = clip_text_features(text_encoder, empty_prompt_ids.reshape(1, -1).to(text_encoder.device))
        self.register_buffer("empty_prompt_embeds", empty.condition.float(), persistent=False)
        self.register_buffer("empty_pooled_prompt_embeds", empty.pooled.float(), persistent=False)
        self.text_dropout = text_dropout

    def prompt_features(
        self,
        input_ids: torch.Tensor | None,
        prompt_embeds: torch.Tensor | None = None,
        pooled_prompt_embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(`prompt_embeds` `[B, 77, W]`, `pooled_prompt_embeds` `[B, P]`) of the batch - pre-tokenized, or from
        the text encoder -, with text dropout in training."""
        if prompt_embeds is None:
            if input_ids is None:
                raise ValueError("MaskGen training needs the captions' input_ids or pre-tokenized prompt_embeds")
            text_encoder = self.helper("text_encoder", input_ids.device)
            with torch.no_grad():
                features = clip_text_features(text_encoder, input_ids)
            prompt_embeds, pooled_prompt_embeds = features.condition, features.pooled
        condition, pooled = prompt_embeds.float(), pooled_prompt_embeds.float()
        if self.training and self.text_dropout > 0:
            drop = torch.rand(condition.shape[0], device=condition.device) < self.text_dropout
            condition = torch.where(drop[:, None, None], self.empty_prompt_embeds, condition)
            pooled = torch.where(drop[:, None], self.empty_pooled_prompt_embeds, pooled)
        return condition, pooled

    def frozen_tokenizer(self, pixel_values: torch.Tensor | None) -> TiTokTokenizer:
        """The frozen tokenizer that tokenizes `pixel_values` on the fly (a batch without pre-tokenized tokens)."""
        tokenizer = self.helper("tokenizer", self.empty_prompt_embeds.device)
        if tokenizer is None or pixel_values is None:
            raise ValueError(
                "MaskGen training needs pre-tokenized tokens in the batch, or pixel_values and a frozen tokenizer"
            )
        return tokenizer


class MaskGenVQTraining(MaskGenTraining):
    """MaskGen-VQ: TA-TiTok ids masked as MaskGIT's (the arccos schedule), the label-smoothed cross-entropy with
    unmasked positions down-weighted (the official MLMLoss)."""

    def __init__(self, *args, label_smoothing: float = 0.1, unmasked_weight: float = 0.1, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_smoothing, self.unmasked_weight = label_smoothing, unmasked_weight

    def forward(
        self,
        aesthetic_score: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        token_ids: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        pooled_prompt_embeds: torch.Tensor | None = None,
    ) -> dict:
        condition, pooled = self.prompt_features(input_ids, prompt_embeds, pooled_prompt_embeds)
        if token_ids is None:
            with torch.no_grad():
                token_ids = self.frozen_tokenizer(pixel_values).encode(pixel_values).token_ids
        self.last_token_ids = token_ids
        masked, mask = mask_tokens(token_ids, self.model.mask_token_id)
        logits = self.model(masked, condition, pooled, aesthetic_score).logits
        loss, accuracy = masked_token_loss(logits, token_ids, mask, self.label_smoothing, self.unmasked_weight)
        self.record(mlm_loss=loss, masked_token_accuracy=accuracy)
        return {"loss": loss}


class MaskGenKLTraining(MaskGenTraining):
    """MaskGen-KL: TA-TiTok VAE tokens (a posterior sample, times the model's `scale_factor`), one random order per
    image and one timestep per batch masking the first ceil(N arccos(t) / (pi/2)) of each order, and the diffusion
    loss of the head on the masked tokens (`masked_diffusion_loss`: rows tiled `diffusion_batch_mul` times). This is
    the official loss with its bug fixed: the released `forward_loss` hands DiffLoss a `text_condition` it does not
    take (issue #117); the head is conditioned on the transformer's output alone, as in sampling."""

    def __init__(self, *args, diffusion_batch_mul: int = 4, num_train_timesteps: int = 1000, **kwargs):
        super().__init__(*args, **kwargs)
        self.diffusion = GaussianDiffusion(cosine_betas(num_train_timesteps))
        self.diffusion_batch_mul = diffusion_batch_mul

    def forward(
        self,
        aesthetic_score: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        latent_moments: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        pooled_prompt_embeds: torch.Tensor | None = None,
    ) -> dict:
        condition, pooled = self.prompt_features(input_ids, prompt_embeds, pooled_prompt_embeds)
        if latent_moments is not None:  # pre-tokenized: [B, N, 2C] posterior mean and log-variance
            mean, log_variance = latent_moments.float().chunk(2, dim=-1)
            latents = mean + torch.exp(0.5 * log_variance.clamp(-30.0, 20.0)) * torch.randn_like(mean)
        else:
            with torch.no_grad():
                latents = self.frozen_tokenizer(pixel_values).encode(pixel_values, sample_posterior=True).latents
        tokens = latents * self.model.config.scale_factor
        orders = random_orders(tokens.shape[0], tokens.shape[1], device=tokens.device)
        mask = mask_in_random_order(orders, torch.rand(1, device=tokens.device))
        z = self.model(tokens, mask, condition, pooled, aesthetic_score).condition
        loss = masked_diffusion_loss(
            self.model.diffusion_head, self.diffusion, tokens, z, mask, self.diffusion_batch_mul
        )
        self.record(diffusion_loss=loss)
        return {"loss": loss}


class ContrastiveTextTraining(TrainingModule):
    """The `clip` recipe: transformers' `CLIPModel` (a text and an image tower) trained with its own symmetric
    contrastive loss on captioned images; its text tower becomes the text encoder of a text-aware model. The text
    tower reads open_clip ids without an attention mask, as TA-TiTok and MaskGen will read it."""

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, aesthetic_score: torch.Tensor | None = None
    ) -> dict:
        out = self.model(input_ids=input_ids, pixel_values=pixel_values, return_loss=True)
        self.record(contrastive_loss=out.loss, logit_scale=self.model.logit_scale.detach().exp())
        return {"loss": out.loss}


__all__ = [
    "ClassConditionalTraining",
    "ContrastiveTextTraining",
    "GANLoss",
    "GeneratorTraining",
    "MaskGenKLTraining",
    "MaskGenTraining",
    "MaskGenVQTraining",
    "PixelTokenizerTraining",
    "RARTraining",
    "Stage1Training",
    "TextAwareTokenizerTraining",
    "TrainingModule",
    "VQGANTraining",
]
