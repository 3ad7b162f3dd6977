"""Judges LODs of one job's topology the same way, whoever optimised them (issue 25):
the job's start (decimate-and-bake), the job's written LOD and a peer's (peer.py), each
loaded into the LOD job's own scenario (its normals and tangent frames taken from the
positions as the job's bakes take them, its maps rounded to the 8-bit images the exports
hold), then

- scored by our metric: held-out PSNR / SSIM / silhouette IoU over the job's 16 held-out
  views, drawn by our renderer (LodScenario.evaluate, what metrics.json reports), and
- exported by the product (optimizer.lod.export.write_lod: .bam, .egg, .obj, .glb and the
  PNGs) into OUT/NAME/, whose .bam autoshader_judge.py then draws with Panda3D's own
  auto-shader.

    python benchmarks/peer_lod/judge.py SOURCE DIR/job.npz [NAME=PEER.npz ...] --out OUT

prints one JSON line per LOD. SOURCE is the file the job was run on; JOB.npz is job.py's,
or gpu_peer_lod.sh's OUT/NAME.npz, which carries its 2T job run and both peer runs too.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from optimizer.gpu import GpuContext
from optimizer.lod.export import write_lod
from optimizer.lod.geometry import tangent_frames, vertex_normals
from optimizer.lod.scenario import LodScenario, LodSettings
from optimizer.source import load_source


def to_8bit(values: np.ndarray) -> np.ndarray:
    return values if values.dtype == np.uint8 else np.round(255.0 * np.clip(values, 0.0, 1.0)).astype(np.uint8)


def baked_state(scenario, positions, albedo, normal_map) -> dict:
    """A state as LodScenario.baked_state keeps one, its frames from ``positions``."""
    g = scenario.geometry
    positions = np.asarray(positions, np.float32)
    normals = vertex_normals(positions, scenario.corners)[g.position_index]
    tangents, binormals = tangent_frames(positions[g.position_index], normals, g.uvs, g.triangles)
    return {"positions": positions, "normals": normals, "tangents": tangents, "binormals": binormals,
            "albedo": to_8bit(albedo), "normal_map": to_8bit(normal_map)}


def job_scenario(source: str, job) -> tuple[GpuContext, LodScenario]:
    """The LOD job's scenario of ``source`` with the settings job.py's ``job`` (its loaded
    npz) ran with, on this machine, whose decimation and atlas must be the job's."""
    run = json.loads(str(job["settings"]))
    settings = LodSettings(triangles=run["triangles"], texture_size=run["texture_size"], steps=run["steps"],
                           resolution=run["res"], seed=run["seed"])
    context = GpuContext.headless()
    scenario = LodScenario(context, load_source(source), settings)
    g = scenario.geometry
    for key, mine in (("triangles", g.triangles), ("position_index", g.position_index), ("uvs", g.uvs)):
        if not np.array_equal(job[key], mine):
            raise SystemExit(f"{key} differ from the job's: this machine decimated or unwrapped differently")
    return context, scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("job")
    parser.add_argument("peers", nargs="*", help="NAME=PEER.npz (peer.py's) or NAME=JOB.npz (job.py's, with the same "
                        "settings but its steps: what it wrote)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    job = np.load(args.job)
    context, scenario = job_scenario(args.source, job)
    lods = {"start": (job["start_positions"], job["start_albedo"], job["start_normal_map"]),
            "ours": (job["written_positions"], job["written_albedo"], job["written_normal_map"])}
    # gpu_peer_lod.sh's combined file: the job's 2T run and the peer's two runs beside it.
    for name, prefix in (("ours2x", "ours2x_written_"), ("peer1x", "peer_1x_"), ("peer2x", "peer_2x_")):
        if prefix + "positions" in job:
            lods[name] = tuple(job[prefix + key] for key in ("positions", "albedo", "normal_map"))
    for item in args.peers:
        name, path = item.split("=", 1)
        peer = np.load(path)
        prefix = "written_" if "written_positions" in peer else ""  # another run of job.py: what it wrote
        lods[name] = tuple(peer[prefix + key] for key in ("positions", "albedo", "normal_map"))
    held_out = scenario.held_out_views()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (positions, albedo, normal_map) in lods.items():
        state = baked_state(scenario, positions, albedo, normal_map)
        scenario.load_baked_state(state)
        scores = scenario.evaluate(held_out)
        folder = args.out / name
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        write_lod(folder, **scenario.lod_arrays(state), name="lod")
        print(json.dumps({"lod": name, "bam": str(folder / "lod.bam"), "psnr": scores["psnr"], "ssim": scores["ssim"],
                          "iou": scores["iou"]}), flush=True)
    if "metrics" in job:
        metrics = json.loads(str(job["metrics"]))
        print(json.dumps({"lod": "ours (the job's own metrics.json)", "psnr": metrics["psnr_written"],
                          "ssim": metrics["ssim_written"], "iou": metrics["iou_written"],
                          "psnr_baseline": metrics["psnr_baseline"], "iou_baseline": metrics["iou_baseline"],
                          "seconds": float(job["seconds"]), "device": metrics["device"]}), flush=True)
    context.release() if hasattr(context, "release") else None


if __name__ == "__main__":
    main()
