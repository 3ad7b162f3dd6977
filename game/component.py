"""The in-game optimizer component: refines a LOD of a model while the scene runs.

    comp = OptimizerComponent(base.loader.loadModel("models/panda"))   # makes the LOD
    comp.lod.reparentTo(base.render)                                   # watch it improve
    comp.start()                                                       # steps every frame

Each frame the component's task sets up one SGE step, which the app's own frame renders
(P, the three renders and G are display regions of one offscreen buffer of the app's GL
context, sorted before its windows), and runs more steps while they fit the frame-time
budget. The visible LOD draws straight from the GPU parameters (the θ⁺ copy P writes,
θ + ε·δ), so nothing is copied per frame. The session underneath
(``optimizer.lod.job.LodSession``) is the one ``sge optimize`` drives headless, so ``save``
writes the same outputs.
"""

from __future__ import annotations

import builtins
import math
import time
from pathlib import Path

import numpy as np
from panda3d.core import LODNode, LVecBase4f, NodePath

from optimizer.lod.export import lod_model
from optimizer.gpu import GpuContext
from optimizer.lod.job import LodSession
from optimizer.lod.scenario import LodSettings
from optimizer.source import source_from_model

TARGET_FPS = 30.0
MAX_STEPS_PER_FRAME = 64
DISPLAY_LIGHT = (0.4, -0.6, 0.7)  # model space, towards the light
DISPLAY_AMBIENT = 0.35
PROGRESS_EVERY = 10  # steps between "sge-progress" events (each reads the loss history)


def steps_per_frame(frame_ms: float, steps_last_frame: int, budget_ms: float,
                    max_steps: int = MAX_STEPS_PER_FRAME) -> int:
    """How many steps the next frame runs: as many as fit ``budget_ms`` at the cost per
    step the last frame measured (its whole time over its steps, so the app's own work is
    counted against the budget too), never fewer than one."""
    if not (frame_ms > 0 and math.isfinite(frame_ms)) or steps_last_frame < 1:
        return 1
    cost = frame_ms / steps_last_frame
    return int(max(1, min(max_steps, math.floor(budget_ms / cost))))


