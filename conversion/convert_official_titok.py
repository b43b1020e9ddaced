#!/usr/bin/env python
"""Convert an official TiTok release (bytedance/1d-tokenizer) into a ready hf_titok repo folder.

    python conversion/convert_official_titok.py --kind tokenizer \
        --config config.json --weights model.safetensors --output-dir titok-l32
    python conversion/convert_official_titok.py --release titok_l32_generator --output-dir titok-l32-pipeline
    python conversion/convert_official_titok.py --repo-id fun-research/TiTok --release titok_b64 --output-dir titok-b64

The same as `hf-titok convert ...`; the logic lives in `hf_titok.convert_official` and `hf_titok.hub`.
"""

import sys

from hf_titok.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
