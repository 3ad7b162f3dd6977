"""The subdivision kind: a Catmull-Clark cage and a displacement map as parameters.

Parameters: the cage's vertex positions (``cage``) and a scalar displacement map in the
cage's UV atlas (``displacement``). After P, three passes (shaders/subdivision/) turn
P's copies into the surface the engine draws, for theta+ and theta- alike:

1. refine.comp: every refined vertex = its stencil (stencils.py, computed once on the
   host) over the perturbed cage;
2. displace.comp: each refined vertex moved along its smooth normal (area-weighted over
   the refined triangles) by the displacement map sampled at its UV;
3. surface/vertex_normals.comp: the displaced surface's normals, per split vertex.

The refined mesh is then drawn as a ``Mesh`` is (surface/mesh.vert + surface.frag, with
the albedo and normal maps of the LOD job) from those buffers. G (gradient.comp) takes a
pixel's refined triangle to its 3 corners, and each corner to the ``stencil_contributors``
largest entries of its stencil (cage) and to the 4 bilinear texels at its UV
(displacement).
"""

from __future__ import annotations

import math

import numpy as np
from panda3d.core import NodePath

from .. import gpu
from ..errors import SgeError
from ..kind import Kind
from ..parameters import ContributorDomain, ParameterSet, Settings
from ..surface.mesh import FollowedSet, Mesh, vertex_adjacency, vertex_normals_pass
from ..surface.texture import TextureSet
from .stencils import Refinement

REFINE_GROUP = 64  # local_size_x of the passes after P
# Each refined corner names this many cage vertices in G, its stencil's largest weights.
# Measured on the procedural torus's 500-triangle cage at level 2: a stencil has 8.9
# entries on average, 17 at most; the 8 largest hold 99.65% of its weight on average
# (92.8% at worst), 4 would hold 95.0% (81.3%), 12 99.99% (docs/BENCHMARKS.md).
STENCIL_CONTRIBUTORS = 8


class CageDomain(ContributorDomain):
    """Contributors = the cage vertices of the stencils of a pixel's refined corners."""

    gradient_shader = "subdivision/gradient.comp"

    def __init__(self, cage_count: int, welded_corners, top_cages, top_weights, contributors: int,
                 weight_power: float):
        super().__init__("cage", cage_count)
        self.inputs = {"welded_corners": welded_corners, "top_cages": top_cages, "top_weights": top_weights}
        self.gradient_defines = {"CAGE": True, "STENCIL_CONTRIBUTORS": int(contributors),
                                 "WEIGHT_POWER": f"{float(weight_power):.6f}"}

    def gradient_inputs(self, targets: dict) -> dict:
        return {**self.inputs, "accumulator": self.accumulator, "element_count": self.element_count}


class DisplacementDomain(ContributorDomain):
    """Contributors = the bilinear texels at the UVs of a pixel's refined corners."""

    gradient_shader = "subdivision/gradient.comp"

    def __init__(self, width: int, height: int, welded_corners, displacement_uvs):
        super().__init__("displacement-texels", width * height)
        self.size = (width, height)
        self.inputs = {"welded_corners": welded_corners, "displacement_uvs": displacement_uvs}

    def gradient_inputs(self, targets: dict) -> dict:
        return {**self.inputs, "accumulator": self.accumulator, "element_count": self.element_count,
                "texture_width": self.size[0], "texture_height": self.size[1]}


class DisplacementMap(TextureSet):
    """A one-channel map of heights (model units along the smooth normal) whose copies
    P writes as two 2D textures; its own domain (the corners' texels, not the pixels')
    and, after its P, the passes that build the refined surface."""

    def __init__(self, values: np.ndarray, settings: Settings | None, domain: DisplacementDomain | None):
        values = np.asarray(values, np.float32)
        self.texture_shape = values.shape
        self.mipmaps = False
        ParameterSet.__init__(self, "displacement", values.reshape(-1, 1), domain, settings,
                              frozen=settings is None)
        self.shader_input = "displacement"
        self.passes: list = []

    def after_perturb(self):
        return self.passes

    def side_inputs(self, side: int) -> dict:
        return {}


