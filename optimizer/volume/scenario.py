"""The volume scenario, as SPEC.md defines it ("volume").

Truth: an emission-absorption volume in [-1, 1]^3, sigma(x) = sum_k a_k exp(-|x - c_k|^2 /
(2 s_k^2)) with c, s, a drawn in that order from numpy.random.default_rng(2024), colour
0.5 + 0.5 sin(3x + (0, 2, 4)). Image: step 1/64 along the ray inside the cube, the first
sample jittered per pixel (shared by theta+, theta- and the reference in a step), black
background. Optimised: an N^3 grid of sigma >= 0 and RGB, start sigma 1, RGB 0.5. Views:
camera at distance 4 in a random direction looking at the origin, random roll, tan(half
fov) 0.4; training cameras from default_rng(0), 16 held-out ones from default_rng(7).
Metrics: psnr_views (held out, jitter 1/2, pixels whose ray meets the cube), density_rmse
(at voxel centres), ms_per_step, params.

Coarse to fine (VolumeSettings.levels): the grid starts at a coarser size and its theta is
upsampled (trilinearly, at the finer voxel centres) to the next size at fixed fractions of
the run; every level's optimizer is built before the clock starts.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .. import gpu
from ..errors import SgeError
from ..gpu import GpuContext, read_texture
from ..images import linear_to_srgb8
from ..metrics import psnr_covered
from ..parameters import Settings
from ..sge import Optimizer
from ..view import perspective
from .kind import AnalyticVolume, VolumeGrid, jitter_input

CAMERA_DISTANCE = 4.0
TAN_HALF_FOV = 0.4
HELD_OUT_VIEWS = 16
TRAINING_SEED, HELD_OUT_SEED, TRUTH_SEED = 0, 7, 2024
START_DENSITY, START_COLOR = 1.0, 0.5
HELD_OUT_JITTER = 0.5


def truth_parameters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres (8, 3), scales (8,), amplitudes (8,)) of SPEC's truth, drawn in that order."""
    rng = np.random.default_rng(TRUTH_SEED)
    centres = rng.uniform(-0.5, 0.5, (8, 3))
    scales = rng.uniform(0.1, 0.3, 8)
    amplitudes = rng.uniform(5, 25, 8)
    return centres, scales, amplitudes


def truth_density(points: np.ndarray) -> np.ndarray:
    """sigma at (..., 3) points."""
    centres, scales, amplitudes = truth_parameters()
    squared = ((points[..., None, :] - centres) ** 2).sum(-1)
    return (amplitudes * np.exp(-squared / (2.0 * scales ** 2))).sum(-1)


def truth_color(points: np.ndarray) -> np.ndarray:
    """Linear RGB at (..., 3) points."""
    return 0.5 + 0.5 * np.sin(3.0 * points + np.array([0.0, 2.0, 4.0]))


def voxel_centres(size: int) -> np.ndarray:
    """(N, N, N, 3) centres (x, y, z) of the voxels of an N^3 grid, indexed [z, y, x]."""
    axis = -1.0 + (2.0 * np.arange(size) + 1.0) / size
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([x, y, z], axis=-1)


def camera(rng: np.random.Generator) -> np.ndarray:
    """SPEC's camera from a generator: d = normalize(normal(3)), eye = 4 d, up = normal(3)
    made orthogonal to d; the model-view-projection (column vectors) looking at the origin."""
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    up = rng.normal(size=3)
    up -= up.dot(d) * d
    up /= np.linalg.norm(up)
    right = np.cross(-d, up)  # forward x up
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, up, d  # the camera looks down -z (= -d)
    view[:3, 3] = -view[:3, :3] @ (CAMERA_DISTANCE * d)
    return perspective(TAN_HALF_FOV) @ view


def training_views(seed: int = TRAINING_SEED):
    rng = np.random.default_rng(seed)
    while True:
        yield camera(rng)


def held_out_views() -> list[np.ndarray]:
    rng = np.random.default_rng(HELD_OUT_SEED)
    return [camera(rng) for _ in range(HELD_OUT_VIEWS)]


