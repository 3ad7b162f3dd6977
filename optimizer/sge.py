"""The SGE step: P (update + perturb) -> render theta+, theta-, reference -> G.

    step s:  P     for each parameter set: finish step s-1 (g_i = delta_i sum_p w_p Delta_p /
                   (2 eps n_i), n_i = sum_p w_p over the pixels naming element(i); Adam),
                   then theta+- = theta +- eps delta(seed_s)
             draw  theta+ and theta- (color, ID, UV targets) and the reference, same view
             G     per pixel: Delta_p = l(C+, T) - l(C-, T) into the loss history and, for
                   the per-pixel estimator, into the accumulators of the pixel's contributors

A frame runs K such steps (``steps_per_frame``) inside one ``renderFrame()``, as the display
regions of one offscreen buffer, in order:

    P(0) | theta+(0) theta-(0) reference(0) | G(0) P(1) | theta+(1) ... | G(K-1)

(the three renders of a step in one region, each into its own page of the targets).

Each step of a frame reads its own StepState and View (PTAs the host writes before the
frame), so a frame of K steps computes exactly what K frames of one step would.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from panda3d.core import LVecBase3i, LVecBase4f, LVecBase4i, NodePath, PTA_float, PTA_int, ShaderAttrib

from . import gpu
from .constants import (
    ACCUMULATOR_ENTRIES,
    DIVERGENCE_ENTRY,
    FIXED_SCALE,
    GRADIENT_GROUP,
    LOSS_SLOT_SIZE,
    REFERENCE,
    THETA_MINUS,
    THETA_PLUS,
)
from .errors import SgeError
from .kind import Kind, Reference
from .shaders import check_compiled, compute_shader
from .view import View, set_views

ESTIMATORS = ("per-pixel", "global")
HISTORY_LENGTH = 4096
STAMP_CYCLE = (1 << 24) - 1  # render stamps run 1 .. STAMP_CYCLE (exact in float32)

MAX_STEPS_PER_FRAME = 256
# The passes' buffer renders before an app's own windows (sort 0).
SORT_PASSES = -100
PASSES = ("P", "theta_plus", "theta_minus", "reference", "G")


def decode_fixed(low, high):
    """64-bit fixed-point sums stored as (low, high) int32 words (common.glsl) -> floats."""
    low, high = np.asarray(low, np.int64), np.asarray(high, np.int64)
    return ((high << 32) + (low & 0xFFFFFFFF)) / FIXED_SCALE


def perturbation_seed(run_seed: int, step: int) -> int:
    """The seed of a step's delta_i: a mix of the run seed and the step (31 bits)."""
    x = (run_seed * 0x9E3779B1 + step * 0x85EBCA77 + 0x27D4EB2F) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    return x & 0x7FFFFFFF


class StepState:
    """The per-step uniforms of every pass, in two PTAs (see common.glsl)."""

    def __init__(self):
        self.ints = PTA_int.emptyArray(9)
        self.floats = PTA_float.emptyArray(4)
        # Written through numpy views of the PTAs' memory: two copies per step.
        self._ints = np.frombuffer(self.ints, np.int32)
        self._floats = np.frombuffer(self.floats, np.float32)

    def set(self, *, seed, previous_seed, parity, apply_update, step_index, slot, previous_slot,
            learning_rate_scale, previous_epsilon_scale, epsilon_scale):
        self.write((seed, previous_seed, parity, apply_update, step_index, slot, previous_slot),
                   (learning_rate_scale, previous_epsilon_scale, epsilon_scale))

    def stamp(self, value: int, reference: int | None = None) -> None:
        """The stamp this step's renders write into the ID target's .w (targets.glsl), and
        the one G expects on the reference's page: the same, or that of the step that last
        drew the reference where this step reuses its page (``reuse_reference``)."""
        self._ints[7] = value
        self._ints[8] = value if reference is None else reference

    def write(self, ints: tuple, scalars: tuple) -> None:
        """The values of ``set``, in its order (the per-step path)."""
        self._ints[:7] = ints
        self._floats[:3] = scalars

    def inputs(self) -> dict:
        return {"step_state": self.ints, "step_scalars": self.floats}


