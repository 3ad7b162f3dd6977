"""Our steps started from a peer's LOD (issue 25, "Where the torus's gap is"): does the
job's estimate hold the exact-gradient peer's vertex positions where they are, or move
them off (a fixed point of its own), or on?

    python benchmarks/peer_lod/from_peer.py SOURCE DIR/job.npz PEER.npz [--steps 3000]
        [--settings '{"position_learning_rate": 5e-4}']

builds the job's scenario with job.npz's settings (LodSession: decimate, unwrap, bake),
loads the peer's LOD into it as judge.py does, and prints one JSON line per stage:
the peer's LOD as it ended, its positions with our bake, and then after each of the
job's rounds of steps (each ending in its bake) from there, held-out PSNR / IoU by our
metric (LodScenario.evaluate) and how far the positions moved from the peer's (RMS, in
bounding-sphere radii).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judge import baked_state  # noqa: E402
from optimizer.gpu import GpuContext  # noqa: E402
from optimizer.lod.job import LodSession  # noqa: E402
from optimizer.lod.scenario import LodSettings  # noqa: E402
from optimizer.source import load_source  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("job")
    parser.add_argument("peer")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--settings", default="{}", help="other LodSettings fields, as a JSON object")
    args = parser.parse_args()
    job = np.load(args.job)
    run = json.loads(str(job["settings"]))
    settings = LodSettings(**{"triangles": run["triangles"], "texture_size": run["texture_size"],
                              "steps": args.steps, "resolution": run["res"], "seed": run["seed"],
                              **json.loads(run.get("settings", "{}")), **json.loads(args.settings)})
    context = GpuContext.headless()
    session = LodSession(load_source(args.source), settings, context)
    scenario = session.scenario
    if not np.array_equal(job["triangles"], scenario.geometry.triangles):
        raise SystemExit("triangles differ from the job's: this machine decimated differently")
    peer = np.load(args.peer)
    start = np.asarray(peer["positions"], np.float64)

    def report(stage: str) -> None:
        scores = scenario.evaluate(session.held_out, ssim=False)
        moved = np.sqrt(np.mean(np.sum((scenario.safe_positions - start) ** 2, axis=1)))
        print(json.dumps({"stage": stage, "step": session.step_index, "psnr": scores["psnr"], "iou": scores["iou"],
                          "rms_from_peer": float(moved), "changes": json.loads(args.settings)}), flush=True)

    scenario.load_baked_state(baked_state(scenario, peer["positions"], peer["albedo"], peer["normal_map"]))
    report("peer as it ended")
    scenario.bake()
    report("peer positions, our bake")
    for until in settings.bake_steps():
        session.run(until)
        report("our steps")
    session.release()


if __name__ == "__main__":
    main()
