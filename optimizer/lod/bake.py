"""The LOD job's bake on the GPU: one compute dispatch per view sums every pixel's
sample into its texel (shaders/lod/bake.comp), and the sums come back once per bake.

Before, each view's three target arrays came back to the host and numpy summed them: on
an H200 that was 85 ms a view and 80% of a 3,000-step job's wall time (docs/BENCHMARKS.md,
"The LOD job against exact gradients"). The sums are fixed-point integers, so the
atomic adds give the same bits in any order (runs, resumes and machines agree)."""

from __future__ import annotations

import math

import numpy as np
from panda3d.core import LVecBase3i, LVecBase4f, LVecBase4i, NodePath, ShaderAttrib

from ..gpu import GpuContext, buffer_texture, read_buffer, upload
from ..shaders import compute_shader

WORKGROUP = 16        # bake.comp's local size, both axes
FIXED_BITS = 18       # integer units per 1 in the sums at most (resolution 4e-6)
SUM_LIMIT = 2.0 ** 30  # a texel's sum stays below this (int32, with room for rounding)
SAMPLE_LIMIT = 2.0    # bake.comp clamps each sample to +-this
HITS_MARGIN = 4.0     # samples a view may put into one texel, over the mean (pixels / texels)


class GpuBake:
    """Sums of (weight, weight x sample) per texel of a ``size``^2 atlas, from views
    drawn into ``passes`` (the optimizer's PassBuffer): the LOD on ``pages[0]``, the
    reference on ``pages[1]`` and, with ``normals``, the reference's shading normals on
    ``pages[2]``; ``triangles`` (T, 3) over ``vertex_count`` split vertices."""

    def __init__(self, context: GpuContext, passes, pages: tuple[int, int, int], size: int, normals: bool,
                 triangles: np.ndarray, vertex_count: int, depth_tolerance: float):
        self.context = context
        self.size = size
        self.channels = 6 if normals else 3
        self.render_size = (passes.sample.getXSize(), passes.sample.getYSize())
        self.sums = buffer_texture("bake-sums", np.zeros(size * size * (self.channels + 1), np.int32))
        self.triangle_data = buffer_texture("bake-triangles", np.zeros(6 * len(triangles), np.float32))
        self.frames = buffer_texture("bake-frames", np.zeros(9 * vertex_count, np.float32))
        self.node = NodePath("bake")
        self.node.setShader(compute_shader("lod/bake.comp", {"NORMALS": True} if normals else {}))
        inputs = {"target_color": passes.color, "target_sample": passes.sample, "target_uv": passes.planes["uv"],
                  "triangle_data": self.triangle_data, "frames": self.frames, "sums": self.sums,
                  "split_triangles": buffer_texture("bake-split", np.asarray(triangles, np.int32)),
                  "bake_pages": LVecBase4i(*pages, 0), "texture_size": int(size),
                  "depth_tolerance": float(depth_tolerance), "eye_position": LVecBase4f(0, 0, 0, 1),
                  "fixed_scale": 1.0}
        for key, value in inputs.items():
            self.node.setShaderInput(key, value)
        self.groups = LVecBase3i(-(-self.render_size[0] // WORKGROUP), -(-self.render_size[1] // WORKGROUP), 1)
        self.scale = 1.0

    def start(self, centres: np.ndarray, face_normals: np.ndarray, frames: np.ndarray, views: int) -> None:
        """Zero the sums for a bake of ``views`` views of the LOD whose triangles have these
        centres and unit normals, its split vertices these (tangent, binormal, normal)
        rows (V, 9)."""
        upload(self.sums, np.zeros(self.size * self.size * (self.channels + 1), np.int32))
        upload(self.triangle_data, np.concatenate([centres, face_normals], axis=1).astype(np.float32))
        upload(self.frames, np.asarray(frames, np.float32))
        # The most one texel can gather: each view's samples spread over the texels, a few
        # times the mean in magnified places; the scale keeps that within an int32.
        hits = views * HITS_MARGIN * max(1.0, self.render_size[0] * self.render_size[1] / self.size ** 2)
        self.scale = 2.0 ** min(FIXED_BITS, math.floor(math.log2(SUM_LIMIT / (hits * SAMPLE_LIMIT))))
        self.node.setShaderInput("fixed_scale", self.scale)

    def add_view(self, eye: np.ndarray) -> None:
        """Sum the view the targets now hold, seen from ``eye`` (model space)."""
        self.node.setShaderInput("eye_position", LVecBase4f(*map(float, eye), 1.0))
        self.context.engine.dispatchCompute(self.groups, self.node.getAttrib(ShaderAttrib), self.context.gsg)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight (texels,), weighted sample sums (texels, channels)), float64."""
        sums = read_buffer(self.context, self.sums).reshape(-1, self.channels + 1).astype(np.float64) / self.scale
        return sums[:, 0], sums[:, 1:]
