"""The volume kind: an N^3 grid of density sigma >= 0 and linear RGB at voxel centres,
trilinear, drawn by a box whose fragment shader ray-marches it (shaders/volume/).

- Storage: two parameter sets, ``density`` (N^3 x 1, raw sigma) and ``color`` (N^3 x 3).
  P writes their copies theta+ and theta- into 3D textures that the renders sample with the
  hardware's trilinear filter (texel centres at voxel centres, clamp to edge): sigma =
  max(theta +- eps delta, 0) at the voxel centres, and P keeps theta itself in [0, inf)
  (the set's value range), so every voxel's perturbation is seen. The density writer also
  stores max(theta, 0), from which G weighs the samples.
- Draw: a box [-1, 1]^3 (its faces turned away from the eye) whose fragments march the
  ray through the pixel (march.glsl: SPEC's image formation, the per-pixel jitter hashed
  from the step's seed, so theta+, theta- and the reference share it).
- G (gradient.comp): re-marches each pixel's ray and gives Delta_p to the 8 trilinear
  voxels of every sample, weighted by the compositing weight (colour) or the transmittance
  (density), into two contributor domains, one per channel: at 256^3 one domain of two
  channels would need 2^28 accumulator texels, past the buffer-texture limit (2^27 on
  NVIDIA); one each is 2^27. The density domain's G pass fills both.
"""

from __future__ import annotations

import numpy as np
from panda3d.core import PTA_float, PTA_LVecBase4f, SamplerState, Texture

from .. import gpu
from ..errors import SgeError
from ..kind import Kind, Reference
from ..parameters import ContributorDomain, ParameterSet, Settings, dispatch_grid
from ..shaders import raster_shader

MAX_GRID = 256
# G scales Delta_p by this before the fixed-point sums (Adam's step does not depend on the
# gradient's scale): w Delta_p of a late step is ~1e-6, a few quanta of 2^-24 unscaled.
DELTA_SCALE = 64.0
UNIT_VOXELS = 256  # the largest grid (voxels) the unit-weight gradient check supports


def grid_texture(name: str, values: np.ndarray) -> Texture:
    """A 3D float texture of (N, N, N, C) values indexed [z, y, x], C = 1 (R32F) or 3
    (RGBA32F, alpha 1), sampled trilinearly with texel centres at the voxel centres."""
    values = np.asarray(values, np.float32)
    size = values.shape[0]
    texture = Texture(name)
    channels = values.shape[-1]
    texture.setup3dTexture(size, size, size, Texture.T_float, Texture.F_r32 if channels == 1 else Texture.F_rgba32)
    texture.setRamImage(_ram_image(values))
    for setter in (texture.setWrapU, texture.setWrapV, texture.setWrapW):
        setter(SamplerState.WM_clamp)
    texture.setMinfilter(SamplerState.FT_linear)
    texture.setMagfilter(SamplerState.FT_linear)
    return texture


def _ram_image(values: np.ndarray) -> bytes:
    if values.shape[-1] == 1:
        return np.ascontiguousarray(values, np.float32).tobytes()
    bgra = np.ones(values.shape[:3] + (4,), np.float32)
    bgra[..., 2::-1] = values  # Panda3D keeps RGBA RAM images as BGRA
    return bgra.tobytes()


def block_perturbation(size: int, components: int, block: int) -> dict:
    """P's #defines that give the voxels of one block x block x block cube one sign delta
    (per component), the blocks shifted by a random offset each step: the estimate is
    then, on average over the offsets, the gradient blurred by a tent of half-width
    ``block`` voxels, its noise averaged over the block (core/perturb.comp:
    PERTURBATION_INDEX). block 1: every voxel its own sign."""
    if block <= 1:
        return {}
    n, b, c, blocks = size, block, components, size // block + 1
    offset = "pcg_hash(uint(seed) ^ 0x68bc21ebu)"
    voxel = f"((i) / {c})"
    x = f"(({voxel} % {n} + int({offset} % {b}u)) / {b})"
    y = f"((({voxel} / {n}) % {n} + int(({offset} / {b}u) % {b}u)) / {b})"
    z = f"(({voxel} / {n * n} + int(({offset} / {b * b}u) % {b}u)) / {b})"
    return {"PERTURBATION_INDEX(i, seed)": f"(({x} + {blocks} * ({y} + {blocks} * {z})) * {c} + (i) % {c})"}


