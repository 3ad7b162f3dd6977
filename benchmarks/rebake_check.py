"""Does the LOD job's written LOD hold the maps a fresh bake of its positions gives? (the
GPU's bake against the CPU's; docs/BENCHMARKS.md). Loads job.py's JOB.npz, bakes the
reference again onto the written positions in a fresh scenario on this machine, and
prints held-out PSNR of the written maps and of the fresh ones, and how many texels of
the two differ by more than 60/255; saves the fresh maps to --out.

    PYTHONPATH=.:benchmarks python benchmarks/rebake_check.py SOURCE JOB.npz [--out FILE.npz]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from optimizer.lod.scenario import _to_8bit

from peer_lod.judge import baked_state, job_scenario  # benchmarks/ on PYTHONPATH (see the docs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("job")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--prefix", default="written_")
    args = parser.parse_args()
    job = np.load(args.job)
    context, scenario = job_scenario(args.source, job)
    settings = scenario.settings
    positions, albedo, normal_map = (job[args.prefix + key] for key in ("positions", "albedo", "normal_map"))
    state = baked_state(scenario, positions, albedo, normal_map)
    scenario.load_baked_state(state)
    held_out = scenario.held_out_views()
    written = scenario.evaluate(held_out, ssim=False)
    scenario.project_reference(settings.bake_views, positions=state["positions"])
    fresh_albedo = _to_8bit(scenario.albedo.texture_values(context))
    fresh_normal = _to_8bit(scenario.normal_map.texture_values(context))
    fresh = scenario.evaluate(held_out, ssim=False)
    differ = {key: int((np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 60).sum())
              for key, a, b in (("albedo", fresh_albedo, albedo), ("normal_map", fresh_normal, normal_map))}
    weight, _ = scenario._bakes[True].result()
    if args.out:
        np.savez_compressed(args.out, albedo=fresh_albedo, normal_map=fresh_normal, weight=weight)
    print(json.dumps({"device": context.renderer, "psnr_written_maps": written["psnr"],
                      "psnr_fresh_bake": fresh["psnr"], "texels_over_60": differ}), flush=True)


if __name__ == "__main__":
    main()
