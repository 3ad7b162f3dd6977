"""The two plug-in interfaces of the optimizer: a parameter **kind** (what is optimised)
and a **reference** (what it is fitted to). ``optimizer.sge.Optimizer`` only calls these;
it names no kind. A new kind is one module with its shaders; docs/ARCHITECTURE.md shows
how, with the contract test's discs (tests/test_kind_contract.py) as the worked example.

The per-pixel planes. Every render of a step draws into one page of each plane (a 2D
texture array; page 0 theta+, 1 theta-, 2 the reference: ``optimizer.constants``):

- ``color`` (core): RGBA32F; .rgb the shaded colour, linear.
- ``sample`` (core): RGBA32F; .x float(k + 1) for the kind's element k drawn there, 0 for
  the background, so coverage is ``.x > 0.5`` (exact up to 2^24 elements); .y the kind's
  own (the surface kinds: the UV footprint); .z the eye-space depth (clip w) for the depth
  term; .w the render stamp (``step_state[7]``, shaders/core/targets.glsl), by which G
  tells this step's pixels from stale ones when the targets are not cleared.
- the kind's own planes, ``Kind.planes`` (RGBA32F each, in order; the surface kinds: one,
  ``uv``: .xy the texture coordinates, .zw the barycentrics of corners 0 and 1).

The reference writes the same planes (its .x only needs to be > 0.5 where it covers).
G passes read them as ``target_color``, ``target_sample`` and ``target_<plane>``
(sampler2DArray), with ``target_background`` (vec4) the clear colour.

A kind whose draws blend (splats) cannot write IDs through attachments (Panda3D 1.10
blends every colour attachment of a buffer): it declares no planes, writes what G needs
with image stores from its fragment shader (its own images, passed as shader inputs),
and asks for cleared targets (``Optimizer(clear_every_step=True)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panda3d.core import NodePath

    from .parameters import ContributorDomain, ParameterSet


class Kind:
    """What is optimised: one or more parameter sets on the GPU, drawn by the engine.

    A kind answers, for the core:

    - ``parameter_sets``: the optimised ``ParameterSet``s (frozen ones are left out).
      Each owns its GPU storage (theta, Adam's m and v: flat float32 buffers of
      elements x components values), its initial values, and how P writes its copies
      theta+ and theta- for the draw (``ParameterSet.copy_writer``: a buffer
      [theta+ | theta-], two 2D images, or a writer the kind ships), plus the compute
      passes that follow P (``ParameterSet.after_perturb``: mip rebuilds, refinement, a
      sort), which see the step's view (``view.glsl``'s inputs) as every pass does.
    - ``domains``: the ``ContributorDomain``s whose accumulators G fills (per element:
      sum_p w_p Delta_p and sum_p w_p, two halves by step parity). Each domain names its
      G compute shader (``gradient_shader``, with ``gradient_defines``,
      ``gradient_inputs(targets)`` and ``gradient_include_paths``); the core dispatches
      it over the image's pixels (GRADIENT_GROUP^2 per workgroup) after the three renders.
      A G shader calls the core's per-pixel code (``targets.glsl``: ``pixel_sample``
      gives the pixel's Delta_p and coverage; ``loss_record.glsl``: ``record_loss``),
      which the core has record the loss in the first domain's pass only.
    - ``planes``: names of the per-pixel planes it writes beyond the core's (see the
      module docs); at most 3.
    - ``make_node()``: a NodePath drawing theta+ or theta-: the core instances it twice,
      with shader input ``side`` (0 / 1, also the page: gl_Layer) and ``side_inputs(side)``
      above it, and the step's view inputs (``view.glsl``) and ``step_state`` on top.
    - ``state(context)`` / ``load_state(state)``: everything a checkpoint needs of it, as
      a dict of numpy arrays (default: theta, m and v of every parameter set).
    """

    planes: tuple[str, ...] = ()

    @property
    def parameter_sets(self) -> list["ParameterSet"]:
        raise NotImplementedError

    @property
    def domains(self) -> list["ContributorDomain"]:
        domains: list = []
        for parameter_set in self.parameter_sets:
            if parameter_set.domain not in domains:
                domains.append(parameter_set.domain)
        return domains

    def make_node(self) -> "NodePath":
        raise NotImplementedError

    def side_inputs(self, side: int) -> dict:
        """Shader inputs that differ between the theta+ (side 0) and theta- (1) draws."""
        inputs: dict = {}
        for parameter_set in self.parameter_sets:
            inputs.update(parameter_set.side_inputs(side))
        return inputs

    def state(self, context) -> dict:
        """Every optimised set's theta and Adam moments, keyed "SET.theta/m/v"."""
        return {f"{parameter_set.name}.{key}": values for parameter_set in self.parameter_sets
                for key, values in parameter_set.state(context).items()}

    def load_state(self, state: dict) -> None:
        """Restore what ``state`` returned (KeyError/ValueError when it does not fit)."""
        for parameter_set in self.parameter_sets:
            parameter_set.load_state({key: state[f"{parameter_set.name}.{key}"] for key in ("theta", "m", "v")})


class Reference:
    """What a kind is fitted to: something that draws the target image.

    ``make_node()`` returns a NodePath the core draws once per step into the reference's
    page (shader input ``target_page``), under the step's view inputs (``view.glsl``:
    the model-view-projection and the light), writing the core planes (colour, and the
    sample plane's coverage .x, depth .z and stamp .w) and, where a kind's G reads them
    from the reference, that kind's planes. A Panda3D model under the surface shading
    (``optimizer.surface.mesh.ModelReference``), an analytic field drawn on a box, photographs
    drawn on a quad: the optimizer does not know which.
    """

    def make_node(self) -> "NodePath":
        raise NotImplementedError
