"""The Hub side of the models: model cards of tokenizer and pipeline repos, and uploads.

Uploads are thin calls into `huggingface_hub` (`HfApi.create_repo`, `HfApi.upload_folder`); the token comes
from the environment (`HF_TOKEN` or `hf auth login`). Turning official release repos into ready repos is
`hf_titok.conversion`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from huggingface_hub import HfApi, ModelCard, ModelCardData

from .releases import MASKGEN_PAPER, ONEDPIECE_PAPER, PAPER, RAR_PAPER, OfficialRelease, get_release
from .utils.sampling_settings import DEFAULT_AESTHETIC_SCORE

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


def card_data(
    release: OfficialRelease | None, pipeline_tag: str, tags: list[str], dataset: str | None = "ILSVRC/imagenet-1k"
) -> ModelCardData:
    """A card's metadata: our license and library; for a converted release, the official repos it comes from (a
    generator's tokenizer too) and the dataset it was trained on."""
    base = None
    if release is not None:
        base = [release.repo_id, get_release(release.tokenizer).repo_id] if release.tokenizer else release.repo_id
    return ModelCardData(
        license="apache-2.0",
        library_name="hf_titok",
        pipeline_tag=pipeline_tag,
        tags=tags,
        base_model=base,
        datasets=[dataset] if release is not None and dataset else None,
    )


def _results_table(release: OfficialRelease | None) -> str:
    if release is None or not release.results:
        return ""
    rows = "\n".join(f"| {metric} | {value} |" for metric, value in release.results.items())
    return (
        f"\n## Results reported by the authors\n\n{release.results_measure}, as reported in the official "
        f"{release.results_readme} "
        f"({release.official_repo}):\n\n| metric | value |\n|---|---|\n{rows}\n"
    )


ONEDPIECE_CITATION = """@article{miwa2025onedpiece,
  title   = {One-D-Piece: Image Tokenizer Meets Quality-Controllable Compression},
  author  = {Keita Miwa and Kento Sasaki and Hidehisa Arai and Tsubasa Takahashi and Yu Yamaguchi},
  journal = {arXiv preprint arXiv:2501.10064},
  year    = {2025}
}"""


def _titok_citations(release: OfficialRelease | None) -> str:
    """TiTok's citation, after One-D-Piece's for its releases (a TiTok fork)."""
    return (
        f"{ONEDPIECE_CITATION}\n\n{CITATION}" if release is not None and release.paper == ONEDPIECE_PAPER else CITATION
    )


def _prefix_decoding_note(config) -> str:
    if not config.prefix_decoding:
        return ""
    return (
        f"\nIt decodes any prefix of its tokens (trained with Tail Token Drop, One-D-Piece's method): "
        f"`tokenizer.decode(ids[:, :k])` for 1 <= k <= {config.num_latent_tokens} gives the image from its first k "
        "tokens, coarse to fine - quality-controllable compression and progressive previews "
        "(`hf-titok encode --num-tokens k`).\n"
    )


