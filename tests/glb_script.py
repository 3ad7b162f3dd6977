"""Run by tests/test_glb.py under Xvfb (not a test itself), and by hand to measure: draws a
LOD's .bam and its .glb (loaded through panda3d-gltf, as a Panda3D game loads glTF)
through Panda3D's auto-shader (``setShaderAuto()``, a GLX window) from the same views
under one directional and one ambient light, and prints one JSON line:

    triangles        the .glb's triangle count as panda3d-gltf loaded it
    bounds           the .glb's and the .bam's bounding boxes ([min xyz, max xyz]) in the scene
    covered_pixels   pixels the .bam or the .glb covers, all views
    psnr             PSNR (dB) between the .glb's renders and the .bam's over those pixels
    psnr_flipped     the same with the .glb's normal map read with green flipped (its
                     binormal column negated): a tangent-frame mistake shows as this one
                     being the higher
    psnr_flat        the same with the .glb's normal map flat: how much the map weighs

    python tests/glb_script.py [--views 8] [--size 256] [--shots DIR] LOD.bam LOD.glb

The window is a linear pipeline (framebuffer-srgb, the .bam's albedo typed sRGB), as
glTF defines its base colour: panda3d-gltf types a baseColorTexture sRGB itself.
The .glb is drawn as panda3d-gltf gives it plus ``optimizer.lod.glb.add_binormals``, which
adds the binormal column Panda3D 1.10's auto-shader needs (it reads no tangent.w).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from panda3d.core import Filename, NodePath, TextureStage

from autoshader_script import (BACKGROUND, covered_pixels, flat_normal_map, lit_window, save_row, shoot, stage_textures,
                               type_srgb, views)
from optimizer.lod.glb import add_binormals
from optimizer.lod.scenario import CAMERA_DISTANCE


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean(((a - b) / 255.0) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def triangle_count(model: NodePath) -> int:
    count = 0
    for geom_path in model.findAllMatches("**/+GeomNode"):
        node = geom_path.node()
        for g in range(node.getNumGeoms()):
            geom = node.getGeom(g)
            count += sum(geom.getPrimitive(p).decompose().getNumPrimitives() for p in range(geom.getNumPrimitives()))
    return count


def box(model: NodePath) -> list[list[float]]:
    low, high = model.getTightBounds()
    return [list(low), list(high)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bam")
    parser.add_argument("glb")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--shots", help="a directory to save each view's images in (a look by hand)")
    args = parser.parse_args()

    import gltf

    base, sun_path, lens = lit_window("glb-script", args.size, BACKGROUND, srgb=True)

    bam = base.loader.loadModel(Filename.fromOsSpecific(str(Path(args.bam).resolve())), noCache=True)
    type_srgb(bam)
    glb = NodePath(gltf.load_model(Filename.fromOsSpecific(str(Path(args.glb).resolve())), gltf.GltfSettings()))
    triangles = triangle_count(glb)
    add_binormals(glb)
    [(normal_stage, _)] = [(s, t) for s, t in stage_textures(glb) if s.getMode() == TextureStage.M_normal]
    flat = glb.copyTo(NodePath("flat"))
    flat.setTexture(normal_stage, flat_normal_map(), 2)
    flipped = glb.copyTo(NodePath("flipped"))
    add_binormals(flipped, sign=-1.0)

    bounds = bam.getBounds()
    center, radius = np.array(bounds.getCenter()), float(bounds.getRadius())
    lens.setNearFar(0.2 * radius, (CAMERA_DISTANCE + 3.0) * radius)
    shots = {name: [] for name in ("bam", "glb", "flipped", "flat")}
    for index, (eye, light) in enumerate(views(center, radius, args.views)):
        view = shoot(base, sun_path, {"bam": bam, "glb": glb, "flipped": flipped, "flat": flat}, center, eye, light)
        for name, image in view.items():
            shots[name].append(image)
        if args.shots:
            save_row(view, Path(args.shots) / f"{Path(args.glb).stem}-{index}.png")
    images = {name: np.stack(shot) for name, shot in shots.items()}
    covered = covered_pixels(images)
    reference = images["bam"][covered]
    print(json.dumps({
        "triangles": triangles,
        "bounds": {"glb": box(glb), "bam": box(bam)},
        "covered_pixels": int(covered.sum()),
        "psnr": psnr(images["glb"][covered], reference),
        "psnr_flipped": psnr(images["flipped"][covered], reference),
        "psnr_flat": psnr(images["flat"][covered], reference),
    }), flush=True)


if __name__ == "__main__":
    main()
