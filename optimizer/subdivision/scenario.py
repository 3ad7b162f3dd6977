"""The LOD job's scenario with the subdivision kind: the source against a Catmull-Clark
cage (the source decimated to ``triangles`` and unwrapped, or a cage the user gives),
refined ``levels`` times and displaced (kind.py). The maps are baked from the reference
onto the refined, displaced surface as the LOD job bakes them onto its LOD (the bake,
held-out views, metrics and report views are the LOD scenario's, reused)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SgeError
from ..gpu import GpuContext
from ..lod.geometry import LodGeometry, build_lod, tangent_frames, vertex_normals
from ..lod.scenario import (FLAT_NORMAL, TAN_HALF_FOV, CAMERA_DISTANCE, BACKGROUND, WELD_TOLERANCE, LodScenario,
                            LodSettings, _settings)
from ..parameters import Settings
from ..sge import Optimizer
from ..source import SourceMesh, reference_model
from ..surface.mesh import ModelReference
from ..surface.texture import TextureSet, float_texture
from ..view import perspective
from ..gpu import read_pages
from ..lod.geometry import fill_holes
from ..view import eye_position
from .kind import STENCIL_CONTRIBUTORS, SubdivisionSurface, bilinear, bilinear_weights
from .stencils import Refinement, quad_triangles, refine, split_vertices, triangle_quads
from .cagefit import ROUNDS as CAGE_FIT_ROUNDS, fit_cage, surface_samples
from .cage import AGGRESSIVENESS, cage_geometry, choose_cage, interpolating_positions


# Measured on the procedural torus (200-face cage, 2 levels, 64^2, 256^2 maps), held-out
# PSNR: plain 20.8, interpolating cage 24.1, then displacement baked 1-6 times: 31.32,
# 32.78, 33.16, 33.33, 33.38, 33.37 dB.
DISPLACEMENT_BAKES = 5
DISPLACEMENT_BAKE_LIMIT = 0.1  # radii: farther apart, the pixel shows another part of the source
# The cage and displacement learning rates are scaled by min(1, (spacing / this)^4),
# spacing = the edge of an equilateral triangle of the cage's mean triangle area (radii).
# From a well-baked start the steps' estimates are mostly noise and bias, and Adam steps
# each vertex and texel by about the learning rate whatever their size: the surface
# drifts off the start by about the rate a step. A denser cage starts better and has
# fewer pixels per vertex. 0.25: the panda's 118-face cage (spacing 0.259), whose steps
# gain at the full rates, keeps them. Measured on the torus's 2,000-face cage (128^2,
# 512^2 maps, docs/BENCHMARKS.md): held-out PSNR 35.25 dB at the start, after 101 steps
# at the full rates 25.71, at a tenth 34.40, at a hundredth 35.21 (176 steps: 35.25).
REFERENCE_SPACING = 0.25
# Each refined quad is split along the diagonal that puts its triangles nearer the
# reference (diagonal_flips), where the other one's squared distances over the bake's
# pixels are this much smaller; a pixel whose ray misses the other split by more than
# DIAGONAL_TOLERANCE (barycentric) is left out of both sums.
DIAGONAL_MARGIN = 0.1
DIAGONAL_TOLERANCE = 0.05
DIAGONAL_DISPLACEMENT_BAKES = 2
SPACING_POWER = 4


def ray_distance(origin: np.ndarray, rays: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where unit ``rays`` from ``origin`` meet the planes of triangles ``corners`` (N, 3,
    3), one each (Moller-Trumbore): (distance along the ray, the smallest barycentric of the
    hit: >= 0 inside the triangle)."""
    edge1, edge2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    p = np.cross(rays, edge2)
    determinant = (edge1 * p).sum(axis=1)
    determinant = np.where(np.abs(determinant) < 1e-12, 1e-12, determinant)
    t = origin - corners[:, 0]
    u = (t * p).sum(axis=1) / determinant
    q = np.cross(t, edge1)
    v = (rays * q).sum(axis=1) / determinant
    return (edge2 * q).sum(axis=1) / determinant, np.minimum(np.minimum(u, v), 1.0 - u - v)


