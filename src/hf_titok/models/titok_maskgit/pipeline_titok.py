"""Class-conditional image generation with TiTok: MaskGIT over 1-D tokens, decoded by the TiTok tokenizer."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import ImagePipelineOutput
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import replace_example_docstring

from ...fast_path import FastPathPipelineMixin
from ...hub import pipeline_card, push_folder_to_hub
from ...utils.input_checks import check_token_ids
from ...utils.legacy import legacy_pipeline_scheduler
from ...utils.pipeline_utils import DEFAULT, ClassLabelsMixin, PipelineBase
from ...utils.torch_utils import GeneratorType, check_generator, random_orders
from ..titok.image_processing_titok import TiTokImageProcessor
from ..titok.modeling_titok import TiTokTokenizer
from .modeling_titok_maskgit import TiTokMaskGIT
from .scheduling_titok_maskgit import TiTokMaskGITScheduler

EXAMPLE_DOC_STRING = """
    Examples:
        ```python
        >>> import torch
        >>> from hf_titok import TiTokPipeline

        >>> pipe = TiTokPipeline.from_pretrained("path/or/hub-id/of/titok_l32_pipeline")
        >>> images = pipe(class_labels=["tiger", 207], generator=torch.Generator().manual_seed(0)).images
        >>> images[0].save("tiger.png")
        ```
