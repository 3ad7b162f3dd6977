"""Texture maps as parameter sets: every texel channel is a parameter. P writes theta+ and
theta- as ordinary 2D textures that the render samples like any texture; contributors of
a pixel are the texels of its sample's footprint, found from the UV targets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from panda3d.core import SamplerState, ShaderInput, Texture

from ..errors import SgeError
from ..images import atomic_write, linear_to_srgb8, save_png
from ..parameters import ContributorDomain, ParameterSet, Settings, dispatch_grid

MAX_TEXTURE_SIZE = 16384


class TexelDomain(ContributorDomain):
    """Contributors = the 4 texels a bilinear sample at the pixel's UV reads, weighted by
    their bilinear weights (``bilinear_weights``; else each counts 1) for a magnified
    sample. Only pixels both renders give to the same triangle count: a coverage flip's
    Delta belongs to the geometry."""

    gradient_shader = "surface/gradient_texels.comp"

    def __init__(self, name: str, width: int, height: int, bilinear_weights: bool = True, mip_levels: int = 0):
        super().__init__(f"{name}-texels", width * height)
        self.size = (width, height)
        self.bilinear_weights = bilinear_weights
        self.mip_levels = mip_levels  # > 0: minified samples name their mip footprint

    def gradient_inputs(self, targets: dict) -> dict:
        return {"accumulator": self.accumulator, "element_count": self.element_count,
                "texture_width": self.size[0], "texture_height": self.size[1],
                "bilinear_weights": int(self.bilinear_weights),
                "mip_aware": int(self.mip_levels > 1), "mip_levels": max(1, self.mip_levels)}


def _rgba_image(values: np.ndarray) -> bytes:
    """(H, W, C) values as the RAM image of an RGBA32F texture (alpha 1 where C < 4)."""
    height, width, channels = values.shape
    rgba = np.zeros((height, width, 4), np.float32)
    rgba[..., 3] = 1.0
    rgba[..., :channels] = values
    return rgba[..., [2, 1, 0, 3]].tobytes()  # Panda3D keeps RGBA as BGRA


def float_texture(name: str, values: np.ndarray, mipmaps: bool = False) -> Texture:
    """An RGBA32F 2D texture from (H, W, C) values, row 0 at v = 0 (GL convention),
    sampled bilinearly (trilinearly with ``mipmaps``)."""
    height, width, _ = values.shape
    texture = Texture(name)
    texture.setup2dTexture(width, height, Texture.T_float, Texture.F_rgba32)
    texture.setRamImage(_rgba_image(values))
    texture.setWrapU(SamplerState.WM_repeat)
    texture.setWrapV(SamplerState.WM_repeat)
    texture.setMinfilter(SamplerState.FT_linear_mipmap_linear if mipmaps else SamplerState.FT_linear)
    texture.setMagfilter(SamplerState.FT_linear)
    return texture


class TextureSet(ParameterSet):
    """A texture map of (H, W, C) values, C in 1..4, row 0 at v = 0.

    ``shader_input`` names the sampler the surface shader reads (e.g. "albedo").
    ``bilinear_weights``: weight a texel's share of a pixel by its bilinear weight (the
    pixel's exact sensitivity to it); False counts every named texel 1, so the
    un-normalised accumulation is SPEC.md's estimate of the summed loss's gradient.
    ``shares_texels_with``: another optimised map of the same size and sampling (e.g. the
    albedo for a normal map) whose contributor domain this one uses too.
    ``mipmaps``: the renderer samples theta+- trilinearly; a pass after P rebuilds their
    mip levels each step. ``mip_aware`` (with mipmaps): a minified sample's contributors
    are the texels of its footprint at the mip level the sampler reads, spread back onto
    level 0; otherwise the level-0 bilinear texels.
    """

    def __init__(self, shader_input: str, values, settings: Settings | None = None, frozen: bool = False,
                 bilinear_weights: bool = True, mipmaps: bool = False, mip_aware: bool = False,
                 shares_texels_with: "TextureSet | None" = None):
        values = np.asarray(values, np.float32)
        if values.ndim != 3 or not 1 <= values.shape[2] <= 4:
            raise SgeError(f"texture '{shader_input}': expected (height, width, channels) values, got {values.shape}")
        height, width, channels = values.shape
        frozen = frozen or settings is None  # no settings: drawn, never optimised
        if not (1 <= width <= MAX_TEXTURE_SIZE and 1 <= height <= MAX_TEXTURE_SIZE):
            raise SgeError(f"texture '{shader_input}' is {width}x{height}; sizes from 1 to {MAX_TEXTURE_SIZE} work")
        if mip_aware and not mipmaps:
            raise SgeError(f"texture '{shader_input}': mip-aware contributors need mipmaps=True")
        levels = max(width, height).bit_length() if mip_aware else 0
        if frozen:
            domain = None
        elif shares_texels_with is not None:
            # Maps of one size sampled at the same UVs name the same texels in every pixel:
            # one domain (one G pass, one accumulator) serves both.
            domain = shares_texels_with.domain
            if domain is None or shares_texels_with.texture_shape[:2] != values.shape[:2] or \
                    shares_texels_with.mipmaps != mipmaps:
                raise SgeError(f"texture '{shader_input}' can only share the texels of an optimised "
                               f"texture of the same size and sampling")
        else:
            domain = TexelDomain(shader_input, width, height, bilinear_weights, levels)
        self.texture_shape = values.shape
        self.mipmaps = mipmaps
        super().__init__(shader_input, values.reshape(-1, channels), domain, settings, frozen=frozen)
        self.shader_input = shader_input

    def load(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float32).reshape(self.texture_shape)
        super().load(values.reshape(-1, self.texture_shape[2]))

    def _make_copies(self, values: np.ndarray):
        """theta+ and theta- are two ordinary 2D textures (no [theta+ | theta-] buffer)."""
        values = values.reshape(self.texture_shape)
        self.plus = float_texture(f"{self.name}-plus", values, self.mipmaps)
        self.minus = float_texture(f"{self.name}-minus", values, self.mipmaps)
        return None

    def after_perturb(self):
        """With mipmaps: rebuild every mip level of theta+ and theta- from level 0."""
        if not self.mipmaps or self.frozen:
            return []
        passes = []
        height, width = self.texture_shape[:2]
        for level in range(1, self.plus.getExpectedNumMipmapLevels()):
            size = (max(1, width >> level), max(1, height >> level))
            groups = (math.ceil(size[0] / 8), math.ceil(size[1] / 8), 1)
            for side, texture in (("plus", self.plus), ("minus", self.minus)):
                passes.append((f"mip:{self.name}-{side}-{level}", "surface/downsample.comp", groups, {
                    "source": texture, "source_level": level - 1,
                    "destination": ShaderInput("destination", texture, False, True, -1, level)}))
        return passes

    def _copies_bytes(self) -> int:
        return 2 * self.plus.getExpectedRamImageSize()

    def upload_copies(self, plus: np.ndarray, minus: np.ndarray) -> None:
        for texture, values in ((self.plus, plus), (self.minus, minus)):
            texture.setRamImage(_rgba_image(np.asarray(values, np.float32).reshape(self.texture_shape)))

    def texture_values(self, context) -> np.ndarray:
        """theta as (H, W, C), read back from the GPU."""
        return self.values(context).reshape(self.texture_shape)

    def save_float(self, context, path) -> None:
        """Write theta as a float32 .npy (H, W, C), row 0 at v = 0: loads back bit-identical."""
        values = self.texture_values(context)
        atomic_write(Path(path), lambda stream: np.save(stream, values, allow_pickle=False))

    def load_float(self, path) -> None:
        """Read theta from a file written by ``save_float``."""
        try:
            values = np.load(Path(path), allow_pickle=False)
        except (OSError, ValueError) as error:
            raise SgeError(f"cannot read texture '{path}': {error}; give a .npy written by save_float") from None
        if values.shape != self.texture_shape or values.dtype != np.float32:
            raise SgeError(f"texture '{path}' is {values.dtype} {values.shape}, expected float32 {self.texture_shape}")
        if not np.all(np.isfinite(values)):
            raise SgeError(f"texture '{path}' contains NaN or Inf; it is not a usable texture")
        self.load(values)

    def export_png(self, context, path) -> None:
        """Write theta (linear) as an 8-bit sRGB PNG, top row = v = 1 as image viewers show."""
        values = self.texture_values(context)
        if values.shape[2] == 1:
            values = np.repeat(values, 3, axis=2)
        save_png(Path(path), linear_to_srgb8(values[::-1]))

    def side_inputs(self, side: int) -> dict:
        return {self.shader_input: (self.plus, self.minus)[side]}

    def perturb_inputs(self, loss_history, period: int, phase: int) -> dict:
        inputs = super().perturb_inputs(loss_history, period, phase)
        del inputs["perturbed"]  # None for textures
        inputs.update(perturbed_plus=self.plus, perturbed_minus=self.minus)
        return inputs

    copy_writer = "core/copies_image2d.glsl"

    def perturb_groups(self) -> tuple[int, int, int]:
        return dispatch_grid(self.texture_shape[0] * self.texture_shape[1])
