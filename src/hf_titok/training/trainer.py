"""`TiTokTrainer`: the HF Trainer with the official optimizer groups, per-group cosine schedules (the
discriminator's offset to its start step) and the recipe's extra logs."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import Trainer, TrainingArguments

from ..input_checks import trusted_values
from .modules import TrainingModule, cosine_with_warmup

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


def is_decayed(name: str, parameter: torch.nn.Parameter) -> bool:
    return parameter.ndim > 1 and not any(part in name for part in NO_DECAY_NAME_PARTS)


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
        groups = [
            {"params": [p for n, p in trained if is_decayed(n, p)], "weight_decay": args.weight_decay, "role": "model"},
            {"params": [p for n, p in trained if not is_decayed(n, p)], "weight_decay": 0.0, "role": "model"},
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


__all__ = ["TiTokTrainer", "TiTokTrainingArguments", "NO_DECAY_NAME_PARTS"]
