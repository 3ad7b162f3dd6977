"""Final error against parameter count, per-pixel SGE vs global SPSA (issue 7).

Two series, each run with both estimators, the same steps, seeds and settings:

texture   Panda3D's ``models/smiley`` with its own texture resized to S x S (box filter
          down, bilinear up) as the truth; the learned S x S albedo starts flat gray.
          Random rotations and lights, as the texture fit (scenarios/texture.py).
          Error: RMSE (linear RGB) of the learned texels against the truth over the texels
          named by 8 held-out views ("seen" texels, SPEC.md).
geometry  An icosphere of V vertices (10 * 4^k + 2) whose positions are optimised, fitted
          to the same icosphere with its radius moved by a smooth bump field (up to
          +-0.15). Both carry the same smooth per-vertex colors, unlit, on mid-gray.
          Error: the mean over vertices of | |v| - r_target(v / |v|) |, the radial
          distance to the bumpy target in the vertex's current direction.

The parameter count is 3 S^2 (texture) or 3 V (geometry).
"""

from __future__ import annotations

import csv
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..assets import load_model, mesh_arrays, model_texture, texture_linear_rgb
from ..gpu import GpuContext
from ..images import atomic_write
from ..surface.mesh import Mesh, ModelReference, geom_node
from ..parameters import Settings
from ..sge import ESTIMATORS, Optimizer, read_accumulator
from ..surface.texture import TextureSet, float_texture
from ..view import perspective, random_direction, random_rotation, translation

TEXTURE_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
SUBDIVISIONS = (2, 3, 4, 5, 6, 7)         # 162, 642, 2562, 10242, 40962, 163842 vertices
QUICK_TEXTURE_SIZES = TEXTURE_SIZES[:6]   # up to 256^2
QUICK_SUBDIVISIONS = SUBDIVISIONS[:4]     # up to 10242 vertices
CAMERA_DISTANCE = 3.5
TAN_HALF_FOV = 0.4
AMBIENT = 0.3
HELD_OUT_VIEWS = 8
BUMPS = 0.15
CSV_COLUMNS = ("series", "estimator", "size", "params", "seed", "steps", "resolution", "initial_error",
               "final_error", "seconds")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class DimensionSettings:
    steps: int = 300
    seeds: int = 1
    resolution: int = 128
    texture_epsilon: float = 0.03      # TextureSettings' defaults
    texture_learning_rate: float = 0.02
    # Geometry: about a pixel's footprint at R = 128 (2 * 3.5 * 0.4 / 128 = 0.022).
    position_epsilon: float = 0.02
    position_learning_rate: float = 0.002
    supersampling: int = 2
    # Equal estimates per parameter (None: equal compute, ``steps`` for every size): a run
    # takes ceil(estimates / f) steps, f the fraction of the parameters that a step's
    # per-pixel G names (contributor count > 0), measured as the mean over NAMED_VIEWS
    # held-out views before the run; so a parameter is named, on average, in
    # ``estimates_per_parameter`` steps at every size, for both estimators.
    estimates_per_parameter: float | None = None
    steps_per_frame: int = 1  # engine frames carry this many steps (same results, faster)

    def steps_for(self, named_fraction: float) -> int:
        if self.estimates_per_parameter is None:
            return self.steps
        return int(math.ceil(self.estimates_per_parameter / max(named_fraction, 1e-6)))


NAMED_VIEWS = 8


def named_fraction(optimizer: Optimizer, domain, stream, views: int = NAMED_VIEWS) -> float:
    """The mean fraction of ``domain``'s elements a per-pixel step names, over ``views``
    views of ``stream``: each show() frame's G counts them (no update)."""
    fractions = []
    for _ in range(views):
        view = next(stream)
        optimizer.show(*view) if isinstance(view, tuple) else optimizer.show(view)
        _, counts = read_accumulator(optimizer.context, domain, optimizer.step_index % 2)
        fractions.append(float(np.mean(counts > 0)))
    return float(np.mean(fractions))


