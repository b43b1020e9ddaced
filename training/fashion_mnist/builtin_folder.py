"""Saving a trained pipeline as a built-in model of the package (`src/hf_titok/pretrained/...`), shared by
package_model.py and package_text_model.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import hf_titok
from hf_titok.utils.remote_code import installed_entries


def save_builtin(pipe, output_dir: str | Path, float16_weights: tuple[str, ...] = (), processor=None) -> float:
    """Replaces `output_dir` with `pipe` (a pipeline, or a model with its `processor`) saved for loading by the
    installed package: no copies of the code (a pipeline's model index names the package's modules, the configs
    carry no `auto_map`), the transformers components named in `float16_weights` stored in float16 while their
    configs keep recording float32 (half the size in the wheel; `from_pretrained` without a dtype loads them as
    float32). Returns the folder's size in MB."""
    output = Path(output_dir)
    if output.exists():
        shutil.rmtree(output)
    pipe.save_pretrained(output)
    if processor is not None:
        processor.save_pretrained(output)
    for name in float16_weights:
        component = getattr(pipe, name)
        component.save_pretrained(output / name, state_dict={k: v.half() for k, v in component.state_dict().items()})
    for code in output.rglob("*.py"):
        code.unlink()
    index_file = output / "model_index.json"
    if index_file.is_file():
        index = installed_entries(json.loads(index_file.read_text()), hf_titok)
        index_file.write_text(json.dumps(index, indent=2) + "\n")
    for config_file in output.rglob("*config.json"):
        config = json.loads(config_file.read_text())
        if config.pop("auto_map", None) is not None:
            config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return sum(f.stat().st_size for f in output.rglob("*") if f.is_file()) / 1e6
