"""Gaussian splats as a parameter kind: N splats x 14 parameters, stored as the standard
3DGS .ply holds them (so a .ply round trip is exact):

    mean (3)  log-scale (3)  rotation quaternion, w first (4)  opacity logit (1)  f_dc (3)

each attribute its own ``ParameterSet`` (its epsilon, learning rate and turn), all five
sharing one ``ContributorDomain`` (per splat: sum_p w_p Delta_p and sum_p w_p).

A step, beyond the core's P and G:
- after the first optimised set's P, a depth sort of the splats under the step's view, by their
  unperturbed means (``sort_keys.comp`` then a bitonic sort, ``sort_step.comp``), so
  theta+ and theta- draw in one order;
- the draw: one instanced quad per splat by vertex pulling (``splats.vert``), front to
  back with "under" blending (``splats.frag``); each fragment with alpha >= 1/255 puts its
  sort rank into the pixel's K-buffer (image atomics: Panda3D 1.10 blends every colour
  attachment, so contributors cannot be written as IDs). No planes of the kind's own;
  the targets are cleared every step;
- G (``gradient.comp``): per pixel, the K nearest contributors of each side, their
  weights alpha_k T_k recomputed in depth order from that side's copies, and w Delta_p
  into the union's accumulators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from panda3d.core import ColorBlendAttrib, GeomEnums, LVecBase2f, NodePath, Texture, TransparencyAttrib

from .. import gpu
from ..errors import SgeError
from ..kind import Kind
from ..parameters import ContributorDomain, ParameterSet, Settings, dispatch_grid
from ..shaders import raster_shader

SH_C0 = 0.28209479177387814  # colour = 0.5 + SH_C0 * f_dc (3DGS's degree-0 SH)
ATTRIBUTES = (("means", 3), ("log_scales", 3), ("rotations", 4), ("opacities", 1), ("colors", 3))
PARAMETERS_PER_SPLAT = sum(width for _, width in ATTRIBUTES)  # 14
K_BUFFER = 8
EMPTY_RANK = 0x7FFFFFFF
SORT_CHUNK = 512  # pairs a workgroup sorts in shared memory (sort_local.comp)


@dataclass
class SplatSettings:
    """Epsilon and Adam learning rate of each attribute (``mean_*`` in units of the
    ``length`` given to ``Splats.settings``: world units per pixel at the scene's
    distance), and the turn each takes (``*_group``: sets of different groups are
    perturbed in turns)."""

    # Defaults: the best of the comparisons in docs/BENCHMARKS.md ("Gaussian splats").
    mean_epsilon: float = 0.5
    mean_learning_rate: float = 0.2
    scale_epsilon: float = 0.1
    scale_learning_rate: float = 0.02
    rotation_epsilon: float = 0.05
    rotation_learning_rate: float = 0.012
    opacity_epsilon: float = 0.4
    opacity_learning_rate: float = 0.4
    color_epsilon: float = 0.1
    color_learning_rate: float = 0.005
    # Every learning rate falls to this fraction over the planned steps (exponentially).
    final_learning_rate_scale: float = 0.1
    geometry_group: int = 0
    appearance_group: int = 0
    unit_weights: bool = False  # G: each contributor weighs 1 instead of alpha_k T_k
    # The splat budget (3DGS-MCMC style, fixed N): every relocate_every steps (0: never),
    # splats fainter than relocate_opacity move onto live ones drawn by opacity.
    relocate_every: int = 0
    relocate_opacity: float = 0.005

    def parameter_settings(self, length: float) -> dict[str, Settings]:
        geometry, appearance = self.geometry_group, self.appearance_group
        return {
            "means": Settings(self.mean_epsilon * length, self.mean_learning_rate * length, group=geometry),
            "log_scales": Settings(self.scale_epsilon, self.scale_learning_rate, (-20.0, 5.0), group=geometry),
            "rotations": Settings(self.rotation_epsilon, self.rotation_learning_rate, group=geometry),
            "opacities": Settings(self.opacity_epsilon, self.opacity_learning_rate, (-12.0, 12.0), group=appearance),
            "colors": Settings(self.color_epsilon, self.color_learning_rate, (-1.8, 1.8), group=appearance),
        }


class SplatDomain(ContributorDomain):
    """Contributors of a pixel: the K nearest splats of each side's K-buffer, weighted by
    their blending weights (gradient.comp)."""

    gradient_shader = "splats/gradient.comp"

    def __init__(self, splats: "Splats"):
        super().__init__("splats", splats.count)
        self.splats = splats
        self.gradient_defines = {"K_BUFFER": K_BUFFER, **({"UNIT_WEIGHTS": True} if splats.unit_weights else {})}

    def gradient_inputs(self, targets: dict) -> dict:
        return {"accumulator": self.accumulator, **self.splats.draw_inputs()}


class SplatSet(ParameterSet):
    """One attribute of the splats; the first optimised one runs, after its P, the
    passes that prepare the step's draw (``Splats.sort_passes``)."""

    def __init__(self, *args, splats: "Splats", **kwargs):
        super().__init__(*args, **kwargs)
        self.splats = splats

    def after_perturb(self):
        return self.splats.sort_passes() if self is self.splats.parameter_sets[0] else []


