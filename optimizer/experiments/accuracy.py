"""Gradient accuracy: the mean of K un-normalised single-step estimates against central
finite differences of the summed loss (SPEC.md, "How figures are measured").

Two scenes, small enough for a finite difference per parameter, where the summed L2 loss
is smooth in the parameters:

texels    a quad filling the view (identity view, 32 x 32 pixels, unlit) textured with an
          8 x 8 RGB albedo (192 parameters) against a random 8 x 8 target; bilinear
          sampling without mipmaps, so the summed loss is quadratic in the texels and the
          central difference is exact at any step: eps = h = 0.02.
geometry  a 4 x 4 vertex grid larger than the view (48 x 48 pixels; no silhouette in
          sight) with random vertex colors, against the same grid with its vertices moved
          by U(-0.3, 0.3) in x and y (48 parameters); eps = h = 1/48, half a pixel.

Every step runs with learning rate 0 (theta still) and unit contributor weights, so the
accumulator holds SPEC.md's un-normalised sum_p Delta_p; per step and parameter

    per-pixel  g_i = delta_i * sum_{p names i} Delta_p / (2 eps)
    global     g_i = delta_i * sum_{all p}      Delta_p / (2 eps)

both from the same renders (same delta_i, the global sum read from the loss history). For
K = 1, 10, 100, ...: the cosine and relative error ||g_K - g_FD|| / ||g_FD|| of the mean
of K estimates, averaged over the disjoint blocks of K among the samples.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..gpu import GpuContext, read_buffer
from ..hashing import perturbation_signs
from ..images import atomic_write
from ..surface.mesh import Mesh, ModelReference, geom_node, grid
from ..parameters import Settings
from ..constants import LOSS_SLOT_SIZE
from ..sge import HISTORY_LENGTH, Optimizer, decode_fixed, perturbation_seed, read_accumulator
from ..surface.texture import TextureSet, float_texture

CSV_COLUMNS = ("scene", "estimator", "K", "blocks", "cosine", "relative_error", "variance", "gradient_norm",
               "params", "epsilon", "fd_step")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def texel_scene(context: GpuContext, seed: int = 1):
    """(optimizer, the parameter set, eps): an 8 x 8 albedo on a quad filling the view."""
    rng = np.random.default_rng(seed)
    positions, triangles = grid(2, -1.0, 1.0)
    uvs = (positions[:, :2] + 1.0) / 2.0
    start = rng.uniform(0.2, 0.8, (8, 8, 3)).astype(np.float32)
    target = rng.uniform(0.0, 1.0, (8, 8, 3)).astype(np.float32)
    eps = 0.02
    albedo = TextureSet("albedo", start, Settings(eps, 0.0), bilinear_weights=False)
    mesh = Mesh(positions, triangles, uvs=uvs, albedo=albedo)
    reference = geom_node("reference", positions, triangles, uvs=uvs)
    optimizer = Optimizer(context, mesh, ModelReference(reference, albedo=float_texture("target", target), lit=mesh.lit),
                          (32, 32), seed=3)
    return optimizer, albedo, eps


def geometry_scene(context: GpuContext, seed: int = 1):
    """(optimizer, the parameter set, eps): tests/test_gradient.py's geometry scene."""
    rng = np.random.default_rng(seed)
    positions, triangles = grid(4, -1.6, 1.6)
    colors = rng.uniform(0.0, 1.0, (len(positions), 3)).astype(np.float32)
    target = positions.copy()
    target[:, :2] += rng.uniform(-0.3, 0.3, (len(positions), 2))
    eps = 1.0 / 48.0
    mesh = Mesh(positions, triangles, colors, position_settings=Settings(eps, 0.0), barycentric_weights=False)
    optimizer = Optimizer(context, mesh, ModelReference(geom_node("reference", target, triangles, colors), lit=mesh.lit),
                          (48, 48), seed=3)
    return optimizer, mesh.positions, eps


SCENES = {"texels": texel_scene, "geometry": geometry_scene}
VIEW = np.eye(4)  # world xy in [-1, 1] straight to clip space


