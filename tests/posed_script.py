"""Run by tests/test_skin.py under Xvfb (not a test itself), and by hand for the README's
picture: a skinned source and its exported LOD, each loaded as an ``Actor`` with the same
animation, posed by Panda3D at the bind pose and at frames of the animation, and drawn
by Panda3D's auto-shader in a GLX window (one directional and one ambient light, as
tests/autoshader_script.py draws them) from views around the model. Prints one JSON line:

    bind             {"psnr": ...}: the LOD against the source, both in the bind pose
    frames           per frame: {"frame", "psnr", "lod_moved", "source_moved"}; psnr
                     (dB): the LOD job's held-out figure (optimizer.metrics.psnr_covered:
                     8-bit sRGB over the pixels either model covers, on the job's
                     mid-gray background; the mean over the views); *_moved:
                     the largest distance a vertex of that model moved from its bind
                     position, in units of the source's bounding radius (Panda3D's own
                     animated vertices, GeomVertexData.animateVertices)

    python tests/posed_script.py SOURCE LOD.bam [--anim models/panda-walk] [--frames 8]
        [--views 6] [--size 256] [--picture FILE --picture-frame F]

--picture writes one image instead: the source (left) and the LOD (right) posed at
--picture-frame (-1: the bind pose), from the front three-quarters, 512 pixels square each.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from panda3d.core import Filename, Geom, InternalName, LPoint3f, LVector3f, Thread

from autoshader_script import BACKGROUND as MASK_BACKGROUND  # this script's folder (tests/) is on sys.path
from autoshader_script import lit_window, screen, views
from optimizer.assets import geom_node_paths
from optimizer.metrics import psnr_covered
from optimizer.lod.scenario import BACKGROUND, CAMERA_DISTANCE
from optimizer.source import _column, _matrix, _triangle_indices
from optimizer.view import random_direction, random_rotation

HELD_OUT_SEED = 10_000  # the LOD job's held-out views at seed 0 (LodScenario.held_out_views)


def animated_positions(actor) -> np.ndarray:
    """Every triangle vertex of ``actor`` as Panda3D poses it now (its CPU-animated
    vertex data), in the actor's frame."""
    positions = []
    for geom_path in geom_node_paths(actor):
        node = geom_path.node()
        for g in range(node.getNumGeoms()):
            geom = node.getGeom(g)
            used = np.unique(_triangle_indices(geom))
            data = geom.getVertexData().animateVertices(True, Thread.getCurrentThread())
            matrix = _matrix(geom_path.getMat(actor))
            positions.append(_column(data, InternalName.getVertex(), 3, Geom.C_point)[used] @ matrix[:3, :3] +
                             matrix[3, :3])
    return np.concatenate(positions)


def held_out_views(center: np.ndarray, radius: float, count: int) -> list:
    """(eye, light direction) pairs as the LOD job's held-out views are drawn
    (LodScenario.views with its held-out seed): the camera in a random direction around
    the bounding sphere, the light on the camera's side plus a random direction."""
    rng = np.random.default_rng([HELD_OUT_SEED, 4])
    pairs = []
    for _ in range(count):
        towards_camera = random_rotation(rng)[:3, :3].T @ np.array([0.0, 0.0, 1.0])
        light = towards_camera + 0.9 * random_direction(rng)
        pairs.append((center + CAMERA_DISTANCE * radius * towards_camera, light / np.linalg.norm(light)))
    return pairs


