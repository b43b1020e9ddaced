# hf_titok developer commands. Everything runs inside .venv (created on first use).
# torch is installed first and pinned: a looser requirement pulls a multi-GB CUDA build.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export GRADIO_ANALYTICS_ENABLED ?= False

.PHONY: install demo space chromium lint test test-all wheel-check gpu-check bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## The main job: samples.png, rar_samples.png, reconstructions.png and text_samples.png from the built-in Fashion-MNIST models (offline).
demo: install
	$(PY) -m hf_titok.demo --output-dir .

## The Spaces demo on http://127.0.0.1:7860 (MODEL=dir-or-hub-id to serve another pipeline).
space: install
	$(PY) spaces/app.py $(if $(MODEL),--model $(MODEL))

## Chromium for the demo's browser tests (Debian package; Playwright's own download does not work here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || { echo "installing chromium (apt)" && $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq chromium >/dev/null; }

## ruff: pycodestyle, pyflakes (unused names), import order, line length 120, formatting (pyproject.toml).
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## The test suite (fast tests; CI runs exactly this), after the linter.
test: install chromium lint
	$(PY) -m pytest -q -m "not slow"

## The wheel as users install it: built, installed into a fresh virtualenv outside the clone, demo + 3 training steps.
wheel-check:
	bash .ci/wheel_check.sh

## On a machine with an NVIDIA GPU: `pytest -m gpu`, then the L-32/B-64/S-128 pipelines in bfloat16, eager and
## compiled -> gpu_check.json (samples/s beside the paper's A100 figures, peak GPU memory); < 8 min on one H200.
## Uses .venv when it exists, else the machine's python3 (a GPU machine brings its own CUDA build of torch).
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-check:
	PYTHONPATH=src $(GPU_PYTHON) benchmarks/gpu_check.py --output gpu_check.json

## Every test, including the slow ones.
test-all: install chromium
	$(PY) -m pytest -q

## Tokenizer throughput vs. this machine's matmul peak (one JSON line; PRESET=titok_l32 by default).
PRESET ?= titok_l32
bench: install
	$(PY) benchmarks/bench_tokenizer.py --preset $(PRESET)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
