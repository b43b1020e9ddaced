"""Hub plumbing: model cards, uploads, and turning official release repos into ready hf_titok repos.

Downloads and uploads are thin calls into `huggingface_hub` (`hf_hub_download`, `HfApi.create_repo`,
`HfApi.upload_folder`); the token comes from the environment (`HF_TOKEN` or `hf auth login`).
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData, hf_hub_download

from .convert_official import (
    ConversionError,
    convert_generator,
    convert_tokenizer,
    convert_vqgan,
    load_official_config,
    load_official_weights,
)
from .image_processing_titok import TiTokImageProcessor
from .modeling_titok import TiTokTokenizer
from .releases import FUN_RESEARCH_REPO, PAPER, RELEASES, OfficialRelease, get_release, official_config, release_for_repo

CITATION = """@inproceedings{yu2024an,
  title     = {An Image is Worth 32 Tokens for Reconstruction and Generation},
  author    = {Qihang Yu and Mark Weber and Xueqing Deng and Xiaohui Shen and Daniel Cremers and Liang-Chieh Chen},
  booktitle = {NeurIPS},
  year      = {2024}
}"""


# --------------------------------------------------------------------------------------------------
# Uploads
# --------------------------------------------------------------------------------------------------


def push_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload with hf_titok",
) -> str:
    """Create `repo_id` if needed and upload `folder` to it; returns the commit URL."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    return api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message)


# --------------------------------------------------------------------------------------------------
# Model cards
# --------------------------------------------------------------------------------------------------


def _results_table(release: OfficialRelease | None) -> str:
    if release is None or not release.results:
        return ""
    rows = "\n".join(f"| {metric} | {value} |" for metric, value in release.results.items())
    what = "rFID on ImageNet-1k val (50k), 256x256" if release.kind == "tokenizer" else "gFID on 50k samples, ImageNet 256x256"
    return (
        f"\n## Results reported by the authors\n\n{what}, as reported in the official README "
        f"(bytedance/1d-tokenizer):\n\n| metric | value |\n|---|---|\n{rows}\n"
    )


def tokenizer_card(model: TiTokTokenizer, repo_id: str, release: OfficialRelease | None = None) -> ModelCard:
    """Model card of a TiTok tokenizer repo."""
    config = model.config
    kind = "VAE (continuous tokens)" if config.quantize_mode == "vae" else f"VQ, codebook {config.codebook_size}"
    head = (
        "two-stage: the decoder predicts MaskGIT-VQGAN proxy codes, rendered by the VQGAN decoder"
        if config.decoder_head == "proxy_codes" else "single-stage: the decoder predicts pixels"
    )
    decode_input = "encoded.latents" if config.quantize_mode == "vae" else "encoded.token_ids"
    data = ModelCardData(
        license="apache-2.0",
        library_name="hf_titok",
        pipeline_tag="image-feature-extraction",
        tags=["titok", "image-tokenization", "image-tokenizer", "1d-tokenizer", PAPER],
        base_model=release.repo_id if release else None,
        datasets=["ILSVRC/imagenet-1k"] if release else None,
    )
    title = release.title if release else f"TiTok tokenizer ({config.num_latent_tokens} tokens)"
    content = f"""---
{data.to_yaml()}
---

# {title}

A TiTok 1-D image tokenizer ("An Image is Worth 32 Tokens for Reconstruction and Generation", Yu et al.,
NeurIPS 2024) for the `hf_titok` package: a {config.image_size}x{config.image_size} image
becomes **{config.num_latent_tokens} tokens** ({kind}); {head}.
{'Converted from the official release `' + release.repo_id + '` with `hf-titok convert`; its outputs match the official implementation.' if release else ''}
{_results_table(release)}
## Usage

```python
import torch
from PIL import Image
from hf_titok import TiTokImageProcessor, TiTokTokenizer

tokenizer = TiTokTokenizer.from_pretrained("{repo_id}").eval()
processor = TiTokImageProcessor.from_pretrained("{repo_id}")
pixel_values = processor(Image.open("image.jpg"), return_tensors="pt")["pixel_values"]
with torch.no_grad():
    encoded = tokenizer.encode(pixel_values)
    reconstruction = tokenizer.decode({decode_input})
processor.postprocess(reconstruction)[0].save("reconstruction.png")
```

From the shell: `hf-titok reconstruct --model {repo_id} image.jpg --output-dir out/`.

## Details

| field | value |
|---|---|
| image size | {config.image_size} |
| encoder | ViT {config.encoder_hidden_size} wide, {config.encoder_num_layers} layers, patch {config.encoder_patch_size} |
| decoder | ViT {config.decoder_hidden_size} wide, {config.decoder_num_layers} layers, patch {config.decoder_patch_size} |
| tokens | {config.num_latent_tokens} x {config.token_size} channels |
| quantization | {kind} |
| parameters | {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M |

License: Apache-2.0 (official weights: trained on ImageNet-1k, for research purposes).

## Citation

```bibtex
{CITATION}
```
"""
    return ModelCard(content)


