#!/usr/bin/env python
"""Convert an official TiTok release (bytedance/1d-tokenizer) into an hf_titok model directory.

    python conversion/convert_official_titok.py --kind tokenizer \
        --config config.json --weights model.safetensors --output-dir titok-l32

The conversion logic lives in `hf_titok.convert_official` (also behind `hf-titok convert`).
"""

import sys

from hf_titok.convert_official import main

if __name__ == "__main__":
    sys.exit(main())
