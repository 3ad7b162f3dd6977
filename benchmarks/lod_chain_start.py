"""Where a LOD chain's levels start (docs/BENCHMARKS.md, optimizer/lod/chain.py): each level
decimated from the source, or from the previous level as written (its surface welded
and decimated to the next budget as the source would be, then unwrapped, baked from the
source and optimised against it as usual: LodSession's decimate_from, what
optimizer.lod.chain does). Prints
one JSON line per level and way: triangles, held-out PSNR/SSIM/IoU of the LOD written
(the better of optimised and decimate-and-bake) and the seconds it took. Run from the
repository root:

    python benchmarks/lod_chain_start.py [SOURCE] [4000,1000,250] [STEPS]
"""
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from optimizer.gpu import GpuContext
from optimizer.lod.job import LodSession
from optimizer.lod.scenario import LodSettings
from optimizer.source import load_source

source = sys.argv[1] if len(sys.argv) > 1 else "models/panda"
budgets = [int(n) for n in (sys.argv[2] if len(sys.argv) > 2 else "4000,1000,250").split(",")]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 0
context = GpuContext.headless()
mesh = load_source(source)


def level(budget: int, decimate_from=None) -> tuple[dict, dict]:
    """(figures of the LOD written, its arrays in the source's frame)."""
    started = time.perf_counter()
    session = LodSession(mesh, dataclasses.replace(LodSettings(), triangles=budget, steps=steps), context,
                         decimate_from=decimate_from)
    try:
        session.run(steps)
        with tempfile.TemporaryDirectory() as folder:
            metrics = session.write(Path(folder))
        if metrics["written"] == "baseline":
            session.scenario.load_baked_state(session.baseline_state)
        arrays = session.scenario.lod_arrays()
    finally:
        session.release()
    figures = {key: metrics[key] for key in ("triangles", "written", "psnr_written", "ssim_written", "iou_written")}
    return {**figures, "seconds": round(time.perf_counter() - started, 1)}, arrays


previous = None
for index, budget in enumerate(budgets):
    figures, arrays = level(budget)
    print(json.dumps({"level": index, "budget": budget, "from": "source", **figures}), flush=True)
    if index == 0:
        previous = arrays
        continue
    # From the previous level as written (itself made this way): what optimizer.lod.chain does.
    figures, previous = level(budget, (previous["positions"], previous["triangles"]))
    print(json.dumps({"level": index, "budget": budget, "from": "previous level", **figures}), flush=True)