class OptimizerComponent:
    """An LOD of ``reference`` optimised against it, one or more SGE steps per frame.

    Args:
        reference: the detailed model (a NodePath, e.g. from ``base.loader.loadModel``);
            it is flattened to one mesh with its materials and drawn as the reference.
        lod: a LOD of it to refine (a NodePath in the same frame): its triangles are kept,
            and its UVs when they lie in [0, 1]; by default the component makes the LOD
            (quadric decimation to ``settings.triangles``, an xatlas atlas).
        settings: the LOD's triangle budget, texture size, render resolution, seed and
            learning-rate schedule length (``optimizer.lod.scenario.LodSettings``).
        base: the running ShowBase (default: the global ``base``).
        budget_ms: frame time the steps may fill; by default what keeps the app at
            30 fps (1000/30 ms per frame, the app's own work included), at least one step
            per frame wherever that is too little.
        name: prefix of the task and the messenger events.

    Events (``base.messenger``): ``"<name>-progress"`` with a dict (step, loss,
    steps_per_second) every PROGRESS_EVERY steps, ``"<name>-saved"`` with the directory.
    """

    def __init__(self, reference: NodePath, *, lod: NodePath | None = None, settings: LodSettings | None = None,
                 base=None, budget_ms: float | None = None, name: str = "sge"):
        self.base = base if base is not None else builtins.base  # type: ignore[attr-defined]
        self.settings = settings or LodSettings()
        self.budget_ms = budget_ms if budget_ms is not None else 1000.0 / TARGET_FPS
        self.name = name
        mesh = source_from_model(reference, name=reference.getName() or "model")
        given = source_from_model(lod, name=lod.getName() or "lod") if lod is not None else None
        if given is None:
            self.settings.validate()
        self.session = LodSession(mesh, self.settings, GpuContext.from_showbase(self.base), lod=given)
        self.scenario = self.session.scenario
        self.optimizer = self.session.optimizer
        self.optimizer.set_active(False)  # until start()
        self.lod = self._display_node()
        self.running = False
        self.paused = False
        self.last_loss: float | None = None
        self.steps_per_second = 0.0
        self._steps_last_frame = 0
        self._last_time = None
        self._rate_window = (time.perf_counter(), 0)
        self._next_progress = PROGRESS_EVERY

    @property
    def triangles(self) -> int:
        return len(self.scenario.geometry.triangles)

    @property
    def step_index(self) -> int:
        return self.session.step_index

    def losses(self) -> np.ndarray:
        """Mean pixel loss of every step so far, oldest first (reads the GPU's history)."""
        return self.session.losses()

    # --- control ------------------------------------------------------------------------
    # The optimizer's passes run in every frame the app renders while they are on, so they
    # are on only while frames carry steps: started and not paused.
    def start(self) -> None:
        if not self.running:
            self.base.taskMgr.add(self._task, f"{self.name}-optimize", sort=-10)
            self.running = True
            self.paused = False
            self._last_time = None
            self.optimizer.set_active(True)

    def pause(self) -> None:
        self.paused = True
        self.optimizer.set_active(False)

    def resume(self) -> None:
        if self.running:
            self.paused = False
            self._last_time = None
            self.optimizer.set_active(True)

    def stop(self) -> None:
        if self.running:
            self.base.taskMgr.remove(f"{self.name}-optimize")
            self.running = False
        self.optimizer.set_active(False)

    def save(self, directory) -> dict:
        """Write the LOD as it stands (same outputs as ``sge optimize``)."""
        self.optimizer.set_active(True)  # the held-out views are rendered by the passes
        try:
            metrics = self.session.save(Path(directory))
        finally:
            self.optimizer.set_active(self.running and not self.paused)
        self.base.messenger.send(f"{self.name}-saved", [Path(directory)])
        return metrics

    def release(self) -> None:
        """Stop and remove the optimizer's passes from the engine."""
        self.stop()
        self.lod.removeNode()
        self.session.release()

    # --- the game side ------------------------------------------------------------------
    def lod_model(self) -> NodePath:
        """The optimised LOD as it stands, as an ordinary model (real vertex data and
        textures, in the reference's frame): flatten it, instance it, write it to a .bam.
        For a skinned reference it is a Character with the reference's joints:
        ``Actor(component.lod_model(), {"walk": ...})`` plays the reference's animations."""
        return lod_model(**self.scenario.lod_arrays(), name=f"{self.name}-lod")

    def lod_node(self, reference: NodePath, switch_distance: float, far_distance: float = 1e6,
                 anims: dict | None = None) -> NodePath:
        """A Panda3D LODNode: ``reference`` up to ``switch_distance`` from the camera, the
        optimised LOD (``lod_model()``) from there to ``far_distance``.

        For a skinned reference, an ``Actor`` whose LODNode switches between the two
        (Actor LODs "high" and "low": Actor takes LOD names starting h, m, l or f): ``anims`` ({"walk": "models/panda-walk"}) are
        bound to both, so ``actor.loop("walk")`` animates whichever is shown."""
        if self.session.mesh.skin is not None:
            return self._animated_lod_node(reference, switch_distance, far_distance, anims or {})
        node = LODNode(f"{self.name}-lod-switch")
        path = NodePath(node)
        reference.copyTo(path)
        node.addSwitch(switch_distance, 0.0)
        self.lod_model().reparentTo(path)
        node.addSwitch(far_distance, switch_distance)
        return path

    def _animated_lod_node(self, reference: NodePath, switch_distance: float, far_distance: float,
                           anims: dict) -> NodePath:
        from direct.actor.Actor import Actor  # direct's Actor: the game side's, not the optimizer's

        actor = Actor()
        actor.setLODNode(LODNode(f"{self.name}-lod-switch"))
        actor.addLOD("high", switch_distance, 0.0)
        actor.addLOD("low", far_distance, switch_distance)
        actor.loadModel(reference, lodName="high")  # a copy, as the static LODNode holds
        actor.loadModel(self.lod_model(), lodName="low")
        if anims:
            actor.loadAnims(anims)  # every LOD
        return actor

    # --- per frame ----------------------------------------------------------------------
    def _task(self, task):
        now = time.perf_counter()
        frame_ms = 1000.0 * (now - self._last_time) if self._last_time is not None else float("nan")
        self._last_time = now
        if self.paused:
            self._steps_last_frame = 0
            return task.cont
        steps = steps_per_frame(frame_ms, self._steps_last_frame, self.budget_ms)
        for _ in range(steps - 1):
            self._step_now()
        self.session.begin_step()  # the app's own frame renders this one
        self._steps_last_frame = steps
        self._report(now)
        return task.cont

    def _step_now(self) -> None:
        """An extra step within the frame: render only the optimizer's passes."""
        windows = [w for w in self.base.graphicsEngine.getWindows() if w.isActive() and w.getSort() >= 0]
        for window in windows:
            window.setActive(False)
        try:
            self.session.step()
        finally:
            for window in windows:
                window.setActive(True)

    def _report(self, now: float) -> None:
        started, first = self._rate_window
        if now - started >= 1.0:
            self.steps_per_second = (self.step_index - first) / (now - started)
            self._rate_window = (now, self.step_index)
        if self.step_index >= self._next_progress:
            self._next_progress = self.step_index + PROGRESS_EVERY
            losses = self.session.losses(rendered=self.step_index - 1)  # the last is set up, not drawn
            self.last_loss = float(losses[-1]) if len(losses) else None
            self.base.messenger.send(f"{self.name}-progress", [{
                "step": self.step_index, "loss": self.last_loss, "steps_per_second": self.steps_per_second}])

    def _display_node(self) -> NodePath:
        """The live LOD for the app's cameras: the mesh drawn from the θ⁺ buffers P writes,
        placed back in the reference's frame."""
        mesh = self.scenario.mesh
        path = mesh.make_node(panda_camera=True)
        path.setShaderInputs(side=0, light=LVecBase4f(*_unit(DISPLAY_LIGHT), DISPLAY_AMBIENT),
                             camera_position=LVecBase4f(0, 0, 0, 1), **mesh.side_inputs(0))
        root = NodePath(f"{self.name}-live-lod")
        path.reparentTo(root)
        path.setScale(self.scenario.radius)
        path.setPos(*self.scenario.center)
        return root


def _unit(vector) -> np.ndarray:
    v = np.asarray(vector, np.float64)
    return v / np.linalg.norm(v)