def sparse_choice(defines: dict, components: int, fraction: int) -> str:
    """The GLSL expression (of i and seed) true for the parameters sparse_perturbation
    perturbs: one block (of block_perturbation's, or one voxel) in ``fraction``, chosen by
    a hash of (block, seed), the same for a voxel's every component."""
    index = defines.get("PERTURBATION_INDEX(i, seed)", "(i)")
    block = f"uint(({index}) / {components})"
    return f"(pcg_hash({block} ^ pcg_hash(uint(seed) ^ 0x2c1b3c6du)) % {fraction}u == 0u)"


def sparse_perturbation(defines: dict, components: int, fraction: int) -> dict:
    """P's #defines that perturb only one block in ``fraction`` per step (sparse_choice):
    the others get delta 0, stay at theta in both renders and get no update from that step
    (core/perturb.comp: PERTURBATION_SIGN). A pixel's Delta_p then carries the
    perturbations of ~1/fraction of the voxels its ray crosses, each perturbed voxel's own
    term unchanged. fraction 1: all."""
    if fraction <= 1:
        return defines
    sign = "perturbation_sign(uint(PERTURBATION_INDEX(i, seed)), uint(set_id), uint(seed))"
    return {**defines, "PERTURBATION_SIGN(i, seed)": f"({sparse_choice(defines, components, fraction)} ? {sign} : 0.0)"}


def check_grid(density: np.ndarray, color: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, N, N) densities and (N, N, N, 3) colours as float32, or one clear error."""
    density, color = np.asarray(density, np.float32), np.asarray(color, np.float32)
    if density.ndim != 3 or len(set(density.shape)) != 1:
        raise SgeError(f"a volume's density must be an N x N x N grid, got shape {density.shape}")
    size = density.shape[0]
    if not 2 <= size <= MAX_GRID:
        raise SgeError(f"volume grids from 2^3 to {MAX_GRID}^3 work, got {size}^3")
    if color.shape != density.shape + (3,):
        raise SgeError(f"a volume's colour must be N x N x N x 3 beside its {density.shape} density, got {color.shape}")
    if not (np.all(np.isfinite(density)) and np.all(np.isfinite(color))):
        raise SgeError("the volume contains NaN or Inf; fix or regenerate the grid")
    return density, color


class DensitySet(ParameterSet):
    """Raw sigma per voxel; P writes max(theta +- eps delta, 0) and max(theta, 0)."""

    copy_writer = "volume/copies_density.glsl"

    def __init__(self, values: np.ndarray, domain, settings, frozen: bool = False, shrink: float = 0.0,
                 block: int = 1, sparse: int = 1):
        self.size = values.shape[0]
        self.shrink = shrink
        self.perturb_defines = sparse_perturbation(block_perturbation(self.size, 1, block), 1, sparse)
        super().__init__("volume-density", values.reshape(-1, 1), domain, settings, frozen=frozen)

    def _make_copies(self, values: np.ndarray):
        grid = np.maximum(values, 0.0).reshape((self.size,) * 3 + (1,))
        self.plus, self.minus, self.theta_copy = (grid_texture(f"{self.name}-{side}", grid)
                                                  for side in ("plus", "minus", "theta"))
        return None

    def _copies_bytes(self) -> int:
        return 3 * self.plus.getExpectedRamImageSize()

    def upload_copies(self, plus: np.ndarray, minus: np.ndarray) -> None:
        shape = (self.size,) * 3 + (1,)
        for texture, values in ((self.plus, plus), (self.minus, minus), (self.theta_copy, (np.ravel(plus) + np.ravel(minus)) / 2)):
            texture.setRamImage(_ram_image(np.maximum(np.asarray(values, np.float32), 0.0).reshape(shape)))

    def side_inputs(self, side: int) -> dict:
        return {"density_grid": (self.plus, self.minus)[side]}

    def perturb_inputs(self, loss_history, period: int, phase: int) -> dict:
        inputs = super().perturb_inputs(loss_history, period, phase)
        del inputs["perturbed"]
        inputs.update(density_plus=self.plus, density_minus=self.minus, density_theta=self.theta_copy,
                      grid_size=self.size, density_shrink=float(self.shrink))
        return inputs

    def perturb_groups(self) -> tuple[int, int, int]:
        return dispatch_grid(self.count)


class ColorSet(ParameterSet):
    """Linear RGB per voxel; P writes theta +- eps delta into two RGBA32F 3D textures."""

    copy_writer = "volume/copies_color.glsl"

    def __init__(self, values: np.ndarray, domain, settings, frozen: bool = False, block: int = 1,
                 sparse: int = 1):
        self.size = values.shape[0]
        self.perturb_defines = sparse_perturbation(block_perturbation(self.size, 3, block), 3, sparse)
        super().__init__("volume-color", values.reshape(-1, 3), domain, settings, frozen=frozen)

    def _make_copies(self, values: np.ndarray):
        grid = values.reshape((self.size,) * 3 + (3,))
        self.plus, self.minus = (grid_texture(f"{self.name}-{side}", grid) for side in ("plus", "minus"))
        return None

    def _copies_bytes(self) -> int:
        return 2 * self.plus.getExpectedRamImageSize()

    def upload_copies(self, plus: np.ndarray, minus: np.ndarray) -> None:
        shape = (self.size,) * 3 + (3,)
        for texture, values in ((self.plus, plus), (self.minus, minus)):
            texture.setRamImage(_ram_image(np.asarray(values, np.float32).reshape(shape)))

    def side_inputs(self, side: int) -> dict:
        return {"color_grid": (self.plus, self.minus)[side]}

    def perturb_inputs(self, loss_history, period: int, phase: int) -> dict:
        inputs = super().perturb_inputs(loss_history, period, phase)
        del inputs["perturbed"]
        inputs.update(color_plus=self.plus, color_minus=self.minus, grid_size=self.size)
        return inputs

    def perturb_groups(self) -> tuple[int, int, int]:
        return dispatch_grid(self.count // 3)  # one per voxel; P's clearing loop strides


class DensityDomain(ContributorDomain):
    """The voxels as density contributors; its G pass (gradient.comp) also fills the
    colour domain's accumulator, from the same re-marched samples."""

    gradient_shader = "volume/gradient.comp"

    def __init__(self, size: int, color_domain: ContributorDomain, unit_weights: bool):
        super().__init__("volume-density", size ** 3)
        self.size = size
        self.color_domain = color_domain
        self.density_theta: Texture | None = None  # set by the kind once its set exists
        self.jitter: PTA_float | None = None
        self.turns: dict = {}
        self.gradient_defines = {"DELTA_SCALE": f"{DELTA_SCALE:.1f}"}
        if unit_weights:
            if size ** 3 > UNIT_VOXELS:
                raise SgeError(f"unit weights (the gradient check) work up to {UNIT_VOXELS} voxels, got {size}^3")
            self.gradient_defines.update(UNIT_WEIGHTS=True, UNIT_VOXELS=UNIT_VOXELS)

    def reset(self) -> None:
        super().reset()
        self.color_domain.reset()

    def gradient_inputs(self, targets: dict) -> dict:
        return {"density_accumulator": self.accumulator, "color_accumulator": self.color_domain.accumulator,
                "density_theta": self.density_theta, "grid_size": self.size, "fixed_jitter": self.jitter,
                **self.turns}


