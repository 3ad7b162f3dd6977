"""The LOD step with only some passes on (docs/BENCHMARKS.md, "Fourth session, CPU"):
ms per step with each pass alone, the renders together and everything, at the resolution
given (default 128, the demo's). Run from the repository root with the package importable."""
import sys
import time

from optimizer.gpu import GpuContext
from optimizer.lod.scenario import LodScenario, LodSettings
from optimizer.sge import PASSES
from optimizer.source import load_source

STEPS = 180
resolution = int(sys.argv[1]) if len(sys.argv) > 1 else 128
scenario = LodScenario(GpuContext.headless(), load_source("models/panda"), LodSettings(resolution=resolution))
optimizer = scenario.optimizer
views = [scenario.next_training_view() for _ in range(STEPS + 20)]
optimizer.steps(views[:16])  # shader compilation, uploads
optimizer.sync()
for on in [(), ("P",), ("reference",), ("theta_plus", "theta_minus"), ("G",),
           ("theta_plus", "theta_minus", "reference"), PASSES]:
    for name in PASSES:
        optimizer.set_pass_active(name, name in on)
    optimizer.steps(views[:20])
    optimizer.sync()
    started = time.perf_counter()
    optimizer.steps(views[20:])
    optimizer.sync()
    print(f"R={resolution} on: {', '.join(on) or 'nothing'}: {1000 * (time.perf_counter() - started) / STEPS:.2f} ms/step",
          flush=True)
