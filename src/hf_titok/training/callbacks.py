"""Trainer callbacks of the TiTok recipes: stage freezing, GAN start, EMA, codebook statistics, PNG grids of
reconstructions or samples, skipped-image counts, and the final export (save_pretrained / push_to_hub)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from ..hub import push_folder_to_hub
from .wrappers import TrainingModule

logger = logging.getLogger(__name__)


def _wrapper(kwargs) -> TrainingModule:
    return kwargs["model"]


class FreezeCallback(TrainerCallback):
    """Freezes the parameters of `wrapper.model` under the given name prefixes (e.g. stage 2: `encoder`,
    `quantizer`), before the optimizer is built and again when training (re)starts."""

    def __init__(self, frozen_prefixes: list[str]):
        self.frozen_prefixes = tuple(frozen_prefixes)

    def apply(self, wrapper: TrainingModule) -> tuple[int, int]:
        frozen = trainable = 0
        for name, parameter in wrapper.model.named_parameters():
            if name.startswith(self.frozen_prefixes):
                parameter.requires_grad_(False)
                frozen += parameter.numel()
            elif parameter.requires_grad:
                trainable += parameter.numel()
        return frozen, trainable

    def on_init_end(self, args, state, control, **kwargs):
        frozen, trainable = self.apply(_wrapper(kwargs))
        logger.info(
            "frozen %s: %.2f M parameters; trainable: %.2f M",
            ", ".join(self.frozen_prefixes),
            frozen / 1e6,
            trainable / 1e6,
        )

    def on_train_begin(self, args, state, control, **kwargs):
        self.apply(_wrapper(kwargs))


class GANStartCallback(TrainerCallback):
    """Switches the adversarial terms on at `start_step` (both the generator term and the discriminator
    loss; the discriminator's learning-rate schedule is offset to the same step)."""

    def __init__(self, start_step: int):
        self.start_step = start_step
        self.announced = False

    def on_step_begin(self, args, state, control, **kwargs):
        wrapper = _wrapper(kwargs)
        active = state.global_step >= self.start_step
        wrapper.gan_factor = 1.0 if active else 0.0
        if active and not self.announced:
            logger.info("GAN losses active from step %d", state.global_step)
            self.announced = True


def random_order_ratio(step: int, start: int, end: int) -> float:
    """RAR's share of random generation orders at `step`: 1 until `start`, then linearly to 0 at `end`, 0 after
    (the official `get_rar_random_ratio`)."""
    if step < start:
        return 1.0
    if step >= end:
        return 0.0
    return 1.0 - (step - start) / (end - start)


class RandomOrderCallback(TrainerCallback):
    """RAR's training stages: sets `wrapper.random_ratio` before every step from the global step
    (`random_order_ratio`), so a resumed run continues on the same schedule; the ratio is logged."""

    def __init__(self, start: int, end: int):
        if not 0 <= start <= end:
            raise ValueError(f"the random-order anneal needs 0 <= start <= end, got start={start}, end={end}")
        self.start, self.end = start, end

    def on_step_begin(self, args, state, control, **kwargs):
        wrapper = _wrapper(kwargs)
        wrapper.random_ratio = random_order_ratio(state.global_step, self.start, self.end)
        wrapper.extra_logs["random_order_ratio"] = wrapper.random_ratio


class EMACallback(TrainerCallback):
    """Updates `wrapper.ema_model` after every optimizer step with the official decay
    min(max_decay, (1 + t) / (10 + t)). The EMA weights live in the wrapper, so checkpoints hold them."""

    def __init__(self, max_decay: float = 0.999):
        self.max_decay = max_decay

    @torch.no_grad()
    def on_step_end(self, args, state, control, **kwargs):
        wrapper = _wrapper(kwargs)
        if wrapper.ema_model is None:
            return
        step = state.global_step
        decay = min(self.max_decay, (1 + step) / (10 + step))
        for ema, live in zip(wrapper.ema_model.parameters(), wrapper.model.parameters()):
            ema.lerp_(live.detach(), 1.0 - decay)
        for ema, live in zip(wrapper.ema_model.buffers(), wrapper.model.buffers()):
            ema.copy_(live)


class _TokenCounts:
    """How often each codebook entry was chosen in a window, counted on the ids' device (a scatter-add: no read
    back to the host, unlike `bincount`, which sizes its output from the ids' maximum)."""

    def __init__(self, codebook_size: int):
        self.codebook_size = codebook_size
        self.counts = torch.zeros(codebook_size, dtype=torch.long)

    def add(self, token_ids: torch.Tensor | None) -> None:
        if token_ids is None:
            return
        ids = token_ids.detach().flatten().long()
        if self.counts.device != ids.device:
            self.counts = self.counts.to(ids.device)
        self.counts.scatter_add_(0, ids, torch.ones_like(ids))

    def reset(self) -> None:
        self.counts = torch.zeros_like(self.counts)


class CodebookUsageCallback(TrainerCallback):
    """Logs the fraction of codebook entries used and the perplexity of their distribution over each logging
    window (token ids seen by this process). Counts stay on the device; they are read at logging steps."""

    def __init__(self, codebook_size: int):
        self.codebook_size = codebook_size
        self.window = _TokenCounts(codebook_size)

    @property
    def counts(self) -> torch.Tensor:
        return self.window.counts

    def on_step_end(self, args, state, control, **kwargs):
        wrapper = _wrapper(kwargs)
        self.window.add(wrapper.last_token_ids)
        if args.logging_steps and state.global_step % args.logging_steps == 0 and self.counts.sum() > 0:
            probabilities = self.counts.float() / self.counts.sum()
            entropy = -(probabilities[probabilities > 0] * probabilities[probabilities > 0].log()).sum()
            wrapper.extra_logs["codebook_usage"] = round(float((self.counts > 0).float().mean()), 4)
            wrapper.extra_logs["codebook_perplexity"] = round(float(entropy.exp()), 2)
            self.window.reset()


class CodebookRestartCallback(TrainerCallback, ExportableState):
    """Re-seeds dead codebook entries (not an official TiTok technique; off unless `codebook_restart_steps` is
    set). Small datasets make the VQ codebook collapse: in the Fashion-MNIST stage 1 only ~7% of 1024 entries
    were ever chosen, which caps reconstruction quality. Every `restart_steps` optimizer steps, each entry that
    no token of any process chose during the window is replaced by a random encoder output of the last
    batch (process 0's, broadcast), in the trained model and its EMA copy, and its Adam moments are zeroed.

    The choice is drawn from a generator seeded by (seed, step) and the window's counts are part of the
    checkpoint (trainer_state.json), so resumed and multi-process runs make the same restarts."""

    def __init__(self, codebook_size: int, restart_steps: int, seed: int = 0):
        if restart_steps <= 0:
            raise ValueError(f"codebook_restart_steps must be positive, got {restart_steps}")
        self.codebook_size, self.restart_steps, self.seed = codebook_size, restart_steps, seed
        self.window = _TokenCounts(codebook_size)

    def state(self) -> dict:
        return {
            "args": {"codebook_size": self.codebook_size, "restart_steps": self.restart_steps, "seed": self.seed},
            "attributes": {"window_counts": self.window_counts},
        }

    @property
    def counts(self) -> torch.Tensor:
        return self.window.counts

    @property
    def window_counts(self) -> list[int]:
        return self.window.counts.tolist()

    @window_counts.setter
    def window_counts(self, values: list[int]) -> None:  # restored from a checkpoint
        self.window.counts = torch.tensor(values, dtype=torch.long)

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        wrapper = _wrapper(kwargs)
        self.window.add(wrapper.last_token_ids)
        if state.global_step % self.restart_steps or wrapper.last_unquantized_latents is None:
            return
        counts, pool = self.counts, wrapper.last_unquantized_latents.detach().flatten(0, -2).float().cpu()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            counts = counts.to(wrapper.last_token_ids.device)
            torch.distributed.all_reduce(counts)
            shared = [pool]
            torch.distributed.broadcast_object_list(shared, src=0)
            pool = shared[0]
        dead = (counts.cpu() == 0).nonzero().flatten()
        self.window.reset()
        wrapper.extra_logs["codebook_restarted"] = int(dead.numel())
        if dead.numel() == 0:
            return
        # Seed and step mixed through a prime, so that distinct (seed, step) pairs draw distinct choices.
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + state.global_step)
        picks = torch.randint(pool.shape[0], (dead.numel(),), generator=generator)
        # A little noise keeps two entries re-seeded from the same latent apart.
        new_rows = pool[picks] + 0.01 * pool.std() * torch.randn(dead.numel(), pool.shape[1], generator=generator)
        weight = wrapper.model.quantizer.embedding.weight
        with torch.no_grad():
            for model in (wrapper.model, wrapper.ema_model):
                if model is not None:
                    rows = model.quantizer.embedding.weight
                    rows[dead.to(rows.device)] = new_rows.to(rows.device, rows.dtype)
        moments = getattr(optimizer, "optimizer", optimizer).state.get(weight, {}) if optimizer is not None else {}
        for key in ("exp_avg", "exp_avg_sq"):
            if key in moments:
                moments[key][dead.to(weight.device)] = 0
        logger.info("step %d: re-seeded %d dead codebook entries", state.global_step, dead.numel())


