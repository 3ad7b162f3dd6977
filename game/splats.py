"""Gaussian splats in a running Panda3D scene, drawn by the optimizer's own splat
renderer (shaders/splats): ``splat_node(path)`` loads a 3DGS .ply and returns a node
that any ShowBase app can parent under ``render``.

    from game.splats import splat_node
    node = splat_node("panda.ply")        # base.render, base.cam, base.win by default
    node.reparentTo(base.render)

Each frame a task sorts the splats by depth for the camera (the optimizer's GPU sort,
its compute passes drawn first in the "background" bin); the quads are then drawn back
to front with premultiplied "over" blending, depth-tested against the scene and not
writing depth. The splats' colours are display (sRGB) values, as in 3DGS: draw them to
a window without ``framebuffer-srgb``. ``sge view FILE.ply`` opens a window on one.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
from panda3d.core import (ColorBlendAttrib, LVecBase2f, NodePath, PTA_LMatrix4f, TransparencyAttrib,
                          loadPrcFileData)

from optimizer import gpu
from optimizer.errors import SgeError
from optimizer.shaders import compute_shader, raster_shader
from optimizer.splats.kind import K_BUFFER, Splats
from optimizer.splats.ply import read_ply

SORT_BIN = "background"   # drawn before the opaque scene: the sort is ready for the splats
SPLAT_BIN = ("fixed", 50)  # after the opaque scene


class SplatNode:
    """The splats of ``values`` (``read_ply``'s dict) drawn by ``camera`` into ``window``."""

    def __init__(self, values: dict, camera: NodePath, window, task_manager=None, name: str = "splats"):
        self.camera = camera
        self.window = window
        # The splats' GPU buffers as the optimizer keeps them (every set frozen: theta+ = theta-).
        self.splats = Splats(values, (1, 1), {})
        self.root = NodePath(name)
        self.matrix = PTA_LMatrix4f.emptyArray(1)
        for index, (pass_name, shader_file, groups, inputs) in enumerate(self.splats.sort_passes()):
            if "k_buffer" in inputs:
                continue  # nothing reads a K-buffer here
            node = gpu.compute_node(pass_name, compute_shader(shader_file), groups, inputs)
            node.setShaderInput("model_view_projection", self.matrix)
            node.setBin(SORT_BIN, index)
            node.reparentTo(self.root)
        self.quads = gpu.pulled_geometry(f"{name}-quads", 6)
        self.quads.setInstanceCount(self.splats.count)
        defines = {"K_BUFFER": K_BUFFER, "PANDA_CAMERA": True, "BACK_TO_FRONT": True}
        self.quads.setShader(raster_shader("splats/splats.vert", "splats/splats.frag", defines))
        self.quads.setShaderInputs(**self.splats.draw_inputs(), side=0)
        self.quads.setAttrib(ColorBlendAttrib.make(ColorBlendAttrib.M_add, ColorBlendAttrib.O_one,
                                                   ColorBlendAttrib.O_one_minus_incoming_alpha))
        self.quads.setTransparency(TransparencyAttrib.M_none)
        self.quads.setDepthWrite(False)
        self.quads.setTwoSided(True)
        self.quads.setBin(*SPLAT_BIN)
        self.quads.reparentTo(self.root)
        self.root.setPythonTag("splat_node", self)
        self.task = None
        if task_manager is not None:
            self.task = task_manager.add(self._update, f"{name}-sort", sort=49)  # before igLoop (50)

    def _update(self, task):
        self.update()
        return task.cont

    def update(self) -> None:
        """The camera's model-view-projection for the sort and the viewport size (call
        once per frame when no task manager was given)."""
        lens = self.camera.node().getLens()
        matrix = self.root.getMat(self.camera) * lens.getProjectionMat()
        self.matrix.setElement(0, matrix)
        self.quads.setShaderInput("viewport", LVecBase2f(self.window.getXSize(), self.window.getYSize()))

    def release(self) -> None:
        if self.task is not None:
            self.task.remove()
        self.root.removeNode()


def splat_node(path, camera: NodePath | None = None, window=None, task_manager=None) -> NodePath:
    """A node drawing the 3DGS .ply at ``path`` for ``camera`` into ``window`` (defaults:
    the running ShowBase's ``base.cam``, ``base.win``, ``base.taskMgr``); the task that
    sorts each frame is removed with ``node.getPythonTag("splat_node").release()``."""
    values = read_ply(path)
    if camera is None or window is None or task_manager is None:
        import builtins
        base = getattr(builtins, "base", None)
        if base is None:
            raise SgeError("splat_node needs a running ShowBase, or camera, window and task_manager")
        camera = camera or base.cam
        window = window or base.win
        task_manager = task_manager or base.taskMgr
    return SplatNode(values, camera, window, task_manager, name=Path(path).stem).root


WINDOW_PRC = """
load-display pandagl
audio-library-name null
sync-video false
window-title sge view
win-size 800 800
notify-level-ShowBase error
print-pipe-types false
notify-level-device fatal
"""


def run_splat_viewer(path, frames: int | None = None, screenshot: Path | None = None) -> None:
    """``sge view FILE.ply``: the splats on black, the camera orbiting their centre (drag
    to orbit, wheel to zoom, escape to quit); ``frames``/``screenshot`` as ``sge view``."""
    values = read_ply(path)  # a bad file fails here, before any window opens
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise SgeError("cannot open a window (no X display); run it under xvfb-run -a")
    loadPrcFileData("sge-view-splats", WINDOW_PRC)
    from direct.showbase.ShowBase import ShowBase

    base = ShowBase()
    try:
        base.disableMouse()
        base.setBackgroundColor(0, 0, 0, 1)
        node = SplatNode(values, base.cam, base.win, base.taskMgr, name=Path(path).stem)
        node.root.reparentTo(base.render)
        means = values["means"].astype(np.float64)
        centre = np.median(means, axis=0)
        extent = 3.0 * float(np.exp(np.median(values["log_scales"])))  # a typical splat's 3 sigma
        radius = float(np.percentile(np.linalg.norm(means - centre, axis=1), 98)) + extent or 1.0
        base.camLens.setFov(2.0 * math.degrees(math.atan(0.4)))
        base.camLens.setNearFar(0.05 * radius, 20.0 * radius)
        state = {"heading": 30.0, "pitch": 15.0, "distance": 2.5 * radius, "drag": None}

        def place(task=None):
            if base.mouseWatcherNode.hasMouse() and state["drag"] is not None:
                x, y = base.mouseWatcherNode.getMouse()
                x0, y0, h0, p0 = state["drag"]
                state["heading"], state["pitch"] = h0 - 90.0 * (x - x0), max(-89.0, min(89.0, p0 + 90.0 * (y - y0)))
            h, p = math.radians(state["heading"]), math.radians(state["pitch"])
            offset = state["distance"] * np.array([math.sin(h) * math.cos(p), -math.cos(h) * math.cos(p), math.sin(p)])
            base.camera.setPos(*(centre + offset))
            base.camera.lookAt(*centre)
            return task.cont if task else None

        def start_drag():
            if base.mouseWatcherNode.hasMouse():
                x, y = base.mouseWatcherNode.getMouse()
                state["drag"] = (x, y, state["heading"], state["pitch"])

        base.accept("mouse1", start_drag)
        base.accept("mouse1-up", lambda: state.update(drag=None))
        base.accept("wheel_up", lambda: state.update(distance=state["distance"] / 1.15))
        base.accept("wheel_down", lambda: state.update(distance=state["distance"] * 1.15))
        quitting = []
        base.accept("escape", lambda: quitting.append(True))
        base.taskMgr.add(place, "splat-view-camera", sort=40)
        count = 0
        while not quitting and (frames is None or count < frames):
            base.taskMgr.step()
            count += 1
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            from panda3d.core import Filename
            if not base.win.saveScreenshot(Filename.fromOsSpecific(str(Path(screenshot).resolve()))):
                raise SgeError(f"cannot write the screenshot {screenshot}; check that its folder is writable")
    finally:
        base.destroy()