def jitter_input(value: float = -1.0) -> PTA_float:
    """The march's ``fixed_jitter`` uniform, shared by a kind, its reference and G: < 0 the
    step's hashed per-pixel jitter, else this fraction of the step for every pixel."""
    jitter = PTA_float.emptyArray(1)
    jitter[0] = value
    return jitter


def box_node(name: str, defines: dict, inputs: dict):
    """The box [-1, 1]^3 whose fragments march a volume (shaders/volume/)."""
    path = gpu.pulled_geometry(name, 36)
    path.setShader(raster_shader("volume/box.vert", "volume/volume.frag", defines))
    path.setShaderInputs(**inputs)
    path.setDepthTest(False)
    path.setDepthWrite(False)
    path.setTwoSided(True)  # the vertex shader drops the faces turned to the eye
    return path


class VolumeGrid(Kind):
    """An N^3 grid of density (N, N, N) and linear RGB (N, N, N, 3), indexed [z, y, x],
    voxel (i, j, k) centred at -1 + (2 (x, y, z) + 1) / N; ``density_settings`` /
    ``color_settings`` None freeze that half. ``unit_weights``: G counts every named voxel
    1 per pixel (SPEC's gradient check; grids up to UNIT_VOXELS voxels). ``sparsity``: each
    density update is followed by a shrink of theta by this (times the learning-rate
    schedule) towards 0, a proximal step of an L1 term on sigma. ``block``: voxels share
    their perturbation sign in randomly shifted block^3 cubes (block_perturbation).
    ``sparse``: only one block in ``sparse`` is perturbed (and updated) per step
    (sparse_perturbation)."""

    def __init__(self, density, color, density_settings: Settings | None, color_settings: Settings | None,
                 unit_weights: bool = False, jitter: PTA_float | None = None, sparsity: float = 0.0,
                 block: int = 1, sparse: int = 1):
        density, color = check_grid(density, color)
        self.size = density.shape[0]
        self.jitter = jitter if jitter is not None else jitter_input()
        color_domain = ContributorDomain("volume-color", self.size ** 3)
        self.domain = DensityDomain(self.size, color_domain, unit_weights)
        self.domain.jitter = self.jitter
        if density_settings is not None:
            low, high = density_settings.value_range
            density_settings.value_range = (max(low, 0.0), high)  # sigma >= 0: theta too
        self.density = DensitySet(density, self.domain, density_settings, frozen=density_settings is None,
                                  shrink=sparsity, block=block, sparse=sparse)
        self.color = ColorSet(color, color_domain, color_settings, frozen=color_settings is None, block=block,
                              sparse=sparse)
        self.domain.density_theta = self.density.theta_copy
        if sparse > 1:  # G sums only the voxels perturbed in the step (the others' P skips them)
            self.domain.gradient_defines.update({
                "DENSITY_PERTURBED(i, seed)": sparse_choice(block_perturbation(self.size, 1, block), 1, sparse),
                "COLOR_PERTURBED(i, seed)": sparse_choice(block_perturbation(self.size, 3, block), 3, sparse)})
        # The turns P takes (Optimizer: sets of different groups are perturbed in turns, one
        # group per step, in the order of the groups' numbers), for G's channel switches.
        groups = sorted({s.settings.group for s in self.parameter_sets})
        self.domain.turns = {"turn_period": len(groups), **{
            f"{name}_phase": groups.index(part.settings.group) if not part.frozen else -1
            for name, part in (("density", self.density), ("color", self.color))}}

    @property
    def parameter_sets(self) -> list[ParameterSet]:
        return [s for s in (self.density, self.color) if not s.frozen]

    @property
    def domains(self) -> list[ContributorDomain]:
        return [self.domain]  # one G pass fills both channels' domains

    def make_node(self):
        return box_node("volume", {}, {"fixed_jitter": self.jitter})

    def side_inputs(self, side: int) -> dict:
        return {**self.density.side_inputs(side), **self.color.side_inputs(side)}

    def load(self, density: np.ndarray, color: np.ndarray) -> None:
        """Replace the grid (Adam's moments zeroed): load time only."""
        density, color = check_grid(density, color)
        if density.shape[0] != self.size:
            raise SgeError(f"a {density.shape[0]}^3 grid does not fit this {self.size}^3 volume")
        self.density.load(np.maximum(density, 0.0).reshape(-1, 1))
        self.color.load(color.reshape(-1, 3))

    def grid(self, context) -> tuple[np.ndarray, np.ndarray]:
        """(sigma = max(theta, 0) as (N, N, N), colour as (N, N, N, 3)), read back."""
        n = self.size
        density = np.maximum(self.density.values(context), 0.0).reshape(n, n, n)
        return density, self.color.values(context).reshape(n, n, n, 3)