class SkippedImagesCallback(TrainerCallback):
    """Adds the rows skipped so far to the logs: `skipped_images` (unreadable), and for captioned data
    `skipped_captions` (an empty or non-string caption, an aesthetic score out of range)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def on_step_end(self, args, state, control, **kwargs):
        if args.logging_steps and state.global_step % args.logging_steps == 0:
            skipped = getattr(self.dataset, "skipped_by_cause", {})
            logs = _wrapper(kwargs).extra_logs
            logs["skipped_images"] = skipped.get("image", 0)
            if getattr(self.dataset, "text", None) is not None:
                logs["skipped_captions"] = skipped.get("text", 0)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(int(state.epoch or 0))


class ImageGridCallback(TrainerCallback):
    """Every `every_steps` steps (and at the end), writes `<output_dir>/images/step_XXXXXXX.png`: inputs beside
    reconstructions (tokenizer and VQGAN recipes) or class-conditional samples (generator), made with the
    model being exported (EMA when on)."""

    def __init__(self, every_steps: int, render, name: str = "images"):
        self.every_steps, self.render, self.name = every_steps, render, name
        self.written: list[Path] = []

    def _write(self, args, state, wrapper):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / self.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{state.global_step:07d}.png"
        model = wrapper.export_model()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            self.render(model, wrapper, state.global_step).save(path)
        model.train(was_training)
        self.written.append(path)
        logger.info("wrote %s", path)

    def on_step_end(self, args, state, control, **kwargs):
        if self.every_steps and state.global_step % self.every_steps == 0:
            self._write(args, state, _wrapper(kwargs))

    def on_train_end(self, args, state, control, **kwargs):
        if self.every_steps and (
            not self.written or not self.written[-1].name.endswith(f"{state.global_step:07d}.png")
        ):
            self._write(args, state, _wrapper(kwargs))


class ExportCallback(TrainerCallback):
    """At the end of training, `save_pretrained` the exported model (EMA weights when on), or what `build`
    makes of it (e.g. a full pipeline), with `extras` (e.g. the image processor) to `export_dir`, and upload
    the folder when `push_to_hub` names a repo."""

    def __init__(self, export_dir: str, push_to_hub: str | None = None, extras: tuple = (), build=None):
        self.export_dir, self.push_to_hub, self.extras, self.build = export_dir, push_to_hub, extras, build

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        model = _wrapper(kwargs).export_model()
        exported = self.build(model) if self.build is not None else model
        exported.save_pretrained(self.export_dir)
        for extra in self.extras:
            extra.save_pretrained(self.export_dir)
        logger.info("exported %s to %s", type(exported).__name__, self.export_dir)
        if self.push_to_hub:
            push_folder_to_hub(
                self.export_dir, self.push_to_hub, commit_message=f"hf_titok training, step {state.global_step}"
            )


__all__ = [
    "CodebookRestartCallback",
    "CodebookUsageCallback",
    "EMACallback",
    "ExportCallback",
    "FreezeCallback",
    "GANStartCallback",
    "ImageGridCallback",
    "RandomOrderCallback",
    "SkippedImagesCallback",
    "random_order_ratio",
]
