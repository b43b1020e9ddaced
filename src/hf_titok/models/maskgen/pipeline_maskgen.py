"""Text-to-image generation with MaskGen over TA-TiTok tokens (bytedance/1d-tokenizer README_MaskGen.md)."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from diffusers import ImagePipelineOutput
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import replace_example_docstring

from ...fast_path import FastPathPipelineMixin
from ...text_encoding import check_prompts, clip_text_features, tokenize_prompts
from ...utils.input_checks import check_text_embeddings, trusted_values
from ...utils.pipeline_utils import DEFAULT, PipelineBase
from ...utils.sampling_settings import AESTHETIC_SCORE_RANGE, DEFAULT_AESTHETIC_SCORE
from ...utils.torch_utils import GeneratorType, check_generator, random_orders
from ..tatitok.modeling_tatitok import TATiTokTokenizer
from ..titok.image_processing_titok import TiTokImageProcessor
from ..titok.modeling_titok import TiTokTokenizer
from .modeling_maskgen import MaskGenKLTransformer, MaskGenVQTransformer
from .scheduling_maskgen import MaskGenKLScheduler, MaskGenVQScheduler

EXAMPLE_DOC_STRING = """
    Examples:
        ```python
        >>> import torch
        >>> from hf_titok import MaskGenPipeline

        >>> pipe = MaskGenPipeline.from_pretrained("path/or/hub-id/of/a/maskgen_vq_l_pipeline")
        >>> image = pipe("A cozy cabin in a snowy forest", generator=torch.Generator().manual_seed(0)).images[0]
        >>> image.save("cabin.png")
        ```
