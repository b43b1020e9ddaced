"""Class-conditional image generation with RAR: one token at a time with a key/value cache, decoded by the
tokenizer whose ids RAR was trained on (the MaskGIT-VQGAN for the releases, or a TiTok tokenizer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from diffusers import ImagePipelineOutput
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import replace_example_docstring
from transformers.cache_utils import DynamicCache

from ...fast_path import FastPathPipelineMixin
from ...utils.input_checks import check_token_ids
from ...utils.pipeline_utils import DEFAULT, ClassLabelsMixin, PipelineBase
from ...utils.torch_utils import GeneratorType, check_generator, rand_tensor
from ..maskgit_vqgan.modeling_maskgit_vqgan import MaskGITVQGAN
from ..titok.image_processing_titok import TiTokImageProcessor
from ..titok.modeling_titok import TiTokTokenizer
from .modeling_rar import RARTransformer
from .scheduling_rar import RARScheduler

EXAMPLE_DOC_STRING = """
    Examples:
        ```python
        >>> import torch
        >>> from hf_titok import RARPipeline

        >>> pipe = RARPipeline.from_pretrained("yucornetto/RAR", release="rar_b")
        >>> images = pipe(class_labels=["tiger", 207], generator=torch.Generator().manual_seed(0)).images
        >>> images[0].save("tiger.png")
        ```
