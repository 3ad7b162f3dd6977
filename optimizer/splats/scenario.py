"""SPEC's "splats" scenario: Gaussian splats fitted to images of Panda3D's ``models/panda``.

- truth: the panda drawn unlit (its albedo only) on black; 200 training cameras from
  ``default_rng(0)`` and 16 held-out ones from ``default_rng(7)``, each a direction
  normalize(rng.normal(size=3)) on a sphere of 2.5 x the bounding radius around the
  bounding-sphere centre, looking at it, +Z up, tan(half fov) = 0.4, R x R pixels.
- splats: N (default 30,000), started on the surface (means sampled by area, colour the
  albedo there, isotropic scale the mean distance to the 3 nearest neighbours, opacity
  0.5, identity rotation); the standard 3DGS forward model (splat.glsl).
- metrics: psnr_views and ssim_views over the held-out cameras (all pixels, 8-bit sRGB),
  at step 0 and at the end (and, asked, at given times of stepping).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SgeError
from ..gpu import GpuContext
from ..images import atomic_write, linear_to_srgb8
from ..metrics import psnr, ssim_covered
from ..sge import Optimizer
from ..source import SourceMesh, load_source, reference_model
from ..surface.mesh import ModelReference
from ..surface.texture import float_texture
from ..view import perspective
from .kind import SH_C0, Splats, SplatSettings

SOURCE = "models/panda"
TAN_HALF_FOV = 0.4
CAMERA_DISTANCE = 2.5   # x the bounding radius
TRAIN_CAMERAS, TRAIN_SEED = 200, 0
TEST_CAMERAS, TEST_SEED = 16, 7
DEFAULT_SPLATS = 30_000
DEFAULT_RESOLUTION = 256
BACKGROUND = (0.0, 0.0, 0.0, 0.0)  # black, and alpha 0: "under" blending starts from an empty pixel


def camera_directions(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    directions = []
    for _ in range(count):
        d = rng.normal(size=3)
        directions.append(d / np.linalg.norm(d))
    return np.array(directions)


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """An OpenGL view matrix (camera looking down its -Z, +Y up): world -> eye."""
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:  # looking straight along +-Z: any right will do
        right = np.cross(forward, (0.0, 1.0, 0.0))
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, true_up, -forward
    view[:3, 3] = -view[:3, :3] @ eye
    return view


@dataclass
class Camera:
    view: np.ndarray        # world -> eye (4x4)
    projection: np.ndarray

    @property
    def model_view_projection(self) -> np.ndarray:
        return self.projection @ self.view

    @property
    def camera_to_world(self) -> np.ndarray:
        """The NeRF / Blender transform_matrix (the camera looks down its -Z, +Y up)."""
        return np.linalg.inv(self.view)


def scenario_cameras(center: np.ndarray, radius: float, seed: int, count: int) -> list[Camera]:
    distance = CAMERA_DISTANCE * radius
    projection = perspective(TAN_HALF_FOV, near=0.1 * radius, far=6.0 * radius)
    return [Camera(look_at(center + distance * d, center), projection) for d in camera_directions(seed, count)]


def surface_samples(mesh: SourceMesh, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points on the surface, by area, and the linear albedo there (texture x
    base colour x vertex colour; the texel nearest the point's UV)."""
    corners = mesh.positions[mesh.triangles].astype(np.float64)
    areas = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    triangles = rng.choice(len(areas), size=count, p=areas / areas.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    bary = np.stack([1.0 - u - v, u, v], axis=1)
    picked = mesh.triangles[triangles]
    points = np.einsum("nk,nkd->nd", bary, mesh.positions[picked].astype(np.float64))
    uvs = np.einsum("nk,nkd->nd", bary, mesh.uvs[picked].astype(np.float64))
    colors = np.einsum("nk,nkd->nd", bary, mesh.colors[picked].astype(np.float64))
    albedo = np.ones((count, 3))
    material = mesh.material_index[triangles]
    for index, m in enumerate(mesh.materials):
        chosen = material == index
        albedo[chosen] *= m.base_color
        if m.texture is not None and chosen.any():
            height, width = m.texture.shape[:2]
            x = np.floor(np.mod(uvs[chosen, 0], 1.0) * width).astype(int).clip(0, width - 1)
            y = np.floor(np.mod(uvs[chosen, 1], 1.0) * height).astype(int).clip(0, height - 1)
            albedo[chosen] *= m.texture[y, x, :3]
    return points, np.clip(albedo * colors, 0.0, 1.0)


def mean_neighbour_distance(points: np.ndarray, neighbours: int = 3, chunk: int = 1024) -> np.ndarray:
    """Each point's mean distance to its ``neighbours`` nearest others (brute force in
    chunks: no spatial index needed at these sizes)."""
    points = np.asarray(points, np.float64)
    squared = (points ** 2).sum(axis=1)
    result = np.empty(len(points))
    k = min(neighbours, len(points) - 1)
    for first in range(0, len(points), chunk):
        block = points[first:first + chunk]
        d2 = squared[first:first + chunk, None] + squared[None, :] - 2.0 * block @ points.T
        d2[np.arange(len(block)), np.arange(first, first + len(block))] = np.inf
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]
        result[first:first + chunk] = np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)
    return result


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def initial_splats(mesh: SourceMesh, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """SPEC's start, in the .ply's form: means on the surface, f_dc from the albedo there
    (as a display value: 3DGS colours are the images' sRGB values), log of the mean
    distance to the 3 nearest neighbours, opacity logit 0 (0.5), identity quaternion."""
    rng = np.random.default_rng(seed)
    points, albedo = surface_samples(mesh, count, rng)
    scale = np.maximum(mean_neighbour_distance(points), 1e-7)
    rotations = np.zeros((count, 4))
    rotations[:, 0] = 1.0
    return {
        "means": points.astype(np.float32),
        "log_scales": np.repeat(np.log(scale)[:, None], 3, axis=1).astype(np.float32),
        "rotations": rotations.astype(np.float32),
        "opacities": np.zeros((count, 1), np.float32),
        "colors": ((srgb_encode(albedo) - 0.5) / SH_C0).astype(np.float32),
    }


def display8(image: np.ndarray) -> np.ndarray:
    """A splat render (display values, premultiplied on black) -> 8-bit."""
    return np.round(np.clip(image[..., :3], 0.0, 1.0) * 255.0).astype(np.uint8)


@dataclass
class SplatsRun:
    steps: int
    seconds: float
    start: dict
    end: dict
    at_seconds: list = field(default_factory=list)

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.seconds / max(1, self.steps)


class SplatsScenario:
    """The splats fit on one GL context."""

    def __init__(self, context: GpuContext, splats: int = DEFAULT_SPLATS, resolution: int = DEFAULT_RESOLUTION,
                 settings: SplatSettings | None = None, seed: int = 0, source: str = SOURCE,
                 steps_per_frame: int = 1):
        if splats < 4:
            raise SgeError(f"--splats must be at least 4, got {splats}")
        self.context = context
        self.settings = settings or SplatSettings()
        self.resolution = resolution
        self.seed = seed
        self.mesh = load_source(source)
        center, radius = self.mesh.bounds()
        self.center, self.radius = center, radius
        self.train_cameras = scenario_cameras(center, radius, TRAIN_SEED, TRAIN_CAMERAS)
        self.test_cameras = scenario_cameras(center, radius, TEST_SEED, TEST_CAMERAS)
        # World units per pixel at the centre's distance: the means' epsilon and rate unit.
        self.pixel_length = 2.0 * CAMERA_DISTANCE * radius * TAN_HALF_FOV / resolution
        self.initial = initial_splats(self.mesh, splats, seed)
        self.splats = Splats(self.initial, (resolution, resolution),
                             self.settings.parameter_settings(self.pixel_length),
                             unit_weights=self.settings.unit_weights)
        white = float_texture("white", np.ones((1, 1, 3), np.float32))
        self.reference = ModelReference(reference_model(self.mesh), lit=False, albedo=white)
        self.optimizer = Optimizer(context, self.splats, self.reference, (resolution, resolution), seed=seed,
                                   background=BACKGROUND, clear_every_step=True, steps_per_frame=steps_per_frame,
                                   learning_rate_schedule=self._schedule)
        self.planned_steps = 0

    def _schedule(self, step: int) -> float:
        """The learning rate decays to ``final_learning_rate_scale`` (10x by default) over
        the planned steps (3DGS decays its means' 100x over 30K steps), flat after them."""
        if self.planned_steps <= 0:
            return 1.0
        return self.settings.final_learning_rate_scale ** min(1.0, step / self.planned_steps)

    @property
    def params(self) -> int:
        return self.splats.params

    def views(self, seed: int):
        """The step views: the training cameras, each pass in a fresh random order."""
        rng = np.random.default_rng([seed, 1])
        while True:
            for index in rng.permutation(len(self.train_cameras)):
                yield self.train_cameras[index].model_view_projection

    def evaluate(self, cameras=None) -> dict:
        """psnr_views and ssim_views over the held-out cameras (all pixels, 8-bit)."""
        psnrs, ssims = [], []
        for camera in cameras or self.test_cameras:
            result, reference = self.optimizer.snapshot(camera.model_view_projection)
            ours, truth = display8(result), linear_to_srgb8(reference)
            psnrs.append(psnr(ours, truth))
            ssims.append(ssim_covered(ours, truth, np.ones(ours.shape[:2], bool)))
        return {"psnr_views": float(np.mean(psnrs)), "ssim_views": float(np.mean(ssims))}

    def run(self, steps: int, report_seconds=(), check_every: int = 50, progress=None) -> SplatsRun:
        """Fit for ``steps`` steps (or, with ``report_seconds``, until the last of those
        times of stepping has passed, measuring the held-out views at each, the learning
        rate's decay stretched over the steps the first chunk's speed predicts), from the
        scenario's start. Stepping time: the step loop's wall time with one GPU sync per
        ``check_every`` steps; evaluations excluded."""
        self.splats.load_values(self.initial)
        self.optimizer.reset(self.seed)
        self.planned_steps = steps
        views = self.views(self.seed)
        start = self.evaluate()
        if progress:
            progress(0, 0.0, start)
        # First frame outside the timing: shader compilation, uploads.
        self.optimizer.steps([next(views)])
        self.optimizer.sync()
        done, seconds = 1, 0.0
        reports = sorted(float(t) for t in report_seconds)
        at_seconds, chunks = [], 0
        relocation = np.random.default_rng([self.seed, 2])
        while (len(at_seconds) < len(reports)) if reports else done < steps:
            chunk = check_every if reports else min(check_every, steps - done)
            began = time.perf_counter()
            every = self.settings.relocate_every
            if every and done // every != (done + chunk) // every:  # timed: part of the method
                self.optimizer.finish()
                moved = self.splats.relocate(self.context, self.settings.relocate_opacity, relocation)
                if progress and moved:
                    progress(done, seconds, {"relocated": moved})
            self.optimizer.steps([next(views) for _ in range(chunk)])
            self.optimizer.sync()
            seconds += time.perf_counter() - began
            done += chunk
            if reports and chunks == 0:  # the schedule spans the steps the time will allow
                self.planned_steps = max(1, int(reports[-1] * done / seconds))
            while len(at_seconds) < len(reports) and seconds >= reports[len(at_seconds)]:
                self.optimizer.finish()
                figures = self.evaluate()
                at_seconds.append({"seconds": reports[len(at_seconds)], "stepped_s": seconds, "steps": done, **figures})
                if progress:
                    progress(done, seconds, figures)
            chunks += 1
            if progress and not reports and chunks % 10 == 0:
                progress(done, seconds, None)
        self.optimizer.finish()
        end = self.evaluate()
        if progress:
            progress(done, seconds, end)
        return SplatsRun(done, seconds, start, end, at_seconds)

    def export_views(self, folder: Path) -> None:
        """The scenario's cameras and reference images as a NeRF-synthetic dataset:
        transforms_train.json, transforms_test.json (camera_angle_x; per frame a
        file_path and the 4x4 camera-to-world transform_matrix, Blender/NeRF convention)
        and RGBA PNGs (train/r_K.png, test/r_K.png; alpha = the model's coverage)."""
        from PIL import Image

        folder = Path(folder)
        for split, cameras in (("train", self.train_cameras), ("test", self.test_cameras)):
            (folder / split).mkdir(parents=True, exist_ok=True)
            frames = []
            for index, camera in enumerate(cameras):
                _, reference = self.optimizer.snapshot(camera.model_view_projection)
                rgba = np.concatenate([linear_to_srgb8(reference),
                                       np.round(np.clip(reference[..., 3:4], 0, 1) * 255).astype(np.uint8)], axis=2)
                path = folder / split / f"r_{index}.png"
                atomic_write(path, lambda stream, image=rgba: Image.fromarray(image, "RGBA").save(stream, format="PNG"))
                frames.append({"file_path": f"./{split}/r_{index}",
                               "transform_matrix": camera.camera_to_world.tolist()})
            document = {"camera_angle_x": 2.0 * math.atan(TAN_HALF_FOV), "frames": frames}
            atomic_write(folder / f"transforms_{split}.json",
                         lambda stream, d=document: stream.write(json.dumps(d, indent=2).encode()))