def pipeline_card(pipeline, repo_id: str, release: OfficialRelease | None = None) -> ModelCard:
    """Model card of a [`TiTokPipeline`] repo (generator + tokenizer)."""
    transformer, vqvae = pipeline.transformer, pipeline.vqvae
    config = transformer.config
    base = [release.repo_id, get_release(release.tokenizer).repo_id] if release and release.tokenizer else None
    data = ModelCardData(
        license="apache-2.0",
        library_name="hf_titok",
        pipeline_tag="unconditional-image-generation",
        tags=["titok", "maskgit", "class-conditional-image-generation", "image-generation", PAPER],
        base_model=base,
        datasets=["ILSVRC/imagenet-1k"] if release else None,
    )
    title = release.title if release else f"TiTok MaskGIT pipeline ({config.num_latent_tokens} tokens)"
    architecture = "BERT (post-LN)" if config.architecture == "bert" else "U-ViT"
    content = f"""---
{data.to_yaml()}
---

# {title}

Class-conditional image generation with TiTok ("An Image is Worth 32 Tokens for Reconstruction and
Generation", Yu et al., NeurIPS 2024) for the `hf_titok` package: a MaskGIT
{architecture} transformer generates {config.num_latent_tokens} TiTok tokens per image over
{config.num_inference_steps} steps and the TiTok tokenizer decodes them to {vqvae.config.image_size}x{vqvae.config.image_size} pixels.
{'Converted from the official releases ' + ' and '.join('`' + b + '`' for b in base) + ' with `hf-titok convert`; samples match the official sampler token for token.' if base else ''}
{_results_table(release)}
## Usage

```python
import torch
from hf_titok import TiTokPipeline

pipe = TiTokPipeline.from_pretrained("{repo_id}")
images = pipe(class_labels=[{', '.join(repr(name.split(',')[0].strip()) for name in list(pipeline.id2label.values())[:2])}], generator=torch.Generator().manual_seed(0)).images
images[0].save("sample.png")
```

From the shell: `hf-titok generate --model {repo_id} --labels 1 2 3 --output samples.png`.

Default sampling settings (the official gFID protocol): {config.num_inference_steps} steps, guidance scale
{config.guidance_scale} ({config.guidance_schedule} schedule{', power ' + str(config.guidance_scale_pow) if config.guidance_schedule == 'power-cosine' else ''}), temperature {config.temperature},
softmax temperature annealing {'on' if config.softmax_temperature_annealing else 'off'}.

| component | parameters |
|---|---|
| transformer ({architecture}, {config.num_hidden_layers} layers, width {config.hidden_size}) | {sum(p.numel() for p in transformer.parameters()) / 1e6:.2f} M |
| vqvae (TiTok tokenizer) | {sum(p.numel() for p in vqvae.parameters()) / 1e6:.2f} M |

License: Apache-2.0 (official weights: trained on ImageNet-1k, for research purposes).

## Citation

```bibtex
{CITATION}
```
"""
    return ModelCard(content)


# --------------------------------------------------------------------------------------------------
# Official repos -> ready repos
# --------------------------------------------------------------------------------------------------


def detect_kind(state_dict) -> str:
    """`tokenizer`, `generator` or `vqgan`, from the keys of an official state dict."""
    if "latent_tokens" in state_dict:
        return "tokenizer"
    if "model.embeddings.word_embeddings.weight" in state_dict or "pos_embed" in state_dict:
        return "generator"
    if "encoder.conv_in.weight" in state_dict and "quantize.embedding.weight" in state_dict:
        return "vqgan"
    raise ConversionError("the weights are neither an official TiTok tokenizer, generator nor MaskGIT-VQGAN state dict")


def _fetch(repo_id: str, filename: str, **hub_kwargs) -> str:
    try:
        return hf_hub_download(repo_id, filename, **hub_kwargs)
    except Exception as error:  # network, offline without a cached copy, gated or missing repo/file
        raise ConversionError(f"cannot fetch {filename} from the Hub repo {repo_id}: {error}") from None