# --- assets ------------------------------------------------------------------------------
def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere, 10 * 4^k + 2 vertices (vectorised edge splitting, float64)."""
    t = (1.0 + 5.0 ** 0.5) / 2.0
    positions = np.array([(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
                          (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)], np.float64)
    positions /= np.linalg.norm(positions, axis=1, keepdims=True)
    triangles = np.array([(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
                          (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
                          (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)], np.int64)
    for _ in range(subdivisions):
        edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
        edges.sort(axis=1)
        unique, inverse = np.unique(edges, axis=0, return_inverse=True)
        middle = positions[unique[:, 0]] + positions[unique[:, 1]]
        middle /= np.linalg.norm(middle, axis=1, keepdims=True)
        index = len(positions) + inverse.reshape(3, -1)  # ab, bc, ca per triangle
        ab, bc, ca = index
        a, b, c = triangles.T
        positions = np.concatenate([positions, middle])
        triangles = np.concatenate([np.stack(s, axis=1) for s in
                                    ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))])
    return positions, triangles.astype(np.int32)


def bump_radius(directions: np.ndarray, seed: int = 0) -> np.ndarray:
    """The target's radius in each unit direction: 1 + BUMPS * a smooth random field."""
    rng = np.random.default_rng(seed)
    waves = rng.normal(size=(4, 3)) * 2.5
    phases = rng.uniform(0.0, 2.0 * np.pi, 4)
    return 1.0 + BUMPS * np.sin(directions @ waves.T + phases).mean(axis=1)


def surface_colors(directions: np.ndarray) -> np.ndarray:
    """Smooth per-vertex colors, so that moving a vertex changes pixels inside the outline
    as well as on it."""
    return (0.5 + 0.4 * np.sin(4.0 * directions + np.array([0.0, 2.0, 4.0]))).astype(np.float32)


