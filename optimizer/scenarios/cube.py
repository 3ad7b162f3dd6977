"""The cube: nvdiffrast's standard mesh-fitting test, as SPEC.md defines it.

A unit cube (corners at +-0.5, 12 triangles) with per-vertex colors corner + 0.5 is the
truth. The optimised cube starts with every coordinate moved by U(-0.5, 0.5) and colors
U(0, 1). Each step sees it under a uniformly random rotation and a translation
U(-0.25, 0.25) per axis, from a camera at distance 3.5 with tan(half fov) = 0.4. Adam,
lr 1e-2 decayed by max(0.01, 10^(-0.0005 step)), L2 image loss. Error: the mean over
vertices of || |v| - 0.5 ||.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..gpu import GpuContext
from ..surface.mesh import Mesh, ModelReference, geom_node
from ..parameters import Settings
from ..sge import Optimizer
from ..view import perspective, random_rotation, translation

CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], np.float32)
# Two triangles per face; vertex i has coordinates from the bits of i (x = bit 2).
TRIANGLES = np.array([
    [0, 1, 3], [0, 3, 2],   # x = -0.5
    [4, 6, 7], [4, 7, 5],   # x = +0.5
    [0, 4, 5], [0, 5, 1],   # y = -0.5
    [2, 3, 7], [2, 7, 6],   # y = +0.5
    [0, 2, 6], [0, 6, 4],   # z = -0.5
    [1, 5, 7], [1, 7, 3],   # z = +0.5
], np.int32)
COLORS = CORNERS + 0.5

CAMERA_DISTANCE = 3.5
TAN_HALF_FOV = 0.4
LEARNING_RATE = 1e-2
REPORT_STEPS = (100, 300, 1000, 2000, 4000, 8000, 16000)  # and a run's last step


def dense_report_steps(steps: int, factor: float = 1.2) -> tuple[int, ...]:
    """REPORT_STEPS and a geometric grid from 100 (x ``factor``) up to ``steps``: for
    error against stepping time."""
    grid, value = set(REPORT_STEPS), 100.0
    while value < steps:
        grid.add(int(round(value)))
        value *= factor
    return tuple(sorted(s for s in grid if s <= steps))


def learning_rate_schedule(step: int, floor: float = 0.01) -> float:
    """SPEC.md's decay, max(0.01, 10^(-0.0005 step)) (``floor`` 0.01)."""
    return max(floor, 10.0 ** (-0.0005 * step))


def geometric_error(positions: np.ndarray) -> float:
    """Mean over vertices of || |v| - 0.5 || (0 for a perfect cube)."""
    return float(np.mean(np.linalg.norm(np.abs(positions) - 0.5, axis=1)))


@dataclass
class CubeSettings:
    """The SGE choices for the cube (the scenario itself is fixed by SPEC.md); defaults are
    the best of the sweeps in docs/BENCHMARKS.md (4 seeds x 1000 steps at R = 64; the
    noise-floor knobs at the end: 2-3 seeds x 8000 steps)."""

    # Geometry: 0.04, about a pixel's footprint at R = 64 (2 * 3.5 * 0.4 / 64 = 0.044).
    # The same world-space epsilon beat one scaled with the pixel footprint at R = 16,
    # 256 and 1024 (docs/BENCHMARKS.md). It shrinks with the learning-rate schedule
    # (epsilon_decay = 1: eps * schedule(step)).
    position_epsilon: float = 0.04
    color_epsilon: float = 0.03
    epsilon_decay: float = 1.0
    epsilon_floor: float = 0.0                    # epsilon scale = max(floor, schedule^decay)
    learning_rate: float = LEARNING_RATE          # SPEC.md's Adam lr, for the geometry
    color_learning_rate: float = 0.03             # colors converge faster and steady the geometry
    betas: tuple[float, float] = (0.9, 0.999)
    color_group: int = 0                          # perturb colors and positions together
    barycentric_weights: bool = True
    weight_power: float = 2.0
    # Loss on 3x3-supersampled, box-filtered pixels: smooth in a silhouette position
    # (4x4 fits as well but costs 40% more per step on llvmpipe).
    supersampling: int = 3
    # Mid-gray: equidistant from every vertex color of the RGB cube, so every silhouette
    # has contrast (on black, the black corner's silhouette has none and it stalls).
    background: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 1.0)
    # --- the noise floor (issue 24; docs/BENCHMARKS.md, "The cube's noise floor") ---------
    # SPEC.md's decay 10^(-0.0005 step) continued to 0.001 (SPEC's own floor is 0.01): with
    # SGE's noisy estimates Adam's steps stay about lr long, so the iterate jitters about
    # the optimum by a multiple of lr; epsilon follows the same schedule.
    learning_rate_floor: float = 0.001
    # Output the iterate average (Settings.average_eta; None: the raw iterate theta): a
    # polynomial-decay average over about the last 1/9 of the steps.
    average_eta: float | None = 8.0
    # G's fixed-point sums rounded with a hashed dither (gradient_vertices.comp): once
    # epsilon is small, the terms w_p Delta_p fall below the 2^-24 quantum, and rounding to
    # nearest dropped them (a dead zone near the optimum).
    dithered_sums: bool = True
    # Sub-samples whose coverage flips between theta+ and theta- weigh (epsilon scale)^0.5
    # in the geometry's sums: their Delta is a whole sub-sample's, large and rare once
    # epsilon is small, the interior pixels' smooth Delta the better signal then.
    flip_weight_power: float | None = 0.5
    # G's sums scaled by 1 / epsilon scale (at most 100x), the other way past the quantum
    # (measured: not better than the dither; off).
    epsilon_gain: bool = False