class SubdivisionSurface(Kind):
    """A cage refined by ``refinement`` and displaced, drawn with the surface shading.

    Args:
        cage: (C, 3) cage vertex positions.
        refinement: the cage's ``stencils.Refinement`` (stencils, refined quads, UVs).
        position_index, triangles, uvs: the refined triangles over split vertices
            (``stencils.split_vertices``): V split vertices, each of one welded refined vertex.
        tangents, binormals: (V, 3) the frames the normal map is read in.
        displacement: (H, W) initial heights (zeros: the refined cage).
        cage_settings / displacement_settings: None freezes that set.
        albedo, normal_map: ``TextureSet``s as a ``Mesh`` takes them.
        stencil_contributors: the cage vertices each refined corner names in G.
        lit: shade with the displaced surface's normals (False: unlit, e.g. checks on
            the depth term alone).
        uniform_weights: every element a pixel names counts 1 (not barycentric x
            stencil or bilinear weight): the un-normalised accumulation is then SPEC's
            estimate of the summed loss's gradient (finite-difference checks).
    """

    planes = ("uv",)

    def __init__(self, cage, refinement: Refinement, position_index, triangles, uvs, tangents, binormals,
                 displacement, cage_settings: Settings | None, displacement_settings: Settings | None,
                 albedo=None, normal_map=None, albedo_srgb: bool = True,
                 stencil_contributors: int = STENCIL_CONTRIBUTORS, weight_power: float = 2.0, lit: bool = True,
                 uniform_weights: bool = False):
        cage = np.asarray(cage, np.float32)
        if cage.ndim != 2 or cage.shape[1] != 3 or cage.shape[0] != refinement.stencils.shape[1]:
            raise SgeError(f"the cage needs ({refinement.stencils.shape[1]}, 3) positions, got {cage.shape}")
        displacement = np.asarray(displacement, np.float32)
        if displacement.ndim != 2:
            raise SgeError(f"the displacement map must be (height, width), got {displacement.shape}")
        self.refinement = refinement
        self.position_index = np.asarray(position_index, np.int32)
        self.triangles = np.asarray(triangles, np.int32)
        self.uvs = np.asarray(uvs, np.float32)
        count = refinement.vertex_count
        self.welded_triangles = self.position_index[self.triangles]
        # The UV each welded refined vertex samples the displacement at: its first corner's.
        first = np.full(count, -1, np.int64)
        order = np.arange(len(self.position_index))[::-1]
        first[self.position_index[order]] = order
        if np.any(first < 0):
            raise SgeError("a refined vertex belongs to no triangle; the cage has an unused vertex")
        self.vertex_uvs = self.uvs[first]
        self.adjacency_offsets, self.adjacency_triangles = vertex_adjacency(self.welded_triangles, count)
        top_cages, top_weights = refinement.top_stencils(stencil_contributors)
        self.top_weights = top_weights

        corners = gpu.buffer_texture("subdivision-welded-corners", self.welded_triangles)
        vertex_uvs = gpu.buffer_texture("subdivision-vertex-uvs", self.vertex_uvs)
        self.cage_domain = CageDomain(len(cage), corners, gpu.buffer_texture("subdivision-top-cages",
                                                                              top_cages.astype(np.int32)),
                                      gpu.buffer_texture("subdivision-top-weights", top_weights.astype(np.float32)),
                                      stencil_contributors, weight_power)
        if uniform_weights:
            self.cage_domain.gradient_defines["UNIFORM_WEIGHTS"] = True
        height, width = displacement.shape
        self.displacement_domain = DisplacementDomain(width, height, corners, vertex_uvs)
        if uniform_weights:
            self.displacement_domain.gradient_defines["UNIFORM_WEIGHTS"] = True
        self.cage = FollowedSet("cage", cage, self.cage_domain, cage_settings, frozen=cage_settings is None)
        self.displacement = DisplacementMap(displacement[..., None], displacement_settings,
                                            self.displacement_domain if displacement_settings else None)

        positions, normals = self.surface(cage, displacement)
        self.lit = lit
        self.mesh = Mesh(positions, self.triangles, uvs=self.uvs, normals=normals[self.position_index] if lit else None,
                         tangents=tangents, binormals=binormals, position_index=self.position_index,
                         albedo=albedo, normal_map=normal_map, albedo_srgb=albedo_srgb)
        # The draw reads what the passes after P write: theta+- of the displaced positions
        # and of the shading normals stand in for the mesh's frozen copies.
        split_count = len(self.position_index)
        smooth = gpu.buffer_texture("subdivision-smooth", np.zeros(2 * 3 * count, np.float32))
        self.mesh.positions.perturbed = gpu.buffer_texture(
            "subdivision-displaced", np.concatenate([positions.ravel()] * 2).astype(np.float32))
        self.mesh.normals.perturbed = gpu.buffer_texture(
            "subdivision-normals", np.concatenate([normals[self.position_index].ravel()] * 2).astype(np.float32))
        s = refinement.stencils
        stencil = {"stencil_offsets": gpu.buffer_texture("subdivision-stencil-offsets", s.offsets.astype(np.int32)),
                   "stencil_cages": gpu.buffer_texture("subdivision-stencil-cages", s.columns.astype(np.int32)),
                   "stencil_weights": gpu.buffer_texture("subdivision-stencil-weights", s.values.astype(np.float32))}
        adjacency = {"adjacency_offsets": gpu.buffer_texture("subdivision-adjacency-offsets", self.adjacency_offsets),
                     "adjacency_triangles": gpu.buffer_texture("subdivision-adjacency", self.adjacency_triangles),
                     "welded_corners": corners}
        groups = lambda n: (math.ceil(2 * n / REFINE_GROUP), 1, 1)  # noqa: E731
        passes = [
            ("subdivision:refine", "subdivision/refine.comp", groups(count),
             {**stencil, "cage": self.cage.perturbed, "smooth_positions": smooth, "vertex_count": count}),
            ("subdivision:displace", "subdivision/displace.comp", groups(count),
             {**adjacency, "smooth_positions": smooth, "displacement_uvs": vertex_uvs,
              "displacement_plus": self.displacement.plus, "displacement_minus": self.displacement.minus,
              "displaced_positions": self.mesh.positions.perturbed, "vertex_count": count}),
            vertex_normals_pass("subdivision:shading-normals", self.mesh.positions.perturbed, corners,
                                (adjacency["adjacency_offsets"], adjacency["adjacency_triangles"]),
                                self.mesh.position_index, self.mesh.normals.perturbed, split_count),
        ]
        if self.cage.frozen and self.displacement.frozen:
            raise SgeError("nothing to optimise: give the cage or the displacement settings")
        # After the later of the two sets' P (the displacement's, unless it is frozen): the
        # passes read both sets' copies.
        (self.cage if self.displacement.frozen else self.displacement).passes = passes

    # --- the surface on the host (bakes, exports, checks) ---------------------------------
    def surface(self, cage: np.ndarray, displacement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(welded refined positions (N, 3), their shading normals (N, 3)) for these cage
        positions and heights: the passes after P, in numpy (float64)."""
        smooth = self.refinement.stencils.apply(np.asarray(cage, np.float64))
        normals = self._normals(smooth)
        heights = bilinear(np.asarray(displacement, np.float64).reshape(self.displacement.texture_shape[:2]),
                           self.vertex_uvs)
        displaced = smooth + heights[:, None] * normals
        shading = self._normals(displaced)
        shading[np.all(shading == 0.0, axis=1)] = (0.0, 0.0, 1.0)
        return displaced.astype(np.float32), shading.astype(np.float32)

    def _normals(self, positions: np.ndarray) -> np.ndarray:
        corners = positions[self.welded_triangles]
        face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        normals = np.zeros_like(positions)
        for k in range(3):
            np.add.at(normals, self.welded_triangles[:, k], face)
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        return np.where(length > 1e-20, normals / np.maximum(length, 1e-30), 0.0)

    def current_surface(self, context) -> tuple[np.ndarray, np.ndarray]:
        """``surface`` of theta as it now stands on the GPU."""
        return self.surface(self.cage.values(context), self.displacement.texture_values(context)[..., 0])

    # --- Kind ------------------------------------------------------------------------------
    @property
    def parameter_sets(self) -> list[ParameterSet]:
        # The displacement's P comes after the cage's: the passes after it read both.
        sets = [s for s in (self.cage, self.displacement) if not s.frozen]
        return sets + [m for m in (self.mesh.albedo, self.mesh.normal_map) if m is not None and not m.frozen]

    def make_node(self) -> NodePath:
        return self.mesh.make_node()

    def side_inputs(self, side: int) -> dict:
        return self.mesh.side_inputs(side)


def bilinear(image: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """(H, W) ``image`` sampled bilinearly at ``uvs`` (N, 2), as a GL sampler does with
    repeat wrap (texel centres at (i + 0.5) / size, row 0 at v = 0)."""
    height, width = image.shape
    x = np.asarray(uvs[:, 0], np.float64) * width - 0.5
    y = np.asarray(uvs[:, 1], np.float64) * height - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    total = np.zeros(len(uvs))
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        w = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy)
        total += w * image[(y0 + dy) % height, (x0 + dx) % width]
    return total


def bilinear_weights(uvs: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The 4 texels (N, 4, flat index) and weights (N, 4) of ``bilinear`` at ``uvs``."""
    x = np.asarray(uvs[:, 0], np.float64) * width - 0.5
    y = np.asarray(uvs[:, 1], np.float64) * height - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    texels, weights = [], []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        weights.append((fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy))
        texels.append(((y0 + dy) % height) * width + (x0 + dx) % width)
    return np.stack(texels, axis=1), np.stack(weights, axis=1)