"""


class TiTokPipeline(FastPathPipelineMixin, ClassLabelsMixin, PipelineBase):
    r"""
    Class-conditional generation with a TiTok MaskGIT generator and a TiTok tokenizer.

    Components (the names are diffusers' conventions for a VQ image tokenizer and the generator, as in
    aMUSEd; saved `model_index.json` files depend on them):
        vqvae ([`TiTokTokenizer`]): the VQ TiTok tokenizer; decodes the generated ids to pixels (and encodes
            the images of variations).
        transformer ([`TiTokMaskGIT`]): the class-conditional MaskGIT over the tokenizer's ids.
        scheduler ([`TiTokMaskGITScheduler`], *optional*): the official confidence-based unmasking sampler; its
            config is the sampling recipe (steps, guidance, temperature), the defaults of every call. Left out:
            `TiTokMaskGITScheduler()` (TiTok-L-32's official settings); `None` (diffusers' "no component", as a
            pipeline saved without one loads): none is kept and calls sample with that default.
        image_processor ([`TiTokImageProcessor`], *optional*): the tokenizer's preprocessing (variations) and
            the post-processing of outputs. Left out: the standard one for the tokenizer's image size; `None`:
            none is kept and calls use that standard one (`processor`).
        id2label (`dict[int, str]`, *optional*): class names ("name, synonym, ..."); default `class 0`,
            `class 1`, ... (converted ImageNet pipelines store the ImageNet names). Stored in `model_index.json`.

    A call never changes the pipeline: each works on its own copy of the scheduler (a scheduler holds the state
    of one sampling run), so calls from several threads with different settings do not interfere.
    """

    model_cpu_offload_seq = "transformer->vqvae"
    _optional_components = ["scheduler", "image_processor"]
    _callback_tensor_inputs = ["latents", "logits"]

    def __init__(
        self,
        vqvae: TiTokTokenizer,
        transformer: TiTokMaskGIT,
        scheduler: TiTokMaskGITScheduler | None = DEFAULT,
        image_processor: TiTokImageProcessor | None = DEFAULT,
        id2label: dict | None = None,
    ):
        super().__init__()
        for name, component, expected in (
            ("vqvae", vqvae, TiTokTokenizer),
            ("transformer", transformer, TiTokMaskGIT),
            ("scheduler", scheduler, (TiTokMaskGITScheduler, type(None), type(DEFAULT))),
            ("image_processor", image_processor, (TiTokImageProcessor, type(None), type(DEFAULT))),
        ):
            if not isinstance(component, expected):
                wanted = expected.__name__ if isinstance(expected, type) else expected[0].__name__
                raise TypeError(f"{name} must be a {wanted}, got {type(component).__name__}")
        if vqvae.decoder_inputs:
            raise TypeError(
                "vqvae is a TA-TiTok tokenizer, which decodes with text: text-to-image generation with it is "
                "MaskGenPipeline's; TiTokPipeline takes a TiTok tokenizer"
            )
        transformer.config.check_tokenizer(vqvae.config)
        if scheduler is DEFAULT:
            scheduler = TiTokMaskGITScheduler()
        if image_processor is DEFAULT:
            image_processor = TiTokImageProcessor.for_image_size(vqvae.config.image_size)
        self.register_modules(
            vqvae=vqvae, transformer=transformer, scheduler=scheduler, image_processor=image_processor
        )
        self.register_id2label(id2label)

    @property
    def processor(self) -> TiTokImageProcessor:
        """The image processor calls use: the `image_processor` component, or the standard one for the tokenizer's
        image size when the pipeline has none."""
        if self.image_processor is not None:
            return self.image_processor
        return TiTokImageProcessor.for_image_size(self.vqvae.config.image_size)

    # The file each saved component's folder must hold.
    _COMPONENT_FILES = {
        "vqvae": "config.json",
        "transformer": "config.json",
        "scheduler": "scheduler_config.json",
        "image_processor": "preprocessor_config.json",
    }

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path, fast_path: bool = False, release: str | None = None, **kwargs
    ):
        """diffusers' `from_pretrained`, after checking that the folder (or Hub snapshot) holds a TiTokPipeline
        whose every component is there, so a missing one is named rather than failing deep inside the loader.
        `fast_path=True` then switches on the CPU fast path (`enable_fast_path`).

        An official generator loads directly (converted in memory, `hf_titok.conversion.direct`): a
        `yucornetto/generator_titok_*` id or a folder in that format, or `fun-research/TiTok` with `release=`
        (e.g. `"titok_l32_generator"`). Its tokenizer is the release's (or `vqvae=`: a `TiTokTokenizer`, a folder
        or a repo), its scheduler the official gFID sampling settings, its class names ImageNet's. `dtype=`
        (or diffusers' `torch_dtype=`), `device_map=` and the Hub arguments apply to both models."""
        return super().from_pretrained(pretrained_model_name_or_path, release=release, fast_path=fast_path, **kwargs)

    @classmethod
    def _components_not_saved(cls, folder: Path, index: dict) -> dict:
        """Folders saved by hf_titok 0.1 (`hf_titok.utils.legacy`) have no image_processor entry (the default one is
        built) and their sampler settings in the generator config (moved to the scheduler)."""
        components = super()._components_not_saved(folder, index)
        scheduler = legacy_pipeline_scheduler(folder, TiTokMaskGITScheduler)
        if scheduler is not None:
            components.setdefault("scheduler", scheduler)
        return components

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: str = "Upload TiTokPipeline",
        private: bool | None = None,
        token: str | None = None,
    ) -> str:
        """Save the pipeline with a model card and upload it to `repo_id` (created if missing; the token
        defaults to the environment's). Returns the commit URL."""
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            pipeline_card(self, repo_id).save(Path(folder) / "README.md")
            return push_folder_to_hub(folder, repo_id, private=private, token=token, commit_message=commit_message)

    def _default_scheduler(self) -> TiTokMaskGITScheduler:
        return TiTokMaskGITScheduler()

    def check_inputs(
        self,
        num_images_per_label,
        image=None,
        strength=None,
    ) -> float | None:
        """Check the call's arguments; returns the strength of a variations call (None otherwise)."""
        self.check_images_per_label(num_images_per_label)
        return self.check_strength(image, strength)

    def prepare_image_tokens(
        self, image, labels: torch.Tensor, strength: float, num_images_per_label: int, generator: GeneratorType
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Variations: tokenize `image` (PIL image(s), NumPy array(s), or a float tensor `[B, 3, S, S]` in
        [0, 1]), repeat each image's ids `num_images_per_label` times and re-mask `round(strength * N)` (>= 1)
        random positions per row. Returns the ids, the labels matched to the images, and the masked count."""
        pixel_values = self.variation_pixels(image)
        num_images = pixel_values.shape[0]
        if labels.shape[0] not in (1, num_images):
            raise ValueError(
                f"give one class label for all images or one per image: got {labels.shape[0]} labels for "
                f"{num_images} images"
            )
        labels = labels.expand(num_images) if labels.shape[0] == 1 else labels
        check_generator(generator, num_images * num_images_per_label)
        token_ids = self.vqvae.encode(pixel_values).token_ids.repeat_interleave(num_images_per_label, dim=0)
        batch_size, num_tokens = token_ids.shape
        num_masked = self.num_remasked(strength, num_tokens)
        remasked = random_orders(batch_size, num_tokens, generator, token_ids.device)[:, :num_masked]
        token_ids = token_ids.scatter(1, remasked, self.transformer.config.mask_token_id)
        return token_ids, labels.repeat_interleave(num_images_per_label), num_masked

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        class_labels=None,
        num_images_per_label: int = 1,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        guidance_schedule: str | None = None,
        guidance_scale_pow: float | None = None,
        temperature: float | None = None,
        softmax_temperature_annealing: bool | None = None,
        generator: GeneratorType = None,
        image=None,
        strength: float | None = None,
        output_type: str = "pil",
        decode_batch_size: int | None = None,
        num_decoded_tokens: int | None = None,
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> ImagePipelineOutput | tuple:
        r"""
        Generate images of the given classes, or variations of given images.

        Args:
            class_labels: class ids, class names (any synonym of `id2label`, case-insensitive), or `None` for an
                unconditional sample; one, or a (nested) list, array or integer tensor of them.
            num_images_per_label: images per label (rows are grouped by label), or variations per image.
            num_inference_steps, guidance_scale, guidance_schedule, guidance_scale_pow, temperature,
            softmax_temperature_annealing: sampler settings (see [`TiTokMaskGITScheduler`]); `None` takes the
                scheduler config's.
            generator: a `torch.Generator` for reproducible samples, or a list with one per image (each image
                then depends only on its own generator, whatever else is in the batch); `None`: torch's global
                RNG. CPU generators work with a pipeline on any device (the numbers are drawn on the CPU).
            image: variations instead of samples from scratch: PIL image(s), NumPy array(s) or a float tensor
                `[B, 3, S, S]` in [0, 1]. Each image is tokenized, a random `strength` fraction of its tokens is
                re-masked and the generator re-samples them (the sampler's schedule runs over the masked
                positions, in at most that many steps), conditioned on `class_labels` (one for all images or
                one per image; `None`: unconditional).
            strength: variations only: the fraction of each image's tokens re-sampled, in (0, 1], default 0.5; at
                least one token. 1 ignores the image.
            output_type: `"pil"` (uint8 by truncation, as the official sampler), `"np"` (float32 `[B, H, W, 3]`
                in [0, 1]), `"pt"` (float32 `[B, 3, H, W]` in [0, 1]) - see [`TiTokImageProcessor.postprocess`] -
                or `"latent"` (the token ids `[B, N]`).
            decode_batch_size: decode at most this many images at a time (bounds the memory of large batches).
            num_decoded_tokens: decode each image from the first k of its generated tokens only (a tokenizer with
                `prefix_decoding`, such as One-D-Piece's: a coarser image; all N are generated either way, and
                `output_type="latent"` returns them all). Default: all.
            return_dict: return an [`ImagePipelineOutput`] rather than a tuple.
            callback_on_step_end: `fn(pipeline, step, timestep, callback_kwargs) -> dict` (or a diffusers
                `PipelineCallback`), called after every step with the tensors named in
                `callback_on_step_end_tensor_inputs`; a returned `"latents"` entry replaces the ids.
            callback_on_step_end_tensor_inputs: which of `_callback_tensor_inputs` (`"latents"`: the ids after
                the step; `"logits"`: the step's guided float32 logits) the callback gets; default `["latents"]`.

        Examples:
        """
        arguments = locals()  # the call's arguments, before any is reassigned below
        config = self.transformer.config
        scheduler = self.scheduler_for_call(**{name: arguments[name] for name in TiTokMaskGITScheduler.setting_names()})
        num_inference_steps = scheduler.config.num_inference_steps

        # 1. Check inputs and resolve the labels (checked here once: the loop's model calls skip value checks).
        callback_on_step_end_tensor_inputs = self.check_call_options(
            output_type, return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        strength = self.check_inputs(num_images_per_label, image, strength)
        if num_decoded_tokens is not None:
            self.vqvae.check_prefix_length(num_decoded_tokens)
        device = self._execution_device
        labels = torch.tensor(self.get_label_ids(class_labels), device=device)

        # 2. Prepare the start: all-mask ids, or the ids of `image` with a `strength` fraction re-masked.
        if image is None:
            labels = labels.repeat_interleave(num_images_per_label)
            check_generator(generator, labels.shape[0])
            token_ids = torch.full((labels.shape[0], config.num_latent_tokens), config.mask_token_id, device=device)
            num_masked = None
        else:
            token_ids, labels, num_masked = self.prepare_image_tokens(
                image, labels, strength, num_images_per_label, generator
            )
            # Each step decodes at least one token: more steps than masked tokens would re-mask finished rows.
            num_inference_steps = min(num_inference_steps, num_masked)
        null_labels = torch.full_like(labels, config.num_classes)
        timestep_arguments = dict(
            # (the config's step count was checked when the sampler was built; variations pass a shortened count)
            num_inference_steps=None if num_masked is None else num_inference_steps,
            device=device,
            num_tokens=config.num_latent_tokens,
            num_masked_tokens=num_masked,
        )
        scheduler.set_timesteps(**timestep_arguments)
        self._guidance_scale, self._call.num_timesteps, self._interrupt = (
            scheduler.config.guidance_scale,
            len(scheduler.timesteps),
            False,
        )

        # 3. Unmask step by step; conditional and unconditional rows share one forward pass. Nothing in the
        #    loop reads a tensor back to the host.
        for i, t in enumerate(self.progress_bar(scheduler.timesteps.tolist())):
            if self.interrupt:
                break
            scheduler = self.follow_guidance_change(scheduler, **timestep_arguments)
            if scheduler.guidance_scale_at(t) is not None:
                logits = self.transformer(
                    torch.cat([token_ids, token_ids]), torch.cat([labels, null_labels]), check_values=False
                ).logits
                logits = scheduler.apply_guidance(*logits.chunk(2), t)
            else:
                logits = self.transformer(token_ids, labels, check_values=False).logits
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
                        token_ids,
                        config.num_latent_tokens,
                        config.codebook_size + 1,
                        "latents returned by callback_on_step_end",
                    )

        # 4. Decode. (A callback that re-masked positions at the last step left no image to decode.)
        if callback_on_step_end is not None and bool((token_ids == config.mask_token_id).any()):
            if not self.interrupt:
                raise ValueError(
                    "callback_on_step_end left masked positions after the last step: there is no image to return"
                )
            if output_type != "latent":
                raise ValueError(
                    "sampling was interrupted (pipe._interrupt) with masked positions left: there is no image "
                    "to return; output_type='latent' returns the ids so far"
                )
        return self._output(
            token_ids,
            output_type,
            return_dict,
            lambda ids: self.vqvae.decode(ids[:, :num_decoded_tokens], batch_size=decode_batch_size),
        )


__all__ = ["TiTokPipeline"]
