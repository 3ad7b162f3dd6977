"""Run by tests/test_autoshader.py under Xvfb (not a test itself), and by hand to measure
a LOD: draws a source model and LODs that ``sge optimize`` exported, through Panda3D's own
auto-shader (``setShaderAuto()``, a GLX window) under one directional and one ambient
light, as a game would show them. Prints one JSON line per LOD:

    lod              the .bam drawn
    textures         [stage mode name, width, height, has pixels] of each texture stage
    mse_with         mean squared error against the source, 8-bit sRGB scaled to [0, 1],
                     over the pixels the source or the LOD covers, all views: the LOD as
                     exported
    mse_without      the same with the LOD's normal map replaced by a flat one (its vertex
                     normals alone: setTextureOff does not override the .bam's per-geom stage)
    ours_psnr        PSNR (dB) between the auto-shader's render of the LOD and our own
                     shader's (shaders/surface/surface.frag, drawn by the same camera, the light
                     handed to it in the same place), over the covered pixels
    ours_mean_abs    mean |difference| between those two, in 8-bit levels
    ours_p99_abs     its 99th percentile

    python tests/autoshader_script.py [--linear] [--views 6] [--size 256] [--shots DIR] \\
        SOURCE LOD.bam [SOURCE LOD.bam ...]

By default the window is Panda3D's default pipeline: no sRGB framebuffer, textures not
sRGB-typed, so the auto-shader lights the stored (sRGB-encoded) texel values; our shader
is then told to do the same (no ALBEDO_SRGB). With --linear the framebuffer is sRGB and
every albedo texture is typed sRGB, so the auto-shader lights linear values, as our
renderer does when it optimises (ALBEDO_SRGB); the LOD job's metrics are measured that way.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from panda3d.core import (AntialiasAttrib, AmbientLight, DirectionalLight, Filename, LPoint3f, LVecBase4f, LVector3f, NodePath,
                          PerspectiveLens, Texture, TextureAttrib, TextureStage, loadPrcFileData)

from optimizer.surface.mesh import shading_defines
from optimizer.lod.scenario import AMBIENT, CAMERA_DISTANCE, TAN_HALF_FOV
from optimizer.shaders import raster_shader

BACKGROUND = (1.0, 0.0, 1.0)  # magenta: in no model here, so coverage is exact
ELEVATION = 0.35  # radians above the horizon of the model's up (+Z)
SRGB_OF = {Texture.F_rgb: Texture.F_srgb, Texture.F_rgb8: Texture.F_srgb, Texture.F_rgba: Texture.F_srgb_alpha,
           Texture.F_rgba8: Texture.F_srgb_alpha}


def screen(base) -> np.ndarray:
    """The window's last frame as (H, W, 3) int, row 0 at the top."""
    texture = base.win.getScreenshot()
    data = np.frombuffer(bytes(texture.getRamImageAs("RGB")), np.uint8)
    return data.reshape(texture.getYSize(), texture.getXSize(), 3)[::-1].astype(np.int64)


def stage_textures(model: NodePath) -> list[tuple[TextureStage, Texture]]:
    """(stage, texture) of every texture stage on the model's geoms."""
    found = []
    for geom_path in model.findAllMatches("**/+GeomNode"):
        node = geom_path.node()
        for g in range(node.getNumGeoms()):
            attrib = geom_path.getNetState().compose(node.getGeomState(g)).getAttrib(TextureAttrib)
            for i in range(attrib.getNumOnStages() if attrib else 0):
                stage = attrib.getOnStage(i)
                if all(stage != s for s, _ in found):
                    found.append((stage, attrib.getOnTexture(stage)))
    return found


def type_srgb(model: NodePath) -> None:
    """Type every colour texture of ``model`` sRGB, in place (each geom keeps its own):
    the GPU then decodes texels to linear values before filtering and lighting them."""
    for stage, texture in stage_textures(model):
        if stage.getMode() != TextureStage.M_normal:  # a normal map is data
            texture.setFormat(SRGB_OF.get(texture.getFormat(), texture.getFormat()))