def tokenizer_card(model, repo_id: str, release: OfficialRelease | None = None) -> ModelCard:
    """Model card of a TiTok tokenizer repo."""
    config = model.config
    kind = "VAE (continuous tokens)" if config.quantize_mode == "vae" else f"VQ, codebook {config.codebook_size}"
    head = (
        "two-stage: the decoder predicts MaskGIT-VQGAN proxy codes, rendered by the VQGAN decoder"
        if config.decoder_head == "proxy_codes"
        else "single-stage: the decoder predicts pixels"
    )
    data = card_data(
        release,
        "image-feature-extraction",
        ["titok", "image-tokenization", "image-tokenizer", "1d-tokenizer", PAPER]
        + (["one-d-piece", ONEDPIECE_PAPER] if release is not None and release.paper == ONEDPIECE_PAPER else []),
    )
    title = release.title if release else f"TiTok tokenizer ({config.num_latent_tokens} tokens)"
    content = f"""---
{data.to_yaml()}
---

# {title}

A TiTok 1-D image tokenizer ("An Image is Worth 32 Tokens for Reconstruction and Generation", Yu et al.,
NeurIPS 2024) for the `hf_titok` package: a {config.image_size}x{config.image_size} image
becomes **{config.num_latent_tokens} tokens** ({kind}); {head}.
{_prefix_decoding_note(config)}{"Converted from the official release `" + release.repo_id + "` with `hf-titok convert`; its outputs match the official implementation." if release else ""}
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
    reconstruction = tokenizer.decode(encoded.tokens)
processor.postprocess(reconstruction)[0].save("reconstruction.png")
```

From the shell: `hf-titok reconstruct --model {repo_id} image.jpg --output-dir out/`.

Without hf_titok installed (the repo carries its code): `AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)`
and `AutoImageProcessor.from_pretrained("{repo_id}", trust_remote_code=True)` from transformers.

## Details

| field | value |
|---|---|
| image size | {config.image_size} |
| encoder | ViT {config.encoder_hidden_size} wide, {config.encoder_num_layers} layers, patch {config.encoder_patch_size} |
| decoder | ViT {config.decoder_hidden_size} wide, {config.decoder_num_layers} layers, patch {config.decoder_patch_size} |
| tokens | {config.num_latent_tokens} x {config.token_size} channels |
| quantization | {kind} |
| prefix decoding | {"yes: any first 1 <= k <= " + str(config.num_latent_tokens) + " tokens" if config.prefix_decoding else "no: all tokens"} |
| parameters | {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M |

License: Apache-2.0 (official weights: trained on ImageNet-1k, for research purposes).

## Citation

```bibtex
{_titok_citations(release)}
```
"""
    return ModelCard(content)


