"""The LOD job's first bake and its inputs on this machine, for comparing machines (a GPU's
bake against the CPU's; docs/BENCHMARKS.md, "The GPU's bake against the CPU's"):

    python benchmarks/bake_compare.py SOURCE --triangles 300 --res 256 --texture-size 512 \\
        --out FILE.npz [--other OTHER.npz]

writes FILE.npz: the decimated LOD (positions, uvs), the bake's per-texel weights and
sums, both baked maps, the first VIEWS bake views' target pages (the LOD's ids, depths and
uvs, the reference's ids, depths and unlit colours), the source's textures as loaded, and
held-out PSNR of the bake. With ``--other`` (another machine's FILE.npz), also the held-out
PSNR here of that machine's maps on this machine's LOD (its atlas must be the same)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from optimizer.gpu import GpuContext, read_pages
from optimizer.lod.scenario import LodScenario, LodSettings
from optimizer.source import load_source

VIEWS = 4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("--triangles", type=int, default=300)
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--texture-size", type=int, default=512)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--other", type=Path)
    args = parser.parse_args()
    context = GpuContext.headless()
    mesh = load_source(args.source)
    settings = LodSettings(triangles=args.triangles, texture_size=args.texture_size, resolution=args.res)
    scenario = LodScenario(context, mesh, settings)
    passes = scenario.optimizer.passes
    plus, minus, reference = (target.sample.page for target in passes.slots)
    captured: dict[str, list] = {key: [] for key in ("lod_sample", "lod_uv", "ref_sample", "ref_color", "ref_normal")}

    def capture():
        samples, colors, uvs = (read_pages(context, t) for t in (passes.sample, passes.color, passes.planes["uv"]))
        captured["lod_sample"].append(samples[plus])
        captured["lod_uv"].append(uvs[plus])
        captured["ref_sample"].append(samples[reference])
        captured["ref_color"].append(colors[reference])
        captured["ref_normal"].append(colors[minus])

    from optimizer.lod import bake as bake_module
    original = bake_module.GpuBake.add_view

    def add_view(self, eye):
        original(self, eye)
        if len(captured["lod_sample"]) < VIEWS and self.channels == 6:
            capture()
    bake_module.GpuBake.add_view = add_view
    scenario.bake()
    weight, total = scenario._bakes[True].result()
    held_out = scenario.held_out_views()
    scores = scenario.evaluate(held_out, ssim=False)
    albedo = scenario.albedo.texture_values(context)
    normal_map = scenario.normal_map.texture_values(context)
    g = scenario.geometry
    arrays = {"positions": scenario.safe_positions, "uvs": g.uvs, "triangles": g.triangles, "weight": weight,
              "total": total, "albedo": albedo, "normal_map": normal_map,
              **{key: np.stack(value) for key, value in captured.items()}}
    for k, material in enumerate(scenario.source.materials):
        if material.texture is not None:
            arrays[f"source_texture_{k}"] = np.asarray(material.texture, np.float32)
    result = {"device": context.renderer,
              "psnr_own": scores["psnr"], "iou_own": scores["iou"], "scale": scenario._bakes[True].scale}
    if args.other:
        other = np.load(args.other)
        if not np.array_equal(other["uvs"], g.uvs):
            raise SystemExit("the other machine's LOD has another atlas")
        scenario.albedo.load(other["albedo"])
        scenario.normal_map.load(other["normal_map"])
        result["psnr_other_maps"] = scenario.evaluate(held_out, ssim=False)["psnr"]
    np.savez_compressed(args.out, result=json.dumps(result), **arrays)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