def single_estimates(optimizer, parameter_set, eps: float, samples: int) -> dict[str, np.ndarray]:
    """(samples, params) single-step estimates of each estimator, theta held still."""
    context = optimizer.context
    per_pixel = np.zeros((samples, parameter_set.count))
    signs = np.zeros((samples, parameter_set.count))
    first = optimizer.step_index
    for k in range(samples):
        optimizer.step(VIEW)
        optimizer.sync()
        step = optimizer.step_index - 1
        sums, _ = read_accumulator(context, parameter_set.domain, step % 2, parameter_set.channel)
        signs[k] = perturbation_signs(parameter_set.count, parameter_set.set_id, perturbation_seed(optimizer.seed, step))
        per_pixel[k] = signs[k] * np.repeat(sums, parameter_set.shape[1]) / (2.0 * eps)
    history = read_buffer(context, optimizer.loss_history).reshape(HISTORY_LENGTH, LOSS_SLOT_SIZE)
    slots = np.arange(first, first + samples) % HISTORY_LENGTH
    image_delta = decode_fixed(history[slots, 2], history[slots, 3])  # sum over every pixel
    return {"per-pixel": per_pixel, "global": signs * image_delta[:, None] / (2.0 * eps)}


def finite_difference(optimizer, parameter_set, h: float) -> np.ndarray:
    """(L(theta + h e_i) - L(theta - h e_i)) / 2h of the summed loss, per parameter."""
    theta = parameter_set.values(optimizer.context).ravel().astype(np.float64)
    gradient = np.zeros(parameter_set.count)
    for i in range(parameter_set.count):
        step = np.zeros_like(theta)
        step[i] = h
        plus, minus = optimizer.loss_pair(VIEW, {parameter_set: theta + step}, {parameter_set: theta - step})
        gradient[i] = (plus - minus) / (2.0 * h)
    return gradient


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))


def k_values(samples: int) -> list[int]:
    ks = [k for k in (1, 10, 100, 1000, 10000) if k <= samples]
    return ks + ([samples] if samples not in ks else [])


def measure(context: GpuContext, scene: str, samples: int) -> list[dict]:
    """Rows of (estimator, K, cosine, relative error, variance) for one scene."""
    optimizer, parameter_set, eps = SCENES[scene](context)
    try:
        estimates = single_estimates(optimizer, parameter_set, eps, samples)
        truth = finite_difference(optimizer, parameter_set, eps)
    finally:
        optimizer.release()
    rows = []
    for estimator, single in estimates.items():
        # Mean over parameters of the single-step estimate's variance.
        variance = float(np.mean(np.var(single, axis=0, ddof=1))) if samples > 1 else math.nan
        for k in k_values(samples):
            blocks = samples // k
            means = single[:blocks * k].reshape(blocks, k, -1).mean(axis=1)
            rows.append({"scene": scene, "estimator": estimator, "K": k, "blocks": blocks,
                         "cosine": float(np.mean([cosine(m, truth) for m in means])),
                         "relative_error": float(np.mean([relative_error(m, truth) for m in means])),
                         "variance": variance, "gradient_norm": float(np.linalg.norm(truth)),
                         "params": parameter_set.count, "epsilon": eps, "fd_step": eps})
    return rows


def run_accuracy(out: Path, samples: int = 1000, scenes=tuple(SCENES), context: GpuContext | None = None) -> list[dict]:
    """Both scenes; writes OUT/accuracy.csv and OUT/accuracy.png and returns the rows."""
    started = time.perf_counter()
    own = context is None
    context = context or GpuContext.headless()
    rows = []
    for scene in scenes:
        scene_rows = measure(context, scene, samples)
        rows += scene_rows
        for row in scene_rows:
            if row["K"] == samples:
                log(f"{scene} {row['estimator']}: K={samples} cosine {row['cosine']:.4f}, relative error "
                    f"{row['relative_error']:.3f}, variance {row['variance']:.4g} "
                    f"(|g_FD| = {row['gradient_norm']:.3g})")
    out = Path(out)
    write_csv(out / "accuracy.csv", rows)
    write_plot(out / "accuracy.png", rows, f"{samples} samples; {context.renderer.split(' (')[0]}")
    if own:
        context.release()
    log(f"accuracy: {time.perf_counter() - started:.0f} s wall")
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write(path, lambda stream: stream.write(text.getvalue().encode()))


# --- the plot: per scene, cosine and relative error against K (log K) ----------------------
BACKGROUND, INK, AXIS, GRID = (255, 255, 255), (40, 40, 40), (110, 110, 110), (225, 225, 225)
LINE_COLORS = {"per-pixel": (25, 65, 160), "global": (200, 70, 40)}


