"""Pictures people can look at: image grids (samples per class, inputs beside reconstructions) and line plots (the
quality of prefix decoding against the number of tokens kept)."""

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


_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def line_plot(
    x: Sequence[float],
    series: dict[str, Sequence[float]],
    title: str,
    x_label: str,
    y_label: str,
    log2_x: bool = False,
    size: tuple[int, int] = (560, 380),
) -> PIL.Image.Image:
    """One panel: each entry of `series` (label -> one y per x) as a line with its points, axes with the x values
    and five y ticks, a legend. `log2_x`: x on a log2 scale (token counts 1, 2, 4, ...)."""
    import math

    if not x or any(len(values) != len(x) for values in series.values()):
        raise ValueError("line_plot needs one y value per x value in every series")
    font, small = _font(14), _font(11)
    width, height = size
    left, right, top, bottom = 64, 16, 36, 48
    canvas = PIL.Image.new("RGB", size, _BACKGROUND)
    draw = PIL.ImageDraw.Draw(canvas)
    position = [math.log2(v) if log2_x else float(v) for v in x]
    x_low, x_high = min(position), max(position)
    values = [v for ys in series.values() for v in ys if v is not None and math.isfinite(v)]
    y_low, y_high = (min(values), max(values)) if values else (0.0, 1.0)
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 1, y_high + 1
    margin = 0.05 * (y_high - y_low)
    y_low, y_high = y_low - margin, y_high + margin

    def point(px: float, py: float) -> tuple[float, float]:
        fx = 0.5 if x_high == x_low else (px - x_low) / (x_high - x_low)
        return left + fx * (width - left - right), top + (1 - (py - y_low) / (y_high - y_low)) * (height - top - bottom)

    draw.rectangle([left, top, width - right, height - bottom], outline=_TEXT)
    for value, pos in zip(x, position):
        px, _ = point(pos, y_low)
        draw.line([px, height - bottom, px, height - bottom + 4], fill=_TEXT)
        draw.text((px - 6, height - bottom + 6), f"{value:g}", fill=_TEXT, font=small)
    for i in range(5):
        tick = y_low + i * (y_high - y_low) / 4
        _, py = point(x_low, tick)
        draw.line([left - 4, py, left, py], fill=_TEXT)
        draw.text((4, py - 6), f"{tick:.3g}", fill=_TEXT, font=small)
    draw.text((left, 8), title, fill=_TEXT, font=font)
    draw.text(((width - left) // 2, height - 20), x_label, fill=_TEXT, font=small)
    draw.text((4, top - 16), y_label, fill=_TEXT, font=small)
    for index, (label, ys) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        points = [point(pos, y) for pos, y in zip(position, ys) if y is not None and math.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((left + 8, top + 6 + 16 * index), label, fill=colour, font=small)
    return canvas


def plot_panels(panels: Sequence[PIL.Image.Image]) -> PIL.Image.Image:
    """Panels side by side (as `line_plot` draws them)."""
    canvas = PIL.Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), _BACKGROUND)
    offset = 0
    for panel in panels:
        canvas.paste(panel, (offset, 0))
        offset += panel.width
    return canvas


__all__ = ["image_grid", "line_plot", "plot_panels"]
