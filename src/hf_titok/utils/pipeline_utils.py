"""What hf_titok's diffusers pipelines share (`TiTokPipeline`, `MaskGenPipeline`, `RARPipeline`): optional components
left out (`DEFAULT`), class labels (the class-conditional ones), per-thread call state behind the properties step
callbacks read, sequential offload on the CPU, saving with the code, loading (an official checkpoint converted in
memory, or a saved folder with the installed classes), and plain snapshot downloads."""

from __future__ import annotations

import difflib
import json
import numbers
import sys
import threading
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from huggingface_hub import hf_hub_download, snapshot_download

from .legacy import current_module_entries
from .loading import checkpoint_reader, hub_arguments, refuse_missing_folder
from .remote_code import PACKAGE, installed_entries, write_pipeline_code

OUTPUT_TYPES = ("pil", "np", "pt", "latent")


class _Default:
    """The value of an optional component left out of `TiTokPipeline(...)`: the default one is built (`None`
    keeps none)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


class CallState(threading.local):
    """What a call exposes to step callbacks through the pipeline's properties (`guidance_scale`,
    `num_timesteps`, `do_classifier_free_guidance`, `interrupt`), per thread: concurrent calls from several
    threads each see and change their own."""

    guidance_scale: float | None = None
    num_timesteps: int | None = None
    interrupt: bool = False


MAX_IMAGES_PER_LABEL = 1024  # per call; more belongs in several calls (e.g. hf_titok.evaluation.sample_shards)


class ClassLabelsMixin:
    """What the class-conditional pipelines share (`TiTokPipeline`, `RARPipeline`): class names (`id2label` in
    `model_index.json`), labels given as ids, names or `None` (unconditional), and the per-label image count. The
    generator is the `transformer` component, whose config has `num_classes` (the null class's id)."""

    def register_id2label(self, id2label: dict | None) -> None:
        """Check and store the class names (`None`: `class 0`, `class 1`, ...)."""
        num_classes = self.transformer.config.num_classes
        if id2label is None:
            id2label = {index: f"class {index}" for index in range(num_classes)}
        id2label = {int(key): str(value) for key, value in id2label.items()}  # JSON turns keys into strings
        if sorted(id2label) != list(range(num_classes)):
            raise ValueError(f"id2label must name every class 0..{num_classes - 1} exactly once")
        self.register_to_config(id2label=id2label)
        self.labels: dict[str, list[int]] = {}
        for index, names in sorted(id2label.items()):
            for name in names.split(","):
                if name.strip():
                    self.labels.setdefault(name.strip().lower(), []).append(index)

    @property
    def id2label(self) -> dict[int, str]:
        return {int(key): value for key, value in self.config.id2label.items()}

    def resolve_labels(self, labels) -> list[int | None]:
        """Class ids for labels given as ids, class names (any comma-separated synonym, case-insensitive) or
        `None` (unconditional, kept as `None`): one label, or any (nested) list, tuple, NumPy array or integer
        tensor of them. Unknown names raise a `ValueError` listing close matches; nothing is sampled before."""
        num_classes = self.transformer.config.num_classes
        ids = []
        for label in _flatten_labels(labels):
            if label is None:
                ids.append(None)
            elif isinstance(label, str):
                ids.append(self._label_id(label))
            elif isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
                if not 0 <= label < num_classes:
                    raise ValueError(
                        f"class id {label} is out of range: this generator has classes 0..{num_classes - 1}"
                    )
                ids.append(int(label))
            else:
                raise TypeError(
                    f"class labels must be ints, class names or None, got {type(label).__name__}: {label!r}"
                )
        if not ids:
            raise ValueError("class_labels is empty: give at least one class id or name")
        return ids

    def get_label_ids(self, labels) -> list[int]:
        """The generator's class ids for `labels` (as `resolve_labels`): unconditional is the null class, the id
        `num_classes` past the last class, which the generator was trained to sample without a class."""
        null_class = self.transformer.config.num_classes
        return [null_class if class_id is None else class_id for class_id in self.resolve_labels(labels)]

    def label_name(self, label, with_id: bool = False) -> str:
        """A label's display name: its class's first name in `id2label` ("tiger" of "tiger, Panthera tigris"),
        "unconditional" for `None`; `with_id=True` prefixes the class id ("292: tiger")."""
        (class_id,) = self.resolve_labels([label])
        if class_id is None:
            return "unconditional"
        name = self.id2label[class_id].split(",")[0].strip()
        return f"{class_id}: {name}" if with_id else name

    def _label_id(self, name: str) -> int:
        key = name.strip().lower()
        if key in self.labels:
            matches = self.labels[key]
            if len(matches) > 1:
                options = "; ".join(f"{i}: {self.id2label[i]}" for i in matches)
                raise ValueError(f"class name {name!r} is ambiguous ({options}); use the class id or another synonym")
            return matches[0]
        close = difflib.get_close_matches(key, self.labels, n=5, cutoff=0.6)
        hint = f"; close matches: {', '.join(repr(c) for c in close)}" if close else ""
        raise ValueError(f"unknown class name {name!r}{hint}")

    @staticmethod
    def check_images_per_label(num_images_per_label) -> None:
        if (
            isinstance(num_images_per_label, bool)
            or not isinstance(num_images_per_label, numbers.Integral)
            or num_images_per_label < 1
        ):
            raise ValueError(f"num_images_per_label must be an integer >= 1, got {num_images_per_label!r}")
        if num_images_per_label > MAX_IMAGES_PER_LABEL:
            raise ValueError(
                f"num_images_per_label={num_images_per_label} is more than {MAX_IMAGES_PER_LABEL}: make several calls"
            )


def _flatten_labels(labels) -> list:
    """One label, or nested lists/tuples/arrays/tensors of labels -> a flat list (0-d tensors become ints)."""
    if labels is None or isinstance(labels, (str, int, np.integer)):
        return [labels]
    if isinstance(labels, torch.Tensor):
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"class label tensors must hold integer class ids, got dtype {labels.dtype}")
        return labels.flatten().tolist()
    if isinstance(labels, np.ndarray):
        return [label for item in labels.tolist() for label in _flatten_labels(item)]
    if isinstance(labels, (list, tuple)):
        return [label for item in labels for label in _flatten_labels(item)]
    return [labels]


