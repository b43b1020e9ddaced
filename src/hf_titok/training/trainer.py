"""`TiTokTrainer`: the HF Trainer with the official optimizer groups, per-group cosine schedules (the
discriminator's offset to its start step) and the recipe's extra logs; and the checkpoint a run resumes from
(the newest one that is complete and reads)."""

from __future__ import annotations

import json
import logging
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import Trainer, TrainingArguments

from ..utils.input_checks import trusted_values
from ..utils.loading import damaged_weight_files
from .wrappers import TrainingModule

logger = logging.getLogger(__name__)

# Official weight-decay exclusions (all TiTok trainers): 1-D parameters and names containing these.
NO_DECAY_NAME_PARTS = ("ln", "bias", "latent_tokens", "mask_token", "embedding", "norm", "gamma", "embed")


@dataclass
class TiTokTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus the TiTok recipe knobs."""

    end_learning_rate: float = field(default=1e-5, metadata={"help": "learning rate at the end of the cosine decay"})
    discriminator_learning_rate: float | None = field(default=None, metadata={"help": "defaults to learning_rate"})
    discriminator_weight_decay: float | None = field(default=None, metadata={"help": "defaults to weight_decay"})
    discriminator_start: int = field(default=20_000, metadata={"help": "step at which the GAN terms start"})
    use_ema: bool = field(default=True, metadata={"help": "keep an EMA of the weights (exported at the end)"})
    ema_decay: float = field(default=0.999, metadata={"help": "maximum EMA decay (official: min(0.999, (1+t)/(10+t)))"})
    codebook_restart_steps: int = field(
        default=0,
        metadata={
            "help": "VQ tokenizer recipes: every N steps re-seed codebook entries unused in the last N steps "
            "from encoder outputs (0: never, as officially)"
        },
    )
    restore_callback_states_from_checkpoint: bool = field(
        default=True, metadata={"help": "resume callback state (codebook-restart counts) from checkpoints"}
    )
    image_log_steps: int = field(
        default=0, metadata={"help": "write a PNG grid of reconstructions/samples every N steps (0: never)"}
    )
    export_dir: str | None = field(
        default=None, metadata={"help": "where to save_pretrained the final model (default: <output_dir>/final)"}
    )
    export_push_to_hub: str | None = field(default=None, metadata={"help": "push the exported model to this Hub repo"})
    # The recipe wrappers take the collated batch as it is (pixel_values / token_ids / labels): the Trainer's
    # column removal, which inspects `forward`'s signature, has nothing to do and breaks lazy transforms.
    remove_unused_columns: bool = field(default=False, metadata={"help": "drop dataset columns forward does not take"})
    # The Trainer's NaN/inf filter reads every step's loss back to the host (a device sync per step); the
    # recipes log step means read at logging steps only.
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={"help": "skip NaN/inf losses in the logged loss (reads every step's loss: a device sync)"},
    )


def cosine_with_warmup(step: int, total: int, warmup: int, end_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to `end_ratio` at `total` (the official schedule)."""
    if step < warmup:
        return (step + 1) / max(warmup, 1) if warmup > 0 else 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return end_ratio + (1.0 - end_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def is_decayed(name: str, parameter: torch.nn.Parameter, model: torch.nn.Module | None = None) -> bool:
    """Whether the official optimizer decays the parameter `name` of `model`: not 1-D, no excluded name part, and
    not one of the model's own exclusions (`_no_weight_decay_names`: parameters whose official names had an
    excluded part that ours do not)."""
    parts = NO_DECAY_NAME_PARTS + tuple(getattr(model, "_no_weight_decay_names", ()))
    return parameter.ndim > 1 and not any(part in name for part in parts)


class TiTokTrainer(Trainer):
    """Trains a [`TrainingModule`] recipe wrapper. One AdamW holds the trained model (decayed / not decayed
    groups) and, for GAN recipes, the discriminator with its own learning rate; one `LambdaLR` gives each
    group its warm-up + cosine schedule, the discriminator's starting at `discriminator_start`."""

    args: TiTokTrainingArguments

    def create_optimizer(self, model=None):
        if self.optimizer is not None:
            return self.optimizer
        wrapper: TrainingModule = self.model
        args = self.args
        trained = [(n, p) for n, p in wrapper.model.named_parameters() if p.requires_grad]
        decayed = {n for n, p in trained if is_decayed(n, p, wrapper.model)}
        groups = [
            {"params": [p for n, p in trained if n in decayed], "weight_decay": args.weight_decay, "role": "model"},
            {"params": [p for n, p in trained if n not in decayed], "weight_decay": 0.0, "role": "model"},
        ]
        if wrapper.discriminator is not None:
            d_params = [(n, p) for n, p in wrapper.discriminator.named_parameters() if p.requires_grad]
            d_lr = args.discriminator_learning_rate or args.learning_rate
            d_wd = args.weight_decay if args.discriminator_weight_decay is None else args.discriminator_weight_decay
            groups += [
                {
                    "params": [p for n, p in d_params if is_decayed(n, p)],
                    "weight_decay": d_wd,
                    "lr": d_lr,
                    "role": "discriminator",
                },
                {
                    "params": [p for n, p in d_params if not is_decayed(n, p)],
                    "weight_decay": 0.0,
                    "lr": d_lr,
                    "role": "discriminator",
                },
            ]
        groups = [g for g in groups if g["params"]]
        self.optimizer = torch.optim.AdamW(
            groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon
        )
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is not None:
            return self.lr_scheduler
        optimizer = optimizer or self.optimizer
        args = self.args
        warmup = args.get_warmup_steps(num_training_steps)
        start = args.discriminator_start

        def schedule(group):
            ratio = args.end_learning_rate / group["lr"] if group["lr"] else 0.0
            if group.get("role") == "discriminator":
                return lambda step: (
                    0.0 if step < start else cosine_with_warmup(step - start, num_training_steps - start, warmup, ratio)
                )
            return lambda step: cosine_with_warmup(step, num_training_steps, warmup, ratio)

        self.lr_scheduler = LambdaLR(optimizer, [schedule(group) for group in optimizer.param_groups])
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # The batch comes from the recipe's own data pipeline: the models skip their user-input value checks,
        # each of which would read the batch back to the host (a device sync per step).
        with trusted_values():
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and isinstance(self.model, TrainingModule):
            logs = {**logs, **self.model.pop_logs()}
        super().log(logs, start_time)


# --------------------------------------------------------------------------------------------------
# Checkpoints: which one to resume from
# --------------------------------------------------------------------------------------------------


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None. The Trainer writes `trainer_state.json` last, so
    a folder without it was being written when the run was killed; a weight, optimizer or RNG file that does not
    read (truncated, say) is damaged. Cheap checks: safetensors headers and the zip directories of torch files."""
    state = path / "trainer_state.json"
    if not state.is_file():
        return "incomplete (no trainer_state.json: the run was stopped while writing it)"
    try:
        json.loads(state.read_text())
    except ValueError as error:
        return f"damaged trainer_state.json ({error})"
    problems = damaged_weight_files(path)
    for file in sorted(path.iterdir()):
        if file.suffix in (".pt", ".pth", ".bin"):
            try:
                with zipfile.ZipFile(file):
                    pass
            except (zipfile.BadZipFile, OSError) as error:
                problems.append(f"{file}: {error}")
    return f"damaged files: {'; '.join(problems)}" if problems else None


def last_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint in `output_dir` that can be resumed from; newer incomplete or damaged ones are
    skipped with a warning naming them (see `checkpoint_problem`)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    checkpoints = sorted(
        (int(path.name.split("-")[1]), path)
        for path in folder.glob("checkpoint-*")
        if path.name.split("-")[1].isdigit()
    )
    for step, path in reversed(checkpoints):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        logger.warning("skipping checkpoint %s: %s; resuming from an earlier one", path, problem)
    return None


def check_output_dir(output_dir: str) -> None:
    """Fail before any work when the run could not save its checkpoints."""
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test_{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise OSError(f"cannot write to the training output directory {path}: {error.strerror or error}") from None


def resume_and_train(trainer: TiTokTrainer, resume: str | bool = "auto") -> TiTokTrainer:
    """Train, resuming as asked: `"auto"` from the last usable checkpoint in the output dir if there is one (a
    killed run restarts where it stopped), a path from that checkpoint, False from scratch."""
    checkpoint = last_checkpoint(trainer.args.output_dir) if resume == "auto" else (resume or None)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer


__all__ = [
    "NO_DECAY_NAME_PARTS",
    "TiTokTrainer",
    "TiTokTrainingArguments",
    "check_output_dir",
    "checkpoint_problem",
    "last_checkpoint",
    "resume_and_train",
]