"""

CACHE_IMPLEMENTATIONS = ("dynamic", "static")


class RARPipeline(FastPathPipelineMixin, ClassLabelsMixin, PipelineBase):
    r"""
    Class-conditional generation with RAR (Randomized Autoregressive visual generation, Yu et al., 2024).

    Components:
        vqvae ([`MaskGITVQGAN`] or a VQ [`TiTokTokenizer`]): decodes the generated ids to pixels - the
            MaskGIT-VQGAN's 16 x 16 codes for the releases, or the 1-D tokens of a TiTok tokenizer for a RAR
            trained on them. It must have at least the generator's codebook and as many tokens per image.
        transformer ([`RARTransformer`]): the class-conditional autoregressive transformer.
        scheduler ([`RARScheduler`], *optional*): the sampler; its config (guidance, its power, temperature) is the
            default of every call. Left out: `RARScheduler()` (RAR-B's released settings); `None`: none is kept.
        image_processor ([`TiTokImageProcessor`], *optional*): post-processing of the outputs. Left out: the
            standard one for the tokenizer's image size; `None`: none is kept.
        id2label (`dict[int, str]`, *optional*): class names; default `class 0`, `class 1`, ... (converted releases
            store the ImageNet names). Stored in `model_index.json`.

    A call never changes the pipeline (each works on its own copy of the scheduler).
    """

    model_cpu_offload_seq = "transformer->vqvae"
    _optional_components = ["scheduler", "image_processor"]
    _callback_tensor_inputs = ["latents", "logits"]
    _COMPONENT_FILES = {
        "vqvae": "config.json",
        "transformer": "config.json",
        "scheduler": "scheduler_config.json",
        "image_processor": "preprocessor_config.json",
    }

    def __init__(
        self,
        vqvae: MaskGITVQGAN | TiTokTokenizer,
        transformer: RARTransformer,
        scheduler: RARScheduler | None = DEFAULT,
        image_processor: TiTokImageProcessor | None = DEFAULT,
        id2label: dict | None = None,
    ):
        super().__init__()
        for name, component, expected in (
            ("vqvae", vqvae, (MaskGITVQGAN, TiTokTokenizer)),
            ("transformer", transformer, (RARTransformer,)),
            ("scheduler", scheduler, (RARScheduler, type(None), type(DEFAULT))),
            ("image_processor", image_processor, (TiTokImageProcessor, type(None), type(DEFAULT))),
        ):
            if not isinstance(component, expected):
                raise TypeError(f"{name} must be a {expected[0].__name__}, got {type(component).__name__}")
        if isinstance(vqvae, TiTokTokenizer) and vqvae.decoder_inputs:
            raise TypeError("vqvae is a TA-TiTok tokenizer, which decodes with text; RARPipeline decodes ids alone")
        try:
            transformer.config.check_tokenizer(vqvae.config)
        except ValueError as error:
            raise ValueError(f"vqvae cannot decode what transformer generates: {error}") from None
        if scheduler is DEFAULT:
            scheduler = RARScheduler()
        if image_processor is DEFAULT:
            image_processor = TiTokImageProcessor.for_image_size(vqvae.config.image_size)
        self.register_modules(
            vqvae=vqvae, transformer=transformer, scheduler=scheduler, image_processor=image_processor
        )
        self.register_id2label(id2label)

    @property
    def processor(self) -> TiTokImageProcessor:
        """The image processor calls use: the component, or the standard one for the tokenizer's image size."""
        if self.image_processor is not None:
            return self.image_processor
        return TiTokImageProcessor.for_image_size(self.vqvae.config.image_size)

    def _default_scheduler(self) -> RARScheduler:
        return RARScheduler()

    def _new_cache(self, implementation: str, batch_size: int):
        if implementation == "static":
            return self.transformer.static_cache(batch_size)
        return DynamicCache()

    def decode(self, token_ids: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Ids `[B, N]` -> pixels `[B, 3, H, W]` with the tokenizer, `batch_size` images at a time."""
        chunks = token_ids.split(batch_size) if batch_size else (token_ids,)
        return torch.cat([self.vqvae.decode(chunk) for chunk in chunks])

    def check_inputs(self, num_images_per_label, use_cache, cache_implementation, decode_batch_size) -> None:
        self.check_images_per_label(num_images_per_label)
        if not isinstance(use_cache, bool):
            raise TypeError(f"use_cache must be True or False, got {use_cache!r}")
        if cache_implementation not in CACHE_IMPLEMENTATIONS:
            raise ValueError(
                f"cache_implementation must be one of {CACHE_IMPLEMENTATIONS}, got {cache_implementation!r}"
            )
        if decode_batch_size is not None and (
            isinstance(decode_batch_size, bool) or not isinstance(decode_batch_size, int) or decode_batch_size < 1
        ):
            raise ValueError(f"decode_batch_size must be a positive integer or None, got {decode_batch_size!r}")

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        class_labels=None,
        num_images_per_label: int = 1,
        guidance_scale: float | None = None,
        guidance_scale_pow: float | None = None,
        temperature: float | None = None,
        generator: GeneratorType = None,
        use_cache: bool = True,
        cache_implementation: Literal["dynamic", "static"] = "dynamic",
        output_type: str = "pil",
        decode_batch_size: int | None = None,
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> ImagePipelineOutput | tuple:
        r"""
        Generate images of the given classes, one token per step (as many steps as the tokenizer has tokens).

        Args:
            class_labels: class ids, class names (any synonym of `id2label`, case-insensitive), or `None` for an
                unconditional sample; one, or a (nested) list, array or integer tensor of them.
            num_images_per_label: images per label (rows are grouped by label).
            guidance_scale, guidance_scale_pow, temperature: sampler settings (see [`RARScheduler`]); `None` takes
                the scheduler config's.
            generator: a `torch.Generator` (with a CPU generator the draws are the official `generate()`'s after
                `torch.manual_seed`, on any device), or a list with one per image (each image then depends only on
                its own generator); `None`: torch's global RNG.
            use_cache: keep the keys and values of earlier tokens (one new position per step) rather than running
                the whole prefix at every step; the ids are the same either way (up to float rounding near ties).
            cache_implementation: `"dynamic"` (transformers' `DynamicCache`, grows each step) or `"static"`
                (`StaticCache`, allocated once: what `torch.compile` captures without recompiling per length).
            output_type: `"pil"` (uint8 by truncation, as the official sampler), `"np"`, `"pt"` or `"latent"` (the
                ids `[B, N]`).
            decode_batch_size: decode at most this many images at a time.
            return_dict: return an [`ImagePipelineOutput`] rather than a tuple.
            callback_on_step_end: `fn(pipeline, step, timestep, callback_kwargs) -> dict` (or a diffusers
                `PipelineCallback`), called after every step with the tensors named in
                `callback_on_step_end_tensor_inputs`: `"latents"` (the ids so far `[B, step + 1]`; a returned one
                replaces them, and the cache is rebuilt from it) and `"logits"` (the step's guided float32 logits
                `[B, K]`). Default `["latents"]`.

        Examples:
        """
        arguments = locals()
        config = self.transformer.config
        scheduler = self.scheduler_for_call(**{name: arguments[name] for name in RARScheduler.setting_names()})

        # 1. Check inputs and resolve the labels (checked here once: the loop's model calls skip value checks).
        callback_on_step_end_tensor_inputs = self.check_call_options(
            output_type, return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        self.check_inputs(num_images_per_label, use_cache, cache_implementation, decode_batch_size)
        device = self._execution_device
        labels = torch.tensor(self.get_label_ids(class_labels), device=device).repeat_interleave(num_images_per_label)
        batch_size = labels.shape[0]
        check_generator(generator, batch_size)

        # 2. Prepare: the official generate() first spends B uniforms on its (zero-probability) label dropout;
        #    drawing them keeps a seeded run on the official stream.
        rand_tensor((batch_size,), generator, device)
        guided_labels = torch.cat([labels, torch.full_like(labels, config.num_classes)])  # conditional, then null
        timestep_arguments = dict(device=device, num_tokens=config.num_latent_tokens)
        scheduler.set_timesteps(**timestep_arguments)
        self._guidance_scale, self._call.num_timesteps, self._interrupt = (
            scheduler.config.guidance_scale,
            len(scheduler.timesteps),
            False,
        )
        token_ids = torch.zeros((batch_size, 0), dtype=torch.long, device=device)
        cache, cached_tokens, cached_rows = None, 0, None

        # 3. One token per step; conditional and unconditional rows share one forward pass, and with the cache each
        #    step runs the new position only. Nothing in the loop reads a tensor back to the host.
        for i, t in enumerate(self.progress_bar(scheduler.timesteps.tolist())):
            if self.interrupt:
                break
            scheduler = self.follow_guidance_change(scheduler, **timestep_arguments)
            guided = scheduler.guidance_scale_at(t) is not None
            rows = 2 * batch_size if guided else batch_size
            if not use_cache or rows != cached_rows:  # (re)start the cache: a new run, or guidance switched
                cache, cached_tokens, cached_rows = (
                    (self._new_cache(cache_implementation, rows), 0, rows) if use_cache else (None, 0, None)
                )
            new_ids = token_ids[:, cached_tokens:]
            logits = self.transformer(
                torch.cat([new_ids, new_ids]) if guided else new_ids,
                guided_labels if guided else labels,
                past_key_values=cache,
                check_values=False,
            ).logits[:, -1]
            cached_tokens = token_ids.shape[1] if use_cache else 0
            if guided:
                logits = scheduler.apply_guidance(*logits.chunk(2), t)
            token_ids = scheduler.step(logits, t, token_ids, generator=generator).prev_sample
            if callback_on_step_end is not None:
                returned = self.run_step_callback(
                    callback_on_step_end,
                    callback_on_step_end_tensor_inputs,
                    i,
                    t,
                    {"latents": token_ids, "logits": logits},
                )
                if returned["latents"] is not token_ids:
                    token_ids = returned["latents"]
                    check_token_ids(
                        token_ids, token_ids.shape[1], config.codebook_size, "latents returned by callback_on_step_end"
                    )
                    cached_rows = None  # the cached keys belong to the old ids

        # 4. Decode.
        if token_ids.shape[1] < config.num_latent_tokens and output_type != "latent":
            raise ValueError(
                f"sampling was interrupted (pipe._interrupt) after {token_ids.shape[1]} of "
                f"{config.num_latent_tokens} tokens: there is no image to return; output_type='latent' returns the "
                "ids so far"
            )
        return self._output(token_ids, output_type, return_dict, lambda ids: self.decode(ids, decode_batch_size))


__all__ = ["RARPipeline"]
