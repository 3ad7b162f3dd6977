"""Draws a source and LODs of it with Panda3D's own auto-shader (setShaderAuto, one
directional and one ambient light, a GLX window: run under xvfb-run), as a game shows
them, and scores each LOD against the source: PSNR over the pixels either covers (8-bit,
mean over views) and silhouette IoU (mean over views). The views circle the model, its
+Z up (tests/autoshader_script.py's, which this reuses: its window, camera and lights).

    xvfb-run -a python benchmarks/peer_lod/autoshader_judge.py SOURCE NAME=LOD.bam ... \\
        [--views 16] [--size 512] [--linear]

prints one JSON line per LOD.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from panda3d.core import Filename, SamplerState

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from autoshader_script import BACKGROUND, lit_window, shoot, stage_textures, type_srgb, views  # noqa: E402

from optimizer.lod.scenario import CAMERA_DISTANCE  # noqa: E402
from optimizer.metrics import psnr_covered, silhouette_iou  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("lods", nargs="+", help="NAME=LOD.bam")
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--linear", action="store_true", help="sRGB framebuffer and sRGB-typed albedo textures")
    parser.add_argument("--no-mipmaps", action="store_true", help="sample the LODs' textures without mipmaps")
    args = parser.parse_args()
    base, sun_path, lens = lit_window("autoshader-judge", args.size, BACKGROUND, srgb=args.linear)

    def load(name: str):
        on_disk = Path(name).exists()
        return base.loader.loadModel(Filename.fromOsSpecific(str(Path(name).resolve())) if on_disk else name,
                                     noCache=True)

    models = {"reference": load(args.source)}
    for item in args.lods:
        name, path = item.split("=", 1)
        models[name] = load(path)
    if args.linear:
        for model in models.values():
            type_srgb(model)
    if args.no_mipmaps:
        for name, model in models.items():
            for _, texture in ([] if name == "reference" else stage_textures(model)):
                texture.setMinfilter(SamplerState.FT_linear)
    bounds = models["reference"].getBounds()
    center, radius = np.array(bounds.getCenter()), float(bounds.getRadius())
    lens.setNearFar(0.2 * radius, (CAMERA_DISTANCE + 3.0) * radius)
    background = np.round(np.array(BACKGROUND) * 255).astype(np.int64)
    scores = {name: {"psnr": [], "iou": []} for name in models if name != "reference"}
    for eye, light in views(center, radius, args.views):
        shots = shoot(base, sun_path, models, center, eye, light)
        masks = {name: np.abs(image - background).max(axis=-1) > 0 for name, image in shots.items()}
        for name in scores:
            covered = masks[name] | masks["reference"]
            scores[name]["psnr"].append(psnr_covered(shots[name].astype(np.uint8), shots["reference"].astype(np.uint8),
                                                     covered))
            scores[name]["iou"].append(silhouette_iou(masks[name], masks["reference"]))
    for name, values in scores.items():
        print(json.dumps({"lod": name, "autoshader_psnr": float(np.mean(values["psnr"])),
                          "autoshader_iou": float(np.mean(values["iou"])), "linear": args.linear, "mipmaps": not args.no_mipmaps,
                          "views": args.views, "size": args.size}), flush=True)


if __name__ == "__main__":
    main()
