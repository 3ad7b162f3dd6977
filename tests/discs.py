"""A parameter kind written only in the tests: opaque screen-facing discs drawn as
instanced quads (not a triangle mesh), with a plane of its own ("disc") and copies in a
layout the core's P does not know (interleaved [disc][theta+ | theta-] RGBA texels).
It uses only the interfaces of optimizer/kind.py and optimizer/parameters.py; its shaders
are in discs_shaders/ beside this file. docs/ARCHITECTURE.md walks through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from panda3d.core import GeomEnums, NodePath, Texture

from optimizer import gpu
from optimizer.kind import Kind
from optimizer.parameters import ContributorDomain, ParameterSet, Settings
from optimizer.shaders import raster_shader

SHADERS = Path(__file__).with_name("discs_shaders")


class DiscDomain(ContributorDomain):
    """Contributors = the discs a pixel's sub-samples show in either perturbed render."""

    gradient_shader = SHADERS / "discs_gradient.comp"

    def gradient_inputs(self, targets: dict) -> dict:
        return {"accumulator": self.accumulator, "element_count": self.element_count}


class DiscSet(ParameterSet):
    """Per-disc values (centres: xy; colours: rgb) whose copies P writes interleaved."""

    copy_writer = SHADERS / "discs_copies.glsl"

    def _make_copies(self, values: np.ndarray):
        copies = Texture(f"{self.name}-perturbed")
        copies.setupBufferTexture(2 * len(values), Texture.T_float, Texture.F_rgba32, GeomEnums.UH_dynamic)
        copies.setRamImage(self._interleaved(values, values).tobytes())
        return copies

    @staticmethod
    def _interleaved(plus: np.ndarray, minus: np.ndarray) -> np.ndarray:
        plus, minus = (np.asarray(values, np.float32).reshape(len(values), -1) for values in (plus, minus))
        texels = np.zeros((len(plus), 2, 4), np.float32)
        texels[..., 3] = 1.0
        texels[:, 0, :plus.shape[1]] = plus
        texels[:, 1, :minus.shape[1]] = minus
        return texels

    def upload_copies(self, plus: np.ndarray, minus: np.ndarray) -> None:
        self.perturbed.setRamImage(self._interleaved(np.reshape(plus, self.shape),
                                                     np.reshape(minus, self.shape)).tobytes())


class Discs(Kind):
    """N discs of one radius: centres (N, 2) and colours (N, 3), each optimised with its
    settings (None: frozen). Centres and colours take turns (groups 0 and 1), as a mesh's
    geometry and its colours do."""

    planes = ("disc",)

    def __init__(self, centres, colors, radius: float, centre_settings: Settings | None = None,
                 color_settings: Settings | None = None):
        centres, colors = np.asarray(centres, np.float32), np.asarray(colors, np.float32)
        self.count = len(centres)
        self.radius = radius
        self.domain = DiscDomain("discs", self.count)
        self.centres = DiscSet("disc-centres", centres, self.domain, centre_settings, frozen=centre_settings is None)
        self.colors = DiscSet("disc-colors", colors, self.domain, color_settings, frozen=color_settings is None)

    @property
    def parameter_sets(self) -> list[ParameterSet]:
        return [s for s in (self.centres, self.colors) if not s.frozen]

    def make_node(self) -> NodePath:
        path = gpu.pulled_geometry("discs", 6)  # one quad, instanced: the shader places the corners
        path.setInstanceCount(self.count)
        path.setShader(raster_shader(SHADERS / "discs.vert", SHADERS / "discs.frag"))
        path.setShaderInputs(centres=self.centres.perturbed, colors=self.colors.perturbed, radius=self.radius,
                             disc_count=self.count)
        path.setTwoSided(True)
        return path


def disc_model(centres, colors, radius: float, segments: int = 64) -> NodePath:
    """The same discs as a plain Panda3D model (triangle fans), for a reference."""
    from optimizer.surface.mesh import geom_node

    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    positions, vertex_colors, triangles = [], [], []
    for index, (centre, color) in enumerate(zip(np.asarray(centres), np.asarray(colors))):
        depth = 0.2 + 0.6 * index / len(centres)  # as discs.vert: the lower index in front
        first = len(positions)
        positions.append([*centre, depth])
        positions += [[*(centre + radius * corner), depth] for corner in ring]
        vertex_colors += [color] * (segments + 1)
        triangles += [[first, first + 1 + k, first + 1 + (k + 1) % segments] for k in range(segments)]
    return geom_node("discs-reference", np.array(positions, np.float32), np.array(triangles, np.int32),
                     colors=np.array(vertex_colors, np.float32))