def pipeline_card(pipeline, repo_id: str, release: OfficialRelease | None = None) -> ModelCard:
    """Model card of a [`TiTokPipeline`] repo (generator + tokenizer)."""
    transformer, vqvae = pipeline.transformer, pipeline.vqvae
    config, sampling = transformer.config, SimpleNamespace(**pipeline.sampling_settings())
    data = card_data(
        release,
        "unconditional-image-generation",
        ["titok", "maskgit", "class-conditional-image-generation", "image-generation", PAPER],
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
{sampling.num_inference_steps} steps and the TiTok tokenizer decodes them to {vqvae.config.image_size}x{vqvae.config.image_size} pixels.
{"Converted from the official releases " + " and ".join("`" + b + "`" for b in data.base_model) + " with `hf-titok convert`; samples match the official sampler token for token." if data.base_model else ""}
{_results_table(release)}
## Usage

```python
import torch
from hf_titok import TiTokPipeline

pipe = TiTokPipeline.from_pretrained("{repo_id}")
images = pipe(class_labels=[{", ".join(repr(pipeline.label_name(class_id)) for class_id in sorted(pipeline.id2label)[:2])}], generator=torch.Generator().manual_seed(0)).images
images[0].save("sample.png")
```

From the shell: `hf-titok generate --model {repo_id} --labels 1 2 3 --output samples.png`.

Without hf_titok installed (the repo carries its code):
`DiffusionPipeline.from_pretrained("{repo_id}", trust_remote_code=True)` from diffusers.

Default sampling settings ({"the official gFID protocol" if release else "the scheduler config"}): {sampling.num_inference_steps} steps, guidance scale
{sampling.guidance_scale} ({sampling.guidance_schedule} schedule{", power " + str(sampling.guidance_scale_pow) if sampling.guidance_schedule == "power-cosine" else ""}), temperature {sampling.temperature},
softmax temperature annealing {"on" if sampling.softmax_temperature_annealing else "off"}.

| component | parameters |
|---|---|
| transformer ({architecture}, {config.num_hidden_layers} layers, width {config.hidden_size}) | {sum(p.numel() for p in transformer.parameters()) / 1e6:.2f} M |
| vqvae (TiTok tokenizer) | {sum(p.numel() for p in vqvae.parameters()) / 1e6:.2f} M |

License: Apache-2.0 (official weights: trained on ImageNet-1k, for research purposes).

## Citation

```bibtex
{_titok_citations(release)}
```
"""
    return ModelCard(content)


MASKGEN_CITATION = """@article{kim2025democratizing,
  title   = {Democratizing Text-to-Image Masked Generative Models with Compact Text-Aware One-Dimensional Tokens},
  author  = {Dongwon Kim and Ju He and Qihang Yu and Chenglin Yang and Xiaohui Shen and Suha Kwak and Liang-Chieh Chen},
  journal = {arXiv preprint arXiv:2501.07730},
  year    = {2025}
}"""


def tatitok_card(model, repo_id: str, release: OfficialRelease | None = None) -> ModelCard:
    """Model card of a TA-TiTok tokenizer repo."""
    config = model.config
    kind = "VAE (continuous tokens)" if config.quantize_mode == "vae" else f"VQ, codebook {config.codebook_size}"
    data = card_data(
        release,
        "image-feature-extraction",
        ["titok", "ta-titok", "maskgen", "image-tokenization", "1d-tokenizer", MASKGEN_PAPER],
        dataset=None,
    )
    title = release.title if release else f"TA-TiTok tokenizer ({config.num_latent_tokens} tokens)"
    content = f"""---
{data.to_yaml()}
---

# {title}

A TA-TiTok text-aware 1-D image tokenizer (MaskGen, Kim et al., 2025) for the `hf_titok` package: a
{config.image_size}x{config.image_size} image becomes **{config.num_latent_tokens} tokens** ({kind}); the decoder
attends to the caption's CLIP ViT-L/14-336 text states (`last_hidden_state`, all 77 positions).
{"Converted from the official release `" + release.repo_id + "`; its outputs match the official implementation." if release else ""}
{_results_table(release)}
## Usage

```python
import torch
from PIL import Image
from transformers import CLIPTextModelWithProjection, CLIPTokenizer
from hf_titok import TATiTokTokenizer, TiTokImageProcessor
from hf_titok.text_encoding import CLIP_TEXT_ENCODER, clip_text_features, tokenize_prompts

tokenizer = TATiTokTokenizer.from_pretrained("{repo_id}").eval()
processor = TiTokImageProcessor.from_pretrained("{repo_id}")
clip = CLIPTextModelWithProjection.from_pretrained(CLIP_TEXT_ENCODER).eval()
ids = tokenize_prompts(CLIPTokenizer.from_pretrained(CLIP_TEXT_ENCODER), ["A photo of a jay."])
with torch.no_grad():
    text = clip_text_features(clip, ids).tokenizer_text
    tokens = tokenizer.encode(processor(Image.open("image.jpg"), return_tensors="pt")["pixel_values"]).tokens
    reconstruction = tokenizer.decode(tokens, text_embeddings=text)
processor.postprocess(reconstruction)[0].save("reconstruction.png")
```

From the shell: `hf-titok reconstruct --model {repo_id} image.jpg --prompt "A photo of a jay."`.

| field | value |
|---|---|
| encoder | ViT {config.encoder_hidden_size} wide, {config.encoder_num_layers} layers, patch {config.encoder_patch_size} |
| decoder | ViT {config.decoder_hidden_size} wide, {config.decoder_num_layers} layers, + {config.text_max_length} text tokens ({config.text_hidden_size} wide) |
| tokens | {config.num_latent_tokens} x {config.token_size} channels |
| parameters | {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M |

## Citation

```bibtex
{MASKGEN_CITATION}
```
"""
    return ModelCard(content)


def maskgen_card(pipeline, repo_id: str, release: OfficialRelease | None = None) -> ModelCard:
    """Model card of a [`MaskGenPipeline`] repo."""
    transformer, vqvae, scheduler = pipeline.transformer, pipeline.vqvae, pipeline.scheduler.config
    kind = "KL (continuous tokens, diffusion head)" if pipeline.is_kl else "VQ (discrete tokens)"
    data = card_data(
        release,
        "text-to-image",
        ["maskgen", "ta-titok", "text-to-image", "masked-generative-model", MASKGEN_PAPER],
        dataset=None,
    )
    title = release.title if release else f"MaskGen {kind} pipeline"
    content = f"""---
{data.to_yaml()}
---

# {title}

Text-to-image generation with MaskGen (Kim et al., 2025) for the `hf_titok` package: an MM-DiT over
{transformer.config.num_latent_tokens} TA-TiTok tokens ({kind}), conditioned on CLIP ViT-L/14-336 text and an
aesthetic score; TA-TiTok decodes them to {vqvae.config.image_size}x{vqvae.config.image_size} pixels with the prompt.
{"Converted from the official releases " + " and ".join("`" + b + "`" for b in data.base_model) + "; sampling matches the official sampler on the fixtures." if data.base_model else ""}
{_results_table(release)}
## Usage

```python
import torch
from hf_titok import MaskGenPipeline

pipe = MaskGenPipeline.from_pretrained("{repo_id}")
image = pipe("A cozy cabin in a snowy forest", generator=torch.Generator().manual_seed(0)).images[0]
image.save("sample.png")
```

From the shell: `hf-titok generate --model {repo_id} --prompt "A cozy cabin in a snowy forest"`.

Without hf_titok installed: `DiffusionPipeline.from_pretrained("{repo_id}", trust_remote_code=True)`.

Default sampling: {scheduler.num_inference_steps} steps, guidance {scheduler.guidance_scale} ({scheduler.guidance_schedule}),
temperature {scheduler.temperature}, aesthetic score {DEFAULT_AESTHETIC_SCORE}.

| component | parameters |
|---|---|
| transformer | {sum(p.numel() for p in transformer.parameters()) / 1e6:.2f} M |
| vqvae (TA-TiTok) | {sum(p.numel() for p in vqvae.parameters()) / 1e6:.2f} M |

## Citation

```bibtex
{MASKGEN_CITATION}
```
"""
    return ModelCard(content)


RAR_CITATION = """@article{yu2024randomized,
  title   = {Randomized Autoregressive Visual Generation},
  author  = {Qihang Yu and Ju He and Xueqing Deng and Xiaohui Shen and Liang-Chieh Chen},
  journal = {arXiv preprint arXiv:2411.00776},
  year    = {2024}
}"""


def rar_card(pipeline, repo_id: str, release: OfficialRelease | None = None) -> ModelCard:
    """Model card of a [`RARPipeline`] repo."""
    transformer, vqvae = pipeline.transformer, pipeline.vqvae
    config, sampling = transformer.config, SimpleNamespace(**pipeline.sampling_settings())
    data = card_data(
        release,
        "unconditional-image-generation",
        ["rar", "autoregressive", "class-conditional-image-generation", "image-generation", RAR_PAPER],
    )
    title = release.title if release else f"RAR pipeline ({config.num_latent_tokens} tokens)"
    tokenizer = type(vqvae).__name__
    content = f"""---
{data.to_yaml()}
---

# {title}

Class-conditional image generation with RAR ("Randomized Autoregressive Visual Generation", Yu et al., 2024) for
the `hf_titok` package: a decoder-only transformer ({config.num_hidden_layers} layers, width {config.hidden_size})
generates the {config.num_latent_tokens} tokens of an image one by one with a key/value cache, and the {tokenizer}
decodes them to {vqvae.config.image_size}x{vqvae.config.image_size} pixels.
{"Converted from the official release `" + release.repo_id + "` (`" + str(release.bin_filename) + "`) with `hf-titok convert`; seeded samples match the official `generate()` token for token." if release else ""}
{_results_table(release)}
## Usage

```python
import torch
from hf_titok import RARPipeline

pipe = RARPipeline.from_pretrained("{repo_id}")
images = pipe(class_labels=[{", ".join(repr(pipeline.label_name(class_id)) for class_id in sorted(pipeline.id2label)[:2])}], generator=torch.Generator().manual_seed(0)).images
images[0].save("sample.png")
```

From the shell: `hf-titok generate --model {repo_id} --labels 1 2 3 --output samples.png`.

Without hf_titok installed: `DiffusionPipeline.from_pretrained("{repo_id}", trust_remote_code=True)`.

Default sampling settings ({"the official gFID protocol" if release else "the scheduler config"}): guidance scale
{sampling.guidance_scale} (power {sampling.guidance_scale_pow}), temperature {sampling.temperature},
{config.num_latent_tokens} steps (one per token).

| component | parameters |
|---|---|
| transformer | {sum(p.numel() for p in transformer.parameters()) / 1e6:.2f} M |
| vqvae ({tokenizer}) | {sum(p.numel() for p in vqvae.parameters()) / 1e6:.2f} M |

License: Apache-2.0 (official weights: trained on ImageNet-1k, for research purposes).

## Citation

```bibtex
{RAR_CITATION}
```
"""
    return ModelCard(content)


__all__ = [
    "CITATION",
    "ONEDPIECE_CITATION",
    "MASKGEN_CITATION",
    "RAR_CITATION",
    "maskgen_card",
    "rar_card",
    "pipeline_card",
    "push_folder_to_hub",
    "tatitok_card",
    "tokenizer_card",
]
