"""The report image of a job: a labelled grid of views (e.g. reference | initial LOD |
optimized LOD, one row per held-out view) above the curve of the per-step loss.

Drawn with PIL alone (its default font, ImageDraw lines) so the optimizer needs no
plotting library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..images import atomic_write, grid

MARGIN = 8  # pixels around everything
GAP = 2  # pixels between grid cells (images.grid's gap)
PANEL_HEIGHT = 180  # the loss panel, axes and labels included
MIN_PANEL_WIDTH = 240  # room for tick labels when the grid is narrow
LOG_RANGE = 10.0  # a loss spanning more than this factor is drawn on a log axis
SMOOTHING = 50  # the moving average spans 1/SMOOTHING of the steps

BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
AXIS = (110, 110, 110)
RAW_LOSS = (175, 195, 235)
MEAN_LOSS = (25, 65, 160)


def write_report(path: Path, columns: list[str], rows: list[list[np.ndarray]], losses: np.ndarray,
                 title: str = "") -> None:
    """Write the report PNG to ``path``, atomically.

    ``rows``: one list per view of (H, W, 3) uint8 sRGB images, all of one size, one per
    column; ``columns``: the column labels, drawn above the grid; ``losses``: the per-step
    loss (1-D floats; non-finite values are skipped), drawn with its moving average below
    the grid, on a log axis when it spans more than LOG_RANGE; ``title``: a line of text on
    top (e.g. "PSNR 24.1 -> 28.3 dB").
    """
    image = Image.fromarray(report_image(columns, rows, losses, title))
    # zlib level 3, not Pillow's 6: half the encoding time for a file about a third larger
    # (a 512^2-per-view report took 0.5 s of a 7 s job on an H200's host).
    atomic_write(path, lambda stream: image.save(stream, format="PNG", compress_level=3))


def report_image(columns: list[str], rows: list[list[np.ndarray]], losses: np.ndarray,
                 title: str = "") -> np.ndarray:
    """The report of write_report as an (H, W, 3) uint8 array."""
    _check_grid(columns, rows)
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = _text_size(measure, "Ag", font)[1] + 4
    views = grid(rows, GAP)
    cell_width = rows[0][0].shape[1]

    width = max(views.shape[1], MIN_PANEL_WIDTH, _text_size(measure, title, font)[0] if title else 0)
    title_height = line_height if title else 0
    grid_top = MARGIN + title_height + line_height
    panel_top = grid_top + views.shape[0] + MARGIN
    canvas = Image.new("RGB", (width + 2 * MARGIN, panel_top + PANEL_HEIGHT + MARGIN), BACKGROUND)
    draw = ImageDraw.Draw(canvas)

    if title:
        draw.text((MARGIN, MARGIN), title, fill=INK, font=font)
    grid_left = MARGIN + (width - views.shape[1]) // 2  # centred when the panel or title is wider
    for c, label in enumerate(columns):
        label = _fit(measure, label, cell_width, font)
        left = grid_left + c * (cell_width + GAP) + (cell_width - _text_size(measure, label, font)[0]) // 2
        draw.text((left, MARGIN + title_height), label, fill=INK, font=font)
    canvas.paste(Image.fromarray(views), (grid_left, grid_top))
    _draw_loss_panel(draw, font, (MARGIN, panel_top, MARGIN + width, panel_top + PANEL_HEIGHT), losses)
    return np.asarray(canvas)


def difference_row(row: list[np.ndarray], magnify: float, label: str) -> list[np.ndarray]:
    """A report row for ``row`` (reference first, then LODs; (H, W, 3) uint8): a caption
    tile, then each LOD's |LOD - reference| per channel, times ``magnify``, on black, so a
    difference of a few levels (what the optimisation removes) shows at a glance."""
    reference = row[0].astype(np.int16)
    differences = [np.clip(np.abs(image.astype(np.int16) - reference) * magnify, 0, 255).astype(np.uint8)
                   for image in row[1:]]
    return [caption_tile(f"|LOD - reference| x {magnify:g}, {label}; black: equal", row[0].shape)] + differences


def caption_tile(text: str, shape: tuple) -> np.ndarray:
    """A white (H, W, 3) uint8 tile with ``text`` wrapped on it, centred."""
    height, width = shape[:2]
    tile = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default()
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and _text_size(draw, candidate, font)[0] > width - 8:
            lines.append(line)
            candidate = word
        line = candidate
    lines.append(line)
    line_height = _text_size(draw, "Ag", font)[1] + 2
    top = (height - line_height * len(lines)) // 2
    for k, text_line in enumerate(lines):
        draw.text(((width - _text_size(draw, text_line, font)[0]) // 2, top + k * line_height), text_line,
                  fill=INK, font=font)
    return np.asarray(tile)


def _draw_loss_panel(draw: ImageDraw.ImageDraw, font, box: tuple[int, int, int, int], losses) -> None:
    """Loss against step in ``box`` (left, top, right, bottom): the raw curve, its moving
    average, labelled axes with the min/max of each."""
    left, top, right, bottom = box
    values = np.asarray(losses, np.float64).ravel()
    steps = np.flatnonzero(np.isfinite(values))
    values = values[steps]
    log_scale = values.size > 0 and values.min() > 0 and values.max() > LOG_RANGE * values.min()
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)

    line_height = _text_size(draw, "Ag", font)[1]
    y_labels = [f"{high:.3g}", f"{low:.3g}"]
    label_width = max(_text_size(draw, label, font)[0] for label in y_labels)
    # The plot area: tick labels left of it, "loss" above, step ticks and "step" below.
    plot_left, plot_right = left + label_width + 6, right - 4
    plot_top, plot_bottom = top + line_height + 6, bottom - 2 * line_height - 8

    draw.text((left, top), "loss (log scale)" if log_scale else "loss", fill=INK, font=font)
    draw.line([(plot_left, plot_top), (plot_left, plot_bottom), (plot_right, plot_bottom)], fill=AXIS)
    for label, y in zip(y_labels, (plot_top, plot_bottom)):
        draw.line([(plot_left - 3, y), (plot_left, y)], fill=AXIS)
        draw.text((plot_left - 5 - _text_size(draw, label, font)[0], y - line_height // 2), label,
                  fill=INK, font=font)
    last_step = int(steps[-1]) if steps.size else 0
    first_step = int(steps[0]) if steps.size else 0
    draw.text((plot_left, plot_bottom + 3), str(first_step), fill=INK, font=font)
    last_label = str(last_step)
    draw.text((plot_right - _text_size(draw, last_label, font)[0], plot_bottom + 3), last_label, fill=INK, font=font)
    draw.text(((plot_left + plot_right - _text_size(draw, "step", font)[0]) // 2, plot_bottom + line_height + 6),
              "step", fill=INK, font=font)
    if values.size == 0:
        message = "no loss recorded"
        draw.text(((plot_left + plot_right - _text_size(draw, message, font)[0]) // 2,
                   (plot_top + plot_bottom - line_height) // 2), message, fill=AXIS, font=font)
        return

    def scale(v: np.ndarray) -> np.ndarray:
        return np.log10(v) if log_scale else v

    lowest, highest = scale(np.array([low, high]))
    if highest == lowest:  # a flat curve: draw it mid-height
        lowest, highest = lowest - 1.0, highest + 1.0

    def points(x: np.ndarray, v: np.ndarray) -> list[tuple[float, float]]:
        span = max(last_step - first_step, 1)
        px = plot_left + 1 + (plot_right - plot_left - 1) * (x - first_step) / span
        py = plot_bottom - 1 - (plot_bottom - plot_top - 1) * (scale(v) - lowest) / (highest - lowest)
        return list(zip(px.tolist(), py.tolist()))

    raw = points(steps.astype(np.float64), values)
    draw.line(raw if len(raw) > 1 else raw * 2, fill=RAW_LOSS, width=1)
    window = values.size // SMOOTHING
    if window >= 2:
        # Centred moving average over the finite values (arithmetic, before any log).
        sums = np.cumsum(np.concatenate([[0.0], values]))
        mean = (sums[window:] - sums[:-window]) / window
        centres = np.convolve(steps.astype(np.float64), np.full(window, 1.0 / window), mode="valid")
        draw.line(points(centres, mean), fill=MEAN_LOSS, width=2)


def _check_grid(columns: list[str], rows: list[list[np.ndarray]]) -> None:
    if not rows or not columns:
        raise ValueError("a report needs at least one row and one column of images")
    shape = np.shape(rows[0][0]) if rows[0] else ()
    for r, row in enumerate(rows):
        if len(row) != len(columns):
            raise ValueError(f"row {r} has {len(row)} images for {len(columns)} columns")
        for image in row:
            if np.shape(image) != shape or len(shape) != 3 or shape[2] != 3 or np.asarray(image).dtype != np.uint8:
                raise ValueError(f"report images must all be (H, W, 3) uint8 of one size; got {np.shape(image)} "
                                 f"{np.asarray(image).dtype} beside {shape}")


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """``text``, shortened with ".." until it fits in ``width`` pixels."""
    if _text_size(draw, text, font)[0] <= width:
        return text
    while text and _text_size(draw, text + "..", font)[0] > width:
        text = text[:-1]
    return text + ".."