def upsample(values: np.ndarray, size: int) -> np.ndarray:
    """(n, n, n, C) values at voxel centres -> (size, size, size, C), trilinear at the new
    centres with the clamp-to-edge the renderer's sampler uses."""
    n = values.shape[0]
    coordinates = (np.arange(size) + 0.5) * n / size - 0.5
    low = np.clip(np.floor(coordinates).astype(int), 0, n - 1)
    high = np.clip(low + 1, 0, n - 1)
    fraction = np.clip(coordinates - np.floor(coordinates), 0.0, 1.0)
    fraction = np.where(coordinates < 0, 0.0, np.where(coordinates > n - 1, 1.0, fraction))
    for axis in range(3):
        shape = [1, 1, 1, 1]
        shape[axis] = size
        f = fraction.reshape(shape)
        values = np.take(values, low, axis) * (1 - f) + np.take(values, high, axis) * f
    return values


def coarse_to_fine_levels(size: int) -> tuple[tuple, tuple]:
    """Coarse to fine for a grid of ``size``: (the coarser sizes 16, 32, ... below it,
    where each later level starts as a fraction of the run). 64^3: 16^3 over the first
    15%, 32^3 to 40%, 64^3 after; 32^3: 16^3 over the first 30%."""
    sizes = tuple(level for level in (8, 16, 32, 64, 128) if level < size and level >= min(16, size // 2))
    starts = {0: (), 1: (0.3,), 2: (0.15, 0.4), 3: (0.1, 0.25, 0.5), 4: (0.05, 0.15, 0.3, 0.5)}[len(sizes)]
    return sizes, starts


def default_levels(size: int) -> tuple[tuple, tuple]:
    """The schedule ``sge bench volume`` runs without --(no-)coarse-to-fine: coarse to fine
    (16^3 at 32^2, 600 steps: 23.9 dB from 8^3 over the first 30%, 23.3 dB without)."""
    return coarse_to_fine_levels(size)


@dataclass
class VolumeSettings:
    """The SGE choices for the volume (the scenario is SPEC's); defaults measured in
    docs/BENCHMARKS.md."""

    density_epsilon: float = 0.2
    # Twice the rates of every-voxel perturbation: a voxel is updated in 1 step in
    # ``sparse`` of its turns (32^3 at 64^2, 2000 steps, sparse 8: 30.1 dB, 29.4 at 0.1 / 0.02).
    density_learning_rate: float = 0.2
    color_epsilon: float = 0.03
    color_learning_rate: float = 0.04
    # Coarse to fine: the coarser grid sizes, run from the start in turn (those not below
    # the requested grid are skipped), and where each later level starts, as fractions of
    # the run (steps, or seconds with a time budget): level_starts[k] for the (k+1)-th
    # level, the requested grid last. () runs the requested grid from the start.
    levels: tuple | None = None  # None: default_levels(size)
    level_starts: tuple = ()
    # The loss on sRGB-encoded pixels, the space of psnr_views: the volume's faint
    # fringes weigh as the metric weighs them (16^3 at 32^2, 600 steps: 23.3 dB, 22.4 linear).
    loss_space: str = "srgb"
    betas: tuple = (0.9, 0.999)
    # Density and colour perturbed in turns: a density's eps changes a pixel ~5x more than a
    # colour's, and drowned the colours' signal perturbed together (16^3 at 32^2, 600
    # steps: 22.4 dB in turns, 19.6 together).
    color_group: int = 1
    # The learning rate decays to this factor over the run (steps; with a time budget, the
    # steps it is expected to hold), geometrically. At 32^3 a constant rate lets the
    # estimate's noise walk the grid away again (2000 steps, 32^2 -> 64^2: 25.2 dB at step
    # 1000 with 0.2, 24.4 without; the fit with 1.0 fell after the switch to 32^3).
    learning_rate_decay: float = 0.2
    # The sparsity term: sigma shrinks by this after each density update (kind.py).
    sparsity: float = 0.0
    # Voxels share their perturbation sign in randomly shifted block^3 cubes (kind.py:
    # block_perturbation), a smoothed gradient with less noise; 1: each voxel its own.
    # (16^3 at 32^2, 600 steps: 24.6 dB with 2, 23.9 with 1, 23.3 with 4.)
    block: int = 2
    # Sparse perturbation: only one block in this many is perturbed (and updated) per step,
    # chosen by a hash (kind.py: sparse_perturbation); 1 perturbs every voxel. A pixel's
    # Delta_p carries the perturbations of every voxel its ray crosses; perturbing 1/8 of
    # them cuts that crosstalk 8x while a perturbed voxel keeps its own term, and G's
    # atomics fall 8x (32^3 at 64^2, 2000 steps: 29.4 dB with 8, 24.9 with 1, which
    # plateaued from step 1000).
    sparse: int = 8
    # Iterate averaging (Settings.average_eta; None: off): the evaluation and the saved grid
    # use P's polynomial-decay average of theta over about the last 1 / (eta + 1) of a
    # level's updates; the steps themselves are unchanged.
    average_eta: float | None = None


@dataclass
class Checkpoint:
    steps: int
    seconds: float
    psnr_views: float
    density_rmse: float


class VolumeScenario:
    """The volume fit on one GL context at grid ``size`` and images ``resolution``^2."""

    def __init__(self, context: GpuContext, size: int = 64, resolution: int = 128,
                 settings: VolumeSettings | None = None, steps_per_frame: int = 1):
        self.context = context
        self.size = size
        self.resolution = resolution
        self.settings = s = settings or VolumeSettings()
        self.jitter = jitter_input()
        self.reference = AnalyticVolume(*truth_parameters(), jitter=self.jitter)
        levels, level_starts = (s.levels, s.level_starts) if s.levels is not None else default_levels(size)
        sizes = [level for level in levels if level < size] + [size]
        starts = list(level_starts)[-(len(sizes) - 1):] if len(sizes) > 1 else []
        if len(starts) != len(sizes) - 1:
            raise SgeError(f"coarse to fine: {len(sizes) - 1} later levels need as many starts, got {s.level_starts}")
        self.starts = [0.0] + starts
        self.levels = []
        for level in sizes:
            n = level
            grid = VolumeGrid(np.full((n, n, n), START_DENSITY, np.float32), np.full((n, n, n, 3), START_COLOR, np.float32),
                              Settings(s.density_epsilon, s.density_learning_rate, (0.0, np.inf), s.betas,
                                       average_eta=s.average_eta),
                              Settings(s.color_epsilon, s.color_learning_rate, (0.0, 1.0), s.betas, group=s.color_group,
                                       average_eta=s.average_eta),
                              jitter=self.jitter, sparsity=s.sparsity,
                              block=s.block, sparse=s.sparse)
            optimizer = Optimizer(context, grid, self.reference, (resolution, resolution), loss_space=s.loss_space,
                                  learning_rate_schedule=self._schedule,
                                  steps_per_frame=steps_per_frame, clear_every_step=False)
            optimizer.set_active(False)
            self.levels.append((grid, optimizer))
        self.grid, self.optimizer = self.levels[-1]
        self.held_out = held_out_views()
        self.horizon = 1.0        # the run's expected steps (the schedule's length)
        self.steps_before = 0     # steps of the earlier levels (the schedule runs across levels)

    def _schedule(self, step: int) -> float:
        progress = min(1.0, max(0, self.steps_before + step) / self.horizon)
        return self.settings.learning_rate_decay ** progress

    @property
    def params(self) -> int:
        return 4 * self.size ** 3

    def _activate(self, index: int, previous=None) -> None:
        grid, optimizer = self.levels[index]
        for _, other in self.levels:
            other.set_active(other is optimizer)
        if previous is not None:
            density, color = previous.grid(self.context)
            grid.load(upsample(density[..., None], grid.size)[..., 0], upsample(color, grid.size))
        self.grid, self.optimizer = grid, optimizer

    def warm_up(self) -> None:
        """One frame of every level (shader compilation, uploads), before the clock starts."""
        views = training_views(12345)
        for index in range(len(self.levels)):
            self._activate(index)
            self.optimizer.step(next(views))
            self.optimizer.sync()

    def reset(self, seed: int = 0) -> None:
        for grid, optimizer in self.levels:
            n = grid.size
            grid.load(np.full((n, n, n), START_DENSITY, np.float32), np.full((n, n, n, 3), START_COLOR, np.float32))
            optimizer.reset(seed)
        self._activate(0)

    def run(self, steps: int | None = None, seconds: list[float] | None = None, report_steps=(),
            seed: int = 0, chunk: int = 50, progress=None) -> list[Checkpoint]:
        """Fit for ``steps`` steps (report at ``report_steps`` and the end) or, with
        ``seconds``, until the last of those stepping times (report at each). Stepping time
        excludes start-up and the evaluations; the loop syncs with the GPU before it reads
        the clock."""
        self.jitter[0] = -1.0
        self.warm_up()
        self.reset(seed)
        views = training_views(TRAINING_SEED + seed)
        checkpoints: list[Checkpoint] = []
        elapsed, done, level = 0.0, 0, 0
        by_time = seconds is not None
        marks = sorted(seconds) if by_time else sorted({s for s in report_steps if s < steps} | {steps})
        total = marks[-1]
        rate = None  # seconds per step, measured
        self.horizon, self.steps_before = float(steps or 1), 0
        while marks:
            # The next level's start, as a fraction of the run.
            next_level = self.starts[level + 1] * total if level + 1 < len(self.levels) else None
            target = marks[0] if next_level is None else min(marks[0], next_level)
            if by_time:
                # Aim at the next mark; at most ~1 s between the clock's readings (syncs).
                count = chunk if rate is None else max(1, min(int((target - elapsed) / rate) + 1,
                                                              max(chunk, int(1.0 / rate))))
            else:
                count = max(1, min(math.ceil(target) - done, chunk))
            started = time.perf_counter()
            self.optimizer.steps([next(views) for _ in range(count)])
            self.optimizer.sync()
            spent = time.perf_counter() - started
            elapsed += spent
            done += count
            rate = spent / count if rate is None else 0.7 * rate + 0.3 * spent / count
            if by_time:
                self.horizon = done + max(0.0, total - elapsed) / rate
            position = elapsed if by_time else done
            if next_level is not None and position >= next_level:
                started = time.perf_counter()
                self.optimizer.finish()
                previous = self.grid
                level += 1
                self._activate(level, previous)
                self.optimizer.reset(seed + level)
                self.steps_before = done
                rate = None  # a finer level's steps are slower: measure them afresh
                elapsed += time.perf_counter() - started  # the upsampling is part of the run
            while marks and position >= marks[0]:
                marks.pop(0)
                checkpoints.append(self.checkpoint(done, elapsed))
                if progress:
                    progress(checkpoints[-1])
        return checkpoints

    def checkpoint(self, steps: int, seconds: float) -> Checkpoint:
        self.optimizer.finish()
        metrics = self.evaluate()
        self.jitter[0] = -1.0
        return Checkpoint(steps, seconds, metrics["psnr_views"], metrics["density_rmse"])

    def output_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The grid the run outputs (sigma (N, N, N), colour (N, N, N, 3)): the iterate
        average where VolumeSettings.average_eta is set, else theta."""
        with self._output_theta():
            return self.grid.grid(self.context)

    @contextmanager
    def _output_theta(self):
        """theta replaced by the output (the iterate average) for renders and read-backs
        inside, restored after (the average is kept on the GPU by P; two uploads per set)."""
        self.optimizer.finish()
        saved = []
        if self.settings.average_eta is not None:
            for part in self.grid.parameter_sets:
                saved.append((part, part.values(self.context)))
                gpu.upload(part.theta, part.output_values(self.context))
        try:
            yield
        finally:
            for part, theta in saved:
                gpu.upload(part.theta, theta)

    def evaluate(self) -> dict:
        """psnr_views over the 16 held-out views (jitter 1/2, pixels whose ray meets the
        cube, 8-bit sRGB) and density_rmse at the voxel centres of the output grid."""
        with self._output_theta():
            return self._evaluate()

    def _evaluate(self) -> dict:
        self.jitter[0] = HELD_OUT_JITTER
        scores = []
        for view in self.held_out:
            current, reference = self.optimizer.snapshot(view)
            covered = (read_texture(self.context, self.optimizer.plus_pass.sample)[..., 0] > 0.5) | \
                      (read_texture(self.context, self.optimizer.reference_pass.sample)[..., 0] > 0.5)
            scores.append(psnr_covered(linear_to_srgb8(current[..., :3]), linear_to_srgb8(reference[..., :3]), covered))
        self.jitter[0] = -1.0
        density, _ = self.grid.grid(self.context)
        truth = truth_density(voxel_centres(self.grid.size))
        return {"psnr_views": float(np.mean(scores)),
                "density_rmse": float(np.sqrt(np.mean((density - truth) ** 2)))}
