"""Run by tests/test_window.py under Xvfb (not a test itself): a ShowBase window with an
OptimizerComponent on a model, the reference in the left half of the window and the
live LOD in the right half, seen by two cameras placed alike. Prints one JSON line:

    steps            SGE steps taken (one per frame: budget_ms=0)
    lod_pixels       the LOD's pixels in the first shot (not background)
    changed_pixels   the LOD's pixels that changed between the first and the last shot
    error_first/last mean |LOD - reference| over the halves' covered pixels (8-bit sRGB)
    first_loss       mean loss of the first ten steps (component.losses())
    last_loss        mean loss of the last ten

    python tests/window_script.py MODEL [--early 5] [--frames 60]

The LOD's albedo starts flat gray with a learning rate of 0.1 rather than from the
projected colours at the default 0.003: the run is short, and from the projection the
loss falls by less than it varies from one random view to the next (measured: flat over
125 steps), while from gray it falls by a third in 60.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from panda3d.core import Filename, NodePath, loadPrcFileData

from optimizer.lod.scenario import LodSettings

PRC = """
load-display pandagl
audio-library-name null
sync-video false
win-size 512 256
framebuffer-srgb true
print-pipe-types false
notify-level-device fatal
"""
SETTINGS = LodSettings(triangles=80, texture_size=64, resolution=64, steps=200, albedo_learning_rate=0.1)
DIFFERENT = 8  # 8-bit levels: more than the perturbation's flicker on a flat colour


def screen(base) -> np.ndarray:
    """The window's last frame as (H, W, 3) int, row 0 at the top."""
    texture = base.win.getScreenshot()
    data = np.frombuffer(bytes(texture.getRamImageAs("RGB")), np.uint8)
    return data.reshape(texture.getYSize(), texture.getXSize(), 3)[::-1].astype(int)


def halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reference half, LOD half)."""
    width = image.shape[1] // 2
    return image[:, :width], image[:, width:2 * width]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--early", type=int, default=5, help="frames before the first shot")
    parser.add_argument("--frames", type=int, default=60, help="frames between the shots")
    args = parser.parse_args()

    loadPrcFileData("window-script", PRC)
    from direct.showbase.ShowBase import ShowBase

    from game.component import OptimizerComponent
    from game.viewer import BACKGROUND, reference_display

    base = ShowBase()
    base.disableMouse()
    base.setBackgroundColor(*BACKGROUND)
    model = base.loader.loadModel(Filename.fromOsSpecific(str(Path(args.model).resolve())), noCache=True)
    low, high = model.getTightBounds()
    center, radius = (low + high) * 0.5, (high - low).length() * 0.5
    # budget_ms=0: one step per frame, so the steps (and their losses) do not depend on
    # how fast this machine is.
    component = OptimizerComponent(model, base=base, budget_ms=0.0, settings=SETTINGS)
    size = SETTINGS.texture_size
    component.scenario.albedo.load(np.full((size, size, 3), 0.5, np.float32))

    # The LOD in base.render, seen by base.cam in the right half; the reference in a scene
    # of its own, seen by a second camera in the left half.
    component.lod.reparentTo(base.render)
    reference_scene = NodePath("reference-scene")
    reference_display(component.scenario.source).reparentTo(reference_scene)
    base.camNode.getDisplayRegion(0).setDimensions(0.5, 1.0, 0.0, 1.0)
    reference_camera = base.makeCamera(base.win, displayRegion=(0.0, 0.5, 0.0, 1.0), scene=reference_scene)
    reference_camera.reparentTo(reference_scene)
    for camera in (base.camera, reference_camera):
        camera.setPos(center + (0.0, -3.0 * radius, 0.8 * radius))
        camera.lookAt(center)
    component.start()

    base.taskMgr.step()  # ShowBase sets its lens to the window's shape as the window opens
    for lens in (base.camLens, reference_camera.node().getLens()):
        lens.setAspectRatio(1.0)
    for _ in range(args.early - 1):
        base.taskMgr.step()
    first = screen(base)
    for _ in range(args.frames):
        base.taskMgr.step()
    last = screen(base)
    if os.environ.get("SGE_WINDOW_SHOTS"):  # for a look by hand
        from PIL import Image
        for name, image in (("first", first), ("last", last)):
            Image.fromarray(image.astype(np.uint8)).save(Path(os.environ["SGE_WINDOW_SHOTS"]) / f"{name}.png")
    losses = component.losses()
    # Paused, the app keeps rendering frames but the parameters must not move.
    component.pause()
    held = [s.values(component.optimizer.context).copy() for s in component.scenario.mesh.parameter_sets]
    for _ in range(10):
        base.taskMgr.step()
    moved_while_paused = max(float(np.abs(s.values(component.optimizer.context) - h).max())
                             for s, h in zip(component.scenario.mesh.parameter_sets, held))
    steps_while_paused = component.step_index - len(losses)
    component.release()

    background = first[0, 0]
    reference, lod_first = halves(first)
    _, lod_last = halves(last)

    def covered(image):
        return np.abs(image - background).max(axis=2) > DIFFERENT

    def error(lod):
        mask = covered(reference) | covered(lod)
        return float(np.abs(lod - reference)[mask].mean())

    changed = (np.abs(lod_last - lod_first).max(axis=2) > DIFFERENT) & (covered(lod_first) | covered(lod_last))
    print(json.dumps({
        "steps": int(len(losses)),
        "lod_pixels": int(covered(lod_first).sum()),
        "reference_pixels": int(covered(reference).sum()),
        "changed_pixels": int(changed.sum()),
        "error_first": error(lod_first),
        "error_last": error(lod_last),
        "first_loss": float(np.mean(losses[:10])),
        "last_loss": float(np.mean(losses[-10:])),
        "moved_while_paused": moved_while_paused,
        "steps_while_paused": steps_while_paused,
    }))


if __name__ == "__main__":
    main()
