"""Image grids people can look at: samples per class, inputs beside reconstructions."""

from __future__ import annotations

from collections.abc import Sequence

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)


def _font(size: int) -> PIL.ImageFont.ImageFont:
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return PIL.ImageFont.load_default()


def image_grid(
    rows: Sequence[Sequence[PIL.Image.Image]],
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
    title: str | None = None,
    cell_size: int | None = None,
    padding: int = 4,
) -> PIL.Image.Image:
    """Lay out `rows` of images as a grid, with optional row labels (left), column labels (top) and a title.

    Images are shown at `cell_size` (default: the first image's width; small images are upscaled with
    nearest-neighbour so that their pixels stay visible)."""
    if not rows or not any(rows):
        raise ValueError("image_grid needs at least one image")
    first = next(image for row in rows for image in row)
    cell = cell_size or max(first.width, 64)
    columns = max(len(row) for row in rows)
    font = _font(max(10, min(16, cell // 6)))
    measure = PIL.ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    label_width = max((text_size(label)[0] for label in row_labels), default=0) + 2 * padding if row_labels else 0
    line_height = text_size("Ag")[1] + 2 * padding
    header = line_height if column_labels else 0
    title_height = line_height if title else 0
    width = label_width + columns * (cell + padding) + padding
    height = title_height + header + len(rows) * (cell + padding) + padding
    canvas = PIL.Image.new("RGB", (width, height), _BACKGROUND)
    draw = PIL.ImageDraw.Draw(canvas)
    if title:
        draw.text((padding, padding), title, fill=_TEXT, font=font)
    if column_labels:
        for j, label in enumerate(column_labels):
            draw.text(
                (label_width + padding + j * (cell + padding), title_height + padding), label, fill=_TEXT, font=font
            )
    top = title_height + header + padding
    for i, row in enumerate(rows):
        y = top + i * (cell + padding)
        if row_labels:
            draw.text((padding, y + cell // 2 - line_height // 2 + padding), row_labels[i], fill=_TEXT, font=font)
        for j, image in enumerate(row):
            resample = PIL.Image.NEAREST if image.width < cell else PIL.Image.BICUBIC
            canvas.paste(
                image.convert("RGB").resize((cell, cell), resample), (label_width + padding + j * (cell + padding), y)
            )
    return canvas


__all__ = ["image_grid"]
