#!/usr/bin/env python
"""Assemble the Space (app.py, README.md, requirements.txt and the hf_titok package beside them) and upload it.

    python spaces/push_space.py --repo-id you/titok-demo [--private]     # assemble in a temp dir and push
    python spaces/push_space.py --output-dir build/space                  # assemble only (inspect, or upload yourself)

The token comes from `huggingface-cli login` / HF_TOKEN. Weights (the built-in model) go up as LFS files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import HfApi

SPACE = Path(__file__).resolve().parent
PACKAGE = SPACE.parent / "src" / "hf_titok"
FILES = ("app.py", "README.md", "requirements.txt")


def assemble(output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(SPACE / name, output_dir / name)
    shutil.copytree(
        PACKAGE, output_dir / "hf_titok", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return output_dir


def push(folder: Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, repo_type="space", commit_message="hf_titok Space"
    )
    return getattr(commit, "commit_url", str(commit))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo-id", help="the Space to create/update, e.g. you/titok-demo")
    parser.add_argument("--output-dir", type=Path, help="assemble here (default: a temporary directory)")
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)
    if not args.repo_id and not args.output_dir:
        parser.error("give --repo-id to push, or --output-dir to only assemble")
    with tempfile.TemporaryDirectory() as temporary:
        folder = assemble(args.output_dir or Path(temporary))
        print(f"assembled the Space in {folder}", file=sys.stderr)
        if args.repo_id:
            print(push(folder, args.repo_id, args.private))


if __name__ == "__main__":
    main()