def flat_normal_map() -> Texture:
    """A 1x1 normal map of the unbent normal (0, 0, 1), encoded."""
    texture = Texture("flat")
    texture.setup2dTexture(1, 1, Texture.T_unsigned_byte, Texture.F_rgb8)
    texture.setRamImageAs(bytes([128, 128, 255]), "RGB")
    return texture


def views(center, radius: float, count: int):
    """(eye, light direction towards the light) around the model, its +Z up: evenly in
    azimuth at ELEVATION, the light above the camera and to one side, alternating."""
    for k in range(count):
        azimuth = 2.0 * math.pi * k / count + 0.3
        direction = np.array([math.cos(ELEVATION) * math.cos(azimuth), math.cos(ELEVATION) * math.sin(azimuth),
                              math.sin(ELEVATION)])
        right = np.cross(direction, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, direction)
        light = direction + 0.7 * (1 if k % 2 else -1) * right + 0.6 * up
        yield center + CAMERA_DISTANCE * radius * direction, light / np.linalg.norm(light)


def lit_window(name: str, size: int, background, srgb: bool = False, multisamples: int = 0):
    """A ShowBase window (GLX: Xvfb) that draws with Panda3D's auto-shader under the job's
    lights, one directional (1 - AMBIENT) and an ambient one (AMBIENT), seen through a lens
    of the job's field of view: (base, the directional light's node, the lens). ``srgb``:
    an sRGB framebuffer; ``multisamples``: multisampled antialiasing."""
    loadPrcFileData(name, f"""
load-display pandagl
audio-library-name null
sync-video false
win-size {size} {size}
framebuffer-srgb {'true' if srgb else 'false'}
framebuffer-multisample {'true' if multisamples else 'false'}
multisamples {multisamples}
textures-power-2 none
print-pipe-types false
notify-level-device fatal
""")
    from direct.showbase.ShowBase import ShowBase

    base = ShowBase()
    base.disableMouse()
    base.setBackgroundColor(*background)
    render = base.render
    render.setShaderAuto()
    if multisamples:
        render.setAntialias(AntialiasAttrib.MMultisample)
    sun = DirectionalLight("sun")
    sun.setColor((1.0 - AMBIENT, 1.0 - AMBIENT, 1.0 - AMBIENT, 1.0))
    sun_path = render.attachNewNode(sun)
    ambient = AmbientLight("ambient")
    ambient.setColor((AMBIENT, AMBIENT, AMBIENT, 1.0))
    render.setLight(sun_path)
    render.setLight(render.attachNewNode(ambient))
    lens = PerspectiveLens()
    lens.setFov(math.degrees(2.0 * math.atan(TAN_HALF_FOV)))
    base.cam.node().setLens(lens)
    return base, sun_path, lens


def shoot(base, sun_path, models: dict, center, eye, light) -> dict:
    """One view of each of ``models`` (name -> NodePath), each drawn alone: the camera at
    ``eye`` looking at ``center`` (+Z up), the sun shining along -``light`` (from the light
    towards the model); name -> the screen (H, W, 3) uint8."""
    base.camera.setPos(*eye)
    base.camera.lookAt(LPoint3f(*center), LVector3f(0, 0, 1))
    sun_path.lookAt(LPoint3f(*(-np.asarray(light))))
    shots = {}
    for name, model in models.items():
        model.reparentTo(base.render)
        base.graphicsEngine.renderFrame()
        base.graphicsEngine.renderFrame()
        shots[name] = screen(base)
        model.detachNode()
    return shots


def covered_pixels(images: dict) -> np.ndarray:
    """Where any of ``images`` (name -> (N, H, W, 3)) is not the background."""
    background = np.round(np.array(BACKGROUND) * 255).astype(np.int64)
    covered = np.zeros(next(iter(images.values())).shape[:3], bool)
    for image in images.values():
        covered |= np.abs(image - background).max(axis=-1) > 0
    return covered