class AnalyticVolume(Reference):
    """SPEC's truth (a sum of 8 Gaussian blobs of density, colour 0.5 + 0.5 sin(3x + (0, 2,
    4))) marched by the same shader code as the grid, evaluated at every sample."""

    def __init__(self, centres: np.ndarray, scales: np.ndarray, amplitudes: np.ndarray, jitter: PTA_float):
        self.centres, self.scales, self.amplitudes = (np.asarray(v, np.float64) for v in (centres, scales, amplitudes))
        self.jitter = jitter

    def make_node(self):
        blobs = PTA_LVecBase4f.emptyArray(8)
        amplitudes = PTA_float.emptyArray(8)
        for k in range(8):
            blobs[k] = (*self.centres[k], 1.0 / (2.0 * self.scales[k] ** 2))
            amplitudes[k] = self.amplitudes[k]
        return box_node("volume-truth", {"ANALYTIC_TRUTH": True, "REFERENCE_DRAW": 1},
                        {"blob_centres": blobs, "blob_amplitudes": amplitudes, "fixed_jitter": self.jitter})


class GridReference(Reference):
    """A user's grid (density (N, N, N), colour (N, N, N, 3)) as the reference."""

    def __init__(self, density, color, jitter: PTA_float):
        density, color = check_grid(density, color)
        self.density = grid_texture("volume-reference-density", np.maximum(density, 0.0)[..., None])
        self.color = grid_texture("volume-reference-color", color)
        self.jitter = jitter

    def make_node(self):
        return box_node("volume-reference", {"REFERENCE_DRAW": 1},
                        {"density_grid": self.density, "color_grid": self.color, "fixed_jitter": self.jitter})
