"""The LOD job's settings against each other (docs/BENCHMARKS.md): for each settings JSON
given, the panda LOD is made, optimised and scored as `sge optimize` does it (maps baked
at the start and after each round), printing psnr/ssim/iou before and after. Run from the
repository root with the package importable; one configuration per process is safest on
NVIDIA's EGL (several optimizers in one process can render blank there)."""
import json
import sys
import time

from optimizer.gpu import GpuContext
from optimizer.lod.job import LodSession
from optimizer.lod.scenario import LodSettings
from optimizer.source import load_source

context = GpuContext.headless()
source = load_source("models/panda")
for line in sys.argv[1:]:
    settings = LodSettings(**json.loads(line))
    session = LodSession(source, settings, context)
    started = time.perf_counter()
    session.run(settings.steps)
    if session.scenario.baked_at != session.step_index:
        session.scenario.bake()
    seconds = time.perf_counter() - started
    before, after = session.before, session.scenario.evaluate(session.held_out)
    print(line, f"psnr {before['psnr']:.2f}->{after['psnr']:.2f} ssim {before['ssim']:.3f}->{after['ssim']:.3f} "
          f"iou {before['iou']:.4f}->{after['iou']:.4f} {seconds:.1f} s", flush=True)
    session.release()