@dataclass
class Cage:
    """A control cage: (C, 3) positions, (F, 4) faces (-1 in the 4th column of a
    triangle) and their corners' UVs (F, 4, 2), in the source's frame."""

    positions: np.ndarray
    faces: np.ndarray
    face_uvs: np.ndarray


@dataclass
class SubdivisionSettings:
    """What the subdivision kind adds to the LOD job's settings (units: bounding-sphere radii)."""

    levels: int = 2
    displacement_size: int | None = None   # default: the maps' texture size
    cage_epsilon: float = 0.004
    # The LOD job's position rate. Measured (docs/BENCHMARKS.md): on the torus (64^2, 200
    # steps from the bakes) 5e-4 / 2e-4 lose 0.07 dB where these lose 0.42 (the job then
    # writes its start); on the panda (96^2, 400 steps) these gain 0.95 dB, 5e-4 / 2e-4 0.18.
    cage_learning_rate: float = 2e-3
    displacement_epsilon: float = 0.004
    # Measured with the cage chosen for subdivision (cage.py; docs/BENCHMARKS.md, issue
    # 22d): on the panda (96^2, 400 steps) 1e-3 / 2e-3 / 3e-3 / 1e-2 end at 19.10 / 19.20 /
    # 19.62 / 19.07 dB; on the torus's 200-face cage 3e-3 ends 0.09 dB below 1e-3 (both
    # below their start, which the validation rule writes).
    displacement_learning_rate: float = 3e-3
    displacement_range: float = 0.2
    stencil_contributors: int = STENCIL_CONTRIBUTORS
    # Rounds of the cage fit (cagefit.py) before the displacement bakes; 0: the
    # interpolating cage alone.
    cage_fit_rounds: int = CAGE_FIT_ROUNDS
    # The decimation's aggressiveness values tried for the cage (cage.py: the one whose
    # refined surface keeps the silhouettes best); empty: the LOD job's decimation.
    cage_aggressiveness: tuple = AGGRESSIVENESS
    # Rounds of choosing each refined quad's diagonal (SubdivisionScenario.choose_diagonals)
    # after the start; 0: every quad split along its diagonal 0-2.
    diagonal_rounds: int = 1

    def validate(self) -> None:
        if not 1 <= self.levels <= 4:
            raise SgeError(f"--subdivision must be a level from 1 to 4, got {self.levels}")
        if self.displacement_size is not None and not 8 <= self.displacement_size <= 8192:
            raise SgeError(f"the displacement map's size must be from 8 to 8192, got {self.displacement_size}")
        if self.diagonal_rounds < 0:
            raise SgeError(f"the rounds of choosing the quads' diagonals must be 0 or more, got {self.diagonal_rounds}")


def cage_faces(geometry: LodGeometry) -> Cage:
    """The cage of a triangle LOD: its welded triangles, their corners' UVs."""
    faces = np.full((len(geometry.triangles), 4), -1, np.int64)
    faces[:, :3] = geometry.position_index[geometry.triangles]
    uvs = np.zeros((len(faces), 4, 2), np.float64)
    uvs[:, :3] = geometry.uvs[geometry.triangles]
    return Cage(geometry.positions, faces, uvs)


def cage_spacing(cage: Cage) -> float:
    """The edge of an equilateral triangle of the cage's mean triangle area (a quad counts
    as its 2 triangles), in the cage's units: the cage's vertex spacing."""
    faces = np.asarray(cage.faces, np.int64)
    positions = np.asarray(cage.positions, np.float64)
    triangles = [faces[:, [0, 1, 2]], faces[faces[:, 3] >= 0][:, [0, 2, 3]]]
    corners = positions[np.concatenate(triangles)]
    areas = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    if len(areas) == 0:
        return 0.0
    return float(math.sqrt(4.0 * areas.mean() / math.sqrt(3.0)))


