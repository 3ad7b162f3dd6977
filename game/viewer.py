"""``sge view``: a Panda3D window with the reference model and its LOD being optimised
live beside it, by the in-game ``OptimizerComponent``.

    run_viewer("models/panda", LodSettings(triangles=1000, texture_size=512))

Keys: left drag orbits, the wheel zooms, space pauses, ``l`` switches between side by
side and a flip view (both at one place, shown in turns: differences jump out), ``s``
saves the LOD like ``sge optimize``, escape quits. ``frames=N`` runs N frames, saves a
screenshot when asked and returns (tests and README images).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import click
import numpy as np
from panda3d.core import Filename, LVecBase4f, LVector3f, NodePath, PNMFileTypeRegistry, TextNode, loadPrcFileData

from optimizer.assets import find_model, loader_messages, model_stem, read_model
from optimizer.cli import lod_options
from optimizer.errors import SgeError
from optimizer.surface.mesh import shading_defines
from optimizer.lod.scenario import LodSettings
from optimizer.shaders import raster_shader
from optimizer.source import SourceMesh, reference_model
from optimizer.surface.texture import float_texture

from .component import DISPLAY_AMBIENT, DISPLAY_LIGHT, OptimizerComponent

WINDOW_PRC = """
load-display pandagl
audio-library-name null
sync-video false
window-title sge view
win-size 1024 576
# The shaders write linear colour (as the loss sees it): the window encodes it to sRGB.
framebuffer-srgb true
# As the headless job runs: textures keep their sizes (Panda3D's default scales them to powers of 2).
textures-power-2 none
notify-level-ShowBase error
print-pipe-types false
# Panda3D looks for gamepads in /dev/input, which Xvfb machines lack: not worth a line.
notify-level-device fatal
"""

NO_DISPLAY = ("cannot open a window (no X display); run it under xvfb-run -a, "
              "or use sge optimize for headless runs")
SIDE_BY_SIDE = 2.2        # the LOD's offset along x, in bounding-sphere radii
VIEW_DISTANCE = 4.0       # the camera's starting distance, in radii (side by side)
FLIP_SECONDS = 0.6        # how long the flip view shows each model
ORBIT_DEGREES = 180.0     # per window width dragged
ZOOM_STEP = 1.15          # per wheel notch
BACKGROUND = (0.5, 0.5, 0.5, 1.0)  # the optimizer's own mid gray
HELP = "drag: orbit   wheel: zoom   space: pause   l: side by side / flip   s: save   esc: quit"


def run_viewer(source: str, settings: LodSettings, frames: int | None = None,
               screenshot: Path | None = None) -> None:
    """Open the viewer on ``source`` (a model file or a model-path name such as
    models/panda) and optimise an LOD of it with ``settings``, until escape or, with
    ``frames``, for that many frames; ``screenshot`` is then written from the last frame."""
    filename = find_model(source)  # a bad source fails here, before any window opens
    if screenshot is not None:
        _check_image_type(Path(screenshot))
    stem = model_stem(filename.toOsSpecific())
    reference = read_model(filename)
    # Panda3D's assimp loader records a bare file name as an .obj's full path; the
    # component reads the file back through it (metrics.json's source and hash).
    reference.node().setFullpath(filename)
    base = _open_window()
    try:
        viewer = Viewer(base, reference, stem, settings)
        viewer.run(frames, screenshot)
    finally:
        base.destroy()


def _open_window():
    """A ShowBase with a real GLX window (the optimizer shares its GL context)."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise SgeError(NO_DISPLAY)
    loadPrcFileData("sge-view", WINDOW_PRC)
    from direct.showbase.ShowBase import ShowBase

    try:
        # Panda3D prints several lines when the display cannot be opened: keep them
        # back and say it in one.
        with loader_messages():
            return ShowBase()
    except Exception:
        raise SgeError(NO_DISPLAY) from None