"""

# The call's arguments that are sampler settings (each sampler checks the ones it takes).
SAMPLER_ARGUMENTS = ("num_inference_steps", "guidance_scale", "guidance_schedule", "guidance_scale_pow", "temperature")
MAX_IMAGES_PER_PROMPT = 1024


class TextInputs(NamedTuple):
    """The text arguments of a call, as given: prompts, or precomputed CLIP embeddings (SD3's names)."""

    prompt: str | list[str] | None
    negative_prompt: str | list[str] | None
    prompt_embeds: torch.Tensor | None
    pooled_prompt_embeds: torch.Tensor | None
    negative_prompt_embeds: torch.Tensor | None
    negative_pooled_prompt_embeds: torch.Tensor | None
    decoder_prompt_embeds: torch.Tensor | None


class MaskGenPipeline(FastPathPipelineMixin, PipelineBase):
    r"""
    Text-to-image generation with a MaskGen generator and a TA-TiTok tokenizer.

    Components:
        vqvae ([`TATiTokTokenizer`]): decodes the generated tokens to pixels, conditioned on the prompt's CLIP
            `last_hidden_state` (and encodes the images of variations).
        transformer ([`MaskGenVQTransformer`] or [`MaskGenKLTransformer`]): the generator over the tokenizer's
            VQ ids or VAE tokens.
        scheduler ([`MaskGenVQScheduler`] or [`MaskGenKLScheduler`], *optional*): the sampler of that kind; its
            config holds the call defaults. Left out: the released settings of that kind.
        text_encoder (`CLIPTextModelWithProjection`, *optional*): CLIP ViT-L/14-336's text tower (one pass gives
            MaskGen's penultimate states and pooled embedding and TA-TiTok's last hidden state;
            `hf_titok.text_encoding`). Without it, calls take `prompt_embeds` & co.
        tokenizer (`CLIPTokenizer`, *optional*): its tokenizer (ids are padded with 0, as open_clip pads).
        image_processor ([`TiTokImageProcessor`], *optional*): post-processing of outputs and preprocessing of
            variation images; left out: the standard one for the tokenizer's image size.

    Like [`TiTokPipeline`], a call works on its own copy of the scheduler and never changes the pipeline.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vqvae"
    _optional_components = ["scheduler", "text_encoder", "tokenizer", "image_processor"]
    _callback_tensor_inputs = ["latents", "logits"]
    _COMPONENT_FILES = {
        "vqvae": "config.json",
        "transformer": "config.json",
        "scheduler": "scheduler_config.json",
        "text_encoder": "config.json",
        "tokenizer": "tokenizer_config.json",
        "image_processor": "preprocessor_config.json",
    }

    def __init__(
        self,
        vqvae: TATiTokTokenizer,
        transformer: MaskGenVQTransformer | MaskGenKLTransformer,
        scheduler: MaskGenVQScheduler | MaskGenKLScheduler | None = DEFAULT,
        text_encoder=None,
        tokenizer=None,
        image_processor: TiTokImageProcessor | None = DEFAULT,
    ):
        super().__init__()
        self._check_components(vqvae, transformer, scheduler, text_encoder)
        if scheduler is DEFAULT:
            kl = isinstance(transformer, MaskGenKLTransformer)
            scheduler = None if transformer is None else (MaskGenKLScheduler() if kl else MaskGenVQScheduler())
        if image_processor is DEFAULT:
            image_processor = None if vqvae is None else TiTokImageProcessor.for_image_size(vqvae.config.image_size)
        self.register_modules(
            vqvae=vqvae,
            transformer=transformer,
            scheduler=scheduler,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            image_processor=image_processor,
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, release: str | None = None, **kwargs):
        """diffusers' `from_pretrained` of a saved pipeline (every component checked to be there first), or an
        official MaskGen checkpoint converted in memory (`hf_titok.conversion.direct`): a
        `turkeyju/generator_maskgen_*` id or a folder in that format, or `fun-research/TA-TiTok` with `release=`.
        Its TA-TiTok is the release's (or `vqvae=`), its text encoder and tokenizer the official CLIP
        (`text_encoder=`, `tokenizer=`: models, folders or repos), its sampler the official config's. `dtype=` (or
        `torch_dtype=`) and the Hub arguments apply to every model."""
        return super().from_pretrained(pretrained_model_name_or_path, release=release, **kwargs)

    @classmethod
    def _components_not_saved(cls, folder: Path, index: dict) -> dict:
        """A folder saved without a text encoder and tokenizer loads without them (calls then take embeddings)."""
        return {
            name: None if name in ("text_encoder", "tokenizer") else value
            for name, value in super()._components_not_saved(folder, index).items()
        }

    def _default_scheduler(self):
        return MaskGenKLScheduler() if self.is_kl else MaskGenVQScheduler()

    @staticmethod
    def _check_components(vqvae, transformer, scheduler, text_encoder) -> None:
        """The components fit together: a text-aware tokenizer of the generator's kind and sizes, a scheduler of
        that kind, a text encoder of the width both read. `vqvae` and `transformer` may be None (as in diffusers'
        pipelines: e.g. one that only encodes prompts); what is there is checked."""
        if isinstance(vqvae, TiTokTokenizer) and not vqvae.decoder_inputs:
            raise TypeError(
                "vqvae is a TiTok tokenizer, which is not text-aware: MaskGen decodes with TA-TiTok "
                "(TATiTokTokenizer); class-conditional TiTok generators go with TiTokPipeline"
            )
        if vqvae is not None and not isinstance(vqvae, TATiTokTokenizer):
            raise TypeError(f"vqvae must be a TATiTokTokenizer (or None), got {type(vqvae).__name__}")
        if transformer is not None and not isinstance(transformer, (MaskGenVQTransformer, MaskGenKLTransformer)):
            raise TypeError(
                "transformer must be a MaskGenVQTransformer or MaskGenKLTransformer (or None), got "
                f"{type(transformer).__name__}"
            )
        kl = isinstance(transformer, MaskGenKLTransformer)
        if vqvae is not None and transformer is not None:
            tokens, generator = vqvae.config, transformer.config
            if kl == vqvae.is_vq:
                raise ValueError(
                    f"a MaskGen-{'KL' if kl else 'VQ'} generator needs a TA-TiTok {'VAE' if kl else 'VQ'} tokenizer; "
                    f"this one is {'VQ' if vqvae.is_vq else 'VAE'}"
                )
            expected = {"num_latent_tokens": tokens.num_latent_tokens}
            expected.update({"token_channels": tokens.token_size} if kl else {"codebook_size": tokens.codebook_size})
            for name, value in expected.items():
                if generator[name] != value:
                    raise ValueError(
                        f"the generator's {name}={generator[name]} does not match the tokenizer's ({value})"
                    )
        if transformer is not None:
            wanted = MaskGenKLScheduler if kl else MaskGenVQScheduler
            if scheduler is not DEFAULT and scheduler is not None and not isinstance(scheduler, wanted):
                raise TypeError(f"a MaskGen-{'KL' if kl else 'VQ'} pipeline samples with {wanted.__name__}")
        if text_encoder is not None:
            width = text_encoder.config.hidden_size
            readers = [("tokenizer", vqvae), ("generator", transformer)]
            for owner, model in readers:
                if model is not None and width != model.config.text_hidden_size:
                    raise ValueError(
                        f"the text encoder is {width} wide, but the {owner} reads {model.config.text_hidden_size}-wide "
                        "text states (MaskGen and TA-TiTok read CLIP ViT-L/14: 768)"
                    )
            if (
                transformer is not None
                and text_encoder.config.projection_dim != transformer.config.pooled_projection_dim
            ):
                raise ValueError(
                    f"the text encoder projects to {text_encoder.config.projection_dim}, but the generator reads "
                    f"{transformer.config.pooled_projection_dim}-wide pooled embeddings"
                )

    @property
    def is_kl(self) -> bool:
        return isinstance(self.transformer, MaskGenKLTransformer)

    @property
    def processor(self) -> TiTokImageProcessor:
        if self.image_processor is not None:
            return self.image_processor
        return TiTokImageProcessor.for_image_size(self.vqvae.config.image_size)

    # ---- 1. inputs ----

    def check_inputs(
        self,
        text: TextInputs,
        num_images_per_prompt,
        aesthetic_score,
        output_type,
        image=None,
        strength=None,
    ) -> float | None:
        """Check the call's arguments; returns the strength of a variations call (None otherwise)."""
        if self.transformer is None:
            raise ValueError(
                "this pipeline has no transformer (built to encode prompts only, with encode_prompt): load a MaskGen "
                "generator to sample"
            )
        if self.vqvae is None and (output_type != "latent" or image is not None):
            raise ValueError(
                "this pipeline has no vqvae (TA-TiTok): it cannot decode or encode images; output_type='latent' "
                "returns the generated tokens"
            )
        self.check_text_inputs(text)
        if text.prompt_embeds is not None and output_type != "latent" and text.decoder_prompt_embeds is None:
            # Without the prompt the text encoder cannot give TA-TiTok its text either.
            raise ValueError(
                "decoding with precomputed embeddings needs decoder_prompt_embeds (CLIP's last_hidden_state, "
                "what TA-TiTok reads; or pass prompt= instead of prompt_embeds), or output_type='latent'"
            )
        if (
            isinstance(num_images_per_prompt, bool)
            or not isinstance(num_images_per_prompt, numbers.Integral)
            or not 1 <= num_images_per_prompt <= MAX_IMAGES_PER_PROMPT
        ):
            raise ValueError(
                f"num_images_per_prompt must be an integer in [1, {MAX_IMAGES_PER_PROMPT}], "
                f"got {num_images_per_prompt!r}"
            )
        scores = aesthetic_score if isinstance(aesthetic_score, (list, tuple)) else [aesthetic_score]
        if torch.is_tensor(aesthetic_score):
            scores = aesthetic_score.flatten().tolist()
        for score in scores:
            low, high = AESTHETIC_SCORE_RANGE
            if isinstance(score, bool) or not isinstance(score, numbers.Real) or not low <= float(score) <= high:
                raise ValueError(
                    f"aesthetic_score must be a number in [{low:g}, {high:g}] (a LAION aesthetic score; the releases "
                    f"sample at {DEFAULT_AESTHETIC_SCORE}), got {score!r}"
                )
        return self.check_strength(image, strength)

    def check_text_inputs(self, text: TextInputs) -> None:
        """The text arguments go together: a prompt or its embeddings (with the pooled ones), a negative prompt
        or its embeddings (both of them), and a text encoder for whatever must be encoded."""
        if text.prompt is not None and text.prompt_embeds is not None:
            raise ValueError("give prompt or prompt_embeds, not both")
        if text.prompt is None and text.prompt_embeds is None:
            raise ValueError("give a prompt (or prompt_embeds with pooled_prompt_embeds)")
        if text.prompt is not None:
            check_prompts(text.prompt)
            if self.text_encoder is None or self.tokenizer is None:
                raise ValueError(
                    "this pipeline has no text encoder/tokenizer: pass prompt_embeds, pooled_prompt_embeds (and "
                    "decoder_prompt_embeds to decode), or load one (hf_titok.text_encoding.CLIP_TEXT_ENCODER)"
                )
        if text.negative_prompt is not None:
            check_prompts(text.negative_prompt, "negative_prompt")
            if text.negative_prompt_embeds is not None:
                raise ValueError("give negative_prompt or negative_prompt_embeds, not both")
        if text.prompt_embeds is not None and text.pooled_prompt_embeds is None:
            raise ValueError("prompt_embeds needs pooled_prompt_embeds (CLIP's text_embeds), as in SD3's pipeline")
        if (text.negative_prompt_embeds is None) != (text.negative_pooled_prompt_embeds is None):
            raise ValueError("give negative_prompt_embeds and negative_pooled_prompt_embeds together")

    # ---- 2. text ----

    @property
    def text_max_length(self) -> int:
        """The number of CLIP token positions the models read (77): the tokenizer's config, else the text
        encoder's."""
        if self.vqvae is not None:
            return self.vqvae.config.text_max_length
        return self.text_encoder.config.max_position_embeddings

    def _encode_text(self, prompts: list[str], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prompts -> (MaskGen's penultimate states `[B, 77, W]`, pooled `text_embeds` `[B, P]`, TA-TiTok's
        `last_hidden_state` `[B, 77, W]`), one text-encoder pass (`hf_titok.text_encoding`)."""
        input_ids = tokenize_prompts(self.tokenizer, prompts, self.text_max_length).to(device)
        features = clip_text_features(self.text_encoder, input_ids)
        return features.condition, features.pooled, features.tokenizer_text

    def _text_widths(self) -> tuple[int | None, int | None]:
        """(width of the text states, width of the pooled embedding) the models read, else the text encoder's."""
        if self.transformer is not None:
            return self.transformer.config.text_hidden_size, self.transformer.config.pooled_projection_dim
        if self.text_encoder is not None:
            return self.text_encoder.config.hidden_size, self.text_encoder.config.projection_dim
        return (self.vqvae.config.text_hidden_size if self.vqvae is not None else None), None

    def _checked_embeds(self, embeds, rows: int | None, what: str, pooled: bool = False) -> torch.Tensor:
        """Given embeddings, checked against the widths `_text_widths` names."""
        width, pooled_width = self._text_widths()
        if pooled:
            if not torch.is_tensor(embeds) or embeds.ndim != 2 or embeds.shape[1] != (pooled_width or embeds.shape[1]):
                raise ValueError(
                    f"{what} must be a [B, {pooled_width or 'P'}] tensor (CLIP's text_embeds), got "
                    f"{tuple(getattr(embeds, 'shape', ())) or type(embeds).__name__}"
                )
            if not torch.isfinite(embeds).all():
                raise ValueError(f"{what} contain NaN or infinite values")
            return embeds
        if width is None:
            width = embeds.shape[-1] if torch.is_tensor(embeds) and embeds.ndim == 3 else 0
        batch = rows or (embeds.shape[0] if torch.is_tensor(embeds) else 1)
        check_text_embeddings(embeds, batch, self.text_max_length, width, what)
        return embeds

    def encode_prompt(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        device: torch.device | None = None,
        prompt_embeds: torch.Tensor | None = None,
        pooled_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_pooled_prompt_embeds: torch.Tensor | None = None,
        decoder_prompt_embeds: torch.Tensor | None = None,
        do_classifier_free_guidance: bool = True,
    ):
        r"""
        The text of a call, one row per prompt, as SD3's `encode_prompt`: `__call__` runs it, and it runs alone on
        a pipeline holding only the text encoder and tokenizer, whose outputs another pipeline then takes as
        `prompt_embeds` & co.

        Args:
            prompt, negative_prompt: as in `__call__` (the unconditional branch defaults to the empty prompt).
            device: where the embeddings go (default: the pipeline's execution device).
            prompt_embeds, pooled_prompt_embeds, negative_prompt_embeds, negative_pooled_prompt_embeds,
            decoder_prompt_embeds: precomputed embeddings, checked and passed through.
            do_classifier_free_guidance: False leaves the unconditional embeddings as given (None if not given).

        Returns:
            `(prompt_embeds, pooled_prompt_embeds, negative_prompt_embeds, negative_pooled_prompt_embeds,
            decoder_prompt_embeds)`: CLIP's penultimate states `[B, 77, W]` and `text_embeds` `[B, P]` of the
            prompts and of the unconditional branch (one row per prompt), and TA-TiTok's text, CLIP's
            `last_hidden_state` `[B, 77, W]` (None when neither it nor a prompt is given).
        """
        text = TextInputs(
            prompt,
            negative_prompt,
            prompt_embeds,
            pooled_prompt_embeds,
            negative_prompt_embeds,
            negative_pooled_prompt_embeds,
            decoder_prompt_embeds,
        )
        self.check_text_inputs(text)
        device = device or self._execution_device
        if prompt is not None:
            prompt_embeds, pooled_prompt_embeds, decoder_text = self._encode_text(check_prompts(prompt), device)
            decoder_prompt_embeds = decoder_text if decoder_prompt_embeds is None else decoder_prompt_embeds
        else:
            prompt_embeds = self._checked_embeds(prompt_embeds, None, "prompt_embeds")
            pooled_prompt_embeds = self._checked_embeds(pooled_prompt_embeds, None, "pooled_prompt_embeds", True)
        rows = prompt_embeds.shape[0]
        if pooled_prompt_embeds.shape[0] != rows:
            raise ValueError(f"pooled_prompt_embeds has {pooled_prompt_embeds.shape[0]} rows for {rows} prompts")
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            if self.text_encoder is None:
                raise ValueError(
                    "guidance needs the unconditional text: pass negative_prompt_embeds and "
                    "negative_pooled_prompt_embeds (the encoding of the empty prompt), or a text encoder"
                )
            negatives = check_prompts(negative_prompt, "negative_prompt") if negative_prompt is not None else [""]
            negative_prompt_embeds, negative_pooled_prompt_embeds, _ = self._encode_text(negatives, device)
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = self._checked_embeds(negative_prompt_embeds, rows, "negative_prompt_embeds")
            negative_pooled_prompt_embeds = self._checked_embeds(
                negative_pooled_prompt_embeds, None, "negative_pooled_prompt_embeds", True
            )
            if negative_pooled_prompt_embeds.shape[0] not in (1, rows):
                raise ValueError(
                    f"negative_pooled_prompt_embeds has {negative_pooled_prompt_embeds.shape[0]} rows for {rows} "
                    "prompts: give one or one each"
                )
            negative_prompt_embeds = negative_prompt_embeds.expand(rows, -1, -1).to(device)
            negative_pooled_prompt_embeds = negative_pooled_prompt_embeds.expand(rows, -1).to(device)
        if decoder_prompt_embeds is not None:
            decoder_prompt_embeds = self._checked_embeds(decoder_prompt_embeds, rows, "decoder_prompt_embeds")
            decoder_prompt_embeds = decoder_prompt_embeds.expand(rows, -1, -1).to(device)
        prompt_embeds, pooled_prompt_embeds = prompt_embeds.to(device), pooled_prompt_embeds.to(device)
        return (
            prompt_embeds,
            pooled_prompt_embeds,
            negative_prompt_embeds,
            negative_pooled_prompt_embeds,
            decoder_prompt_embeds,
        )

    # ---- 3. variations ----

    def image_tokens(self, image) -> torch.Tensor:
        """The tokens of variation images in the generator's space: VQ ids `[I, N]`, or (KL) the TA-TiTok
        posterior means times the generator's `scale_factor`, float32 `[I, N, C]`."""
        encoded = self.vqvae.encode(self.variation_pixels(image))
        if self.is_kl:
            return encoded.latents.float() * self.transformer.config.scale_factor
        return encoded.token_ids

    @staticmethod
    def _paired_rows(num_prompts: int, num_images: int) -> int:
        """Variations pair prompts and images: one prompt for all images, one image for all prompts, or one each."""
        if num_prompts not in (1, num_images) and num_images != 1:
            raise ValueError(
                f"give one prompt for all images, one image for all prompts, or one prompt per image: got "
                f"{num_prompts} prompts and {num_images} images"
            )
        return max(num_prompts, num_images)

    # ---- 4. the two samplers ----

    def _sample_ids(self, scheduler, timesteps, cond, uncond, aesthetic, ids, generator, callback, tensor_inputs):
        """MaskGen-VQ: confidence-based unmasking; conditional and unconditional rows in one forward pass."""
        for i, t in enumerate(self.progress_bar(range(scheduler.num_inference_steps))):  # timesteps: 0..T-1
            if self.interrupt:
                break
            scheduler = self.follow_guidance_change(scheduler, **timesteps)
            if scheduler.guidance_scale_at(t) is not None:
                logits = self.transformer(
                    torch.cat([ids, ids]),
                    torch.cat([cond[0], uncond[0]]),
                    torch.cat([cond[1], uncond[1]]),
                    torch.cat([aesthetic, aesthetic]),
                ).logits
                logits = scheduler.apply_guidance(*logits.chunk(2), t)
            else:
                logits = self.transformer(ids, cond[0], cond[1], aesthetic).logits.float()
            ids = scheduler.step(logits, t, ids, generator=generator).prev_sample
            ids = self._after_step(callback, tensor_inputs, i, t, {"latents": ids, "logits": logits})
        return ids

    def _sample_tokens(
        self, scheduler, timesteps, cond, uncond, aesthetic, tokens, orders, noise, generator, callback, inputs
    ):
        """MaskGen-KL: per step, the transformer conditions every position, and the scheduler's step samples the
        positions the step unmasks with the diffusion head (a fixed number per image, known in advance: no host
        reads)."""
        for i, t in enumerate(self.progress_bar(range(scheduler.num_inference_steps))):  # timesteps: 0..T-1
            if self.interrupt:
                break
            scheduler = self.follow_guidance_change(scheduler, **timesteps)
            mask = scheduler.mask_at(orders, t)
            if scheduler.guidance_scale_at(t) is not None:
                condition = self.transformer(
                    torch.cat([tokens, tokens]),
                    torch.cat([mask, mask]),
                    torch.cat([cond[0], uncond[0]]),
                    torch.cat([cond[1], uncond[1]]),
                    torch.cat([aesthetic, aesthetic]),
                ).condition
            else:
                condition = self.transformer(tokens, mask, cond[0], cond[1], aesthetic).condition
            tokens = scheduler.step(
                condition,
                t,
                tokens,
                generator=generator,
                token_orders=orders,
                diffusion_head=self.transformer.diffusion_head,
                noise=noise,
            ).prev_sample
            tokens = self._after_step(callback, inputs, i, t, {"latents": tokens, "logits": condition})
        return tokens

    def _after_step(self, callback, tensor_inputs, i, t, tensors):
        return self.run_step_callback(callback, tensor_inputs, i, t, tensors)["latents"]

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        guidance_schedule: str | None = None,
        guidance_scale_pow: float | None = None,
        temperature: float | None = None,
        aesthetic_score: float | list[float] = DEFAULT_AESTHETIC_SCORE,
        generator: GeneratorType = None,
        image=None,
        strength: float | None = None,
        latents: torch.Tensor | None = None,
        token_orders: torch.LongTensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        pooled_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_pooled_prompt_embeds: torch.Tensor | None = None,
        decoder_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> ImagePipelineOutput | tuple:
        r"""
        Generate images from text, or variations of given images.

        Args:
            prompt: a prompt or a list (one image row group per prompt); or give `prompt_embeds`.
            negative_prompt: the unconditional branch of guidance instead of the empty prompt (one, or one per
                prompt).
            num_images_per_prompt: images per prompt.
            num_inference_steps, guidance_scale, guidance_schedule, guidance_scale_pow, temperature: sampler
                settings (see [`MaskGenVQScheduler`], [`MaskGenKLScheduler`]: the official schedule names,
                `cosine`/`flippedcosine`/`linear`/`none` for VQ, `linear`/`constant` for KL; `guidance_scale_pow`
                is VQ only); `None` takes the scheduler config's.
            aesthetic_score: the LAION aesthetic score the images are conditioned on, in [0, 10] (one, or one
                per prompt); by default the score the releases sample with (`DEFAULT_AESTHETIC_SCORE`).
            generator: a `torch.Generator` (or one per image) for reproducible samples; `None`: torch's global
                RNG. MaskGen-VQ draws exactly what the official sampler draws (a generator seeded like
                `torch.manual_seed` reproduces it); MaskGen-KL draws its token orders from it too (the official
                code uses numpy's global state).
            image: variations instead of images from scratch (not in the official code; the models allow it, as
                both sample from partly masked sequences): PIL image(s), NumPy array(s) or a float tensor
                `[B, 3, S, S]` in [0, 1], one for all prompts, one per prompt, or several for one prompt. Each is
                tokenized by the TA-TiTok (VQ: its ids; KL: its posterior mean), a random `strength` fraction of
                its tokens is masked (KL: the first ones of its token order) and the generator re-samples them
                conditioned on the prompt, the schedule running over the masked positions in at most that many
                steps.
            strength: variations only: the fraction of each image's tokens re-sampled, in (0, 1], default 0.5; at
                least one token. 1 ignores the image (KL: the same images as without `image`, given the same
                generator).
            latents: MaskGen-KL only: the initial diffusion noise of every token `[B, N, C]` (default: drawn from
                `generator` step by step); with `token_orders`, replays a recorded run.
            token_orders: MaskGen-KL only: the order `[B, N]` in which each image's positions are generated (with
                `image`, its first `round(strength * N)` positions are the ones re-sampled).
            prompt_embeds, pooled_prompt_embeds: precomputed CLIP penultimate states `[B, 77, 768]` and
                `text_embeds` `[B, 768]` (SD3's names); negative_prompt_embeds, negative_pooled_prompt_embeds:
                the same for the unconditional branch (default: the empty prompt's, which needs a text encoder).
            decoder_prompt_embeds: the text TA-TiTok decodes with, CLIP's `last_hidden_state` `[B, 77, 768]`
                (computed from `prompt` when there is one).
            output_type: `"pil"`, `"np"`, `"pt"` or `"latent"` (VQ: ids `[B, N]`; KL: tokens `[B, N, C]` as
                TA-TiTok decodes them, i.e. divided by the generator's `scale_factor`).
            return_dict: return an [`ImagePipelineOutput`] rather than a tuple.
            callback_on_step_end, callback_on_step_end_tensor_inputs: as in diffusers; `"latents"` are the ids (VQ)
                or scaled tokens (KL) after the step, `"logits"` the guided logits (VQ) or the transformer's
                conditions (KL).

        Examples:
        """
        arguments = locals()

        # 1. Check inputs
        callback_on_step_end_tensor_inputs = self.check_call_options(
            output_type, return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        text = TextInputs(*(arguments[name] for name in TextInputs._fields))
        strength = self.check_inputs(text, num_images_per_prompt, aesthetic_score, output_type, image, strength)
        scheduler = self.scheduler_for_call(**{name: arguments[name] for name in SAMPLER_ARGUMENTS})
        device = self._execution_device
        config = self.transformer.config

        # 2. Encode the prompts (one row per prompt), then one row per image
        cond, pooled, uncond, uncond_pooled, decoder_text = self.encode_prompt(**text._asdict(), device=device)
        num_prompts = cond.shape[0]
        score = torch.as_tensor(aesthetic_score, dtype=torch.float32).reshape(-1)
        if score.numel() not in (1, num_prompts):
            raise ValueError(
                f"aesthetic_score has {score.numel()} values for {num_prompts} prompts: give one or one each"
            )
        score = score.expand(num_prompts).to(device)
        rows = (cond, pooled, uncond, uncond_pooled, decoder_text, score)
        start = None
        if image is not None:  # variations: the images' tokens, paired with the prompts
            start = self.image_tokens(image)
            num_rows = self._paired_rows(num_prompts, start.shape[0])
            start = start.expand(num_rows, *start.shape[1:])
            rows = tuple(None if t is None else t.expand(num_rows, *t.shape[1:]) for t in rows)
        per_image = lambda t: None if t is None else t.repeat_interleave(num_images_per_prompt, dim=0)  # noqa: E731
        cond, pooled, uncond, uncond_pooled, decoder_text, score = map(per_image, rows)
        start = per_image(start)
        batch_size = cond.shape[0]
        check_generator(generator, batch_size)

        # 3. Prepare the sampler: over every token, or over the tokens a variation re-samples (then in at most
        #    that many steps: each step samples at least one)
        num_tokens = config.num_latent_tokens
        num_masked = None if start is None else self.num_remasked(strength, num_tokens)
        timesteps = dict(
            # (the config's step count was checked when the sampler was built; variations pass a shortened count)
            num_inference_steps=None if num_masked is None else min(scheduler.config.num_inference_steps, num_masked),
            device=device,
            num_tokens=num_tokens,
            num_masked_tokens=num_masked,
        )
        scheduler.set_timesteps(**timesteps)
        self._guidance_scale = scheduler.config.guidance_scale
        self._call.num_timesteps, self._interrupt = len(scheduler.timesteps), False

        # 4. Start (all masked, or each image's tokens with a random `strength` fraction masked) and sample (nothing
        #    in either loop reads a tensor back to the host; the step indices live on the host)
        with trusted_values():
            if self.is_kl:
                orders = self._token_orders(token_orders, scheduler, batch_size, generator, device)
                noise = self._checked_noise(latents, batch_size, device)
                if start is None:
                    tokens = torch.zeros(batch_size, num_tokens, config.token_channels, device=device)
                else:  # the masked positions are the first of each order (their values are never read)
                    tokens = start.masked_fill(scheduler.mask_at(orders, 0).unsqueeze(-1), 0.0)
                result = self._sample_tokens(
                    scheduler,
                    timesteps,
                    (cond, pooled),
                    (uncond, uncond_pooled),
                    score,
                    tokens,
                    orders,
                    noise,
                    generator,
                    callback_on_step_end,
                    callback_on_step_end_tensor_inputs,
                )
                result = result / config.scale_factor
            else:
                if latents is not None or token_orders is not None:
                    raise ValueError("latents and token_orders are MaskGen-KL's; MaskGen-VQ starts from mask ids")
                if start is None or num_masked == num_tokens:  # strength 1 re-samples all: draws as from scratch
                    ids = torch.full((batch_size, num_tokens), self.transformer.mask_token_id, device=device)
                else:
                    remasked = random_orders(batch_size, num_tokens, generator, device)[:, :num_masked]
                    ids = start.scatter(1, remasked, self.transformer.mask_token_id)
                result = self._sample_ids(
                    scheduler,
                    timesteps,
                    (cond, pooled),
                    (uncond, uncond_pooled),
                    score,
                    ids,
                    generator,
                    callback_on_step_end,
                    callback_on_step_end_tensor_inputs,
                )

        # 5. Decode with the prompts' text
        return self._output(
            result, output_type, return_dict, lambda tokens: self.vqvae.decode(tokens, text_embeddings=decoder_text)
        )

    def _checked_noise(self, latents, batch_size, device) -> torch.Tensor | None:
        """`latents`, the initial diffusion noise of every token `[B, N, C]`, checked (None: drawn per step)."""
        if latents is None:
            return None
        config = self.transformer.config
        shape = (batch_size, config.num_latent_tokens, config.token_channels)
        if not torch.is_tensor(latents) or tuple(latents.shape) != shape or not latents.is_floating_point():
            raise ValueError(
                f"latents must be the initial diffusion noise of every token, a float tensor {list(shape)}"
            )
        return latents.to(device=device, dtype=torch.float32)

    def _token_orders(self, token_orders, scheduler, batch_size, generator, device) -> torch.LongTensor:
        if token_orders is None:
            return scheduler.random_orders(batch_size, generator, device)
        num_tokens = self.transformer.config.num_latent_tokens
        if (
            not torch.is_tensor(token_orders)
            or token_orders.shape != (batch_size, num_tokens)
            or not torch.equal(token_orders.sort(dim=1).values.cpu(), torch.arange(num_tokens).expand(batch_size, -1))
        ):
            raise ValueError(
                f"token_orders must hold one permutation of 0..{num_tokens - 1} per image, [{batch_size}, {num_tokens}]"
            )
        return token_orders.to(device)


__all__ = ["MaskGenPipeline", "AESTHETIC_SCORE_RANGE", "DEFAULT_AESTHETIC_SCORE"]
