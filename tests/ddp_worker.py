"""Run by test_training.py under `accelerate launch` with 2 CPU processes: train a recipe for a few steps,
then save every rank's trained weights so the test can compare them."""

import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from hf_titok.training import load_recipe_config
from hf_titok.training.recipes import build_trainer

config_path, output_dir = sys.argv[1], Path(sys.argv[2])
trainer = build_trainer(load_recipe_config(config_path), str(output_dir))
first = {}


def remember_first_batch(module, args, kwargs):
    first.setdefault("x", kwargs["pixel_values"].sum().item())


trainer.model.register_forward_pre_hook(remember_first_batch, with_kwargs=True)
trainer.train()
rank = trainer.args.process_index
state = {k: v.detach().contiguous() for k, v in trainer.model.state_dict().items()}
save_file(state, str(output_dir / f"rank{rank}.safetensors"))
print(
    "RANK_RESULT",
    json.dumps({"rank": rank, "world_size": trainer.args.world_size, "first_batch_checksum": first.get("x")}),
)
