"""Captioned image data for the text-aware recipes: every source `load_image_dataset` reads (an image folder with
`metadata.jsonl` or `metadata.csv`, a `save_to_disk` dataset, webdataset shards), bad rows counted by cause and
skipped, recaptions as the official loader uses them, and the collator's CLIP ids."""

import io
import json
import tarfile

import datasets
import numpy as np
import PIL.Image
import pytest
import torch

from hf_titok.data.datasets import (
    TextColumns,
    caption_collator,
    caption_fields,
    clean_recaption,
    load_image_dataset,
)
from hf_titok.data.images import Augmentation, sample_rng

AUGMENTATION = Augmentation(16, random_crop=True, random_flip=True)
CAPTIONS = ["a red square", "a blue square", "a green square", "a grey square"]
SCORES = [5.0, 6.5, 7.25, 4.0]


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.full((20, 24, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_folder(root, metadata: str = "jsonl", rows=None):
    rows = rows or [
        {"file_name": f"{i}.png", "text": caption, "aesthetic": score}
        for i, (caption, score) in enumerate(zip(CAPTIONS, SCORES))
    ]
    root.mkdir()
    for i, row in enumerate(rows):
        (root / row["file_name"]).write_bytes(png(40 * i))
    if metadata == "jsonl":
        (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        lines = ["file_name,text,aesthetic"] + [f"{r['file_name']},{r['text']},{r['aesthetic']}" for r in rows]
        (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def rows_of(dataset) -> list[dict]:
    if isinstance(dataset, torch.utils.data.IterableDataset):
        return list(dataset)
    return [dataset[i] for i in range(len(dataset))]


@pytest.mark.parametrize("metadata", ["jsonl", "csv"])
def test_an_image_folder_with_metadata(tmp_path, metadata):
    folder = image_folder(tmp_path / "folder", metadata)
    dataset = load_image_dataset(str(folder), augmentation=AUGMENTATION, text=TextColumns(aesthetic_score="aesthetic"))
    rows = rows_of(dataset)
    assert sorted(row["caption"] for row in rows) == sorted(CAPTIONS)
    assert sorted(row["aesthetic_score"] for row in rows) == sorted(SCORES)
    assert all(row["pixel_values"].shape == (3, 16, 16) and "labels" not in row for row in rows)
    assert dataset.skipped == 0


def test_a_saved_dataset_and_the_default_score(tmp_path):
    saved = datasets.Dataset.from_dict(
        {"image": [{"bytes": png(i * 30), "path": None} for i in range(4)], "caption": CAPTIONS}
    ).cast_column("image", datasets.Image())
    saved.save_to_disk(str(tmp_path / "saved"))
    dataset = load_image_dataset(str(tmp_path / "saved"), augmentation=AUGMENTATION, text=TextColumns("caption"))
    rows = rows_of(dataset)
    assert [row["caption"] for row in rows] == CAPTIONS
    assert {row["aesthetic_score"] for row in rows} == {6.5}  # no score column: the releases' sampling score


def test_webdataset_shards_read_the_txt_and_json_of_each_sample(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    with tarfile.open(folder / "data-train-000000.tar", "w") as tar:
        for i, caption in enumerate(CAPTIONS):
            for suffix, payload in (
                ("jpg", png(i * 30)),
                ("txt", caption.encode()),
                ("json", json.dumps({"aes": SCORES[i]}).encode()),
            ):
                info = tarfile.TarInfo(f"sample{i:03d}.{suffix}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    dataset = load_image_dataset(str(folder), augmentation=AUGMENTATION, streaming=True, text=TextColumns())
    rows = rows_of(dataset)
    assert [row["caption"] for row in rows] == CAPTIONS  # "txt": the shards' caption column by default


def test_bad_rows_are_counted_by_cause_and_skipped(tmp_path, caplog):
    rows = [
        {"file_name": "0.png", "text": "a good one", "aesthetic": 6.0},
        {"file_name": "1.png", "text": "   ", "aesthetic": 6.0},
        {"file_name": "2.png", "text": "scored too high", "aesthetic": 11.0},
        {"file_name": "3.png", "text": "unreadable", "aesthetic": 6.0},
        {"file_name": "4.png", "text": "another good one", "aesthetic": 0.0},
    ]
    folder = image_folder(tmp_path / "folder", rows=rows)
    (folder / "3.png").write_bytes(b"not a png")
    dataset = load_image_dataset(str(folder), augmentation=AUGMENTATION, text=TextColumns(aesthetic_score="aesthetic"))
    with caplog.at_level("WARNING"):
        kept = {dataset[i]["caption"] for i in range(len(dataset))}
    assert kept == {"a good one", "another good one"}
    assert dataset.skipped_by_cause == {"text": 2, "image": 1}
    assert "its caption is empty" in caplog.text and "aesthetic score 11.0 is not a number in [0, 10]" in caplog.text


def test_a_caption_that_is_not_text_is_refused():
    with pytest.raises(Exception, match=r"caption is not text \(int\)"):
        caption_fields({"text": 3}, TextColumns("text"), sample_rng(0, 0, 0))
    with pytest.raises(Exception, match=r"aesthetic score 'high' is not a number"):
        caption_fields({"text": "ok", "s": "high"}, TextColumns("text", "s"), sample_rng(0, 0, 0))


def test_an_unknown_caption_column_is_named_with_the_columns(tmp_path):
    folder = image_folder(tmp_path / "folder")
    with pytest.raises(ValueError, match=r"no caption column 'txet'; columns: \[.*'text'.*\].*did you mean 'text'"):
        load_image_dataset(str(folder), augmentation=AUGMENTATION, text=TextColumns("txet"))


def test_recaptions_replace_captions_as_the_official_loader_does():
    assert clean_recaption("The image depicts a small house by a lake.") == "A small house by a lake."
    assert clean_recaption("  a plain caption") == "A plain caption"
    text = TextColumns("text", recaption="recap", recaption_probability=0.95)
    row = {"text": "original", "recap": "The image shows two cats."}
    chosen = [caption_fields(row, text, sample_rng(0, 0, key))["caption"] for key in range(400)]
    share = chosen.count("Two cats.") / len(chosen)
    assert set(chosen) == {"Two cats.", "original"} and 0.9 < share < 0.99
    # A row without a usable recaption keeps its caption; the draw is the row's own, so it is reproducible.
    assert caption_fields({"text": "original", "recap": ""}, text, sample_rng(0, 0, 1))["caption"] == "original"
    assert chosen == [caption_fields(row, text, sample_rng(0, 0, key))["caption"] for key in range(400)]


def test_the_collator_gives_open_clip_ids_and_scores(tmp_path):
    from conftest import tiny_clip_tokenizer

    tokenizer = tiny_clip_tokenizer()
    collate = caption_collator(tokenizer)
    batch = collate(
        [
            {"pixel_values": torch.zeros(3, 16, 16), "caption": "a cat", "aesthetic_score": 6.0},
            {"pixel_values": torch.ones(3, 16, 16), "caption": "a dog", "aesthetic_score": 5.5},
        ]
    )
    assert batch["input_ids"].shape == (2, 77) and batch["input_ids"].dtype == torch.long
    assert batch["input_ids"][0, 0] == tokenizer.bos_token_id and (batch["input_ids"][:, -1] == 0).all()
    assert torch.equal(batch["aesthetic_score"], torch.tensor([6.0, 5.5]))
    assert batch["pixel_values"].shape == (2, 3, 16, 16)


def test_fashion_mnist_captions_hold_out_the_test_phrasings():
    """Every caption names its class; the test split's phrasings never occur in training, so prompt consistency
    on them measures phrasings the model never saw."""
    from hf_titok.data.fashion_mnist import CAPTION_TEMPLATES, FASHION_MNIST_NAMES, fashion_mnist_caption

    assert not set(CAPTION_TEMPLATES["train"]) & set(CAPTION_TEMPLATES["test"])
    train = {fashion_mnist_caption(label, index, "train") for label in range(10) for index in range(200)}
    test = {fashion_mnist_caption(label, index, "test") for label in range(10) for index in range(200)}
    assert not train & test
    assert len(train) == 10 * 4 * len(CAPTION_TEMPLATES["train"])  # every name in every phrasing
    for label, names in enumerate(FASHION_MNIST_NAMES):
        caption = fashion_mnist_caption(label, 5, "test")
        assert any(name in caption for name in names)