class CubeScenario:
    """The cube fit on one GL context; ``run(seed, steps)`` may be called repeatedly."""

    def __init__(self, context: GpuContext, resolution: int, estimator: str = "per-pixel",
                 settings: CubeSettings | None = None, steps_per_frame: int = 1):
        self.settings = settings or CubeSettings()
        self.context = context
        self.resolution = resolution
        self.projection = perspective(TAN_HALF_FOV)
        s = self.settings
        self.mesh = Mesh(CORNERS, TRIANGLES, COLORS,
                         position_settings=Settings(s.position_epsilon, s.learning_rate, betas=s.betas, group=0,
                                                    average_eta=s.average_eta),
                         color_settings=Settings(s.color_epsilon, s.color_learning_rate, (0.0, 1.0), s.betas,
                                                 group=s.color_group, average_eta=s.average_eta),
                         barycentric_weights=s.barycentric_weights, weight_power=s.weight_power)
        if s.epsilon_gain:
            self.mesh.domain.gradient_defines["EPSILON_GAIN"] = True
        if s.dithered_sums:
            self.mesh.domain.gradient_defines["DITHERED_SUMS"] = True
        if s.flip_weight_power is not None:
            self.mesh.domain.gradient_defines["FLIP_WEIGHT_POWER"] = f"{float(s.flip_weight_power):.6f}"
        reference = geom_node("cube-reference", CORNERS, TRIANGLES, COLORS)
        self.optimizer = Optimizer(context, self.mesh, ModelReference(reference, lit=self.mesh.lit),
                                   (resolution, resolution), estimator,
                                   learning_rate_schedule=lambda step: learning_rate_schedule(step, s.learning_rate_floor),
                                   epsilon_schedule=lambda step: max(
                                       s.epsilon_floor, learning_rate_schedule(step, s.learning_rate_floor) ** s.epsilon_decay),
                                   supersampling=s.supersampling, background=tuple(s.background),
                                   steps_per_frame=steps_per_frame, clear_every_step=False)

    def initial_state(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        positions = CORNERS + rng.uniform(-0.5, 0.5, CORNERS.shape)
        colors = rng.uniform(0.0, 1.0, COLORS.shape)
        return positions.astype(np.float32), colors.astype(np.float32)

    def views(self, seed: int):
        """The endless stream of random step views of a run."""
        rng = np.random.default_rng([seed, 1])
        camera = self.projection @ translation(0, 0, -CAMERA_DISTANCE)
        while True:
            offset = rng.uniform(-0.25, 0.25, 3)
            model = random_rotation(rng)
            model[:3, 3] = offset  # = translation(*offset) @ the rotation, exactly
            yield camera @ model

    def run(self, seed: int, steps: int, report_steps=REPORT_STEPS, progress=None,
            until_seconds: float | None = None) -> "CubeRun":
        """A run of ``steps`` steps from seed ``seed``'s start: the error (of the output,
        ``ParameterSet.output_values``) and the stepping seconds so far (GPU-synced) at
        each of ``report_steps`` it reaches and at its last step. With ``until_seconds``
        the run stops at the first report step reached after that much stepping time."""
        positions, colors = self.initial_state(seed)
        self.mesh.positions.load(positions)
        self.mesh.colors.load(colors)
        self.optimizer.reset(seed)
        views = self.views(seed)
        errors: dict[int, float] = {}
        iterate_errors: dict[int, float] = {}
        seconds_at: dict[int, float] = {}
        checkpoints = sorted({s for s in report_steps if 0 < s <= steps} | {steps})
        stepping_seconds = 0.0
        done = 0
        for checkpoint in checkpoints:
            start = time.perf_counter()
            self.optimizer.steps([next(views) for _ in range(checkpoint - done)])
            self.optimizer.sync()
            stepping_seconds += time.perf_counter() - start
            done = checkpoint
            self.optimizer.finish()
            errors[checkpoint] = geometric_error(self.mesh.positions.output_values(self.context))
            iterate_errors[checkpoint] = geometric_error(self.mesh.positions.values(self.context))
            seconds_at[checkpoint] = stepping_seconds
            if progress:
                progress(seed, checkpoint, errors[checkpoint])
            if until_seconds is not None and stepping_seconds >= until_seconds:
                break
        return CubeRun(seed, done, errors, stepping_seconds,
                       self.mesh.positions.output_values(self.context), self.mesh.colors.output_values(self.context),
                       iterate_errors, seconds_at)


@dataclass
class CubeRun:
    seed: int
    steps: int
    errors: dict[int, float]
    seconds: float
    positions: np.ndarray = field(repr=False)
    colors: np.ndarray = field(repr=False)
    # The raw iterate theta's error (= errors without iterate averaging) and the stepping
    # seconds at each report step.
    iterate_errors: dict[int, float] = field(default_factory=dict)
    seconds_at: dict[int, float] = field(default_factory=dict)

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.seconds / max(1, self.steps)
