"""Volumes in a running Panda3D app: ``volume_node(path)`` draws a fitted grid (.npz or
.txo from ``sge bench volume --save``) with the optimizer's own marcher
(shaders/volume/), and ``sge view FILE.npz`` shows one in a window.

    from game.volume import volume_node
    node = volume_node("fitted.npz")   # the cube [-1, 1]^3 of its model space
    node.reparentTo(base.render)

The node is a box whose faces turned away from the camera march the ray through each
pixel (SPEC's emission-absorption model, step 1/64 of the model's units, the samples at
the middle of their steps) and blend the result, premultiplied, over what is behind it.
An opaque object inside the box hides the volume behind and in front of it alike (the
box's far faces are depth-tested).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from panda3d.core import NodePath, PTA_int, TransparencyAttrib

from optimizer.errors import SgeError
from optimizer.volume.export import SUFFIXES, load_volume
from optimizer.volume.kind import box_node, check_grid, grid_texture, jitter_input

ORBIT_DEGREES_PER_SECOND = 20.0


def volume_node(volume, color: np.ndarray | None = None) -> NodePath:
    """A NodePath drawing a volume: ``volume`` a .npz/.txo path, or a density grid
    (N, N, N) given with its ``color`` (N, N, N, 3)."""
    if isinstance(volume, (str, Path)):
        density, color = load_volume(Path(volume))
    else:
        density, color = check_grid(volume, color)
    node = box_node("volume", {"PANDA_CAMERA": True}, {
        "density_grid": grid_texture("volume-density", np.maximum(density, 0.0)[..., None]),
        "color_grid": grid_texture("volume-color", color),
        "fixed_jitter": jitter_input(0.5),
        "step_state": PTA_int.emptyArray(8),  # common.glsl's; unused with a fixed jitter
    })
    node.setDepthTest(True)  # box_node turns it off for the optimizer's own renders
    node.setTransparency(TransparencyAttrib.M_premultiplied_alpha)
    node.setBin("transparent", 0)
    return node


def run_volume_viewer(path: Path, frames: int | None = None, screenshot: Path | None = None) -> None:
    """A window showing the volume at ``path``, the camera orbiting it; escape quits.
    ``frames``: close after that many frames, writing ``screenshot`` from the last."""
    from .viewer import _check_image_type, _open_window

    if Path(path).suffix.lower() not in SUFFIXES:
        raise SgeError(f"sge view shows volumes from {' or '.join(SUFFIXES)} files, not '{path}'")
    node_grid = load_volume(Path(path))  # a bad file fails here, before any window opens
    if screenshot is not None:
        _check_image_type(Path(screenshot))
    base = _open_window()
    try:
        base.disableMouse()
        base.setBackgroundColor(0.0, 0.0, 0.0, 1.0)
        base.camLens.setFov(2.0 * math.degrees(math.atan(0.4)) * base.getAspectRatio(), 2.0 * math.degrees(math.atan(0.4)))
        volume = volume_node(*node_grid)
        volume.reparentTo(base.render)
        quitting = []
        base.accept("escape", lambda: quitting.append(True))

        def orbit(task):
            angle = math.radians(ORBIT_DEGREES_PER_SECOND * task.time + 30.0)
            base.camera.setPos(4.0 * math.sin(angle), -4.0 * math.cos(angle), 1.5)
            base.camera.lookAt(0, 0, 0)
            return task.cont

        base.taskMgr.add(orbit, "orbit-volume")
        count = 0
        while not quitting and (frames is None or count < frames):
            base.taskMgr.step()
            count += 1
        if screenshot is not None:
            base.taskMgr.step()  # the final frame the screenshot shows
            _save_screenshot(base, Path(screenshot))
    finally:
        base.destroy()


def _save_screenshot(base, path: Path) -> None:
    """The window's last frame to ``path``, whole or not at all (as the LOD viewer's)."""
    import os

    from panda3d.core import Filename

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        if not base.win.saveScreenshot(Filename.fromOsSpecific(str(partial.resolve()))):
            raise SgeError(f"cannot write the screenshot {path}; check that its folder is writable")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