class Splats(Kind):
    """N Gaussian splats drawn into (width, height) renders; ``values`` maps each of
    ATTRIBUTES' names to an (N, width) array in the .ply's form. ``settings`` maps a name
    to its ``Settings`` (None or left out: frozen)."""

    planes = ()

    def __init__(self, values: dict[str, np.ndarray], resolution: tuple[int, int],
                 settings: dict[str, Settings | None] | None = None, unit_weights: bool = False):
        settings = settings or {}
        arrays = {}
        for name, width in ATTRIBUTES:
            if name not in values:
                raise SgeError(f"splats: no '{name}' given (need {', '.join(n for n, _ in ATTRIBUTES)})")
            array = np.asarray(values[name], np.float32).reshape(-1, width)
            arrays[name] = array
        counts = {len(array) for array in arrays.values()}
        if len(counts) != 1:
            raise SgeError(f"splats: the attributes hold different numbers of splats ({sorted(counts)})")
        self.count = counts.pop()
        if self.count == 0:
            raise SgeError("splats: no splats to draw")
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.unit_weights = unit_weights
        self.domain = SplatDomain(self)
        self.sets: dict[str, ParameterSet] = {}
        for name, _ in ATTRIBUTES:
            setting = settings.get(name)
            kwargs = dict(domain=self.domain, settings=setting, frozen=setting is None)
            self.sets[name] = SplatSet(f"splat-{name}", arrays[name], splats=self, **kwargs)
        self.sort_size = max(SORT_CHUNK, 1 << math.ceil(math.log2(self.count)))
        self.sort_keys = gpu.buffer_texture("splat-sort-keys", np.zeros(self.sort_size, np.float32))
        self.order = gpu.buffer_texture("splat-order", np.arange(self.sort_size, dtype=np.int32))
        width, height = self.resolution
        self.k_buffer = gpu.buffer_texture("splat-k-buffer", np.full(2 * K_BUFFER * width * height, EMPTY_RANK, np.int32))
        # Two RGBA texels per (side, splat): the footprints the renders drew (splats.vert).
        self.footprints = Texture("splat-footprints")
        self.footprints.setupBufferTexture(2 * 2 * self.count, Texture.T_float, Texture.F_rgba32, GeomEnums.UH_dynamic)
        self.footprints.setRamImage(np.zeros(2 * 2 * 4 * self.count, np.float32).tobytes())

    @property
    def parameter_sets(self) -> list[ParameterSet]:
        return [s for s in self.sets.values() if not s.frozen]

    @property
    def params(self) -> int:
        return PARAMETERS_PER_SPLAT * self.count

    def draw_inputs(self) -> dict:
        """What the draw and G read: the copies, the order, the K-buffer, the sizes."""
        return {**{name: s.perturbed for name, s in self.sets.items()}, "order": self.order,
                "k_buffer": self.k_buffer, "footprints": self.footprints, "splat_count": self.count,
                "viewport": LVecBase2f(*self.resolution)}

    def sort_passes(self) -> list:
        """The passes after the first optimised set's P: the K-buffer emptied, then the
        depth sort: keys, then a bitonic network, its steps within a chunk of SORT_CHUNK
        pairs in shared memory (sort_local.comp), the longer ones one dispatch each
        (sort_step.comp)."""
        groups = dispatch_grid(self.sort_size)
        sort = {"sort_keys": self.sort_keys, "sort_order": self.order, "sort_size": self.sort_size}
        entries = 2 * K_BUFFER * self.resolution[0] * self.resolution[1]
        passes = [("splat-k-buffer-clear", "splats/clear_k_buffer.comp", dispatch_grid(min(entries, 1 << 20)),
                   {"k_buffer": self.k_buffer, "entries": entries}),
                  ("splat-sort-keys", "splats/sort_keys.comp", groups,
                   {**sort, "mean_theta": self.sets["means"].theta, "splat_count": self.count})]
        chunk_groups = (self.sort_size // SORT_CHUNK, 1, 1)
        passes.append(("splat-sort-chunks", "splats/sort_local.comp", chunk_groups, {**sort, "block": 0}))
        block = 2 * SORT_CHUNK
        while block <= self.sort_size:
            distance = block // 2
            while distance >= SORT_CHUNK:
                passes.append((f"splat-sort-{block}-{distance}", "splats/sort_step.comp", groups,
                               {**sort, "block": block, "distance": distance}))
                distance //= 2
            passes.append((f"splat-sort-{block}-local", "splats/sort_local.comp", chunk_groups, {**sort, "block": block}))
            block *= 2
        return passes

    def make_node(self) -> NodePath:
        """The instanced quads of theta+ or theta- (shader input ``side``), sorted front
        to back and blended "under"; no depth test (the order is the depth)."""
        path = gpu.pulled_geometry("splats", 6)
        path.setInstanceCount(self.count)
        path.setShader(raster_shader("splats/splats.vert", "splats/splats.frag", {"K_BUFFER": K_BUFFER}))
        path.setShaderInputs(**self.draw_inputs())
        under = ColorBlendAttrib.make(ColorBlendAttrib.M_add, ColorBlendAttrib.O_one_minus_fbuffer_alpha,
                                      ColorBlendAttrib.O_one)
        path.setAttrib(under)
        path.setTransparency(TransparencyAttrib.M_none)
        path.setDepthTest(False)
        path.setDepthWrite(False)
        path.setTwoSided(True)
        path.setBin("unsorted", 0)
        return path

    # --- host side --------------------------------------------------------------------
    def values(self, context) -> dict[str, np.ndarray]:
        """Every attribute's theta, read back, (N, width) float32 each."""
        return {name: s.values(context) for name, s in self.sets.items()}

    def load_values(self, values: dict[str, np.ndarray]) -> None:
        """Replace every attribute's theta (Adam's moments zeroed): load time."""
        for name, s in self.sets.items():
            s.load(np.asarray(values[name], np.float32).reshape(s.shape))

    def relocate(self, context, min_opacity: float, rng: np.random.Generator) -> int:
        """The splat budget at a fixed N, as 3DGS-MCMC does: every splat whose opacity is
        below ``min_opacity`` becomes a copy of a live splat drawn with probability by
        opacity, the pair sharing its opacity (1 - (1 - a)^(1/2) each, so together they
        cover as the one did); the moved splats' Adam moments are zeroed. A readback and
        an upload, between steps (never per step). Returns how many moved."""
        values = self.values(context)
        opacity = 1.0 / (1.0 + np.exp(-values["opacities"][:, 0].astype(np.float64)))
        dead = np.nonzero(opacity < min_opacity)[0]
        alive = np.nonzero(opacity >= min_opacity)[0]
        if len(dead) == 0 or len(alive) == 0:
            return 0
        sources = rng.choice(alive, size=len(dead), p=opacity[alive] / opacity[alive].sum())
        shared = 1.0 - np.sqrt(1.0 - np.minimum(opacity, 0.99))
        for name in values:
            values[name][dead] = values[name][sources]
        logit = np.log(shared / (1.0 - shared)).astype(np.float32)
        for index in np.unique(sources):
            values["opacities"][index, 0] = logit[index]
        values["opacities"][dead, 0] = logit[sources]
        moved = np.unique(np.concatenate([dead, sources]))
        for name, parameter_set in self.sets.items():
            parameter_set.move(values[name])
            if not parameter_set.frozen:
                first, second = parameter_set.moments(context)
                first[moved], second[moved] = 0.0, 0.0
                gpu.upload(parameter_set.first_moment, first.ravel())
                gpu.upload(parameter_set.second_moment, second.ravel())
        return len(dead)

    def state(self, context) -> dict:
        state = super().state(context)
        for name, s in self.sets.items():
            if s.frozen:
                state[f"{s.name}.theta"] = s.values(context)
        return state