def write_plot(path: Path, rows: list[dict], subtitle: str = "") -> None:
    scenes = [s for s in SCENES if any(r["scene"] == s for r in rows)]
    width, height, margin = 320, 220, 12
    font = ImageFont.load_default()
    canvas = Image.new("RGB", (2 * (width + margin) + margin, len(scenes) * (height + margin) + 40), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((margin, 4), "mean of K single-step estimates vs central finite differences", fill=INK, font=font)
    draw.text((margin, 18), subtitle, fill=AXIS, font=font)
    for r, scene in enumerate(scenes):
        mine = [row for row in rows if row["scene"] == scene]
        top = 36 + r * (height + margin)
        for c, (metric, log_y) in enumerate((("cosine", False), ("relative_error", True))):
            left = margin + c * (width + margin)
            _panel(draw, font, (left, top, left + width, top + height), mine, metric, log_y,
                   f"{scene} ({mine[0]['params']} params): {metric.replace('_', ' ')}")
    atomic_write(path, lambda stream: canvas.save(stream, format="PNG"))


def _panel(draw, font, box, rows, metric, log_y, title) -> None:
    left, top, right, bottom = box
    plot_left, plot_right, plot_top, plot_bottom = left + 40, right - 6, top + 16, bottom - 28
    draw.text((left, top), title, fill=INK, font=font)
    ks = sorted({row["K"] for row in rows})
    values = [row[metric] for row in rows if math.isfinite(row[metric])]
    if log_y:
        values = [v for v in values if v > 0]
    if len(ks) < 2 or not values:
        return
    fy = (lambda v: math.log10(max(v, 1e-12))) if log_y else (lambda v: v)
    y_low, y_high = (fy(min(values)), fy(max(values))) if log_y else (min(0.0, min(values)), 1.0)
    if y_high - y_low < 1e-9:
        y_high = y_low + 1.0
    x_low, x_high = math.log10(ks[0]), math.log10(ks[-1])

    def point(k, v):
        return (plot_left + (plot_right - plot_left) * (math.log10(k) - x_low) / (x_high - x_low),
                plot_bottom - (plot_bottom - plot_top) * (fy(v) - y_low) / (y_high - y_low))

    for k in ks:
        x = point(k, values[0])[0]
        draw.line([(x, plot_top), (x, plot_bottom)], fill=GRID)
        draw.text((x - 8, plot_bottom + 3), str(k), fill=INK, font=font)
    ticks = ([10.0 ** e for e in range(math.floor(y_low), math.ceil(y_high) + 1) if y_low <= e <= y_high]
             if log_y else [y_low, (y_low + y_high) / 2, y_high])
    if log_y and len(ticks) < 2:
        ticks = [10.0 ** y_low, 10.0 ** y_high]
    for value in ticks:
        y = point(ks[0], value)[1]
        draw.line([(plot_left, y), (plot_right, y)], fill=GRID)
        draw.text((left, y - 5), f"{value:.2g}", fill=INK, font=font)
    if not log_y:  # the bar of issue 7
        y = point(ks[0], 0.95)[1]
        draw.line([(plot_left, y), (plot_right, y)], fill=(150, 200, 150))
    draw.line([(plot_left, plot_top), (plot_left, plot_bottom), (plot_right, plot_bottom)], fill=AXIS)
    draw.text(((plot_left + plot_right) // 2 - 4, plot_bottom + 14), "K", fill=INK, font=font)
    legend_y = plot_bottom - 30 if not log_y else plot_top + 2
    for estimator, color in LINE_COLORS.items():
        points = [point(row["K"], row[metric]) for row in sorted(rows, key=lambda r: r["K"])
                  if row["estimator"] == estimator and math.isfinite(row[metric]) and (row[metric] > 0 or not log_y)]
        if not points:
            continue
        draw.line(points if len(points) > 1 else points * 2, fill=color, width=2)
        for x, y in points:
            draw.ellipse([(x - 3, y - 3), (x + 3, y + 3)], fill=color)
        draw.line([(plot_right - 90, legend_y + 6), (plot_right - 72, legend_y + 6)], fill=color, width=2)
        draw.text((plot_right - 68, legend_y), estimator, fill=INK, font=font)
        legend_y += 13