class Optimizer:
    """Per-pixel (or global) stochastic gradient estimation of an asset's parameters.

    Args:
        context: the GL context (``GpuContext.headless()`` or ``.from_showbase(base)``).
        asset: what is optimised, a ``Kind`` (optimizer/kind.py; e.g. ``optimizer.surface.mesh.Mesh``).
        reference: what it is fitted to, a ``Reference`` (e.g. a Panda3D model under the
            surface shading: ``optimizer.surface.mesh.ModelReference``).
        resolution: (width, height) of the render targets.
        estimator: "per-pixel" (default) or "global" (SPSA: the whole image's Delta for
            every parameter).
        seed: the run seed; with the same views it makes a run bit-reproducible.
        learning_rate_schedule: step -> factor on every set's learning rate.
        epsilon_schedule: step -> factor on every set's epsilon (a larger epsilon early
            sees coarse misfits; a smaller one late lowers the noise floor).
        supersampling: render at this many times the resolution per axis; the loss is
            taken on the box-filtered (antialiased) pixels (see targets.glsl).
        background: clear color of all three renders.
        loss_space: "linear" (L2 of linear colors) or "srgb" (L2 of the sRGB-encoded
            pixels, what 8-bit images and their PSNR see).
        clear_every_step: clear the color and ID/UV targets before each step's renders
            (True), or leave them (False): G then reads a pixel only where the render's
            stamp in the ID target says this step drew it, else the background, so the
            run is bit-identical; at 1024^2 on an H100 the clears cost ~2.7 ms a step.
            Frames the host reads back (``show``, ``snapshot``, ``loss_pair``) always clear.
        delta_pass: the per-pixel estimator computes each pixel's Delta_p and coverage in a
            core pass of its own (core/loss.comp, into an image every domain's G reads)
            instead of in each domain's G from the targets (the default, measured faster:
            docs/BENCHMARKS.md); the results are the same.
        reuse_reference: with targets not cleared every step, a step whose view and light
            are those of the last reference render does not draw the reference again: G
            reads the page that render left (its stamp). Only for a reference that does
            not change between steps (``invalidate_reference()`` after changing it); the
            results are bit-identical to drawing it each step.
        color_bits: 32 (default) or 16, the float size of the colour plane's channels (a
            16-bit plane is cheaper to fill; Delta_p then carries its rounding, about
            5e-4 of a colour).
        depth_weight, depth_limit: with a weight > 0, each sub-sample that the perturbed
            render and the reference both cover adds weight * min(|z - z_ref|, limit)^2 to
            the pixel loss (z: eye-space depth, the ID target's .z), a pull of the surface
            onto the reference's; 0 (default): colors only.
        coverage_weight: with a weight > 0, each sub-sample adds weight * (covered -
            covered_ref)^2 to the pixel loss (covered: the render drew there, its ID > 0),
            a silhouette term that does not depend on the colors either side of the
            outline; 0 (default): none.
        color_weight: the colour term's weight in the pixel loss (1, default); 0 leaves
            only the depth and coverage terms.
        depth_contrast, depth_contrast_cap: with both weights > 0, each sub-sample's depth
            term is weighted 1 + min(depth_contrast * |grad T|^2, depth_contrast_cap), grad T
            the reference's colour differences to its next sub-samples on its surface, per
            1/256 of the render's width (shaders/core/targets.glsl): the surface is pulled
            hardest where the reference's texture has contrast, which a surface off the
            source's shows shifted with the view. 0 (default): a uniform depth term.

    Parameter sets whose ``Settings.group`` differ are perturbed in turns, one group per
    step (block-coordinate SGE). Moving a vertex by epsilon flips whole pixels between
    surfaces, a Delta_p of order 1, while a color or texel perturbed by a few 1/255 changes
    its pixels by about 1e-3: perturbed in the same step, the geometry's flips would
    drown the colors' signal. Each set is then stepped only on the steps after its turn.
    """

    def __init__(self, context: gpu.GpuContext, asset: Kind, reference: Reference, resolution: tuple[int, int],
                 estimator: str = "per-pixel", seed: int = 0,
                 learning_rate_schedule: Callable[[int], float] = lambda step: 1.0,
                 epsilon_schedule: Callable[[int], float] = lambda step: 1.0,
                 supersampling: int = 1, background=(0.0, 0.0, 0.0, 1.0), loss_space: str = "linear",
                 steps_per_frame: int = 1, clear_every_step: bool = True, depth_weight: float = 0.0,
                 depth_limit: float = 0.05, delta_pass: bool = False, reuse_reference: bool = False,
                 color_bits: int = 32, coverage_weight: float = 0.0, color_weight: float = 1.0,
                 depth_contrast: float = 0.0, depth_contrast_cap: float = 3.0):
        if estimator not in ESTIMATORS:
            raise SgeError(f"unknown estimator '{estimator}'; choose one of {', '.join(ESTIMATORS)}")
        if loss_space not in ("linear", "srgb"):
            raise SgeError(f"loss_space must be 'linear' or 'srgb', got '{loss_space}'")
        if not (math.isfinite(depth_weight) and depth_weight >= 0 and math.isfinite(depth_limit) and depth_limit > 0):
            raise SgeError(f"depth_weight must be >= 0 and depth_limit > 0, got {depth_weight} and {depth_limit}")
        for name, value in (("coverage_weight", coverage_weight), ("color_weight", color_weight),
                            ("depth_contrast", depth_contrast), ("depth_contrast_cap", depth_contrast_cap)):
            if not (math.isfinite(value) and value >= 0):
                raise SgeError(f"{name} must be a finite number >= 0, got {value}")
        if not (isinstance(supersampling, int) and 1 <= supersampling <= 8):
            raise SgeError(f"supersampling must be an integer from 1 to 8, got {supersampling}")
        if not (isinstance(steps_per_frame, int) and 1 <= steps_per_frame <= MAX_STEPS_PER_FRAME):
            raise SgeError(f"steps_per_frame must be an integer from 1 to {MAX_STEPS_PER_FRAME}, got {steps_per_frame}")
        if color_bits not in (16, 32):
            raise SgeError(f"color_bits must be 16 or 32, got {color_bits}")
        if not asset.parameter_sets:
            raise SgeError("nothing to optimise: every parameter set of the asset is frozen")
        render_size = (resolution[0] * supersampling, resolution[1] * supersampling)
        context.check_target_size("sge render targets", render_size)  # before making any buffer
        limit = context.gsg.getMaxBufferTextureSize()
        for parameter_set in asset.parameter_sets:
            sizes = [parameter_set.count, parameter_set.domain.accumulator.getXSize()]
            if limit > 0 and max(sizes) > limit:
                raise SgeError(f"{parameter_set.name}: {max(sizes)} values in one GPU buffer, but "
                               f"'{context.renderer}' allows {limit}; use a smaller texture or split it")
        self.context = context
        self.asset = asset
        self.estimator = estimator
        self.resolution = resolution
        self.supersampling = supersampling
        self.schedule = learning_rate_schedule
        self.epsilon_schedule = epsilon_schedule
        self.steps_per_frame = steps_per_frame
        self.loss_history = gpu.buffer_texture("loss-history", np.zeros(HISTORY_LENGTH * LOSS_SLOT_SIZE, np.int32))
        self._shaders = []
        self.reset(seed)
        defines = {"ESTIMATOR_GLOBAL": True} if estimator == "global" else {}

        # P: one compute node per parameter set; groups take turns (see the class docs).
        turns = sorted({parameter_set.settings.group for parameter_set in asset.parameter_sets})
        perturb_passes = []  # the P dispatches and the passes that follow them
        for parameter_set in asset.parameter_sets:
            averaging = {"THETA_AVERAGE": True} if getattr(parameter_set, "averaging", False) else {}
            if not parameter_set.settings.normalised:
                averaging["SUMMED_ESTIMATE"] = True
            shader = self._compute("core/perturb.comp", {**defines, **parameter_set.perturb_defines, **averaging},
                                   includes={"copies.glsl": parameter_set.copy_writer})
            phase = turns.index(parameter_set.settings.group)
            node = gpu.compute_node(f"perturb:{parameter_set.name}", shader, parameter_set.perturb_groups(),
                                    parameter_set.perturb_inputs(self.loss_history, len(turns), phase))
            perturb_passes.append(node)
            for name, shader_file, groups, pass_inputs in parameter_set.after_perturb():
                perturb_passes.append(gpu.compute_node(name, self._compute(shader_file), groups, pass_inputs))

        # The renders: three pages of one set of layered targets. theta+ and theta- draw
        # one node (instanced), the reference its own.
        self.passes = gpu.PassBuffer(context, "sge-passes", SORT_PASSES, render_size, 3, background, asset.planes,
                                     color_bits=color_bits)
        self.plus_pass, self.minus_pass, self.reference_pass = self.passes.slots
        self.asset_node = asset.make_node()
        self.reference = reference
        self.reference_model = reference.make_node()

        # G: per-pixel, one scatter pass per contributor domain (the first also records
        # the loss); global, one pass summing the loss and Delta over the image.
        targets = {**self.passes.target_inputs(), "target_background": LVecBase4f(*background)}
        width, height = resolution
        sampling = {"SUPERSAMPLING": supersampling, **({"LOSS_SRGB": True} if loss_space == "srgb" else {})}
        if depth_weight > 0:
            sampling.update(DEPTH_WEIGHT=float(depth_weight), DEPTH_LIMIT=float(depth_limit))
        if coverage_weight > 0:
            sampling.update(COVERAGE_WEIGHT=float(coverage_weight))
        if depth_weight > 0 and depth_contrast > 0 and depth_contrast_cap > 0:
            sampling.update(DEPTH_CONTRAST=float(depth_contrast), DEPTH_CONTRAST_CAP=float(depth_contrast_cap))
        if color_weight != 1.0:
            sampling.update(COLOR_WEIGHT=float(color_weight))
        groups = (math.ceil(width / GRADIENT_GROUP), math.ceil(height / GRADIENT_GROUP), 1)
        # The recording pass stores one partial (loss, Delta) sum per workgroup.
        partial_count = groups[0] * groups[1]
        self.loss_partials = gpu.buffer_texture("loss-partials", np.zeros(2 * partial_count, np.float32))
        partials = {"loss_partials": self.loss_partials}
        gradient_passes = []
        if estimator == "global":
            gradient_passes.append(gpu.compute_node("loss", self._compute("core/loss.comp", sampling), groups,
                                                    {**targets, **partials}))
        elif delta_pass:
            # The core's pass records the loss and stores (Delta_p, covered) per pixel; each
            # domain's G reads them there rather than from the targets.
            self.pixel_deltas = gpu.float_image("pixel-deltas", resolution, channels=2)
            delta = {"pixel_deltas": self.pixel_deltas}
            gradient_passes.append(gpu.compute_node("delta", self._compute("core/loss.comp", {
                **sampling, "WRITE_PIXEL_DELTA": True}), groups, {**targets, **partials, **delta}))
            for domain in asset.domains:
                gradient_passes.append(gpu.compute_node(
                    f"gradient:{domain.name}", self._compute(domain.gradient_shader, {
                        **sampling, **domain.gradient_defines, "CORE_DELTA": True}),
                    groups, {**targets, **partials, **delta, "records_loss": 0, **domain.gradient_inputs(targets)}))
        else:
            # The first domain's pass also records the loss, so the targets are read once.
            for index, domain in enumerate(asset.domains):
                gradient_passes.append(gpu.compute_node(
                    f"gradient:{domain.name}", self._compute(domain.gradient_shader, {**sampling, **domain.gradient_defines}),
                    groups, {**targets, **partials, "records_loss": int(index == 0), **domain.gradient_inputs(targets)}))
        gradient_passes.append(gpu.compute_node("loss-sum", self._compute("core/loss_sum.comp"), (1, 1, 1),
                                                {**partials, "loss_history": self.loss_history,
                                                 "partial_count": partial_count, "history_length": HISTORY_LENGTH}))

        # The frame: P(0) | theta+(0) theta-(0) reference(0) | G(0) P(1) | ... | G(K-1),
        # the three renders of a step in one region (each draws into its own page).
        # Every pass of step k hangs under a node carrying step k's StepState or View.
        self.chains = [StepChain() for _ in range(steps_per_frame)]
        self._parts = {name: [] for name in PASSES}
        for chain in self.chains:
            self._parts["P"].append(chain.part("perturb", perturb_passes))
            self._parts["G"].append(chain.part("gradient", gradient_passes))
            for name, page in (("theta_plus", THETA_PLUS), ("theta_minus", THETA_MINUS)):
                part = NodePath(name)
                part.setShaderInputs(side=page, **asset.side_inputs(page))
                self.asset_node.instanceTo(part)
                self._parts[name].append(part)
            part = NodePath("reference")
            part.setShaderInput("target_page", REFERENCE)
            self.reference_model.instanceTo(part)
            self._parts["reference"].append(part)
        self._regions = [self.passes.compute_region(_scene("sge-step-0", self._parts["P"][0]))]
        for k, chain in enumerate(self.chains):
            renders = _scene(f"sge-renders-{k}", *(self._parts[name][k] for name in ("theta_plus", "theta_minus",
                                                                                      "reference")))
            renders.setShaderInputs(**chain.view.inputs(), step_state=chain.state.ints)
            self._regions.append(self.passes.render_region(renders))
            # G of this step and P of the next in one region: one region fewer per step.
            parts = [self._parts["G"][k]] + ([self._parts["P"][k + 1]] if k + 1 < steps_per_frame else [])
            self._regions.append(self.passes.compute_region(_scene(f"sge-step-{k + 1}", *parts)))
        self._passes_on = {name: True for name in PASSES}
        self._substitute: NodePath | None = None  # substitute_render() draws it
        self._snapshot_nodes: dict[int, NodePath] = {}  # snapshot_srgb8's pass, per filter factor
        self._minus_was_on = True  # theta-'s switch while a substitute took its page
        self._steps_in_frame = steps_per_frame
        self._last_chain = 0
        self._stamp = 0
        self.reuse_reference = reuse_reference
        self._reference_key = None  # (view, light) of the reference's page, when reusable
        self._reference_stamp = 0
        self._reference_drawn = [True] * steps_per_frame  # per step of the frame
        self.clear_every_step = clear_every_step
        self._clearing = True
        self._use_steps(1)

    def _compute(self, name, defines=None, includes=None):
        shader = compute_shader(name, defines, includes)
        self._shaders.append((name, shader))
        return shader

    def verify_shaders(self) -> None:
        """Raise if any pass's shader failed to compile or link (call after a first
        frame): the compute passes' and the renders' (the asset's and the reference's)."""
        for name, shader in self._shaders:
            check_compiled(shader, name)
        for root in (self.asset_node, self.reference_model):
            for path in (root, *root.findAllMatches("**")):
                if path.node().getAttrib(ShaderAttrib) is not None and path.getShader() is not None:
                    check_compiled(path.getShader(), f"drawing {path.getName()}")

    @property
    def view(self) -> View:
        """The View of a frame's first step (the only one, with one step per frame)."""
        return self.chains[0].view

    # --- which passes run -----------------------------------------------------------------
    def _use_steps(self, count: int) -> None:
        """Run the first ``count`` steps of the frame's chain, the rest switched off."""
        if count != self._steps_in_frame:
            self._steps_in_frame = count
            self._apply_switches()

    def _apply_switches(self) -> None:
        count = self._steps_in_frame
        # Regions: P(0), then two per step (renders, G + the next P).
        for index, region in enumerate(self._regions):
            region.setActive(index <= 2 * count)
        for name, parts in self._parts.items():
            for k, part in enumerate(parts):
                # Hidden, not stashed: unstashing would move a part after its neighbours.
                if self._passes_on[name] and k < count and (name != "reference" or self._reference_drawn[k]):
                    part.show()
                else:
                    part.hide()

    def set_pass_active(self, name: str, active: bool) -> None:
        """Switch one pass ("P", "theta_plus", "theta_minus", "reference", "G") on or off
        in every step of the frame (profiling: what a step loses without it)."""
        if name not in PASSES:
            raise SgeError(f"unknown pass '{name}'; choose one of {', '.join(PASSES)}")
        self._passes_on[name] = active
        self._apply_switches()

    def set_active(self, active: bool) -> None:
        """Switch every pass of this optimizer on or off. A frame the engine renders with
        the passes on runs a step with whatever state was set last: an app that renders
        frames without a ``begin_step`` (paused) must switch them off."""
        self.passes.buffer.setActive(active)

    def release(self) -> None:
        """Remove this optimizer's passes from the engine."""
        self.context.remove_buffer(self.passes.buffer)

    # --- running ------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Start a new run: step 0, no pending update, clear accumulators and history."""
        self.seed = seed
        self.step_index = 0
        self.pending_update = False
        for domain in self.asset.domains:
            domain.reset()
        gpu.upload(self.loss_history, np.zeros(HISTORY_LENGTH * LOSS_SLOT_SIZE, np.int32))

    def _set_state(self, state: StepState, step: int, apply_update: bool, perturb: bool = True) -> None:
        state.set(
            seed=perturbation_seed(self.seed, step),
            previous_seed=perturbation_seed(self.seed, step - 1),
            parity=step % 2,
            apply_update=int(apply_update),
            step_index=step,
            slot=step % HISTORY_LENGTH,
            previous_slot=(step - 1) % HISTORY_LENGTH,
            learning_rate_scale=self.schedule(step - 1),
            previous_epsilon_scale=self.epsilon_schedule(step - 1),
            epsilon_scale=self.epsilon_schedule(step) if perturb else 0.0,
        )

    def step(self, model_view_projection: np.ndarray, light=None) -> None:
        """One SGE step seen from ``model_view_projection`` (4x4, column vectors), lit
        (lit assets) by ``light`` = (direction towards it in model space, ambient)."""
        self.begin_steps([(model_view_projection, light)])
        self.context.render_frame()

    def steps(self, views) -> None:
        """One SGE step per view, ``steps_per_frame`` of them per frame. A view is a 4x4
        model-view-projection or a (model-view-projection, light) pair."""
        views = list(views)
        for first in range(0, len(views), self.steps_per_frame):
            self.begin_steps(views[first:first + self.steps_per_frame])
            self.context.render_frame()

    def begin_step(self, model_view_projection: np.ndarray, light=None) -> None:
        """Set up the next step; the next frame the engine renders runs it. (A running
        app's own frame can carry a step this way: see game.OptimizerComponent.)"""
        self.begin_steps([(model_view_projection, light)])

    def begin_steps(self, views) -> None:
        """Set up the next ``len(views)`` steps (at most ``steps_per_frame``), which the
        next frame the engine renders runs in order. Views as in ``steps``; a step with no
        light keeps the previous step's."""
        count = len(views)
        if not 1 <= count <= self.steps_per_frame:
            raise SgeError(f"a frame runs 1 to {self.steps_per_frame} steps (steps_per_frame), got {count}")
        self._use_steps(count)
        self._clear_targets(self.clear_every_step)
        matrices = []
        previous = self.chains[self._last_chain].view
        # _set_state's values, each seed and epsilon scale computed once for two steps.
        step, apply_update = self.step_index, int(self.pending_update)
        seed, epsilon_scale = perturbation_seed(self.seed, step - 1), self.epsilon_schedule(step - 1)
        for chain, view in zip(self.chains, views):
            matrix, light = view if isinstance(view, tuple) else (view, None)
            matrices.append(matrix)
            _light(chain.view, light, previous)
            previous = chain.view
            next_seed, next_epsilon_scale = perturbation_seed(self.seed, step), self.epsilon_schedule(step)
            chain.state.write((next_seed, seed, step % 2, apply_update, step, step % HISTORY_LENGTH,
                               (step - 1) % HISTORY_LENGTH),
                              (self.schedule(step - 1), epsilon_scale, next_epsilon_scale))
            seed, epsilon_scale, apply_update, step = next_seed, next_epsilon_scale, 1, step + 1
        set_views([chain.view for chain in self.chains[:count]], matrices)
        drawn = []
        for chain in self.chains[:count]:
            stamp = self._next_stamp()
            key = self._reference_page_key(chain.view)
            if key is not None and key == self._reference_key:
                chain.state.stamp(stamp, self._reference_stamp)
                drawn.append(False)
            else:
                chain.state.stamp(stamp)
                self._reference_key, self._reference_stamp = key, stamp
                drawn.append(True)
        if drawn != self._reference_drawn[:count]:
            self._reference_drawn[:count] = drawn
            self._apply_switches()
        self.step_index, self.pending_update = step, True
        self._last_chain = count - 1

    def _reference_page_key(self, view: View):
        """What the reference's render depends on (with ``reuse_reference``): its view and
        light; None where its page cannot be reused (cleared each step, or the pass off)."""
        if not self.reuse_reference or self.clear_every_step or not self._passes_on["reference"]:
            return None
        return view.matrix_values.tobytes() + view.light_values.tobytes() + view.camera_values.tobytes()

    @property
    def reference_drawn(self) -> tuple[bool, ...]:
        """Per step of the last frame: whether it drew the reference (False: it reused the page)."""
        return tuple(self._reference_drawn[:self._steps_in_frame])

    def invalidate_reference(self) -> None:
        """Draw the reference again at the next step (after changing it, with ``reuse_reference``)."""
        self._reference_key = None

    def finish(self) -> None:
        """Apply the last step's pending update now, so theta reflects every step taken."""
        if not self.pending_update:
            return
        self._set_state(self.chains[0].state, self.step_index, True)
        # A frame of P alone. (Dispatching P's nodes directly, outside a frame, left their
        # uniforms bound: the next frame's P ran with them and applied the update again.)
        self._use_steps(1)
        for index, region in enumerate(self._regions):
            region.setActive(index == 0)
        try:
            self.context.render_frame()
        finally:
            self._apply_switches()
        self.pending_update = False

    def sync(self) -> None:
        """Wait until the GPU has finished every submitted step."""
        self.context.sync(self.loss_history)

    def losses(self) -> np.ndarray:
        """Mean per-pixel loss of the most recent steps (up to HISTORY_LENGTH), oldest first."""
        return self.history()[0]

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean per-pixel loss, divergence flag) of the most recent steps (up to
        HISTORY_LENGTH), oldest first, in one read: the flag is 1 where P computed a
        non-finite parameter in that step, 2 where its loss was not finite."""
        first = max(0, self.step_index - HISTORY_LENGTH)
        history = gpu.read_buffer(self.context, self.loss_history).reshape(HISTORY_LENGTH, LOSS_SLOT_SIZE)
        slots = np.arange(first, self.step_index) % HISTORY_LENGTH
        losses = decode_fixed(history[slots, 0], history[slots, 1]) / (self.resolution[0] * self.resolution[1])
        return losses, history[slots, DIVERGENCE_ENTRY]

    def _single_frame(self, model_view_projection: np.ndarray, light, apply_update: bool, perturb: bool) -> None:
        """Set up a frame of one step that is not an optimisation step (its index is not
        advanced)."""
        self._use_steps(1)
        chain = self.chains[0]
        _light(chain.view, light, self.chains[self._last_chain].view)
        self._last_chain = 0
        chain.view.set(model_view_projection)
        self._set_state(chain.state, self.step_index, apply_update, perturb)
        chain.state.stamp(self._next_stamp())
        self._reference_key = None  # this frame clears the targets and draws the reference
        if not self._reference_drawn[0]:
            self._reference_drawn[0] = True
            self._apply_switches()
        self._clear_targets(True)  # the host reads these frames' targets back

    def _next_stamp(self) -> int:
        """A render stamp no render since the last 2^24 - 1 carried (exact as a float)."""
        self._stamp = self._stamp % STAMP_CYCLE + 1
        return self._stamp

    def _clear_targets(self, on: bool) -> None:
        if on != self._clearing:
            self._clearing = on
            self.passes.set_clearing(on)

    def show(self, model_view_projection: np.ndarray, light=None) -> None:
        """Render theta itself (theta+ = theta- = theta: P runs with no perturbation and no
        update) from a view, for a look at the targets; G runs too, with Delta = 0, so the
        accumulator half of the coming step counts the contributions this view names
        (P clears it again at the next step)."""
        self.finish()
        self._single_frame(model_view_projection, light, apply_update=False, perturb=False)
        self.context.render_frame()

    def loss_pair(self, model_view_projection: np.ndarray, plus: dict, minus: dict, light=None) -> tuple[float, float]:
        """The summed pixel losses (L(theta+), L(theta-)) of explicitly given copies.

        ``plus``/``minus`` map parameter sets to values (sets left out keep theta). For
        checks such as finite differences; P is skipped for this one frame.
        """
        self.finish()
        for parameter_set in self.asset.parameter_sets:
            theta = parameter_set.values(self.context).ravel()
            parameter_set.upload_copies(plus.get(parameter_set, theta), minus.get(parameter_set, theta))
        self._single_frame(model_view_projection, light, apply_update=False, perturb=True)
        self._regions[0].setActive(False)
        try:
            self.context.render_frame()
        finally:
            self._regions[0].setActive(True)
        # The slot belongs to the next real step: read it, then clear it again.
        history = gpu.read_buffer(self.context, self.loss_history).reshape(HISTORY_LENGTH, LOSS_SLOT_SIZE)
        slot = history[self.step_index % HISTORY_LENGTH, :4].copy()
        history[self.step_index % HISTORY_LENGTH] = 0
        gpu.upload(self.loss_history, history)
        loss, delta = decode_fixed(slot[0::2], slot[1::2])
        return loss + delta / 2, loss - delta / 2

    def snapshot(self, model_view_projection: np.ndarray, filter_factor: int | None = None,
                 light=None) -> tuple[np.ndarray, np.ndarray]:
        """(current asset, reference) rendered from a view, as linear (H, W, 4) arrays.

        By default at the image resolution, box-filtered from the supersampled render as
        the loss sees it; ``filter_factor`` (a divisor of the supersampling) keeps more
        of the render's detail, e.g. 1 for the full supersampled image.
        """
        factor = self.supersampling if filter_factor is None else filter_factor
        if self.supersampling % factor:
            raise SgeError(f"filter factor {factor} does not divide the supersampling {self.supersampling}")
        self.show(model_view_projection, light)
        pages = gpu.read_pages(self.context, self.passes.color)  # one readback for both
        return tuple(_box_filter(pages[target.color.page], factor) for target in (self.plus_pass, self.reference_pass))

    def snapshot_srgb8(self, model_view_projection: np.ndarray, filter_factor: int | None = None,
                       light=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(asset, reference) rendered from a view as a screen shows them, and where each
        covers: (H, W, 3) uint8 sRGB images box-filtered by ``filter_factor`` as ``snapshot``
        does, and (H, W) bool masks (any sub-sample drawn). Filtered and encoded on the GPU
        (shaders/core/snapshot.comp), so only those images come back, not the float
        targets: scoring a view costs a readback of 2 x 16 bytes per pixel instead of 96."""
        factor = self.supersampling if filter_factor is None else filter_factor
        if self.supersampling % factor:
            raise SgeError(f"filter factor {factor} does not divide the supersampling {self.supersampling}")
        node = self._snapshot_nodes.get(factor)
        if node is None:
            width, height = (self.resolution[0] * self.supersampling // factor,
                             self.resolution[1] * self.supersampling // factor)
            node = NodePath(f"snapshot-{factor}")
            node.setShader(self._compute("core/snapshot.comp"))
            node.setShaderInputs(target_color=self.passes.color, target_sample=self.passes.sample,
                                 snapshot=gpu.float_image(f"snapshot-{factor}", (2 * width, height)),
                                 snapshot_pages=LVecBase4i(self.plus_pass.color.page, self.reference_pass.color.page,
                                                           factor, 0))
            node.setPythonTag("groups", LVecBase3i(math.ceil(width / 16), math.ceil(height / 16), 1))
            self._snapshot_nodes[factor] = node
        self.show(model_view_projection, light)
        self.context.engine.dispatchCompute(node.getPythonTag("groups"), node.getAttrib(ShaderAttrib), self.context.gsg)
        image = gpu.read_texture(self.context, node.getShaderInput("snapshot").getTexture())
        width = image.shape[1] // 2
        asset, reference = image[:, :width], image[:, width:]
        return (asset[..., :3].astype(np.uint8), reference[..., :3].astype(np.uint8),
                asset[..., 3] > 0.5, reference[..., 3] > 0.5)

    def substitute_render(self, node: NodePath | None) -> None:
        """Draw ``node`` into theta-'s page in place of theta-, in the first step of the
        frame (frames that only look: a bake draws the reference's shading normals there,
        so one frame shows theta, the reference and its normals); None draws theta- again.
        The node draws as a reference does (shader input ``target_page``)."""
        if node is None and self._substitute is None:
            return
        if self._substitute is not None:
            self._substitute.removeNode()
            self._substitute = None
            self._passes_on["theta_minus"] = self._minus_was_on
        if node is not None:
            part = NodePath("substitute")
            part.setShaderInput("target_page", THETA_MINUS)
            node.instanceTo(part)
            part.reparentTo(self._parts["reference"][0].getParent())  # the first step's renders
            self._substitute = part
            self._minus_was_on = self._passes_on["theta_minus"]
            self._passes_on["theta_minus"] = False
        self._apply_switches()


class StepChain:
    """The per-step inputs of one of a frame's steps: its StepState and View, and the
    nodes that hang that step's compute passes under them."""

    def __init__(self):
        self.state = StepState()
        self.view = View()

    def part(self, name: str, passes: list[NodePath]) -> NodePath:
        """A node running ``passes`` (compute nodes, instanced) in order with this step's
        state and view (a kind's pass may need the camera: a depth sort, a ray march)."""
        part = NodePath(name)
        part.setShaderInputs(**self.state.inputs(), **self.view.inputs())
        for node in passes:
            node.instanceTo(part)
        return part


def _light(view: View, light, previous: View) -> None:
    """Light a step's ``view`` with ``light``, or with None as the step before it was lit
    (``previous``, the View of that step)."""
    if light is not None:
        view.set_light(*light)
    elif view is not previous:
        view.light_values[:] = previous.light_values


def _scene(name: str, *parts: NodePath) -> NodePath:
    scene = NodePath(name)
    for part in parts:
        part.reparentTo(scene)
    return scene


def _box_filter(image: np.ndarray, factor: int) -> np.ndarray:
    height, width = image.shape[0] // factor, image.shape[1] // factor
    return image.reshape(height, factor, width, factor, -1).mean(axis=(1, 3))


def read_accumulator(context: gpu.GpuContext, domain, parity: int, channel: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One half of a domain's accumulator: (sum_p w_p Delta_p, n = sum_p w_p) per element."""
    entries = gpu.read_buffer(context, domain.accumulator).reshape(
        2, domain.element_count, domain.channels, ACCUMULATOR_ENTRIES)
    pairs = entries[parity, :, channel]
    values = decode_fixed(pairs[:, 0::2], pairs[:, 1::2])
    return values[:, 0], values[:, 1]
