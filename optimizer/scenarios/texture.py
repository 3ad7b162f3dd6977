"""The texture fit: Panda3D's bundled ``models/smiley`` with its own texture as the truth.

The learned albedo, the size of the truth, starts flat gray; every step sees the sphere
under a random rotation and a random directional light (plus ambient), Lambert-shaded in
linear space. Metrics (SPEC.md): PSNR of the learned texture against the true one over
the texels seen from 16 held-out views, and PSNR of those views against the reference,
both on 8-bit sRGB, views over covered pixels only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..assets import load_model, mesh_arrays, model_texture, texture_linear_rgb
from ..gpu import GpuContext, read_texture
from ..images import linear_to_srgb8
from ..surface.mesh import Mesh, ModelReference
from ..metrics import PSNR_IDENTICAL, psnr, psnr_covered
from ..parameters import Settings
from ..sge import Optimizer, read_accumulator
from ..surface.texture import TextureSet, float_texture
from ..view import perspective, random_direction, random_rotation, translation

SOURCE = "models/smiley"
CAMERA_DISTANCE = 3.5
TAN_HALF_FOV = 0.4
AMBIENT = 0.3
HELD_OUT_VIEWS = 16

# PSNR_IDENTICAL and psnr live in metrics.py; named here too for code that imports them from here.
__all__ = ["CONTRIBUTORS", "PSNR_IDENTICAL", "TextureScenario", "TextureSettings", "psnr"]


CONTRIBUTORS = ("bilinear", "mip-aware")


@dataclass
class TextureSettings:
    epsilon: float = 0.03
    learning_rate: float = 0.02
    # "bilinear": the 4 level-0 texels of every sample; "mip-aware": a minified sample's
    # footprint at the mip level the (trilinear) sampler reads, spread back onto level 0.
    contributors: str = "bilinear"
    mipmaps: bool = False  # the renderer samples the albedo trilinearly (implied by mip-aware)


class TextureScenario:
    def __init__(self, context: GpuContext, resolution: int = 256, settings: TextureSettings | None = None):
        self.context = context
        self.settings = settings or TextureSettings()
        model = load_model(SOURCE)
        arrays = mesh_arrays(model)
        self.truth = texture_linear_rgb(model_texture(model))
        s = self.settings
        mip_aware = s.contributors == "mip-aware"
        mipmaps = s.mipmaps or mip_aware
        self.albedo = TextureSet("albedo", np.full_like(self.truth, 0.5),
                                 Settings(s.epsilon, s.learning_rate, (0.0, 1.0)), mipmaps=mipmaps, mip_aware=mip_aware)
        self.mesh = Mesh(arrays["positions"], arrays["triangles"], uvs=arrays["uvs"], normals=arrays["normals"],
                         albedo=self.albedo)
        reference = ModelReference(model, albedo=float_texture("smiley-linear", self.truth, mipmaps), lit=self.mesh.lit)
        self.optimizer = Optimizer(context, self.mesh, reference, (resolution, resolution), clear_every_step=False)
        self.projection = perspective(TAN_HALF_FOV)

    @property
    def params(self) -> int:
        return self.albedo.count

    def views(self, seed: int):
        """Endless (model-view-projection, light) pairs."""
        rng = np.random.default_rng([seed, 2])
        while True:
            view = self.projection @ translation(0, 0, -CAMERA_DISTANCE) @ random_rotation(rng)
            yield view, (random_direction(rng), AMBIENT)

    def run(self, seed: int, steps: int, progress=None) -> dict:
        self.albedo.load(np.full_like(self.truth, 0.5))
        self.optimizer.reset(seed)
        views = self.views(seed)
        started = time.perf_counter()
        for step in range(steps):
            self.optimizer.step(*next(views))
            if progress and (step + 1) % 500 == 0:
                progress(step + 1)
        self.optimizer.sync()
        seconds = time.perf_counter() - started
        self.optimizer.finish()
        return {"steps": steps, "seconds": seconds, "ms_per_step": 1000.0 * seconds / steps, **self.evaluate(seed)}

    def evaluate(self, seed: int) -> dict:
        """psnr_texture over the texels the held-out views see, psnr_views over them."""
        held_out = self.views(seed + 10_000)
        scores = []
        seen = np.zeros(self.truth.shape[:2], bool)
        for _ in range(HELD_OUT_VIEWS):
            view, light = next(held_out)
            current, reference = self.optimizer.snapshot(view, light=light)
            covered = (read_texture(self.context, self.optimizer.plus_pass.sample)[..., 0] > 0.5) | \
                      (read_texture(self.context, self.optimizer.reference_pass.sample)[..., 0] > 0.5)
            scores.append(psnr_covered(linear_to_srgb8(current), linear_to_srgb8(reference), covered))
            # The frame ran G (theta+ = theta-, so Delta = 0): its counts say which texels
            # this view named (each frame's P clears them first).
            _, counts = read_accumulator(self.context, self.albedo.domain, self.optimizer.step_index % 2)
            seen |= (counts > 0).reshape(self.truth.shape[:2])
        learned = self.albedo.texture_values(self.context)
        return {
            "psnr_views": float(np.mean(scores)),
            "psnr_texture": psnr(linear_to_srgb8(learned), linear_to_srgb8(self.truth), seen),
            "seen_texels": int(seen.sum()),
        }