def pose(actors, anim: str, frame: int) -> None:
    """Pose every actor at ``frame`` of ``anim`` and update its joints now."""
    for actor in actors:
        actor.pose(anim, frame)
        actor.update(force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("lod")
    parser.add_argument("--anim", default="models/panda-walk")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--ring", action="store_true", help="views in a ring around +Z (autoshader_script's)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--multisamples", type=int, default=0)
    parser.add_argument("--shots", help="a directory to save each frame's and view's source | LOD in (a look by hand)")
    parser.add_argument("--picture", help="write the side-by-side picture here instead of measuring")
    parser.add_argument("--picture-frame", type=int, default=14, help="-1: the bind pose")
    args = parser.parse_args()
    size = 512 if args.picture else args.size

    from direct.actor.Actor import Actor

    base, sun_path, lens = lit_window("posed-script", size, BACKGROUND, multisamples=args.multisamples)
    render = base.render

    def model_name(name: str):
        return Filename.fromOsSpecific(str(Path(name).resolve())) if Path(name).exists() else name

    source = Actor(model_name(args.source), {"anim": args.anim})
    lod = Actor(model_name(args.lod), {"anim": args.anim})
    frame_count = source.getNumFrames("anim")
    # One camera framing for every frame: a sphere around the source's vertices in the bind
    # pose, centred on their box (as the LOD job frames it; a Character's node bounds are
    # looser).
    bind_source, bind_lod = animated_positions(source), animated_positions(lod)
    center = (bind_source.min(axis=0) + bind_source.max(axis=0)) / 2.0
    radius = float(np.linalg.norm(bind_source - center, axis=1).max())
    lens.setNearFar(0.2 * radius, (CAMERA_DISTANCE + 3.0) * radius)

    def draw(model, background=BACKGROUND[:3]) -> np.ndarray:
        base.setBackgroundColor(*background)
        model.reparentTo(render)
        base.graphicsEngine.renderFrame()
        base.graphicsEngine.renderFrame()
        image = screen(base)
        model.detachNode()
        return image

    def covered(model) -> np.ndarray:
        """The pixels ``model`` covers: drawn again on magenta, a colour in no model here."""
        image = draw(model, MASK_BACKGROUND)
        return np.abs(image - np.round(np.array(MASK_BACKGROUND) * 255)).max(axis=-1) > 0

    if args.picture:
        if args.picture_frame >= 0:
            pose((source, lod), "anim", args.picture_frame)
        azimuth, elevation = math.radians(-60.0), math.radians(15.0)  # the front (-Y), to its right
        direction = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                              math.sin(elevation)])
        base.camera.setPos(*(center + 2.3 * radius * direction))
        base.camera.lookAt(LPoint3f(*center), LVector3f(0, 0, 1))
        sun_path.lookAt(LPoint3f(*(-(direction + np.array([0.3, 0.0, 0.8])))))
        from PIL import Image
        Image.fromarray(np.concatenate([draw(source), draw(lod)], axis=1).astype(np.uint8)).save(args.picture)
        print(args.picture)
        return

    view_list = list(views(center, radius, args.views)) if args.ring else held_out_views(center, radius, args.views)

    def measure(frame: int | None) -> dict:
        """PSNR at ``frame`` (None: the bind pose, as loaded: measured before any posing)."""
        if frame is not None:
            pose((source, lod), "anim", frame)
        psnrs, covered_count = [], 0
        for index, (eye, light) in enumerate(view_list):
            base.camera.setPos(*eye)
            base.camera.lookAt(LPoint3f(*center), LVector3f(0, 0, 1))
            sun_path.lookAt(LPoint3f(*(-light)))
            reference, image = draw(source), draw(lod)
            if args.shots:
                from PIL import Image
                Image.fromarray(np.concatenate([reference, image], axis=1).astype(np.uint8)).save(
                    Path(args.shots) / f"{'bind' if frame is None else frame}-{index}.png")
            either = covered(source) | covered(lod)
            psnrs.append(psnr_covered(image.astype(np.uint8), reference.astype(np.uint8), either))
            covered_count += int(either.sum())
        result = {"frame": frame, "psnr": float(np.mean(psnrs)), "covered_pixels": covered_count}
        if frame is not None:
            result["lod_moved"] = float(np.linalg.norm(animated_positions(lod) - bind_lod, axis=1).max() / radius)
            result["source_moved"] = float(np.linalg.norm(animated_positions(source) - bind_source, axis=1).max()
                                           / radius)
        return result

    bind = measure(None)
    frames = sorted({round(k * (frame_count - 1) / max(1, args.frames - 1)) for k in range(args.frames)})
    print(json.dumps({"bind": bind, "frame_count": frame_count, "frames": [measure(f) for f in frames]}), flush=True)


if __name__ == "__main__":
    main()