def _download_official(repo_id: str, release: OfficialRelease | None, config_path: str | None, **hub_kwargs):
    """(official config dict, state dict) of an official repo: a `yucornetto/*`-style repo (config.json +
    model.safetensors) or `fun-research/TiTok` (`.bin` files named by the release + its infer config)."""
    if repo_id == FUN_RESEARCH_REPO:
        if release is None or release.bin_filename is None:
            with_bin = ", ".join(r.name for r in RELEASES.values() if r.bin_filename)
            raise ConversionError(f"{FUN_RESEARCH_REPO} holds .bin files of several releases: pass --release (one of {with_bin})")
        weights = load_official_weights(_fetch(repo_id, release.bin_filename, **hub_kwargs))
        if config_path:
            return load_official_config(config_path), weights
        return (None if release.kind == "vqgan" else official_config(release.name)), weights
    config_file = config_path or _fetch(repo_id, "config.json", **hub_kwargs)
    weights = load_official_weights(_fetch(repo_id, "model.safetensors", **hub_kwargs))
    return load_official_config(config_file), weights


def convert_official_repo(
    repo_id: str | None,
    output_dir: str | Path,
    release: str | None = None,
    tokenizer_repo_id: str | None = None,
    config_path: str | None = None,
    card_repo_id: str | None = None,
    **hub_kwargs,
) -> Path:
    """Convert an official release into a ready repo folder at `output_dir` (with a model card).

    A tokenizer becomes a `TiTokTokenizer` repo (+ image processor); a generator becomes a full
    `TiTokPipeline` repo together with its tokenizer (`tokenizer_repo_id`, by default the release's own).
    `repo_id` is a `yucornetto/*` repo, any repo in that format, or `fun-research/TiTok` with `release`;
    with only `release`, its `yucornetto/*` repo is used.
    """
    from .pipeline_titok import TiTokPipeline
    from .scheduling_titok_maskgit import TiTokMaskGITScheduler

    known = get_release(release) if release else (release_for_repo(repo_id) if repo_id else None)
    if repo_id is None:
        if known is None:
            raise ConversionError("give a Hub repo id or an official release name")
        repo_id = known.repo_id
    output_dir = Path(output_dir)
    card_repo_id = card_repo_id or str(output_dir)
    config, weights = _download_official(repo_id, known, config_path, **hub_kwargs)
    kind = detect_kind(weights)
    if kind == "vqgan":
        model = convert_vqgan(config, weights)
        model.save_pretrained(output_dir)
        TiTokImageProcessor.for_image_size(model.config.image_size).save_pretrained(output_dir)
        return output_dir
    if kind == "tokenizer":
        model = convert_tokenizer(config, weights)
        model.save_pretrained(output_dir)
        TiTokImageProcessor.for_image_size(model.config.image_size).save_pretrained(output_dir)
        tokenizer_card(model, card_repo_id, known).save(output_dir / "README.md")
        return output_dir

    transformer = convert_generator(config, weights)
    del weights
    if tokenizer_repo_id is None:
        if known is None or known.tokenizer is None:
            raise ConversionError(f"{repo_id} is a generator: pass --tokenizer-repo with the tokenizer it was trained on")
        tokenizer_release = get_release(known.tokenizer)
        tokenizer_repo_id = FUN_RESEARCH_REPO if repo_id == FUN_RESEARCH_REPO else tokenizer_release.repo_id
    else:
        tokenizer_release = release_for_repo(tokenizer_repo_id)
    tokenizer_config, tokenizer_weights = _download_official(tokenizer_repo_id, tokenizer_release, config_path, **hub_kwargs)
    vqvae = convert_tokenizer(tokenizer_config, tokenizer_weights)
    del tokenizer_weights
    pipe = TiTokPipeline(vqvae, transformer, TiTokMaskGITScheduler(mask_token_id=transformer.config.mask_token_id))
    pipe.save_pretrained(output_dir)
    pipeline_card(pipe, card_repo_id, known).save(output_dir / "README.md")
    return output_dir


def convert_and_push(output_dir: str | Path, push_to_hub: str | None, private: bool | None = None, **convert_kwargs) -> Path:
    """[`convert_official_repo`], then upload the folder when `push_to_hub` names a repo."""
    folder = convert_official_repo(output_dir=output_dir, card_repo_id=push_to_hub, **convert_kwargs)
    if push_to_hub:
        push_folder_to_hub(folder, push_to_hub, private=private)
    return folder


def describe_folder(folder: str | Path) -> str:
    """One line saying what a converted folder holds."""
    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        index = json.loads((folder / "model_index.json").read_text())
        return f"TiTokPipeline ({', '.join(k for k in index if not k.startswith('_') and k != 'id2label')})"
    config = json.loads((folder / "config.json").read_text())
    return config.get("architectures", ["model"])[0]


__all__ = [
    "convert_and_push",
    "convert_official_repo",
    "detect_kind",
    "pipeline_card",
    "push_folder_to_hub",
    "tokenizer_card",
]