def save_row(shots: dict, path: Path) -> None:
    """One view's images side by side, for a look by hand."""
    from PIL import Image
    Image.fromarray(np.concatenate(list(shots.values()), axis=1).astype(np.uint8)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+", help="SOURCE LOD.bam pairs")
    parser.add_argument("--linear", action="store_true", help="sRGB framebuffer and sRGB-typed albedo textures")
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--shots", help="a directory to save each view's four images in (a look by hand)")
    args = parser.parse_args()
    if len(args.models) % 2:
        parser.error("give SOURCE LOD.bam pairs")

    base, sun_path, lens = lit_window("autoshader-script", args.size, BACKGROUND, srgb=args.linear)

    for source_name, lod_name in zip(args.models[0::2], args.models[1::2]):
        on_disk = Path(source_name).exists()  # else a name on the model-path, as sge optimize takes
        source = base.loader.loadModel(Filename.fromOsSpecific(str(Path(source_name).resolve())) if on_disk
                                       else source_name, noCache=True)
        lod = base.loader.loadModel(Filename.fromOsSpecific(str(Path(lod_name).resolve())), noCache=True)
        stages = stage_textures(lod)
        [albedo] = [t for s, t in stages if s.getMode() == TextureStage.M_modulate]
        [(normal_stage, normal_map)] = [(s, t) for s, t in stages if s.getMode() == TextureStage.M_normal]
        our_albedo = albedo.makeCopy()  # stored values, which our shader decodes itself (ALBEDO_SRGB)
        if args.linear:
            for model in (source, lod):
                type_srgb(model)
        textures = [[s.getName(), int(s.getMode()), t.getXSize(), t.getYSize(), bool(t.hasRamImage())]
                    for s, t in stages]  # before drawing: Panda3D may drop pixels it can reload from a file
        without = lod.copyTo(NodePath("without"))
        without.setTexture(normal_stage, flat_normal_map(), 2)
        ours = lod.copyTo(NodePath("ours"))
        defines = {**shading_defines(albedo=True, lit=True, normal_map=True), "PANDA_CAMERA": True}
        if args.linear:
            defines["ALBEDO_SRGB"] = True  # decode the stored values, light linear ones
        ours.setShader(raster_shader("surface/reference.vert", "surface/surface.frag", defines), 10)
        ours.setShaderInput("albedo", our_albedo)
        ours.setShaderInput("normal_map", normal_map)

        bounds = source.getBounds()  # a sphere around the model, as the LOD job frames it
        center, radius = np.array(bounds.getCenter()), float(bounds.getRadius())
        lens.setNearFar(0.2 * radius, (CAMERA_DISTANCE + 3.0) * radius)
        shots = {name: [] for name in ("reference", "with", "without", "ours")}
        for index, (eye, light) in enumerate(views(center, radius, args.views)):
            ours.setShaderInput("light", LVecBase4f(LVector3f(*light), AMBIENT))  # the LOD's frame is the world's
            view = shoot(base, sun_path, {"reference": source, "with": lod, "without": without, "ours": ours},
                         center, eye, light)
            for name, image in view.items():
                shots[name].append(image)
            if args.shots:
                save_row(view, Path(args.shots) / f"{Path(lod_name).stem}-{index}.png")
        images = {name: np.stack(shot) for name, shot in shots.items()}
        covered = covered_pixels(images)
        reference = images["reference"][covered] / 255.0

        def mse(name: str) -> float:
            return float(np.mean((images[name][covered] / 255.0 - reference) ** 2))

        difference = np.abs(images["with"][covered] - images["ours"][covered])
        ours_mse = float(np.mean((difference / 255.0) ** 2))
        print(json.dumps({
            "lod": lod_name,
            "linear": args.linear,
            "textures": textures,
            "covered_pixels": int(covered.sum()),
            "mse_with": mse("with"),
            "mse_without": mse("without"),
            "ours_psnr": 10.0 * math.log10(1.0 / max(ours_mse, 1e-12)),
            "ours_mean_abs": float(difference.mean()),
            "ours_p99_abs": float(np.percentile(difference, 99)),
        }), flush=True)
        for model in (source, lod, without, ours):
            model.removeNode()


if __name__ == "__main__":
    main()