def resized_texture(truth: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) linear floats resized to size x size (box filter down, bilinear up)."""
    height = truth.shape[0]
    method = Image.BOX if size <= height else Image.BILINEAR
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(truth[..., c], np.float32), "F")
                           .resize((size, size), method)) for c in range(truth.shape[2])]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def views(seed: int, lit: bool):
    """Endless (model-view-projection, light) pairs from random rotations."""
    projection = perspective(TAN_HALF_FOV)
    rng = np.random.default_rng([seed, 7])
    while True:
        view = projection @ translation(0, 0, -CAMERA_DISTANCE) @ random_rotation(rng)
        yield view, ((random_direction(rng), AMBIENT) if lit else None)


# --- the two series ----------------------------------------------------------------------
class TextureSeries:
    """The smiley sphere with an S x S albedo (one GL context serves every size)."""

    def __init__(self, context: GpuContext, settings: DimensionSettings):
        self.context = context
        self.settings = settings
        self.model = load_model("models/smiley")
        self.arrays = mesh_arrays(self.model)
        self.source = texture_linear_rgb(model_texture(self.model))
        self._seen_masks: dict[tuple[int, int], np.ndarray] = {}
        self._fractions: dict[tuple[int, int], float] = {}

    def run(self, size: int, estimator: str, seed: int) -> dict:
        s = self.settings
        truth = resized_texture(self.source, size)
        start = np.full_like(truth, 0.5)
        albedo = TextureSet("albedo", start, Settings(s.texture_epsilon, s.texture_learning_rate, (0.0, 1.0)))
        mesh = Mesh(self.arrays["positions"], self.arrays["triangles"], uvs=self.arrays["uvs"],
                    normals=self.arrays["normals"], albedo=albedo)
        reference = ModelReference(self.model, albedo=float_texture(f"truth-{size}", truth), lit=mesh.lit)
        optimizer = Optimizer(self.context, mesh, reference, (s.resolution, s.resolution), estimator, seed,
                              steps_per_frame=s.steps_per_frame)
        try:
            seen = self._seen(size, seed, optimizer if estimator == "per-pixel" else None)
            steps = s.steps_for(self._fractions[(size, seed)])
            initial = _rmse(start, truth, seen)
            stream = views(seed, lit=True)
            started = time.perf_counter()
            _run_steps(optimizer, stream, steps, s.steps_per_frame)
            optimizer.sync()
            seconds = time.perf_counter() - started
            optimizer.finish()
            final = _rmse(albedo.texture_values(self.context), truth, seen)
        finally:
            optimizer.release()
        return {"params": albedo.count, "steps": steps, "initial_error": initial, "final_error": final,
                "seconds": seconds}

    def _seen(self, size: int, seed: int, optimizer=None) -> np.ndarray:
        """Texels that 8 held-out views name: each show() frame's per-pixel G counts
        them. The global estimator has no per-pixel G: a per-pixel optimizer of the
        same scene (lr 0) names them then; the mask is shared by both estimators."""
        key = (size, seed)
        if key in self._seen_masks:
            return self._seen_masks[key]
        own = optimizer is None
        if own:
            albedo = TextureSet("albedo", np.full((size, size, 3), 0.5, np.float32), Settings(0.03, 0.0, (0.0, 1.0)))
            mesh = Mesh(self.arrays["positions"], self.arrays["triangles"], uvs=self.arrays["uvs"],
                        normals=self.arrays["normals"], albedo=albedo)
            optimizer = Optimizer(self.context, mesh, ModelReference(self.model, lit=mesh.lit),
                                  (self.settings.resolution,) * 2, seed=seed)
        domain = optimizer.asset.albedo.domain
        seen = np.zeros((size, size), bool)
        held_out = views(seed + 10_000, lit=True)
        fractions = []
        try:
            for _ in range(HELD_OUT_VIEWS):
                optimizer.show(*next(held_out))
                _, counts = read_accumulator(self.context, domain, optimizer.step_index % 2)
                seen |= (counts > 0).reshape(seen.shape)
                fractions.append(float(np.mean(counts > 0)))
        finally:
            if own:
                optimizer.release()
        self._seen_masks[key] = seen
        self._fractions[key] = float(np.mean(fractions))  # named per step (steps_for)
        return seen


class GeometrySeries:
    """An icosphere of 10 * 4^k + 2 vertices fitted to its bumpy twin."""

    def __init__(self, context: GpuContext, settings: DimensionSettings):
        self.context = context
        self.settings = settings
        self._fractions: dict[tuple[int, int], float] = {}

    def _named_fraction(self, subdivisions: int, seed: int, optimizer=None) -> float:
        """Fraction of the vertices a per-pixel step names (held-out views; the global
        estimator's runs take the per-pixel optimizer's figure, from one made here)."""
        key = (subdivisions, seed)
        if key not in self._fractions:
            own = optimizer is None
            if own:
                directions, triangles = icosphere(subdivisions)
                colors = surface_colors(directions)
                mesh = Mesh(directions.astype(np.float32), triangles, colors, position_settings=Settings(0.02, 0.0))
                reference = geom_node("bumpy-sphere", directions * bump_radius(directions)[:, None], triangles, colors)
                optimizer = Optimizer(self.context, mesh, ModelReference(reference, lit=False),
                                      (self.settings.resolution,) * 2, seed=seed,
                                      supersampling=self.settings.supersampling, background=(0.5, 0.5, 0.5, 1.0))
            try:
                stream = (view for view, _ in views(seed + 10_000, lit=False))
                self._fractions[key] = named_fraction(optimizer, optimizer.asset.domain, stream)
            finally:
                if own:
                    optimizer.release()
        return self._fractions[key]

    def run(self, subdivisions: int, estimator: str, seed: int) -> dict:
        s = self.settings
        directions, triangles = icosphere(subdivisions)
        colors = surface_colors(directions)
        target = directions * bump_radius(directions)[:, None]
        start = directions.astype(np.float32)
        mesh = Mesh(start, triangles, colors, position_settings=Settings(s.position_epsilon, s.position_learning_rate))
        reference = geom_node("bumpy-sphere", target, triangles, colors)
        optimizer = Optimizer(self.context, mesh, ModelReference(reference, lit=mesh.lit), (s.resolution, s.resolution),
                              estimator, seed, supersampling=s.supersampling, background=(0.5, 0.5, 0.5, 1.0),
                              steps_per_frame=s.steps_per_frame)
        try:
            steps = s.steps_for(self._named_fraction(subdivisions, seed, optimizer if estimator == "per-pixel" else None)
                                if s.estimates_per_parameter is not None else 1.0)
            initial = radial_error(start)
            stream = (view for view, _ in views(seed, lit=False))
            started = time.perf_counter()
            _run_steps(optimizer, stream, steps, s.steps_per_frame)
            optimizer.sync()
            seconds = time.perf_counter() - started
            optimizer.finish()
            final = radial_error(mesh.positions.values(self.context))
        finally:
            optimizer.release()
        return {"params": mesh.positions.count, "steps": steps, "initial_error": initial, "final_error": final,
                "seconds": seconds}


def _run_steps(optimizer: Optimizer, stream, steps: int, per_frame: int) -> None:
    """``steps`` steps from the view stream, ``per_frame`` to an engine frame (the same
    results as one per frame: tests/test_cube.py)."""
    for first in range(0, steps, per_frame):
        optimizer.steps([next(stream) for _ in range(min(per_frame, steps - first))])


def radial_error(positions: np.ndarray) -> float:
    """Mean over vertices of | |v| - r_target(v / |v|) |."""
    positions = np.asarray(positions, np.float64)
    radius = np.linalg.norm(positions, axis=1)
    return float(np.mean(np.abs(radius - bump_radius(positions / radius[:, None]))))


def _rmse(values: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(values, np.float64)[mask] - truth[mask]) ** 2)))


# --- the experiment ----------------------------------------------------------------------
def run_dimension(out: Path, quick: bool = False, settings: DimensionSettings | None = None,
                  texture_sizes=None, subdivisions=None, estimators=ESTIMATORS,
                  context: GpuContext | None = None, include_rows=(), baseline_rows=()) -> list[dict]:
    """Both series with both estimators; writes OUT/dimension.csv and OUT/dimension.png
    (OUT/dimension_equal.* at equal estimates per parameter) and returns the rows.
    ``include_rows`` (earlier runs' rows, e.g. other sizes from another machine) are
    plotted with them; ``baseline_rows`` (e.g. the equal-compute runs) are drawn thin."""
    settings = settings or DimensionSettings()
    if texture_sizes is None:
        texture_sizes = QUICK_TEXTURE_SIZES if quick else TEXTURE_SIZES
    if subdivisions is None:
        subdivisions = QUICK_SUBDIVISIONS if quick else SUBDIVISIONS
    out = Path(out)
    started = time.perf_counter()
    own = context is None
    context = context or GpuContext.headless()
    rows: list[dict] = []
    series = [("texture", TextureSeries(context, settings), texture_sizes),
              ("geometry", GeometrySeries(context, settings), subdivisions)]
    for name, runner, sizes in series:
        for size in sizes:
            for estimator in estimators:
                for seed in range(settings.seeds):
                    result = runner.run(size, estimator, seed)
                    label = f"{size}^2" if name == "texture" else f"{10 * 4 ** size + 2} vertices"
                    rows.append({"series": name, "estimator": estimator, "size": label, "seed": seed,
                                 "resolution": settings.resolution, **result})
                    log(f"{name} {label} {estimator} seed {seed}: {result['params']} params, "
                        f"{result['steps']} steps, error "
                        f"{result['initial_error']:.4f} -> {result['final_error']:.4f} "
                        f"({result['seconds']:.1f} s; {time.perf_counter() - started:.0f} s total)")
    equal = settings.estimates_per_parameter is not None
    name = "dimension_equal" if equal else "dimension"
    write_csv(out / f"{name}.csv", rows)
    steps = (f"steps = {settings.estimates_per_parameter:g} / (fraction named per step)" if equal
             else f"{settings.steps} steps")
    write_plot(out / f"{name}.png", rows + list(include_rows), f"{steps}, {settings.seeds} seed(s), "
               f"{settings.resolution}^2 renders; {context.renderer.split(' (')[0]}", baseline_rows,
               "equal estimates per parameter" if equal else "equal compute")
    if own:
        context.release()
    log(f"dimension: {time.perf_counter() - started:.0f} s wall")
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    def write(stream):
        import io
        text = io.StringIO()
        writer = csv.DictWriter(text, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        stream.write(text.getvalue().encode())
    atomic_write(path, write)


def read_csv(path: Path) -> list[dict]:
    """Rows written by ``write_csv`` (numbers as numbers)."""
    rows = []
    with open(path, newline="") as stream:
        for row in csv.DictReader(stream):
            for key in ("params", "seed", "steps", "resolution"):
                row[key] = int(row[key])
            for key in ("initial_error", "final_error", "seconds"):
                row[key] = float(row[key])
            rows.append(row)
    return rows


# --- the plot (PIL; the style of report.py) -----------------------------------------------
BACKGROUND, INK, AXIS, GRID = (255, 255, 255), (40, 40, 40), (110, 110, 110), (225, 225, 225)
LINE_COLORS = {"per-pixel": (25, 65, 160), "global": (200, 70, 40)}


def write_plot(path: Path, rows: list[dict], subtitle: str = "", baseline_rows=(), mode: str = "") -> None:
    """One panel per series: final error (and the initial error, dotted) against the
    parameter count, log-log, one line per estimator (median over seeds); the
    ``baseline_rows``' final errors (another regime, e.g. equal compute) as thin lines
    with open markers."""
    series = [name for name in ("texture", "geometry") if any(r["series"] == name for r in rows)]
    panel_width, panel_height, margin = 420, 300, 12
    font = ImageFont.load_default()
    canvas = Image.new("RGB", (len(series) * (panel_width + margin) + margin, panel_height + 3 * margin + 30),
                       BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    title = "final error vs parameter count (per-pixel SGE vs global SPSA)" + (f", {mode}" if mode else "")
    draw.text((margin, margin // 2), title, fill=INK, font=font)
    draw.text((margin, margin // 2 + 14), subtitle, fill=AXIS, font=font)
    for index, name in enumerate(series):
        left = margin + index * (panel_width + margin)
        _panel(draw, font, (left, 3 * margin + 20, left + panel_width, 3 * margin + 20 + panel_height),
               [r for r in rows if r["series"] == name],
               "texture: RMSE of seen texels" if name == "texture" else "geometry: mean radial error",
               [r for r in baseline_rows if r["series"] == name])
    atomic_write(path, lambda stream: canvas.save(stream, format="PNG"))


def _curves(rows: list[dict]) -> dict[str, list[tuple[float, float, float]]]:
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for estimator in ESTIMATORS:
        points = []
        for params in sorted({r["params"] for r in rows if r["estimator"] == estimator}):
            mine = [r for r in rows if r["estimator"] == estimator and r["params"] == params]
            points.append((float(params), float(np.median([r["final_error"] for r in mine])),
                           float(np.median([r["initial_error"] for r in mine]))))
        if points:
            curves[estimator] = points
    return curves


def _panel(draw, font, box, rows, title, baseline_rows=()) -> None:
    left, top, right, bottom = box
    curves = _curves(rows)
    baseline = _curves(baseline_rows) if baseline_rows else {}
    plot_left, plot_right, plot_top, plot_bottom = left + 48, right - 8, top + 18, bottom - 30
    draw.text((left, top), title, fill=INK, font=font)
    xs = [p[0] for points in (*curves.values(), *baseline.values()) for p in points]
    ys = [v for points in (*curves.values(), *baseline.values()) for p in points for v in p[1:] if v > 0]
    if not xs or not ys:
        return
    x_low, x_high = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y_low, y_high = math.log10(min(ys)) - 0.05, math.log10(max(ys)) + 0.05
    if x_high == x_low:
        x_high += 1

    def point(x, y):
        px = plot_left + (plot_right - plot_left) * (math.log10(x) - x_low) / (x_high - x_low)
        py = plot_bottom - (plot_bottom - plot_top) * (math.log10(y) - y_low) / (y_high - y_low)
        return px, py

    for decade in range(x_low, x_high + 1):
        x = point(10.0 ** decade, 10.0 ** y_low)[0]
        draw.line([(x, plot_top), (x, plot_bottom)], fill=GRID)
        draw.text((x - 10, plot_bottom + 3), f"1e{decade}", fill=INK, font=font)
    for tick in _y_ticks(y_low, y_high):
        y = point(10.0 ** x_low, 10.0 ** tick)[1]
        draw.line([(plot_left, y), (plot_right, y)], fill=GRID)
        draw.text((left, y - 5), f"{10.0 ** tick:.2g}", fill=INK, font=font)
    draw.line([(plot_left, plot_top), (plot_left, plot_bottom), (plot_right, plot_bottom)], fill=AXIS)
    draw.text(((plot_left + plot_right) // 2 - 40, plot_bottom + 16), "parameters (log)", fill=INK, font=font)
    legend_y = plot_bottom - 14 * (len(curves) + len(baseline) + 1) - 4  # bottom right: clear of the rising lines
    for estimator, points in baseline.items():
        color = tuple((c + 2 * 255) // 3 for c in LINE_COLORS.get(estimator, INK))  # paler
        final = [point(x, y) for x, y, _ in points]
        draw.line(final if len(final) > 1 else final * 2, fill=color, width=1)
        for x, y in final:
            draw.ellipse([(x - 3, y - 3), (x + 3, y + 3)], outline=color)
        draw.line([(plot_right - 110, legend_y + 6), (plot_right - 90, legend_y + 6)], fill=color, width=1)
        draw.text((plot_right - 86, legend_y), f"{estimator}, equal compute", fill=INK, font=font)
        legend_y += 14
    for estimator, points in curves.items():
        color = LINE_COLORS.get(estimator, INK)
        final = [point(x, y) for x, y, _ in points]
        initial = [point(x, y) for x, _, y in points]
        for a, b in zip(initial, initial[1:]):  # dotted: the starting error
            for k in range(0, 10, 2):
                draw.line([(a[0] + (b[0] - a[0]) * k / 10, a[1] + (b[1] - a[1]) * k / 10),
                           (a[0] + (b[0] - a[0]) * (k + 1) / 10, a[1] + (b[1] - a[1]) * (k + 1) / 10)],
                          fill=color, width=1)
        draw.line(final if len(final) > 1 else final * 2, fill=color, width=2)
        for x, y in final:
            draw.ellipse([(x - 3, y - 3), (x + 3, y + 3)], fill=color)
        draw.line([(plot_right - 110, legend_y + 6), (plot_right - 90, legend_y + 6)], fill=color, width=2)
        draw.text((plot_right - 86, legend_y), f"{estimator}, equal estimates" if baseline else f"{estimator} final",
                  fill=INK, font=font)
        legend_y += 14
    draw.text((plot_right - 86, legend_y), "dotted: initial", fill=AXIS, font=font)


def _y_ticks(low: float, high: float) -> list[float]:
    """Tick values (log10 positions) at 1, 2, 5 x 10^k inside [low, high]."""
    ticks = []
    for decade in range(math.floor(low), math.ceil(high) + 1):
        for m in (1, 2, 5):
            value = math.log10(m) + decade
            if low <= value <= high:
                ticks.append(value)
    return ticks if len(ticks) >= 2 else [low, high]


# --- what epsilon and the learning rate do ---------------------------------------------------
SWEEP_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def run_sweep(out: Path, texture_size: int = 64, subdivisions: int = 3, settings: DimensionSettings | None = None,
              context: GpuContext | None = None) -> list[dict]:
    """Per-pixel final error with epsilon, then the learning rate, scaled by SWEEP_FACTORS
    (the other at its default), on one texture size and one sphere; OUT/sweep.csv."""
    from dataclasses import replace
    base = settings or DimensionSettings()
    context = context or GpuContext.headless()
    rows = []
    for knob in ("epsilon", "learning_rate"):
        for factor in SWEEP_FACTORS:
            if knob == "epsilon":
                s = replace(base, texture_epsilon=base.texture_epsilon * factor,
                            position_epsilon=base.position_epsilon * factor)
            else:
                s = replace(base, texture_learning_rate=base.texture_learning_rate * factor,
                            position_learning_rate=base.position_learning_rate * factor)
            for name, runner, size in (("texture", TextureSeries(context, s), texture_size),
                                       ("geometry", GeometrySeries(context, s), subdivisions)):
                result = runner.run(size, "per-pixel", 0)
                rows.append({"series": name, "knob": knob, "factor": factor,
                             "epsilon": s.texture_epsilon if name == "texture" else s.position_epsilon,
                             "learning_rate": s.texture_learning_rate if name == "texture" else s.position_learning_rate,
                             **result})
                log(f"sweep {name} {knob} x{factor}: error {result['initial_error']:.4f} -> {result['final_error']:.4f}")
    text = "series,knob,factor,epsilon,learning_rate,params,initial_error,final_error\n" + "".join(
        f"{r['series']},{r['knob']},{r['factor']},{r['epsilon']:.5g},{r['learning_rate']:.5g},{r['params']},"
        f"{r['initial_error']:.5g},{r['final_error']:.5g}\n" for r in rows)
    atomic_write(Path(out) / "sweep.csv", lambda stream: stream.write(text.encode()))
    return rows