class SubdivisionScenario(LodScenario):
    """A displaced subdivision surface being optimised against ``source`` (module docs).

    ``self.subdivision`` is the kind; ``self.mesh`` the refined mesh it draws (what the
    LOD scenario's bake and evaluation read); ``self.geometry`` the refined triangles."""

    def __init__(self, context: GpuContext, source: SourceMesh, settings: LodSettings | None = None,
                 subdivision: SubdivisionSettings | None = None, cage: Cage | None = None):
        self.context = context
        self.source = source
        self.settings = s = settings or LodSettings()
        self.subdivision_settings = d = subdivision or SubdivisionSettings()
        s.validate()
        d.validate()
        self.center, self.radius = source.bounds()
        if not (self.radius > 0 and math.isfinite(self.radius)):
            raise SgeError(f"'{source.path}' has no extent (all its vertices coincide); give a real model")
        self.refresh_frames = True
        self.projection = perspective(TAN_HALF_FOV, near=CAMERA_DISTANCE - 1.5, far=CAMERA_DISTANCE + 1.5)
        self.kept_borders = False
        self.cage_choice = None
        if cage is None and d.cage_aggressiveness:
            self.cage_choice = choose_cage(self.to_unit(source.positions), source.triangles, s.triangles, d.levels,
                                           self.shape_views(), WELD_TOLERANCE, tuple(d.cage_aggressiveness))
            self.kept_borders = self.cage_choice.kept_borders
            self.cage = cage_faces(cage_geometry(self.cage_choice, s.texture_size))
        elif cage is None:
            geometry, decimation = build_lod(self.to_unit(source.positions), source.triangles, s.triangles,
                                             s.texture_size, weld_tolerance=WELD_TOLERANCE,
                                             shape_views=self.shape_views())
            self.kept_borders = decimation.kept_borders
            self.cage = cage_faces(geometry)
        else:
            self.cage = Cage(self.to_unit(cage.positions), np.asarray(cage.faces, np.int64),
                             np.asarray(cage.face_uvs, np.float64))
        self.cage_spacing = cage_spacing(self.cage)
        self.learning_rate_scale = min(1.0, (self.cage_spacing / REFERENCE_SPACING) ** SPACING_POWER)
        self.refinement: Refinement = refine(self.cage.faces, len(self.cage.positions), d.levels, self.cage.face_uvs)
        self.reference = ModelReference(reference_model(self.source_in_unit()), lit=True,
                                        albedo=float_texture("white", np.ones((1, 1, 3), np.float32)))
        self.flipped = np.zeros(len(self.refinement.quads), bool)
        self.diagonals = []
        self._build(self.flipped)

    def _build(self, flipped: np.ndarray) -> None:
        """The refined surface (its quads split along the diagonals ``flipped`` says:
        stencils.quad_triangles), its maps and the optimizer, at zero displacement and the
        cage's positions; what a rebuild replaces (choose_diagonals)."""
        s, d = self.settings, self.subdivision_settings
        self.flipped = np.asarray(flipped, bool).copy()
        self.__dict__.pop("_bakes", None)  # LodScenario.bake's, made for the old triangles and passes
        position_index, triangles, uvs = split_vertices(self.refinement, flipped)
        size = s.texture_size
        self.albedo = TextureSet("albedo", np.full((size, size, 3), 0.5, np.float32),
                                 _settings(s.albedo_epsilon, s.albedo_learning_rate, (0.0, 1.0), s.albedo_group))
        self.normal_map = TextureSet("normal_map", np.broadcast_to(np.float32(FLAT_NORMAL), (size, size, 3)),
                                     _settings(s.normal_epsilon, s.normal_learning_rate, (0.0, 1.0), s.normal_group),
                                     shares_texels_with=self.albedo if s.albedo_learning_rate > 0 else None)
        smooth = self.refinement.stencils.apply(self.cage.positions).astype(np.float32)
        normals = vertex_normals(smooth, position_index[triangles])[position_index]
        tangents, binormals = tangent_frames(smooth[position_index], normals, uvs, triangles)
        displacement_size = d.displacement_size or size
        limit = d.displacement_range
        self.subdivision = SubdivisionSurface(
            self.cage.positions, self.refinement, position_index, triangles, uvs, tangents, binormals,
            np.zeros((displacement_size, displacement_size), np.float32),
            # The cage keeps the mean estimate (LodSettings.position_normalised is the LOD
            # job's): on the panda's cage the sum measured -0.18 dB (-0.04 with the
            # coverage term; docs/BENCHMARKS.md, "Subdivision surfaces").
            _settings(d.cage_epsilon, d.cage_learning_rate * self.learning_rate_scale),
            _settings(d.displacement_epsilon, d.displacement_learning_rate * self.learning_rate_scale,
                      (-limit, limit)),
            albedo=self.albedo, normal_map=self.normal_map, stencil_contributors=d.stencil_contributors)
        self.mesh = self.subdivision.mesh
        self.geometry = LodGeometry(smooth, position_index, triangles, uvs, normals, tangents, binormals)
        decay = math.log(s.final_learning_rate_scale) / max(1, s.steps)
        self.optimizer = Optimizer(
            self.context, self.subdivision, self.reference, (s.resolution, s.resolution), seed=s.seed,
            supersampling=s.supersampling, background=BACKGROUND, loss_space=s.loss_space,
            learning_rate_schedule=lambda step: math.exp(decay * min(step, s.steps)),
            clear_every_step=False, depth_weight=s.depth_weight, depth_limit=s.depth_limit,
            # Scaled as the rates are: on the torus's 2,000-face cage (128^2, 512^2 maps, 30 s
            # of steps) the full term ended 35.27 -> 34.85 dB, none 35.25; on its 500-face
            # cage (64^2, 100 steps) 1 / 0.3 ended at 35.06 / 35.27 (docs/BENCHMARKS.md).
            coverage_weight=s.coverage_weight * self.learning_rate_scale)
        self._training_views = self.views(s.seed)
        self.baked_at = None
        self.corners = position_index[triangles]
        self.oriented = np.ones(len(triangles), bool)
        self.initial_face_normals = np.zeros((len(triangles), 3))
        self.safe_positions = smooth.astype(np.float64)
        self._reference_normals = None
        self.unfolded = 0

    # --- initial surface ------------------------------------------------------------------
    def project_displacement(self, view_count: int, iterations: int = 2) -> None:
        """Bake the displacement from the reference, as the LOD job bakes its maps: from
        many views, where the refined surface and the reference both cover a pixel at
        nearby depths, the height that moves the surface onto the reference's along the
        pixel's ray (d = dz (n . r) / (m . r): dz the eye-depth difference, n the
        triangle's normal, r the ray, m the depth's gradient) goes to the triangle's 3
        refined vertices by barycentric weight; each vertex's mean is written to the
        texels of its bilinear sample. ``iterations`` bakes, each on the surface the last
        one displaced. Adam's moments of the map restart."""
        kind = self.subdivision
        height, width = kind.displacement.texture_shape[:2]
        count = kind.refinement.vertex_count
        views = self.views(self.settings.seed + 50_000)
        view_list = [next(views) for _ in range(view_count)]
        passes = self.optimizer.passes
        plus, _, reference = (target.sample.page for target in passes.slots)
        for _ in range(iterations):
            self.optimizer.finish()
            displacement = kind.displacement.texture_values(self.context)[..., 0].astype(np.float64)
            positions, _ = kind.surface(kind.cage.values(self.context), displacement)
            positions = positions.astype(np.float64)
            corners = positions[kind.welded_triangles]
            face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
            face /= np.maximum(np.linalg.norm(face, axis=1, keepdims=True), 1e-20)
            total, weight = np.zeros(count), np.zeros(count)
            for triangle, bary, ray, dz, m_dot_r, _, _ in self._surface_pixels(view_list, corners):
                n_dot_r = (face[triangle] * ray).sum(axis=1)
                usable = (np.abs(n_dot_r) > 0.2) & (np.abs(m_dot_r) > 1e-6)
                d = dz * n_dot_r / np.where(np.abs(m_dot_r) > 1e-6, m_dot_r, 1.0)
                w = usable * n_dot_r ** 2
                for k in range(3):
                    vertex = kind.welded_triangles[triangle, k]
                    total += np.bincount(vertex, w * bary[:, k] * d, count)
                    weight += np.bincount(vertex, w * bary[:, k], count)
            current = bilinear(displacement, kind.vertex_uvs)
            seen = weight > 1e-9
            target = current + np.where(seen, total / np.maximum(weight, 1e-12), 0.0)
            limit = self.subdivision_settings.displacement_range
            target = np.clip(target, -limit, limit)
            texels, texel_weights = bilinear_weights(kind.vertex_uvs, width, height)
            sums = np.bincount(texels.ravel(), (texel_weights * target[:, None]).ravel(), width * height)
            counts = np.bincount(texels.ravel(), texel_weights.ravel(), width * height)
            known = (counts > 1e-9).reshape(height, width)
            values = (sums / np.maximum(counts, 1e-12)).reshape(height, width, 1)
            kind.displacement.load(fill_holes(values, known))

    def _surface_pixels(self, view_list, corners: np.ndarray):
        """For each (view, light) of ``view_list``, the pixels where the refined surface
        (its triangles' ``corners``, (T, 3, 3), as drawn) and the reference both cover
        the pixel at eye depths within DISPLACEMENT_BAKE_LIMIT: (triangle, barycentrics,
        unit ray from the eye, eye-depth difference reference - ours, the ray's depth
        rate m . r, the distance from the eye to our surface along the ray, the eye)."""
        passes = self.optimizer.passes
        plus, _, reference = (target.sample.page for target in passes.slots)
        with self._looking():
            for view, _ in view_list:
                self.optimizer.show(view, light=((0.0, 0.0, 1.0), 1.0))
                id_pages = read_pages(self.context, passes.sample)
                uvs = read_pages(self.context, passes.planes["uv"])[plus]
                ours, theirs = id_pages[plus], id_pages[reference]
                drawn = (ours[..., 0] > 0.5) & (theirs[..., 0] > 0.5)
                dz = (theirs[..., 2] - ours[..., 2])[drawn]
                near = np.abs(dz) < DISPLACEMENT_BAKE_LIMIT
                triangle = np.rint(ours[..., 0][drawn][near]).astype(np.int64) - 1
                b = uvs[drawn][near][:, 2:]
                bary = np.stack([b[:, 0], b[:, 1], 1.0 - b[:, 0] - b[:, 1]], axis=1)
                point = (bary[:, :, None] * corners[triangle]).sum(axis=1)
                eye = eye_position(view)
                ray = point - eye
                distance = np.linalg.norm(ray, axis=1, keepdims=True)
                ray /= np.maximum(distance, 1e-20)
                m_dot_r = ray @ np.asarray(view, np.float64)[3, :3]
                yield triangle, bary, ray, dz[near], m_dot_r, distance[:, 0], eye

    def diagonal_flips(self, view_count: int) -> np.ndarray:
        """(Q,) the refined quads whose other diagonal puts their two triangles nearer the
        reference: over the bake's views, each pixel's distance along its ray from our
        surface to the reference's (from the depth targets) against the distance from the
        other split's triangle to it (ray-triangle, on the host), squared and summed per
        quad; a quad flips where the other split's sum is under (1 - DIAGONAL_MARGIN)
        times its own. A quad no pixel sees keeps its diagonal."""
        self.optimizer.finish()
        kind = self.subdivision
        positions = kind.current_surface(self.context)[0].astype(np.float64)
        triangles = kind.welded_triangles
        quad_count = len(triangles) // 2
        other = positions[quad_triangles(triangle_quads(triangles, self.flipped), ~self.flipped)]
        views = self.views(self.settings.seed + 50_000)
        own, alternative = np.zeros(quad_count), np.zeros(quad_count)
        for triangle, _, ray, dz, m_dot_r, distance, eye in self._surface_pixels(
                [next(views) for _ in range(view_count)], positions[triangles]):
            usable = np.abs(m_dot_r) > 1e-6
            quad = triangle % quad_count
            reference_at = distance + dz / np.where(usable, m_dot_r, 1.0)
            hits = [ray_distance(eye, ray, other[quad + half * quad_count]) for half in (0, 1)]
            inside = np.maximum(hits[0][1], hits[1][1])
            along = np.where(hits[0][1] >= hits[1][1], hits[0][0], hits[1][0])
            keep = usable & (inside > -DIAGONAL_TOLERANCE)
            own += np.bincount(quad[keep], (distance - reference_at)[keep] ** 2, quad_count)
            alternative += np.bincount(quad[keep], (along - reference_at)[keep] ** 2, quad_count)
        return alternative < (1.0 - DIAGONAL_MARGIN) * own

    def initialise(self, iterations: int = DISPLACEMENT_BAKES) -> None:
        """The fit's starting surface: the cage moved so its refined vertex points
        interpolate the cage's positions, the displacement baked from the reference
        (``iterations`` times), then the maps baked onto that surface. With
        ``cage_fit_rounds`` > 0 the same again from that cage fitted so its refined surface
        lies on the reference (cagefit.py), and the start kept is whichever of the two
        scores higher on the validation views (the LOD job's rule, so held-out figures
        stay unbiased); ``self.cage_fit`` says which and their scores. Then
        ``diagonal_rounds`` rounds of choose_diagonals (``self.diagonals``: their reports)."""
        interpolating = self.interpolating_cage()
        self._start_from(interpolating, iterations)
        rounds, diagonal_rounds = self.subdivision_settings.cage_fit_rounds, self.subdivision_settings.diagonal_rounds
        if rounds <= 0 and diagonal_rounds <= 0:
            return
        validation = self.validation_views()
        score = self.evaluate(validation, ssim=False)["psnr"]
        if rounds > 0:
            plain_state = self.baked_state()
            source = self.source_in_unit()
            samples = surface_samples(source.positions, source.triangles, seed=self.settings.seed)
            fitted, distances = fit_cage(self.refinement.stencils, interpolating, samples, rounds)
            self._start_from(fitted.astype(np.float32), iterations)
            fitted_score = self.evaluate(validation, ssim=False)["psnr"]
            kept = fitted_score > score
            if not kept:
                self.load_baked_state(plain_state)
            self.cage_fit = {"kept": bool(kept), "rounds": rounds, "psnr_validation_interpolating": score,
                             "psnr_validation_fitted": fitted_score,
                             "sample_distances": [round(float(d), 6) for d in distances]}
            score = max(score, fitted_score)
        for _ in range(diagonal_rounds):
            report = self.choose_diagonals(validation, score)
            self.diagonals.append(report)
            if report["kept"]:
                score = report["psnr_validation_after"]

    def choose_diagonals(self, validation, score: float) -> dict:
        """Split the refined quads along the diagonals diagonal_flips chooses: the surface
        rebuilt with them and the maps baked, then also the displacement baked again
        (DIAGONAL_DISPLACEMENT_BAKES passes) and the maps, the better of the two on
        ``validation``; kept when that scores higher than ``score`` (the start's), else
        the start as it was. Returns what it did."""
        flips = self.diagonal_flips(self.settings.bake_views)
        report = {"flipped": int(flips.sum()), "quads": int(len(flips)), "psnr_validation_before": score}
        if not flips.any():
            return {**report, "kept": False}
        state, flipped = self.baked_state(), self.flipped
        self._rebuild(flipped ^ flips, state)
        self.bake()
        maps_only = self.evaluate(validation, ssim=False)["psnr"]
        maps_only_state = self.baked_state()
        # Baked again, the displacement gained on the panda's and the 500-face torus cage
        # (+0.08, +0.05 dB) and lost on the 2,000-face one (-0.77; docs/BENCHMARKS.md).
        self.project_displacement(self.settings.bake_views, DIAGONAL_DISPLACEMENT_BAKES)
        self.bake()
        rebaked = self.evaluate(validation, ssim=False)["psnr"]
        if rebaked < maps_only:
            self.load_baked_state(maps_only_state)
        after = max(maps_only, rebaked)
        if after <= score:
            self._rebuild(flipped, state)
            self.load_baked_state(state)
        return {**report, "kept": bool(after > score), "psnr_validation_after": after,
                "psnr_validation_maps_only": maps_only, "psnr_validation_displacement_baked": rebaked}

    def _rebuild(self, flipped: np.ndarray, state: dict) -> None:
        """A new surface and optimizer with the quads split as ``flipped`` says, its cage
        and displacement from ``state`` (baked_state's)."""
        self.optimizer.finish()
        self.optimizer.release()
        self._build(flipped)
        self.subdivision.cage.load(state["cage"])
        self.subdivision.displacement.load(state["displacement"])

    def _start_from(self, cage: np.ndarray, iterations: int) -> None:
        """Load ``cage``, bake the displacement from zero, then the maps."""
        self.optimizer.finish()
        self.subdivision.cage.load(cage)
        height, width = self.subdivision.displacement.texture_shape[:2]
        self.subdivision.displacement.load(np.zeros((height, width, 1), np.float32))
        self.project_displacement(self.settings.bake_views, iterations)
        self.bake()

    def interpolating_cage(self, iterations: int = 30) -> np.ndarray:
        """Cage positions whose refined vertex points land on the cage's own positions
        (Catmull-Clark shrinks a cage towards its inside; the decimation's vertices lie on
        the source): cage.interpolating_positions."""
        return interpolating_positions(self.refinement.stencils, self.cage.positions, iterations).astype(np.float32)

    def source_in_unit(self) -> SourceMesh:
        import dataclasses
        return dataclasses.replace(self.source, positions=self.to_unit(self.source.positions))

    @property
    def triangle_count(self) -> int:
        return len(self.geometry.triangles)

    def unfold(self) -> int:
        """No unfolding (the cage is smooth by construction): the positions a bake uses
        are the refined, displaced surface as it stands."""
        self.optimizer.finish()
        self.safe_positions = self.subdivision.current_surface(self.context)[0].astype(np.float64)
        return 0

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def baked_state(self) -> dict[str, np.ndarray]:
        """The surface as it stands (cage, displacement, maps, frames), on the host."""
        self.optimizer.finish()
        return {"cage": self.subdivision.cage.values(self.context).copy(),
                "displacement": self.subdivision.displacement.texture_values(self.context).copy(),
                "albedo": self.albedo.texture_values(self.context).copy(),
                "normal_map": self.normal_map.texture_values(self.context).copy(),
                **{key: values.copy() for key, values in self.frames().items()}}

    def load_baked_state(self, state: dict[str, np.ndarray]) -> None:
        """Draw the surface as ``baked_state()`` kept it (Adam's moments restart)."""
        self.optimizer.finish()
        self.subdivision.cage.load(state["cage"])
        self.subdivision.displacement.load(state["displacement"])
        self.albedo.load(state["albedo"])
        self.normal_map.load(state["normal_map"])
        self.set_frames(state["normals"], state["tangents"], state["binormals"])
        self.safe_positions = self.subdivision.surface(state["cage"], state["displacement"][..., 0])[0].astype(np.float64)

    def lod_arrays(self, state: dict[str, np.ndarray] | None = None) -> dict:
        """The refined, displaced mesh as it stands, in the source's frame (LodScenario's)."""
        positions, _ = self.subdivision.current_surface(self.context)
        state = {"positions": positions, **self.frames(), "albedo": self.albedo.texture_values(self.context),
                 "normal_map": self.normal_map.texture_values(self.context)}
        self.source_skin, self.source.skin = self.source.skin, None  # a cage carries no skin
        try:
            return super().lod_arrays(state)
        finally:
            self.source.skin = self.source_skin

    def cage_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(cage positions in the source's frame, displacement map (H, W) in source units)."""
        cage = self.to_source(self.subdivision.cage.values(self.context))
        displacement = self.subdivision.displacement.texture_values(self.context)[..., 0] * self.radius
        return cage, displacement
