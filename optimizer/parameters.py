"""Parameter sets: every optimisable scalar of one kind, living on the GPU for a run.

A parameter set owns, as buffer textures:
  ``theta``, ``first_moment``, ``second_moment``  theta and Adam's m and v (three
                 buffers: one interleaved buffer of 3N would pass the GL limit on buffer
                 texture size, 2^27 texels on NVIDIA, at 45M parameters);
  ``perturbed``  [theta+ | theta-], what P writes and the renderer reads.
It points at the ``ContributorDomain`` whose accumulators G fills: every parameter of one
element (a vertex's x, y, z and r, g, b; later a texel's channels) shares that element's
contributor set, so G sums per element and P applies each parameter's own sign.

A parameter *kind* (vertex positions, vertex colors, texture maps, ...) is a subclass or
a configured instance plus the G shader of its domain; the core never names kinds.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from panda3d.core import LVecBase2f, LVecBase3f, Texture

from . import gpu
from .constants import ACCUMULATOR_ENTRIES, PERTURB_GROUP
from .errors import SgeError

ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
MAX_GROUPS_PER_DIMENSION = 65535  # the least GL guarantees (llvmpipe's limit)


def dispatch_grid(invocations: int) -> tuple[int, int, int]:
    """Workgroups of PERTURB_GROUP covering ``invocations``, as a 2D grid when one row of
    at most MAX_GROUPS_PER_DIMENSION groups cannot (perturb.comp flattens it again)."""
    groups = max(1, math.ceil(invocations / PERTURB_GROUP))
    rows = math.ceil(groups / MAX_GROUPS_PER_DIMENSION)
    return (math.ceil(groups / rows), rows, 1)


@dataclass
class Settings:
    """How one parameter set is perturbed and stepped."""

    epsilon: float
    learning_rate: float
    value_range: tuple[float, float] = (-math.inf, math.inf)
    betas: tuple[float, float] = ADAM_BETAS
    # Sets of different groups are perturbed in turns, one group per step (see Optimizer).
    group: int = 0
    # Iterate averaging: None (off) or eta >= 0, P then keeps theta_average, a
    # polynomial-decay average of theta over about the last t / (eta + 1) of the set's t
    # updates (perturb.comp); ``ParameterSet.output_values`` reads it. The steps themselves
    # are unchanged.
    average_eta: float | None = None
    # The per-pixel estimate of a step: True, the weighted mean over the pixels that name
    # the element (sum_p w_p Delta_p / n); False, the weighted sum (sum_p w_p Delta_p), whose
    # expectation over the views weighs each view by how many pixels the element has in it,
    # as the summed loss over all views does (perturb.comp, SUMMED_ESTIMATE).
    normalised: bool = True

    def __post_init__(self):
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise SgeError(f"epsilon must be a positive finite number, got {self.epsilon}")
        if not (self.learning_rate >= 0 and math.isfinite(self.learning_rate)):
            raise SgeError(f"learning rate must be a non-negative finite number, got {self.learning_rate}")
        low, high = self.value_range
        if not low < high:
            raise SgeError(f"value range must be (low, high) with low < high, got {self.value_range}")
        if self.average_eta is not None and not (self.average_eta >= 0 and math.isfinite(self.average_eta)):
            raise SgeError(f"average_eta must be None or a non-negative finite number, got {self.average_eta}")


class ContributorDomain:
    """The elements a pixel's ID/UV entries name (vertices, texels, ...), with their
    accumulators: for each element, 64-bit fixed-point sums of w_p Delta_p and of the
    weights n = sum_p w_p, twice over (the half G writes this step, the half P reads
    from the last)."""

    def __init__(self, name: str, element_count: int, channels: int = 1):
        if element_count <= 0:
            raise SgeError(f"{name}: nothing to optimise (0 elements)")
        self.name = name
        self.element_count = element_count
        self.channels = channels
        self.accumulator = gpu.buffer_texture(f"{name}-accumulator", self._zeros())
        self.parameter_sets: list[ParameterSet] = []
        self.gradient_defines: dict[str, object] = {}

    def _zeros(self) -> np.ndarray:
        return np.zeros(2 * self.element_count * self.channels * ACCUMULATOR_ENTRIES, np.int32)

    def reset(self) -> None:
        gpu.upload(self.accumulator, self._zeros())


class ParameterSet:
    """``values`` (elements x components) of one kind, optimised with ``settings``.

    ``frozen`` sets are drawn but never perturbed or stepped (their theta+ = theta-).
    ``channel`` picks which of the domain's accumulator channels the set reads (a kind
    may filter or weight its contributors differently, e.g. geometry vs. vertex colors).
    """

    def __init__(self, name: str, values: np.ndarray, domain: ContributorDomain | None,
                 settings: Settings | None = None, frozen: bool = False, channel: int = 0):
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2:
            raise SgeError(f"{name}: expected an (elements, components) array, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise SgeError(f"{name}: the initial values contain NaN or Inf; fix the input asset")
        if not frozen and (domain is None or settings is None):
            raise SgeError(f"{name}: an optimised set needs a contributor domain and settings")
        self.name = name
        self.shape = values.shape
        self.domain = domain
        self.settings = settings
        self.frozen = frozen
        self.channel = channel
        # From the name, so delta_i depends only on (name, i, seed): runs reproduce
        # whatever else the process made before. Sets of one asset have distinct names.
        self.set_id = zlib.crc32(name.encode()) & 0x7FFFFFFF
        self.theta = gpu.buffer_texture(f"{name}-theta", values.ravel())
        self.first_moment = gpu.buffer_texture(f"{name}-m", np.zeros(values.size, np.float32))
        self.second_moment = gpu.buffer_texture(f"{name}-v", np.zeros(values.size, np.float32))
        self.perturbed = self._make_copies(values)
        # theta_average (Settings.average_eta): made only for sets that average.
        self.averaging = not frozen and settings is not None and settings.average_eta is not None
        self.theta_average = gpu.buffer_texture(f"{name}-average", values.ravel()) if self.averaging else None
        if domain is not None and not frozen:
            if values.shape[0] != domain.element_count:
                raise SgeError(f"{name}: {values.shape[0]} elements but its domain {domain.name} has {domain.element_count}")
            domain.parameter_sets.append(self)

    def _make_copies(self, values: np.ndarray):
        """Where P writes theta+ and theta- for the renderer: one buffer [theta+ | theta-]."""
        return gpu.buffer_texture(f"{self.name}-perturbed", np.concatenate([values.ravel()] * 2))

    @property
    def gpu_bytes(self) -> int:
        """Bytes this set keeps on the GPU (state, copies, and its domain's accumulators)."""
        total = (4 if self.averaging else 3) * self.theta.getExpectedRamImageSize() + self._copies_bytes()
        if self.domain is not None and self.domain.parameter_sets and self.domain.parameter_sets[0] is self:
            total += self.domain.accumulator.getExpectedRamImageSize()
        return total

    def _copies_bytes(self) -> int:
        return self.perturbed.getExpectedRamImageSize()

    @property
    def count(self) -> int:
        return int(np.prod(self.shape))

    def move(self, values: np.ndarray) -> None:
        """Replace theta (copies = theta), keeping Adam's moments. Uploaded when a frame next
        binds it: a readback before that returns (and keeps) the old theta."""
        values = np.asarray(values, np.float32).reshape(self.shape)
        gpu.upload(self.theta, values.ravel())
        if self.averaging:  # the average starts again from the new theta
            gpu.upload(self.theta_average, values.ravel())
        self.upload_copies(values, values)

    def load(self, values: np.ndarray) -> None:
        """Replace theta (and zero Adam's moments): load time only."""
        self.move(values)
        for moment in (self.first_moment, self.second_moment):
            gpu.upload(moment, np.zeros(self.count, np.float32))

    def state(self, context: gpu.GpuContext) -> dict[str, np.ndarray]:
        """theta and Adam's moments, read back (checkpoints)."""
        first_moment, second_moment = self.moments(context)
        state = {"theta": self.values(context), "m": first_moment, "v": second_moment}
        if self.averaging:
            state["average"] = self.output_values(context)
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state`` read: theta, Adam's moments, and copies = theta."""
        self.move(state["theta"])
        gpu.upload(self.first_moment, np.asarray(state["m"], np.float32).ravel())
        gpu.upload(self.second_moment, np.asarray(state["v"], np.float32).ravel())
        if self.averaging and "average" in state:
            gpu.upload(self.theta_average, np.asarray(state["average"], np.float32).ravel())

    def upload_copies(self, plus: np.ndarray, minus: np.ndarray) -> None:
        """Set theta+ and theta- explicitly (checks such as finite differences)."""
        gpu.upload(self.perturbed, np.concatenate([np.ravel(plus), np.ravel(minus)]).astype(np.float32))

    def values(self, context: gpu.GpuContext) -> np.ndarray:
        """theta, read back from the GPU."""
        return gpu.read_buffer(context, self.theta).reshape(self.shape)

    def output_values(self, context: gpu.GpuContext) -> np.ndarray:
        """What the run outputs: the iterate average where the set averages
        (Settings.average_eta), else theta. Call ``Optimizer.finish()`` first."""
        return gpu.read_buffer(context, self.theta_average if self.averaging else self.theta).reshape(self.shape)

    def moments(self, context: gpu.GpuContext) -> tuple[np.ndarray, np.ndarray]:
        return tuple(gpu.read_buffer(context, moment).reshape(self.shape)
                     for moment in (self.first_moment, self.second_moment))

    def perturb_inputs(self, loss_history: Texture, period: int, phase: int) -> dict:
        """The inputs of this set's P dispatch; perturbed on steps s % period == phase."""
        assert self.domain is not None and self.settings is not None
        owner = self.domain.parameter_sets[0] is self
        low, high = self.settings.value_range
        return {
            "theta": self.theta,
            "first_moment": self.first_moment,
            "second_moment": self.second_moment,
            "perturbed": self.perturbed,
            "accumulator": self.domain.accumulator,
            "loss_history": loss_history,
            "parameter_count": self.count,
            "components": self.shape[1],
            "element_count": self.domain.element_count,
            "channels": self.domain.channels,
            "channel": self.channel,
            "set_id": self.set_id,
            "clears_accumulator": int(owner),
            "epsilon": float(self.settings.epsilon),
            "learning_rate": float(self.settings.learning_rate),
            "value_range": LVecBase2f(max(low, -3.0e38), min(high, 3.0e38)),
            "adam": LVecBase3f(self.settings.betas[0], self.settings.betas[1], ADAM_EPSILON),
            "perturbation_period": period,
            "perturbation_phase": phase,
            **({"theta_average": self.theta_average, "average_eta": float(self.settings.average_eta)}
               if self.averaging else {}),
        }

    # Extra #defines of this kind's P shader.
    perturb_defines: dict[str, object] = {}
    # How P writes theta+ and theta- for the draw (shaders/core/perturb.comp includes it as
    # copies.glsl): a buffer [theta+ | theta-] here; a shader name or a Path to a kind's own.
    copy_writer: "str | object" = "core/copies_buffer.glsl"

    def after_perturb(self) -> list[tuple[str, str, tuple[int, int, int], dict]]:
        """Compute passes to run right after this set's P, as (name, shader file, groups,
        inputs): what turns the copies P wrote into what the renderer reads."""
        return []

    def side_inputs(self, side: int) -> dict:
        """Shader inputs that differ between the theta+ (side 0) and theta- (1) renders."""
        return {}

    def perturb_groups(self) -> tuple[int, int, int]:
        # The owner also clears the accumulator entries of every element.
        entries = ACCUMULATOR_ENTRIES * self.domain.channels * self.domain.element_count if self.domain else 0
        return dispatch_grid(max(self.count, entries))