class Viewer:
    """The scene, camera, text and keys around one OptimizerComponent."""

    def __init__(self, base, reference: NodePath, stem: str, settings: LodSettings):
        self.base = base
        self.stem = stem
        self.quitting = False
        self.flip = False
        base.disableMouse()
        base.setBackgroundColor(*BACKGROUND)
        base.accept("window-event", self._window_event)

        bounds = reference.getTightBounds()
        if bounds is None:
            raise SgeError(f"'{stem}' has no geometry to show; give a model with triangles")
        low, high = bounds
        self.center = (low + high) * 0.5
        self.radius = max((high - low).length() * 0.5, 1e-6)

        self.status = self._text((0.05, -0.08), TextNode.ALeft, base.a2dTopLeft)
        self.mode = self._text((0.0, -0.08), TextNode.ACenter, base.a2dTopCenter)
        self.message = self._text((0.05, 0.11), TextNode.ALeft, base.a2dBottomLeft)
        self._text((0.05, 0.05), TextNode.ALeft, base.a2dBottomLeft).setText(HELP)
        self.status.setText("building the LOD (decimate, unwrap, bake the maps)...")
        for _ in range(2):  # show the window and the message before the seconds of setup
            base.graphicsEngine.renderFrame()

        reference.setName(stem)  # the saved files are named after it, as sge optimize names them
        self.component = OptimizerComponent(reference, base=base, settings=settings, budget_ms=None)
        self.reference_side = base.render.attachNewNode("reference-side")
        self.lod_side = base.render.attachNewNode("lod-side")
        reference_display(self.component.scenario.source).reparentTo(self.reference_side)
        self.component.lod.reparentTo(self.lod_side)

        self.heading, self.pitch = 0.0, -10.0
        self.distance = VIEW_DISTANCE * self.radius
        self.drag_from = None
        base.accept("mouse1", self._start_drag)
        base.accept("mouse1-up", self._end_drag)
        base.accept("wheel_up", self._zoom, [1.0 / ZOOM_STEP])
        base.accept("wheel_down", self._zoom, [ZOOM_STEP])
        base.accept("space", self._toggle_pause)
        base.accept("s", self._save)
        base.accept("l", self._toggle_flip)
        base.accept("escape", self._quit)
        self._layout()
        base.taskMgr.add(self._update, "sge-view-update", sort=10)
        self.component.start()

    # --- scene -----------------------------------------------------------------------
    @staticmethod
    def _text(pos, align, parent):
        from direct.gui.OnscreenText import OnscreenText

        return OnscreenText(text="", pos=pos, scale=0.045, align=align, parent=parent, mayChange=True,
                            fg=(1, 1, 1, 1), shadow=(0, 0, 0, 0.8))

    def _layout(self) -> None:
        """Side by side: the reference left, the LOD right. Flip: both on the centre."""
        offset = 0.0 if self.flip else SIDE_BY_SIDE * self.radius
        self.reference_side.setPos(-offset / 2, 0, 0)
        self.lod_side.setPos(offset / 2, 0, 0)
        self.reference_side.show()
        self.lod_side.show()

    def _place_camera(self) -> None:
        heading, pitch = math.radians(self.heading), math.radians(self.pitch)
        # From the centre towards the camera: heading 0, pitch 0 looks along +y (Panda3D's front view).
        back = LVector3f(-math.sin(heading) * math.cos(pitch), -math.cos(heading) * math.cos(pitch), -math.sin(pitch))
        self.base.camera.setPos(self.center + back * self.distance)
        self.base.camera.lookAt(self.center)

    # --- per frame -------------------------------------------------------------------
    def _update(self, task):
        self._orbit()
        self._place_camera()
        if self.flip:
            show_lod = int(task.time / FLIP_SECONDS) % 2 == 1
            (self.lod_side if show_lod else self.reference_side).show()
            (self.reference_side if show_lod else self.lod_side).hide()
            self.mode.setText("flip view: now the " + ("LOD" if show_lod else "reference") + "   (l: side by side)")
        else:
            self.mode.setText("reference  |  LOD" + ("   (paused)" if self.component.paused else ""))
        self.status.setText(self._status_text())
        return task.cont

    def _status_text(self) -> str:
        c = self.component
        loss = f"{c.last_loss:.5f}" if c.last_loss is not None else "-"
        state = "paused" if c.paused else "optimizing"
        return (f"{state}   step {c.step_index}   loss {loss}   {c.steps_per_second:.1f} steps/s\n"
                f"{self.base.clock.getAverageFrameRate():.1f} fps   {c.triangles} triangles")

    def _orbit(self) -> None:
        watcher = self.base.mouseWatcherNode
        if self.drag_from is None or not watcher.hasMouse():
            return
        x, y = watcher.getMouseX(), watcher.getMouseY()
        self.heading -= (x - self.drag_from[0]) * ORBIT_DEGREES / 2
        self.pitch = min(89.0, max(-89.0, self.pitch + (y - self.drag_from[1]) * ORBIT_DEGREES / 2))
        self.drag_from = (x, y)

    # --- events ----------------------------------------------------------------------
    def _start_drag(self) -> None:
        watcher = self.base.mouseWatcherNode
        if watcher.hasMouse():
            self.drag_from = (watcher.getMouseX(), watcher.getMouseY())

    def _end_drag(self) -> None:
        self.drag_from = None

    def _zoom(self, factor: float) -> None:
        self.distance = min(50 * self.radius, max(0.5 * self.radius, self.distance * factor))

    def _toggle_pause(self) -> None:
        if self.component.paused:
            self.component.resume()
        else:
            self.component.pause()

    def _toggle_flip(self) -> None:
        self.flip = not self.flip
        self._layout()

    def _save(self) -> None:
        directory = Path("out") / f"view-{self.stem}"
        self.message.setText(f"saving {directory} ...")
        # Saved at the start of the next frame, so this one shows the message while it
        # takes its seconds (scoring the held-out views, writing the files).
        self.base.taskMgr.doMethodLater(0.0, self._save_now, "sge-view-save", extraArgs=[directory])

    def _save_now(self, directory: Path) -> None:
        try:
            self.component.save(directory)
        except (SgeError, OSError) as error:  # a full disk or a bad path must not end the session
            self.message.setText(f"not saved: {error}")
            print(f"Error: {error}", file=sys.stderr, flush=True)
            return
        self.message.setText(f"saved {directory}")
        print(directory, flush=True)

    def _quit(self) -> None:
        self.quitting = True

    def _window_event(self, window) -> None:
        if window is self.base.win and not window.getProperties().getOpen():
            self.quitting = True  # closed by the user: leave the loop, clean up, return
        else:
            self.base.windowEvent(window)  # ShowBase's own handling (aspect ratio)

    # --- the loop --------------------------------------------------------------------
    def run(self, frames: int | None, screenshot: Path | None) -> None:
        try:
            count = 0
            while not self.quitting and (frames is None or count < frames):
                self.base.taskMgr.step()
                count += 1
            if screenshot is not None:
                if not self.base.win.getProperties().getOpen():
                    raise SgeError(f"the window was closed before the screenshot {screenshot} could be taken")
                self.base.taskMgr.step()  # the final frame the screenshot shows
                self._save_screenshot(Path(screenshot))
        finally:
            self.component.release()


    def _save_screenshot(self, path: Path) -> None:
        """The window's last frame to ``path``, whole or not at all: written beside it under
        a temporary name with the same extension (which picks the format), then renamed."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
        try:
            if not self.base.win.saveScreenshot(Filename.fromOsSpecific(str(partial.resolve()))):
                raise SgeError(f"cannot write the screenshot {path}; check that its folder is writable")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)


def _check_image_type(path: Path) -> None:
    """Refuse, before any window opens, a screenshot name whose extension is no image
    type Panda3D writes (it would fail only at the end)."""
    extension = path.suffix[1:]
    if not extension or PNMFileTypeRegistry.getGlobalPtr().getTypeFromExtension(extension) is None:
        raise SgeError(f"cannot write the screenshot {path}: '{path.suffix or 'no extension'}' is not an image type "
                       f"Panda3D writes; name it .png or .jpg")


def reference_display(source: SourceMesh) -> NodePath:
    """The reference as the optimizer sees it (the flattened source, its materials and
    colours in linear space), drawn by the app's camera with the LOD's own shader and
    light: the two sides differ only where the LOD does. Panda3D's fixed-function lights
    would not do: they take 8-bit colours as linear, where the optimizer decodes sRGB."""
    model = reference_model(source)
    defines = {**shading_defines(albedo=True, lit=True), "PANDA_CAMERA": True}
    model.setShader(raster_shader("surface/reference.vert", "surface/surface.frag", defines), 10)
    model.setShaderInput("albedo", float_texture("white", np.ones((1, 1, 3), np.float32)), 10)
    light = LVector3f(*DISPLAY_LIGHT).normalized()
    model.setShaderInput("light", LVecBase4f(light, DISPLAY_AMBIENT))
    model.setTwoSided(True)
    return model


# --- the command line -----------------------------------------------------------------------
# ``sge view``: a plug-in command of the sge launcher (setup.cfg's sge.commands entry point),
# so that optimizer/ never imports game/.
@click.command("view")
@click.argument("source")
@lod_options(steps_help="Length of the learning-rate schedule (it decays over this many steps).")
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="Run this many frames, then close the window (default: until escape).")
@click.option("--screenshot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the window's last frame to this image file (.png, .jpg) before closing.")
def view_command(source, triangles, texture_size, steps, res, seed, frames, screenshot):
    """Open a window with SOURCE and its LOD side by side while the LOD is optimised live
    (a volume file SOURCE.npz / .txo from sge bench volume --save: the volume; a 3DGS .ply:
    its Gaussian splats, drag to orbit, wheel to zoom).
    Drag to orbit, wheel to zoom, space pauses, l flips between the two in one place,
    s saves to out/view-NAME (as sge optimize writes), escape quits. Needs an X display
    (xvfb-run -a works); with --frames it closes itself, printing the screenshot's path."""
    if source.lower().endswith(".ply"):  # Gaussian splats: shown as they are (game/splats.py)
        from .splats import run_splat_viewer
        run_splat_viewer(source, frames=frames, screenshot=screenshot)
        if screenshot is not None:
            click.echo(str(screenshot))
        return
    if Path(source).suffix.lower() in (".npz", ".txo"):  # a volume (sge bench volume --save)
        from .volume import run_volume_viewer
        run_volume_viewer(Path(source), frames=frames, screenshot=screenshot)
        if screenshot is not None:
            click.echo(str(screenshot))
        return
    if len(triangles) != 1:
        raise click.BadParameter("sge view optimises one LOD: give one budget, not a chain", param_hint="'--triangles'")
    run_viewer(source, LodSettings(triangles=triangles[0], texture_size=texture_size, steps=steps, resolution=res,
                                   seed=seed), frames=frames, screenshot=screenshot)  # sge turns SgeError into one line
    if screenshot is not None:
        click.echo(str(screenshot))
