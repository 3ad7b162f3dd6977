"""The scale test: one quad with a large RGBA texture as its parameters (4096^2 texels x 4
channels = 67M), to show the per-parameter cost of a step (P) next to the per-pixel one (the
renders and G)."""

from __future__ import annotations

import time

import numpy as np

from ..gpu import GpuContext
from ..surface.mesh import Mesh, ModelReference, geom_node
from ..parameters import Settings
from ..sge import Optimizer
from ..surface.texture import TextureSet, float_texture
from ..view import perspective, translation

QUAD = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
QUAD_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]], np.int32)


def pattern(size: int, seed: int = 0) -> np.ndarray:
    """A smooth procedural RGBA target: a few sinusoids, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [0.5 + 0.5 * np.sin(2 * np.pi * (rng.uniform(1, 8) * x + rng.uniform(1, 8) * y + rng.uniform()))
                for _ in range(4)]
    return np.stack(channels, axis=-1).astype(np.float32)


class ScaleScenario:
    def __init__(self, context: GpuContext, texture_size: int = 4096, resolution: int = 1024, color_bits: int = 16,
                 reuse_reference: bool = True):
        self.context = context
        truth = pattern(texture_size)
        self.albedo = TextureSet("albedo", np.full_like(truth, 0.5), Settings(0.02, 0.01, (0.0, 1.0)))
        uvs = (QUAD[:, :2] + 1.0) / 2.0
        self.mesh = Mesh(QUAD, QUAD_TRIANGLES, uvs=uvs, albedo=self.albedo)
        reference = ModelReference(geom_node("reference", QUAD, QUAD_TRIANGLES, uvs=uvs),
                                   albedo=float_texture("pattern", truth), lit=self.mesh.lit)
        self.optimizer = Optimizer(context, self.mesh, reference, (resolution, resolution),
                                   clear_every_step=False,  # the targets' clears cost more than the renders
                                   # The view is fixed: the reference's page is drawn once.
                                   reuse_reference=reuse_reference, color_bits=color_bits)
        del truth
        # The quad fills the view: tan(half fov) 0.4 at distance 2.2 sees +-0.88.
        self.view = perspective(0.4) @ translation(0, 0, -2.2)

    @property
    def params(self) -> int:
        return self.albedo.count

    def gpu_mib(self) -> float:
        """What the optimizer keeps on the GPU: parameter sets, render targets, the rest
        (buffer and texture sizes; the driver's own overhead is not included)."""
        total = sum(s.gpu_bytes for s in self.mesh._sets)
        width, height = self.optimizer.resolution
        s = self.optimizer.supersampling
        # Three renders, each RGBA16F/32F color + RGBA32F ID and UV, a 32-bit depth buffer.
        color_bytes = 4 * self.optimizer.passes.color_bits // 8
        total += 3 * (width * s) * (height * s) * (color_bytes + 2 * 16 + 4)
        total += self.optimizer.loss_history.getExpectedRamImageSize()
        return total / 2 ** 20

    def _time(self, steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            self.optimizer.step(self.view)
        self.optimizer.sync()
        return 1000.0 * (time.perf_counter() - started) / steps

    def run(self, steps: int) -> dict:
        self.optimizer.reset(0)
        self._time(2)  # first frames: shader compilation, first uploads
        full_ms = self._time(steps)
        # P alone: the per-parameter part of a step.
        per_pixel = ("theta_plus", "theta_minus", "reference", "G")
        for name in per_pixel:
            self.optimizer.set_pass_active(name, False)
        try:
            p_ms = self._time(steps)
        finally:
            for name in per_pixel:
                self.optimizer.set_pass_active(name, True)
        return {"ms_per_step": full_ms, "p_ms_per_step": p_ms, "pixel_ms_per_step": max(0.0, full_ms - p_ms)}