class PipelineBase(DiffusionPipeline):
    """The behaviour hf_titok's pipelines share (see the module docstring). A subclass names the file each saved
    component's folder holds (`_COMPONENT_FILES`)."""

    _COMPONENT_FILES: dict[str, str] = {}

    def _output(self, result, output_type: str, return_dict: bool, decode):
        """A call's return value: `result` (ids or tokens) for `output_type="latent"`, else `decode(result)`
        post-processed by the pipeline's image processor; the offload hooks are reset either way."""
        images = (
            result if output_type == "latent" else self.processor.postprocess(decode(result), output_type=output_type)
        )
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)

    @staticmethod
    def check_strength(image, strength) -> float | None:
        """The `strength` of a variations call, checked (default 0.5); None when there is no `image=`."""
        if image is None:
            if strength is not None:
                raise ValueError(
                    "strength is the fraction of an image's tokens re-sampled: it needs image= (variations)"
                )
            return None
        strength = 0.5 if strength is None else strength
        if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not 0 < float(strength) <= 1:
            raise ValueError(
                f"strength must be a number in (0, 1] (the fraction of the image's tokens re-sampled), got {strength!r}"
            )
        return float(strength)

    def variation_pixels(self, image) -> torch.Tensor:
        """The images of a variations call as the tokenizer's input `[B, 3, S, S]` on the execution device: PIL
        image(s) or NumPy array(s) through the image processor, or a float tensor `[B, 3, S, S]` / `[3, S, S]` in
        [0, 1] as it is (the tokenizer checks it)."""
        if isinstance(image, torch.Tensor):
            pixel_values = image if image.ndim == 4 else image.unsqueeze(0)
        else:
            pixel_values = self.processor(image, return_tensors="pt").pixel_values
        return pixel_values.to(self._execution_device)

    @staticmethod
    def num_remasked(strength: float, num_tokens: int) -> int:
        """How many of an image's `num_tokens` tokens a variation re-samples: round(strength * N), at least one."""
        return max(1, round(strength * num_tokens))

    def check_call_options(
        self, output_type, return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs
    ) -> list[str]:
        """The call arguments every pipeline shares, checked: `output_type`, `return_dict`, the step callback and
        its tensors. Returns the names of the tensors a step callback receives: a diffusers `PipelineCallback`
        names its own, else the call's list (default `["latents"]`)."""
        if not isinstance(output_type, str) or output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if not isinstance(return_dict, bool):
            raise TypeError(f"return_dict must be True or False, got {return_dict!r}")
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise TypeError("callback_on_step_end must be callable(pipeline, step, timestep, callback_kwargs) -> dict")
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            names = list(callback_on_step_end.tensor_inputs)
        else:
            names = list(callback_on_step_end_tensor_inputs or ["latents"])
        unknown = [name for name in names if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs {unknown} are not among the tensors a step callback can get: "
                f"{self._callback_tensor_inputs}"
            )
        return names

    # ---- the sampler (`hf_titok.utils.scheduling_utils`: one scheduler API for every pipeline) ----

    def _default_scheduler(self):
        """The scheduler a pipeline without one samples with (its family's released settings)."""
        raise NotImplementedError

    def _sampler(self):
        """The scheduler whose config holds the call defaults: the pipeline's, or the default one if it has none."""
        return self.scheduler if self.scheduler is not None else self._default_scheduler()

    def sampling_settings(self, **overrides) -> dict:
        """The sampler settings a call uses: each given (not `None`) value of `overrides`, else the scheduler
        config's, checked and as plain Python values - e.g. to record exactly how a set of samples was made."""
        return self._sampler().sampling_settings(**overrides)

    def scheduler_for_call(self, **settings):
        """This call's scheduler: a copy of the pipeline's with the call's settings (`None`: the config's), each
        checked once. The pipeline's own scheduler never changes, so concurrent calls do not interfere."""
        return self._sampler().for_call(**settings)

    def follow_guidance_change(self, scheduler, **timestep_arguments):
        """The run's scheduler with the guidance scale a step callback set (`pipe._guidance_scale`): rebuilt, and
        its timesteps set again with `timestep_arguments`, if the scale changed; the same scheduler otherwise."""
        if self._guidance_scale == scheduler.config.guidance_scale:
            return scheduler
        scheduler = scheduler.for_call(guidance_scale=self._guidance_scale)
        scheduler.set_timesteps(**timestep_arguments)
        return scheduler

    def run_step_callback(self, callback, names: list[str], step: int, timestep, tensors: dict) -> dict:
        """Calls the step callback (if any) with the tensors of `tensors` it asked for (`names`) and returns
        `tensors` updated with what it returned: `None` or a dict holding some of the tensors it was given, each
        a tensor of the same shape, dtype and device (checked here, so that a wrong return is named at the step
        it happens instead of failing deep inside the next forward pass)."""
        if callback is None:
            return tensors
        given = {name: tensors[name] for name in names}
        returned = callback(self, step, timestep, given)
        if returned is None:
            return tensors
        if not isinstance(returned, dict):
            raise TypeError(
                f"callback_on_step_end must return a dict of (some of) the tensors it was given ({names}) or None, "
                f"got {type(returned).__name__}"
            )
        unknown = [name for name in returned if name not in given]
        if unknown:
            raise ValueError(
                f"callback_on_step_end returned {unknown}, which it was not given: it may return the tensors named "
                f"by callback_on_step_end_tensor_inputs ({names})"
            )
        for name, value in returned.items():
            expected = given[name]
            if not torch.is_tensor(value):
                raise TypeError(
                    f"callback_on_step_end returned {name!r} as {type(value).__name__}; it must be a tensor like the "
                    f"one it was given ({list(expected.shape)}, {expected.dtype})"
                )
            if value.shape != expected.shape or value.dtype != expected.dtype or value.device != expected.device:
                raise ValueError(
                    f"callback_on_step_end returned {name!r} as a {list(value.shape)} {value.dtype} tensor on "
                    f"{value.device}; it must keep the shape, dtype and device it was given ({list(expected.shape)}, "
                    f"{expected.dtype}, {expected.device})"
                )
        return {**tensors, **returned}

    @property
    def _call(self) -> CallState:
        # Built on first use: pipelines are also built by diffusers without running __init__'s body in order.
        state = self.__dict__.get("_call_state")
        if state is None:
            state = self.__dict__["_call_state"] = CallState()
        return state

    @property
    def guidance_scale(self) -> float | None:
        """The current call's base guidance scale (a step callback may change it through `_guidance_scale`; the
        schedule then applies to the new value from the next step on)."""
        return self._call.guidance_scale

    @property
    def _guidance_scale(self) -> float | None:
        return self._call.guidance_scale

    @_guidance_scale.setter
    def _guidance_scale(self, value: float) -> None:
        self._call.guidance_scale = value

    @property
    def do_classifier_free_guidance(self) -> bool:
        """Whether the current call guides (a zero base scale turns the unconditional rows off)."""
        return self._call.guidance_scale is not None and self._call.guidance_scale != 0

    @property
    def num_timesteps(self) -> int | None:
        """The number of sampling steps of the current (or last) call."""
        return self._call.num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` in a step callback to stop sampling after that step."""
        return self._call.interrupt

    @property
    def _interrupt(self) -> bool:
        return self._call.interrupt

    @_interrupt.setter
    def _interrupt(self, value: bool) -> None:
        self._call.interrupt = bool(value)

    def enable_sequential_cpu_offload(self, gpu_id: int | None = None, device: torch.device | str | None = None):
        """diffusers' `enable_sequential_cpu_offload`, with any execution device: diffusers names the CPU "cpu:0",
        on which accelerate's hooks cannot place weights, so with the CPU as the execution device the weights are
        offloaded to and run on "cpu" (what tests and CPU-only machines use)."""
        if device is None or torch.device(device).type != "cpu":
            return super().enable_sequential_cpu_offload(gpu_id=gpu_id, device=device)
        try:  # optional (as for diffusers' own offload); imports in a try block are not required of remote code
            from accelerate import cpu_offload
        except ImportError as error:
            raise ImportError("enable_sequential_cpu_offload needs accelerate: pip install accelerate") from error

        self.remove_all_hooks()
        self._offload_device = torch.device("cpu")
        for name, model in self.components.items():
            if isinstance(model, torch.nn.Module) and name not in self._exclude_from_cpu_offload:
                # buffers too when the component has weights of its own outside submodules (diffusers' rule)
                cpu_offload(model, torch.device("cpu"), offload_buffers=len(model._parameters) > 0)

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """diffusers' `save_pretrained`; the folder also carries the code (`hf_titok.utils.remote_code`), so it loads
        without hf_titok: `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`."""
        repo_id = kwargs.pop("repo_id", None)
        super().save_pretrained(save_directory, **kwargs)
        write_pipeline_code(save_directory, type(self), self.components)
        if push_to_hub:  # uploaded after the code is written (push_to_hub saves again, code included)
            self.push_to_hub(repo_id or Path(save_directory).name)

    @classmethod
    def load_config(cls, *args, **kwargs):
        """diffusers' `load_config`; a saved pipeline's `model_index.json` names the copies of the code it carries
        (`hf_titok.utils.remote_code`), which load only with `trust_remote_code=True`: the installed package loads
        its own classes instead (and those of folders saved by 0.1 and 0.2 from where they live now:
        `hf_titok.utils.legacy`)."""
        loaded = super().load_config(*args, **kwargs)
        package = sys.modules.get(PACKAGE)
        if package is None:
            return loaded
        index, *rest = loaded if isinstance(loaded, tuple) else (loaded,)
        index = installed_entries(current_module_entries(index), package)
        return (index, *rest) if isinstance(loaded, tuple) else index

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, release: str | None = None, **kwargs):
        """An official checkpoint converted in memory (`hf_titok.conversion.direct`: a Hub id or folder in an
        official format, or a repo of plain `.bin` files with `release=`), else diffusers' `from_pretrained` of a
        saved pipeline, after checking that every component it needs is there (a missing one is named rather than
        failing deep inside the loader). `dtype=` and diffusers' `torch_dtype=` both work."""
        source = pretrained_model_name_or_path
        refuse_missing_folder(source)
        reader = checkpoint_reader()
        if reader is not None and (release is not None or not has_model_index(source, **hub_arguments(kwargs))):
            model_kwargs = dict(kwargs)
            if "torch_dtype" in model_kwargs:  # diffusers' spelling -> transformers'
                model_kwargs.setdefault("dtype", model_kwargs.pop("torch_dtype"))
            pipe = reader.read_pipeline(cls, source, release=release, **model_kwargs)
            if pipe is not None:
                return pipe
        folder = Path(source)
        if not folder.is_dir():
            folder = Path(cls.download(str(source), **kwargs))
        index = cls._check_folder(folder)
        for name, value in cls._components_not_saved(folder, index).items():
            kwargs.setdefault(name, value)
        if "dtype" in kwargs:  # transformers' spelling -> diffusers'
            kwargs.setdefault("torch_dtype", kwargs.pop("dtype"))
        return super().from_pretrained(folder, **kwargs)

    @classmethod
    def _components_not_saved(cls, folder: Path, index: dict) -> dict:
        """What the loader passes for the optional components a saved folder holds no files of: `DEFAULT` for one
        it does not name, so the standard one is built, and `None` for one saved as `None` (`[null, null]`), so
        it stays `None` whichever way diffusers' loader treats null entries."""
        return {
            name: DEFAULT if name not in index else None
            for name in cls._optional_components
            if name not in index or index[name] in ([None, None], None)
        }

    @classmethod
    def _check_folder(cls, folder: Path) -> dict:
        index_file = folder / "model_index.json"
        if not index_file.is_file():
            raise FileNotFoundError(f"{folder} is not a {cls.__name__} folder: no model_index.json")
        try:
            index = json.loads(index_file.read_text())
        except ValueError as error:
            raise ValueError(f"{index_file} is not valid JSON: {error}") from None
        for name, filename in cls._COMPONENT_FILES.items():
            entry = index.get(name)
            if entry is None or entry == [None, None]:
                if name not in cls._optional_components:
                    raise FileNotFoundError(f"{index_file} names no {name} component, which a {cls.__name__} needs")
                continue
            if not (folder / name / filename).is_file():
                raise FileNotFoundError(f"the pipeline's {name} component is missing: no {folder / name / filename}")
        return index

    @classmethod
    def download(cls, pretrained_model_name, **kwargs) -> str:
        """Resolve a Hub repo id to a local snapshot (with the Hub arguments `revision`, `cache_dir`, `token`,
        `local_files_only`, `force_download`, `proxies`). diffusers' own `download` would load the repo's copy of
        the code (`trust_remote_code`) to learn the pipeline class, and offline it needs a cached file listing
        that plain downloads do not leave; the repo is plain files, so a snapshot is all we need."""
        return snapshot_download(
            pretrained_model_name,
            revision=kwargs.get("revision"),
            cache_dir=kwargs.get("cache_dir"),
            token=kwargs.get("token"),
            local_files_only=kwargs.get("local_files_only", False),
            force_download=kwargs.get("force_download", False),
            proxies=kwargs.get("proxies"),
        )


def has_model_index(source, **hub_kwargs) -> bool:
    """Whether a folder or Hub repo holds a saved pipeline (`model_index.json`)."""
    if Path(source).is_dir():
        return (Path(source) / "model_index.json").is_file()
    try:
        hf_hub_download(str(source), "model_index.json", **{k: v for k, v in hub_kwargs.items() if k != "subfolder"})
    except Exception:  # not there, or the repo cannot be reached: from_pretrained's loading says which
        return False
    return True


__all__ = ["CallState", "DEFAULT", "OUTPUT_TYPES", "PipelineBase", "has_model_index"]
