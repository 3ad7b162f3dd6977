"""The LOD job's scenario: a detailed source asset against a cheap LOD of it.

The source is flattened to one mesh with its materials and drawn as the reference. The
LOD is the source decimated to a triangle budget (quadric error) and unwrapped to a fresh
atlas; its albedo and normal map are baked from the reference (``project_reference``).
Per-pixel SGE then optimises the LOD's vertex positions (and, when their learning rates
are set, the maps too) from random views around the bounding sphere under random lights;
the job (optimizer.lod.job.LodSession) bakes the maps again onto the moved surface after each
round of steps. Everything
runs in a frame normalised to the unit bounding sphere, so learning rates and epsilons
are fractions of the asset's size; exports go back to the source's frame and units.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from panda3d.core import NodePath
from PIL import Image

from ..errors import SgeError
from ..gpu import GpuContext, read_pages
from ..images import linear_to_srgb, linear_to_srgb8, srgb_to_linear
from .bake import GpuBake
from .geometry import (LodGeometry, budget_keeping_shape, build_lod, despeckle, face_vectors, fill_holes, given_lod,
                       tangent_frames, vertex_normals, weld)
from ..surface.mesh import Mesh, ModelReference
from ..metrics import psnr_covered, silhouette_iou, ssim_covered
from ..parameters import Settings
from ..sge import Optimizer
from .deforming import dense_weights, sample_poses, skin_moves
from .skin import transfer_weights
from ..source import SourceMesh, reference_model
from ..surface.texture import TextureSet, float_texture
from ..view import eye_position, perspective, random_direction, random_rotation, translation

CAMERA_DISTANCE = 2.8   # in bounding-sphere radii
TAN_HALF_FOV = 0.45     # the sphere fills about 80% of the image
AMBIENT = 0.3
BACKGROUND = (0.5, 0.5, 0.5, 1.0)  # mid gray: black and white parts both keep a silhouette
FLAT_NORMAL = (0.5, 0.5, 1.0)      # tangent-space +z, encoded
HELD_OUT_VIEWS = 16
# Views of their own seeds (held-out views: seed + 10,000; bake views: + 20,000):
VALIDATION_VIEWS = 16  # choose between the optimised LOD and the baseline (+ 30,000)
SHAPE_VIEWS = 16       # compare silhouettes of decimations on the CPU (+ 40,000)
WELD_TOLERANCE = 1e-6  # unit radii
PROJECTION_DEPTH_TOLERANCE = 0.03  # radii: about the decimation's own error
UNFOLD_HALVINGS = 8   # then a turned triangle's corners go all the way back
# The report's views (report_views): around the model's up axis (+Z, Panda3D's up) at these
# azimuths (degrees; -90 looks from -Y, where a Panda3D model faces), this far above the
# horizon, the model filling all but this margin of the image.
REPORT_AZIMUTHS = (-130.0, -50.0, 60.0)
REPORT_ELEVATION = 20.0
REPORT_MARGIN = 0.06


@dataclass
class LodSettings:
    triangles: int = 1000
    texture_size: int = 512
    steps: int = 1000
    resolution: int = 128
    supersampling: int = 2
    seed: int = 0
    # In units of the bounding-sphere radius (positions) or of the value range (maps).
    position_epsilon: float = 0.004
    position_learning_rate: float = 2e-3
    # The maps are baked from the reference onto the LOD as it stands (project_reference)
    # before the first round of steps and after each. Per-pixel SGE on them as well (a
    # learning rate > 0) was measured to add speckle rather than fidelity on top of a bake
    # (docs/BENCHMARKS.md), at 4x the step's cost on a CPU: off by default.
    rounds: int = 4
    bake_views: int = 48
    round_bake_views: int = 24  # the bakes between rounds, which only steer the next round
    albedo_epsilon: float = 0.03
    albedo_learning_rate: float = 0.0
    normal_epsilon: float = 0.05
    normal_learning_rate: float = 0.0
    final_learning_rate_scale: float = 0.1  # the learning rate decays geometrically to this
    # Sets of different groups are perturbed in turns (Optimizer): a vertex move or a bent
    # normal changes a pixel far more than an albedo texel's epsilon does.
    albedo_group: int = 1
    normal_group: int = 2
    loss_space: str = "linear"
    # Sample the maps trilinearly, a minified sample naming its mip footprint (TextureSet).
    # Off: with the maps baked rather than stepped it only changes their sampling, measured
    # -0.04 dB on the three references of docs/BENCHMARKS.md (issue 25).
    mip_aware: bool = False
    # The per-pixel loss adds depth_weight * min(|z - z_ref|, depth_limit)^2 (eye-space
    # depths in radii) where the LOD and the reference both cover a sample: a direct pull of
    # the surface onto the source's, which the colors give only through the maps' texture
    # registration. Truncated, so a pixel where the LOD shows another part of the source
    # than the reference does (occlusion) pulls nothing. docs/BENCHMARKS.md has the sweep.
    depth_weight: float = 1024.0
    depth_limit: float = 0.02
    # The per-pixel loss adds coverage_weight * (covered - covered_ref)^2 per sub-sample
    # (covered: the render drew there), a silhouette term (Optimizer(coverage_weight);
    # `sge optimize --coverage-weight`). With the positions stepped on the summed estimate
    # (position_normalised), measured at 1 (docs/BENCHMARKS.md, "What the peer's lead is
    # made of"): panda +0.22 / +0.28 dB, torus +0.04, sphere -0.03 on the CPU, panda +0.52
    # and torus +0.02 on a GPU, IoU up on all but the sphere. (With the mean estimate it
    # cost the sphere 0.25 dB and was off.)
    coverage_weight: float = 1.0
    # The depth term weighted by the reference's local contrast: 1 + min(depth_contrast *
    # |grad T|^2, depth_contrast_cap) per sub-sample (Optimizer(depth_contrast)): the
    # surface pulled hardest where the source's texture has contrast, which a surface off
    # the source's shows shifted with the view (parallax). Off: measured (docs/BENCHMARKS.md,
    # "The depth term weighted by contrast") it raises our metric on the torus (+0.21 dB,
    # CPU and H200) and the sphere (+0.16 / +0.18) but not what Panda3D's auto-shader
    # draws of the exports (torus -0.06 dB, panda -0.20, CPU), and costs the panda 0.07 to
    # 0.13 dB under our metric.
    depth_contrast: float = 0.0
    depth_contrast_cap: float = 3.0
    color_weight: float = 1.0  # the colour term's weight (0: depth and coverage alone)
    # A made LOD's vertex normals follow its positions at every step (Mesh(live_normals)),
    # not only at the bakes: a vertex's move then changes the shading too. Off: measured
    # -0.07 to +0.23 dB over six runs, the torus -0.01 to +0.02 (docs/BENCHMARKS.md,
    # issue 25), and the exact-gradient peer does better without them.
    live_normals: bool = False
    # The positions' step estimate (Settings.normalised): the weighted sum over the step's
    # pixels, not their mean. A mean weighs every view alike, so a view in which a vertex
    # has a few pixels (its triangles edge-on, near the silhouette) pulls it as hard as one
    # in which it has thousands; the sum weighs the views as the summed loss over them does,
    # the exact-gradient peer's objective. Measured (docs/BENCHMARKS.md, issue 25): +0.13 to
    # +0.40 dB held-out over 6 (reference, seed) pairs, IoU up as well.
    position_normalised: bool = False
    # Steps between looks for triangles the steps turned over (LodScenario.unfold; each
    # bake looks too); 0: at the bakes only.
    unfold_every: int = 50
    # A skinned source decimated for sample poses of its skeleton as well as its bind pose
    # (deforming.py) rather than by fast-simplification in the bind pose: it keeps vertices
    # where joints bend. Off by default: measured on the panda (docs/SKINNING.md), it
    # brings the posed --steps 0 LOD within 2 dB of its bind-pose PSNR, every posed frame
    # better, but costs 0.7 dB in the bind pose, and the demo's optimised LOD 0.74 dB
    # held-out (bind-pose) PSNR. `sge optimize --decimate-for-poses`.
    decimate_for_poses: bool = False
    # The bakes draw the LOD single-sided (its back faces culled), as a game draws it and
    # Panda3D draws the exports: a texel takes samples only from views its face faces.
    # Drawn two-sided, where the decimation leaves a sheet (two coincident triangles facing
    # apart, a thin part collapsed) the two z-fight, and which one a pixel shows depends on
    # the rasterizer: on an H200 one of them got no samples and was filled from the atlas's
    # neighbours, which the CPU's renders and Panda3D's then showed (docs/BENCHMARKS.md,
    # "The bake draws the LOD single-sided"). The steps and the scores still draw it
    # two-sided, as they draw the source.
    bake_single_sided: bool = True
    # A baked texel whose bake weight is under this fraction of its known neighbours' mean
    # (seen by a stray grazing sample or two: an isolated speck in the map) takes their
    # weighted mean (geometry.despeckle); 0 turns it off. Measured (docs/BENCHMARKS.md,
    # "Specks despeckled"): the demo's isolated dark texels 20 -> 4, bent normals 94 -> 31,
    # Panda3D's auto-shader +0.20 dB on the demo, +0.07 / -0.01 on the panda at 300.
    despeckle: float = 0.01

    def validate(self) -> None:
        """Refuse settings no job can run; a budget at or above the source's own triangle
        count is valid (the LOD keeps the source's triangles: LodScenario)."""
        if self.triangles < 1:
            raise SgeError(f"--triangles must be 1 or more, got {self.triangles}")
        if not 8 <= self.texture_size <= 8192:
            raise SgeError(f"--texture-size must be from 8 to 8192, got {self.texture_size}")
        if self.steps < 0:
            raise SgeError(f"--steps must be 0 or more, got {self.steps}")
        if not (math.isfinite(self.despeckle) and self.despeckle >= 0):
            raise SgeError(f"despeckle must be a finite number >= 0, got {self.despeckle}")
        if not (math.isfinite(self.coverage_weight) and self.coverage_weight >= 0):
            raise SgeError(f"--coverage-weight must be 0 or more, got {self.coverage_weight}")
        if not (self.rounds >= 1 and self.bake_views >= 1 and self.round_bake_views >= 1):
            raise SgeError(f"rounds and bake views must be 1 or more, got {self.rounds}, {self.bake_views} and "
                           f"{self.round_bake_views}")

    def bake_steps(self) -> list[int]:
        """The steps after which the maps are baked again: the end of each round."""
        return sorted({round(self.steps * k / self.rounds) for k in range(1, self.rounds + 1)} - {0})


def lod_settings(triangles, texture_size, steps, res, seed, decimate_for_poses=False,
                 coverage_weight=LodSettings.coverage_weight) -> LodSettings:
    """The job's LodSettings from the values of the command line's LOD options
    (optimizer.cli._lod_options): `sge optimize` and every asset of `sge batch` run with
    these, so the two take the same options. ``triangles``: the budgets of --triangles
    (the settings take the first; more are a chain's levels)."""
    budgets = (triangles,) if isinstance(triangles, int) else tuple(triangles)
    return LodSettings(triangles=budgets[0], texture_size=texture_size, steps=steps, resolution=res, seed=seed,
                       decimate_for_poses=decimate_for_poses, coverage_weight=coverage_weight)


def _settings(epsilon: float, learning_rate: float, value_range=(-math.inf, math.inf), group: int = 0,
              normalised: bool = True):
    return Settings(epsilon, learning_rate, value_range, group=group, normalised=normalised) \
        if learning_rate > 0 else None


class LodScenario:
    """An LOD of ``source`` being optimised against it (see the module docs)."""

    def __init__(self, context: GpuContext, source: SourceMesh, settings: LodSettings | None = None,
                 lod: SourceMesh | None = None, decimate_from: tuple[np.ndarray, np.ndarray] | None = None):
        """``lod``: a LOD the user made (its triangles and, when usable, its UVs are kept;
        ``settings.triangles`` is then unused); by default the scenario makes one, by
        decimating the source or, with ``decimate_from`` (positions in the source's frame,
        triangles), that surface: a LOD chain's previous level (optimizer.lod.chain)."""
        self.context = context
        self.source = source
        self.settings = s = settings or LodSettings()
        if lod is None:
            s.validate()
        self.center, self.radius = source.bounds()
        if not (self.radius > 0 and math.isfinite(self.radius)):
            raise SgeError(f"'{source.path}' has no extent (all its vertices coincide); give a real model")
        unit_source = dataclasses.replace(source, positions=self.to_unit(source.positions))
        # A LOD the job made takes normals and tangent frames from its surface at every
        # bake; a given LOD keeps the user's normals (hard edges and all).
        self.refresh_frames = lod is None
        self.projection = perspective(TAN_HALF_FOV, near=CAMERA_DISTANCE - 1.5, far=CAMERA_DISTANCE + 1.5)
        self.kept_borders = False  # whether the decimation kept the open borders (lod.decimate_keeping_shape)
        if lod is None:
            positions, triangles = (unit_source.positions, source.triangles) if decimate_from is None else \
                (self.to_unit(decimate_from[0]), np.asarray(decimate_from[1]))
            skinning = None
            if s.decimate_for_poses and source.skin is not None and decimate_from is None:
                # Decimated for its poses too (deforming.py): the bind pose and sample poses.
                skinning = (dense_weights(source.skin),
                            skin_moves(source.skin, sample_poses(source.skin), 1.0 / self.radius,
                                       -np.asarray(self.center, np.float64) / self.radius))
            self.geometry, decimation = build_lod(positions, triangles, s.triangles,
                                                  s.texture_size, weld_tolerance=WELD_TOLERANCE,
                                                  shape_views=self.shape_views(), skinning=skinning)
            self.kept_borders = decimation.kept_borders
        else:
            self.geometry = given_lod(self.to_unit(lod.positions), lod.triangles, lod.uvs, lod.normals, s.texture_size)
        size = s.texture_size
        # A learning rate of 0 leaves that set out of the optimisation (drawn, frozen).
        maps = {"mipmaps": s.mip_aware, "mip_aware": s.mip_aware}
        self.albedo = TextureSet("albedo", np.full((size, size, 3), 0.5, np.float32),
                                 _settings(s.albedo_epsilon, s.albedo_learning_rate, (0.0, 1.0), s.albedo_group), **maps)
        self.normal_map = TextureSet("normal_map", np.broadcast_to(np.float32(FLAT_NORMAL), (size, size, 3)),
                                     _settings(s.normal_epsilon, s.normal_learning_rate, (0.0, 1.0), s.normal_group),
                                     shares_texels_with=self.albedo if s.albedo_learning_rate > 0 else None, **maps)
        g = self.geometry
        self.mesh = Mesh(g.positions, g.triangles, uvs=g.uvs, normals=g.normals, tangents=g.tangents,
                         binormals=g.binormals, position_index=g.position_index, albedo=self.albedo, albedo_srgb=True,
                         normal_map=self.normal_map, live_normals=s.live_normals and self.refresh_frames,
                         position_settings=_settings(s.position_epsilon, s.position_learning_rate,
                                                     normalised=s.position_normalised))
        decay = math.log(s.final_learning_rate_scale) / max(1, s.steps)
        # The source under the LOD's shading: lit, its materials' albedos above a white one.
        self.reference = ModelReference(reference_model(unit_source), lit=self.mesh.lit,
                                        albedo=float_texture("white", np.ones((1, 1, 3), np.float32)))
        self.optimizer = Optimizer(
            context, self.mesh, self.reference, (s.resolution, s.resolution), seed=s.seed,
            supersampling=s.supersampling, background=BACKGROUND, loss_space=s.loss_space,
            learning_rate_schedule=lambda step: math.exp(decay * min(step, s.steps)),
            clear_every_step=False,  # the same run, without clearing the targets each step
            depth_weight=s.depth_weight, depth_limit=s.depth_limit, coverage_weight=s.coverage_weight,
            color_weight=s.color_weight, depth_contrast=s.depth_contrast, depth_contrast_cap=s.depth_contrast_cap)
        self._training_views = self.views(s.seed)
        self.baked_at: int | None = None  # the step the maps were last baked at
        # The triangles over the welded positions; which way each faces at the start (unit)
        # and whether it faces anywhere (a degenerate one may turn freely); the positions of
        # the last unfold, with none turned over.
        self.corners = g.position_index[g.triangles]
        face = face_vectors(g.positions.astype(np.float64), self.corners)
        length = np.linalg.norm(face, axis=1, keepdims=True)
        self.oriented = length[:, 0] > 1e-12
        self.initial_face_normals = face / np.where(self.oriented[:, None], length, 1.0)
        self.safe_positions = g.positions.astype(np.float64)
        self._reference_normals: NodePath | None = None  # the bake's (project_reference)
        self.unfolded = 0  # vertices the last bake's unfold moved back

    # --- frames -------------------------------------------------------------------------
    def to_unit(self, positions: np.ndarray) -> np.ndarray:
        return ((np.asarray(positions, np.float64) - self.center) / self.radius).astype(np.float32)

    def to_source(self, positions: np.ndarray) -> np.ndarray:
        return (np.asarray(positions, np.float64) * self.radius + self.center).astype(np.float32)

    def views(self, seed: int):
        """Endless (model-view-projection, light) pairs: a random direction around the
        bounding sphere, lit by a random light on the camera's side plus ambient."""
        rng = np.random.default_rng([seed, 4])
        while True:
            rotation = random_rotation(rng)
            towards_camera = rotation[:3, :3].T @ np.array([0.0, 0.0, 1.0])
            light = towards_camera + 0.9 * random_direction(rng)
            view = self.projection @ translation(0, 0, -CAMERA_DISTANCE) @ rotation
            yield view, (light / np.linalg.norm(light), AMBIENT)

    def held_out_views(self, count: int = HELD_OUT_VIEWS) -> list:
        views = self.views(self.settings.seed + 10_000)
        return [next(views) for _ in range(count)]

    def report_views(self, count: int = len(REPORT_AZIMUTHS)) -> list:
        """(model-view-projection, light) pairs framed for a person, unlike the random
        training and held-out views: the camera's up is the model's (+Z), it circles the
        model a little above it (REPORT_AZIMUTHS), the image is cropped so the source fills
        it (a square crop of the projection: no distortion), and the light comes from above
        the camera, to its left."""
        used = self.to_unit(self.source.positions[np.unique(self.source.triangles)]).astype(np.float64)
        points = np.concatenate([used, np.ones((len(used), 1))], axis=1)
        elevation = math.radians(REPORT_ELEVATION)
        views = []
        for azimuth in np.radians(REPORT_AZIMUTHS[:count]):
            towards_camera = np.array([math.cos(elevation) * math.cos(azimuth),
                                       math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
            right = np.cross(-towards_camera, [0.0, 0.0, 1.0])
            right /= np.linalg.norm(right)
            up = np.cross(right, -towards_camera)
            look = np.eye(4)  # model -> eye (GL: x right, y up, looking down -z)
            look[:3, :3] = np.stack([right, up, towards_camera])
            look[:3, 3] = -look[:3, :3] @ (CAMERA_DISTANCE * towards_camera)
            view = self.projection @ look
            clip = points @ view.T
            ndc = clip[:, :2] / clip[:, 3:4]
            low, high = ndc.min(axis=0), ndc.max(axis=0)
            scale = 2.0 * (1.0 - REPORT_MARGIN) / max(float(np.max(high - low)), 1e-6)
            centre = (low + high) / 2.0
            crop = np.eye(4)  # clip space: x' = scale (x - centre.x w), likewise y
            crop[0, 0] = crop[1, 1] = scale
            crop[:2, 3] = -scale * centre
            light = towards_camera + 0.6 * up - 0.5 * right
            views.append((crop @ view, (light / np.linalg.norm(light), AMBIENT)))
        return views

    def validation_views(self, count: int = VALIDATION_VIEWS) -> list:
        """Views apart from the training, bake and held-out ones: the job chooses what it
        writes on these, so the held-out figures it reports stay unbiased."""
        views = self.views(self.settings.seed + 30_000)
        return [next(views) for _ in range(count)]

    def shape_views(self, count: int = SHAPE_VIEWS) -> list[np.ndarray]:
        """Model-view-projection matrices for comparing silhouettes of decimations."""
        views = self.views(self.settings.seed + 40_000)
        return [next(views)[0] for _ in range(count)]

    def budget_keeping_shape(self) -> tuple[int, float]:
        """The smallest triangle budget, growing from the settings' by 1.25x, whose
        decimation of the source keeps its silhouettes (mean IoU >= 0.9 from the shape
        views, on the CPU; lod.budget_keeping_shape), and that IoU."""
        positions, triangles = weld(self.to_unit(self.source.positions), self.source.triangles, WELD_TOLERANCE)
        start = self.settings.triangles if self.refresh_frames else len(self.geometry.triangles)
        return budget_keeping_shape(positions, triangles, start, self.shape_views())

    # --- initial textures ---------------------------------------------------------------
    def bake(self, view_count: int | None = None) -> None:
        """Both maps from the reference, onto the LOD as it now stands, from ``view_count``
        views (default: the settings' bake_views): first the triangles the steps turned
        over are put back (``unfold``) and a made LOD's vertex normals and tangent frames
        are taken from its surface."""
        # Positions from here on come from unfold, not the GPU: until a frame has run, a
        # readback would return (and keep) theta as it was before unfold's upload.
        self.unfolded = self.unfold()
        positions = self.safe_positions.astype(np.float32)
        if self.refresh_frames:
            g = self.geometry
            normals = vertex_normals(positions, self.corners)[g.position_index]
            self.set_frames(normals, *tangent_frames(positions[g.position_index], normals, g.uvs, g.triangles))
        self.project_reference(view_count or self.settings.bake_views, positions=positions)
        self.baked_at = self.optimizer.step_index

    def unfold(self) -> int:
        """Every triangle the steps turned over (its normal now against the initial LOD's)
        has its corners moved back towards where they were at the last unfold, halving the
        way until none is turned over: a game draws the LOD single-sided, where a turned
        triangle is a hole or shows its back. Adam's moments stay. Returns how many
        vertices were moved back. Run it before a step (whose P uploads the positions) or
        a bake: until a frame has run, reading theta back would undo it."""
        self.optimizer.finish()  # the last step's update first: unfold sees the final positions
        positions = self.mesh.positions.values(self.context).astype(np.float64)
        moved_back = np.zeros(len(positions), bool)
        halvings = 0
        while True:
            turned = self.turned_over(positions)
            if not turned.any():
                break
            if halvings > UNFOLD_HALVINGS:
                # All the way back and still turned: turned at the last unfold too (a LOD
                # loaded so, e.g. another optimiser's), with nowhere left to go back to.
                break
            back = np.unique(self.corners[turned])
            # The way back ends at the last unfold's positions (at worst every vertex there),
            # once halving gives way to going back; the check above ends it there.
            keep = 0.5 if halvings < UNFOLD_HALVINGS else 0.0
            positions[back] = self.safe_positions[back] + keep * (positions[back] - self.safe_positions[back])
            moved_back[back] = True
            halvings += 1
        if moved_back.any():
            self.mesh.positions.move(positions)
        self.safe_positions = positions
        return int(moved_back.sum())

    def turned_over(self, positions: np.ndarray) -> np.ndarray:
        """Per triangle, whether at these (welded) positions it faces against its initial
        normal (or collapsed to no area)."""
        facing = np.sum(face_vectors(positions, self.corners) * self.initial_face_normals, axis=1)
        return self.oriented & (facing <= 0.0)

    def state(self) -> dict[str, np.ndarray]:
        """What the pipeline keeps beyond its kind's state (checkpoints): the positions of
        the last unfold."""
        return {"safe.positions": self.safe_positions}

    def load_state(self, state: dict) -> None:
        """Restore ``state()`` after the kind's state was loaded: the host's copy of the
        vertex frames follows the frames the kind now draws with."""
        if state["safe.positions"].shape != self.safe_positions.shape:
            raise ValueError("its unfolded positions are of another LOD")
        self.safe_positions = state["safe.positions"].astype(np.float64)
        self.set_frames(*(state[f"{name}.theta"] for name in ("normals", "tangents", "binormals")))

    def frames(self) -> dict[str, np.ndarray]:
        """The per-vertex normals, tangents and binormals the LOD is drawn with."""
        g = self.geometry
        return {"normals": g.normals, "tangents": g.tangents, "binormals": g.binormals}

    def set_frames(self, normals: np.ndarray, tangents: np.ndarray, binormals: np.ndarray) -> None:
        """Draw (and export) the LOD with these per-vertex normals, tangents and binormals;
        the normal map is read in this frame, so bake it after."""
        g = self.geometry
        g.normals, g.tangents, g.binormals = (np.asarray(a, np.float32).reshape(g.normals.shape)
                                              for a in (normals, tangents, binormals))
        for parameter_set, values in ((self.mesh.normals, g.normals), (self.mesh.tangents, g.tangents),
                                      (self.mesh.binormals, g.binormals)):
            parameter_set.load(values)

    @contextlib.contextmanager
    def flat_normal_map(self):
        """Inside the block the LOD is shaded by its vertex normals alone (a flat normal
        map), as the initial LOD of the issue is; the baked map comes back after it."""
        baked = self.normal_map.texture_values(self.context)
        self.normal_map.load(np.broadcast_to(np.float32(FLAT_NORMAL), baked.shape))
        try:
            yield
        finally:
            self.normal_map.load(baked)

    @contextlib.contextmanager
    def _single_sided(self, on: bool = True):
        """Inside the block the LOD's back faces are culled (``on``)."""
        node = self.optimizer.asset_node
        node.setTwoSided(not on)
        try:
            yield
        finally:
            node.setTwoSided(True)

    @contextlib.contextmanager
    def _looking(self):
        """Frames that only look at theta (drawn as theta+) and the reference: theta- and G
        rest meanwhile."""
        resting = ("theta_minus", "G")
        for name in resting:
            self.optimizer.set_pass_active(name, False)
        try:
            yield
        finally:
            self.optimizer.substitute_render(None)
            for name in resting:
                self.optimizer.set_pass_active(name, True)

    def project_reference(self, view_count: int, normals: bool = True, positions: np.ndarray | None = None) -> None:
        """Bake the reference onto the LOD as it now stands: from many views, each pixel
        where the LOD is drawn gives the reference's color there (unlit) to the albedo
        texel it shows, and with ``normals`` the reference's shading normal, in the LOD's
        tangent frame at that pixel, to the normal-map texel; weighted by how squarely
        the LOD faces the camera. Texels no view saw are filled from their neighbours.
        Adam's moments of both maps restart."""
        size = self.settings.texture_size
        channels = 6 if normals else 3
        if positions is None:  # the LOD's welded positions (default: read from the GPU)
            positions = self.mesh.positions.values(self.context)
        positions = np.asarray(positions, np.float64)
        face_normals = face_vectors(positions, self.corners)
        face_normals /= np.maximum(np.linalg.norm(face_normals, axis=1, keepdims=True), 1e-12)
        g = self.geometry
        bakes = self.__dict__.setdefault("_bakes", {})  # made at the first bake (subclasses too)
        bake = bakes.get(normals)
        if bake is None:
            passes = self.optimizer.passes
            plus, minus, reference = (target.sample.page for target in passes.slots)
            bake = bakes[normals] = GpuBake(self.context, passes, (plus, reference, minus), size, normals,
                                            g.triangles, len(g.tangents), PROJECTION_DEPTH_TOLERANCE)
        bake.start(positions[self.corners].mean(axis=1), face_normals,
                   np.concatenate([g.tangents, g.binormals, g.normals], axis=1), view_count)
        views = self.views(self.settings.seed + 20_000)
        unlit = ((0.0, 0.0, 1.0), 1.0)
        with self._looking(), self._single_sided(self.settings.bake_single_sided):
            if normals:
                # The reference's shading normals in theta-'s page: one frame per view.
                if self._reference_normals is None:  # made once: a copy of the whole source
                    self._reference_normals = self.reference.make_node(output_normal=True)
                self.optimizer.substitute_render(self._reference_normals)
            for _ in range(view_count):
                view, _ = next(views)
                self.optimizer.show(view, light=unlit)
                bake.add_view(eye_position(view))
        weight, total = bake.result()
        known = (weight > 1e-6).reshape(size, size)
        mean = (total / np.maximum(weight, 1e-12)[:, None]).reshape(size, size, channels)
        if self.settings.despeckle > 0:
            mean = despeckle(mean, weight.reshape(size, size), known, self.settings.despeckle)
        filled = fill_holes(mean, known)  # both maps at once: each channel fills alone
        albedo = filled[..., :3]
        self.albedo.load(linear_to_srgb(np.clip(albedo, 0.0, 1.0)))  # the LOD's albedo is sRGB-encoded
        if normals:
            tangent_space = filled[..., 3:]
            tangent_space /= np.maximum(np.linalg.norm(tangent_space, axis=-1, keepdims=True), 1e-12)
            self.normal_map.load(np.clip(tangent_space * 0.5 + 0.5, 0.0, 1.0))

    # --- running ------------------------------------------------------------------------
    def step(self) -> None:
        self.optimizer.step(*next(self._training_views))

    def next_training_view(self):
        """Draw the next training (view, light) (a resumed run replays the ones seen)."""
        return next(self._training_views)

    def begin_step(self) -> None:
        """Set up the next step; the engine's next frame runs it."""
        self.optimizer.begin_step(*next(self._training_views))

    def run(self, steps: int) -> float:
        """Take ``steps`` steps, one GPU sync, then apply the last update; returns the
        seconds spent (benchmarks; the LOD job's own loop is optimizer.lod.job.LodSession.run)."""
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.optimizer.sync()
        self.optimizer.finish()
        return time.perf_counter() - started

    # --- evaluation ---------------------------------------------------------------------
    def render(self, view, light, filter_factor: int | None = None):
        """(LOD, reference) as 8-bit sRGB images, and their coverage masks (filtered and
        encoded on the GPU: Optimizer.snapshot_srgb8)."""
        factor = self.settings.supersampling if filter_factor is None else filter_factor
        return self.optimizer.snapshot_srgb8(view, factor, light=light)

    def evaluate(self, views, ssim: bool = True) -> dict:
        """PSNR and SSIM (over covered pixels, SPEC.md) and silhouette IoU, mean over views.
        Without ``ssim`` (choices made on PSNR alone) no SSIM: on a GPU it was the larger
        part of an evaluation's time (about 0.1 s a 512^2 view on the host)."""
        with self._looking():
            renders = [self.render(view, light) for view, light in views]

        def score(render) -> tuple[float, float, float]:
            lod, reference, lod_mask, reference_mask = render
            covered = lod_mask | reference_mask
            return (psnr_covered(lod, reference, covered), ssim_covered(lod, reference, covered) if ssim else 0.0,
                    silhouette_iou(lod_mask, reference_mask))
        # The views scored in threads (numpy's filters release the GIL): SSIM on the host
        # was the larger part of an evaluation's time on a GPU.
        with ThreadPoolExecutor(max(1, min(len(renders), os.cpu_count() or 1, 8))) as pool:
            psnrs, ssims, ious = zip(*pool.map(score, renders)) if renders else ((), (), ())
        scores = {"psnr": float(np.mean(psnrs)), "iou": float(np.mean(ious))}
        return {**scores, "ssim": float(np.mean(ssims))} if ssim else scores

    def psnr_at_sizes(self, views, sizes) -> np.ndarray:
        """PSNR (dB, over covered pixels) of the LOD against the reference as a screen
        shows them when the whole view is ``size`` x ``size`` pixels, for each of ``sizes``
        (each at most the render's own resolution), mean over ``views``: both are drawn at
        the full supersampled resolution and area-averaged down in linear colour (an ideal
        antialiased render at that size), then 8-bit sRGB. Coverage: any sub-pixel of the
        LOD or the reference. A smaller size stands for a farther camera (optimizer.lod.chain)."""
        sizes = [int(size) for size in sizes]
        scores = np.zeros((len(views), len(sizes)))
        with self._looking():
            for v, (view, light) in enumerate(views):
                lod, reference = self.optimizer.snapshot(view, 1, light=light)
                id_pages = read_pages(self.context, self.optimizer.passes.sample)
                covered = np.zeros(lod.shape[:2], np.float32)
                for target in (self.optimizer.plus_pass, self.optimizer.reference_pass):
                    covered = np.maximum(covered, (id_pages[target.sample.page][..., 0] > 0.5).astype(np.float32))
                for s, size in enumerate(sizes):
                    small_lod, small_reference = (linear_to_srgb8(area_resize(image[..., :3], size))
                                                  for image in (lod, reference))
                    scores[v, s] = psnr_covered(small_lod, small_reference, area_resize(covered, size) > 0.0)
        return scores.mean(axis=0)

    # --- results ------------------------------------------------------------------------
    def load_baked_state(self, state: dict[str, np.ndarray]) -> None:
        """Draw the LOD as ``baked_state()`` kept it (positions, vertex frames, both maps),
        e.g. the baseline the job wrote instead of the optimised LOD. Adam's moments stay."""
        self.optimizer.finish()
        self.safe_positions = state["positions"].astype(np.float64)
        self.mesh.positions.move(state["positions"])
        self.set_frames(state["normals"], state["tangents"], state["binormals"])
        self.albedo.load(state["albedo"] / np.float32(255.0))
        self.normal_map.load(state["normal_map"] / np.float32(255.0))

    def baked_state(self) -> dict[str, np.ndarray]:
        """The LOD as the last bake left it, on the host for ``lod_arrays``: what sets it
        apart from another LOD of the same triangles and atlas (welded positions, vertex
        frames, and both maps as the 8-bit images the exports hold: a quarter of their
        float size, and written again they give the same files). Take it right after a
        bake: the positions are the ones its unfold left."""
        return {"positions": self.safe_positions.astype(np.float32),
                **{key: values.copy() for key, values in self.frames().items()},
                "albedo": _to_8bit(self.albedo.texture_values(self.context)),
                "normal_map": _to_8bit(self.normal_map.texture_values(self.context))}

    def lod_arrays(self, state: dict[str, np.ndarray] | None = None) -> dict:
        """The LOD as it stands (or as ``baked_state()`` kept it: ``state``), in the
        source's frame: per split vertex positions, normals, tangents, binormals and uvs,
        the triangles, the two maps, and for a skinned source its ``skin``: the source's
        joints, each vertex's influences taken from the source's surface where the vertex
        now lies (skin.transfer_weights; the LOD is optimised in the bind pose)."""
        g = self.geometry
        if state is None:
            state = {"positions": self.mesh.positions.values(self.context), **self.frames(),
                     "albedo": self.albedo.texture_values(self.context),
                     "normal_map": self.normal_map.texture_values(self.context)}
        albedo, normal_map = (state[key] / np.float32(255.0) if state[key].dtype == np.uint8 else state[key]
                              for key in ("albedo", "normal_map"))
        arrays = {"positions": self.to_source(state["positions"][g.position_index]), "triangles": g.triangles,
                  "normals": state["normals"], "tangents": state["tangents"], "binormals": state["binormals"],
                  "uvs": g.uvs, "albedo": srgb_to_linear(np.clip(albedo, 0.0, 1.0)), "normal_map": normal_map}
        skin = self.source.skin
        if skin is not None:
            # Per welded position, so the copies of a vertex split at a UV seam move as one.
            welded = transfer_weights(skin, self.source.positions, self.source.triangles,
                                      self.to_source(state["positions"]), g.position_index[g.triangles])
            arrays["skin"] = welded.with_influences(welded.joints[g.position_index], welded.weights[g.position_index])
        return arrays


def area_resize(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W) or (H, W, C) float image area-averaged to ``size`` x ``size`` (any
    factor, not only a divisor: each output pixel is the mean over its footprint)."""
    image = np.asarray(image, np.float32)
    planes = image[..., None] if image.ndim == 2 else image
    resized = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c]))  # mode "F"
                                   .resize((size, size), Image.BOX)) for c in range(planes.shape[2])], axis=-1)
    return resized[..., 0] if image.ndim == 2 else resized


def _to_8bit(values: np.ndarray) -> np.ndarray:
    """A map in [0, 1] as export writes it (round(255 v))."""
    return np.round(255.0 * np.clip(values, 0.0, 1.0)).astype(np.uint8)
