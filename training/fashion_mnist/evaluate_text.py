#!/usr/bin/env python
"""Quality of a Fashion-MNIST text-to-image MaskGen pipeline (the built-in one by default).

    python training/fashion_mnist/evaluate_text.py [--pipeline DIR] [--sweep] [--report report.json]

- Prompt consistency on held-out phrasings: every class's names in the test split's phrasings (never seen in
  training, `hf_titok.data.fashion_mnist.CAPTION_TEMPLATES`), `--per-class` images each, labelled by the classifier
  of `evaluate.py` (a small CNN trained on the real training split); per-class and mean accuracy, beside the same
  measure for the training phrasings, the classifier's accuracy on the real test images, and the classifier-feature
  Frechet distance to the real test images.
- TA-TiTok reconstruction on the 10k test split through its own processor, decoded with each image's caption: PSNR
  and SSIM of the uint8 reconstructions, codebook usage.
- `--class-pipeline`: the class-conditional built-in model's class consistency with the same classifier and count.
- `--sweep`: sampling settings tried, each scored on the held-out phrasings (to pick the shipped defaults, by the
  rule of `evaluate.py`: the lowest feature distance among settings as recognisable as real images).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_titok import FASHION_MNIST_PIPELINE, FASHION_MNIST_TEXT_PIPELINE, MaskGenPipeline, TiTokPipeline
from hf_titok.data.fashion_mnist import (
    CAPTION_TEMPLATES,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_NAMES,
    fashion_mnist_caption,
    load_fashion_mnist,
    to_rgb32,
)
from hf_titok.text_encoding import clip_text_features, tokenize_prompts


def _class_model_evaluation():
    """training/fashion_mnist/evaluate.py, loaded by its path (`evaluate` by name is 🤗 Evaluate)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fashion_mnist_evaluate", Path(__file__).with_name("evaluate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shared = _class_model_evaluation()
Classifier, best_settings, frechet_distance = _shared.Classifier, _shared.best_settings, _shared.frechet_distance
per_class_accuracy, to_tensor, train_classifier = (
    _shared.per_class_accuracy,
    _shared.to_tensor,
    _shared.train_classifier,
)


def class_prompts(label: int, split: str) -> list[str]:
    """Every name of the class in every phrasing of `split`."""
    return [template.format(name) for template in CAPTION_TEMPLATES[split] for name in FASHION_MNIST_NAMES[label]]


@torch.no_grad()
def prompt_consistency(
    pipe: MaskGenPipeline, classifier: Classifier, real_features, per_class: int, split: str, seed: int = 0, **settings
) -> dict:
    """`per_class` images per class from its prompts of `split` (cycled), classified."""
    prompts, labels = [], []
    for label in range(10):
        options = class_prompts(label, split)
        prompts += [options[i % len(options)] for i in range(per_class)]
        labels += [label] * per_class
    images = []
    generator = torch.Generator().manual_seed(seed)
    for start in tqdm(range(0, len(prompts), 100), desc=f"sampling ({split} phrasings)"):
        batch = prompts[start : start + 100]
        images.append(pipe(batch, generator=generator, output_type="pt", **settings).images)
    images = (torch.cat(images) * 255).floor() / 255  # what the PNGs hold
    labels = torch.tensor(labels)
    accuracy = per_class_accuracy(classifier(images).argmax(-1), labels)
    return {
        "phrasings": split,
        "settings": pipe.sampling_settings(**settings),
        "consistency_per_class": dict(zip(FASHION_MNIST_CLASSES, accuracy)),
        "consistency_mean": float(np.mean(accuracy)),
        "classifier_frechet_distance": frechet_distance(classifier.embed(images), real_features),
    }


@torch.no_grad()
def reconstruction_metrics(pipe: MaskGenPipeline, images: np.ndarray, labels: np.ndarray, batch_size: int = 500):
    """TA-TiTok on the test split through its processor, decoded with each image's test caption."""
    processor = pipe.image_processor
    pixel_values = torch.cat(
        [processor(list(chunk), return_tensors="pt")["pixel_values"] for chunk in np.array_split(images, 20)]
    )

    def captions_text(start: int, stop: int) -> dict:
        captions = [fashion_mnist_caption(int(labels[i]), i, "test") for i in range(start, stop)]
        ids = tokenize_prompts(pipe.tokenizer, captions)
        return {"text_embeddings": clip_text_features(pipe.text_encoder, ids).tokenizer_text}

    return _shared.reconstruction_metrics(pipe, pixel_values, batch_size, decoder_inputs=captions_text)


@torch.no_grad()
def class_model_consistency(path: str, classifier: Classifier, per_class: int, seed: int = 0) -> float:
    pipe = TiTokPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        list(range(10)), num_images_per_label=per_class, generator=torch.Generator().manual_seed(seed), output_type="pt"
    ).images
    images = (images * 255).floor() / 255
    labels = torch.arange(10).repeat_interleave(per_class)
    return float(np.mean(per_class_accuracy(classifier(images).argmax(-1), labels)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=FASHION_MNIST_TEXT_PIPELINE)
    parser.add_argument("--classifier", default="outputs/fashion_mnist/classifier.safetensors")
    parser.add_argument("--class-pipeline", default=FASHION_MNIST_PIPELINE)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--sweep-steps", type=int, nargs="+", default=[4, 8, 12])
    parser.add_argument("--sweep-guidance", type=float, nargs="+", default=[1.0, 3.0, 6.0])
    parser.add_argument("--sweep-temperature", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--skip-reconstruction", action="store_true")
    parser.add_argument("--report")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    classifier = train_classifier(Path(args.classifier))
    test_images, test_labels = load_fashion_mnist("test")
    test_rgb = to_rgb32(test_images)
    real = to_tensor(test_rgb)
    with torch.no_grad():
        real_accuracy = per_class_accuracy(classifier(real).argmax(-1), torch.from_numpy(test_labels))
        real_features = classifier.embed(real)
    pipe = MaskGenPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    report = {
        "pipeline": str(args.pipeline),
        "per_class": args.per_class,
        "classifier_test_accuracy_per_class": dict(zip(FASHION_MNIST_CLASSES, real_accuracy)),
        "classifier_test_accuracy_mean": float(np.mean(real_accuracy)),
    }
    if args.sweep:
        rows = []
        grid = itertools.product(args.sweep_steps, args.sweep_guidance, args.sweep_temperature)
        for steps, guidance, temperature in grid:
            settings = dict(num_inference_steps=steps, guidance_scale=guidance, temperature=temperature)
            rows.append(prompt_consistency(pipe, classifier, real_features, args.per_class, "test", **settings))
            print(json.dumps({k: rows[-1][k] for k in ("settings", "consistency_mean", "classifier_frechet_distance")}))
        report["sweep"] = rows
        report["best_settings"] = best_settings(
            [{"class_consistency_mean": r["consistency_mean"], **r} for r in rows],
            report["classifier_test_accuracy_mean"],
        )
    else:
        report["held_out_phrasings"] = prompt_consistency(pipe, classifier, real_features, args.per_class, "test")
        report["training_phrasings"] = prompt_consistency(pipe, classifier, real_features, args.per_class, "train")
        if args.class_pipeline:
            report["class_conditional_consistency_mean"] = class_model_consistency(
                args.class_pipeline, classifier, args.per_class
            )
        if not args.skip_reconstruction:
            report["reconstruction"] = reconstruction_metrics(pipe, test_rgb, test_labels)
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(text + "\n")


if __name__ == "__main__":
    main()
