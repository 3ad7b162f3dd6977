"""What clearing the render targets costs a step (docs/BENCHMARKS.md): the panda LOD at
R = 512 (1024^2 renders, 2x2 supersampled), ms per step with every pass on and with every
pass off, each with the per-step clears of the color and ID/UV pages on and off, then the
depth clear off too. Run from the repository root with the package importable."""
import time

from optimizer.gpu import GpuContext
from optimizer.lod.scenario import LodScenario, LodSettings
from optimizer.sge import PASSES
from optimizer.source import load_source

scenario = LodScenario(GpuContext.headless(), load_source("models/panda"), LodSettings(resolution=512))
optimizer = scenario.optimizer


def ms_per_step(steps: int = 200) -> float:
    for _ in range(20):
        scenario.step()
    optimizer.sync()
    started = time.perf_counter()
    for _ in range(steps):
        scenario.step()
    optimizer.sync()
    return 1000.0 * (time.perf_counter() - started) / steps


for passes_on in (True, False):
    for name in PASSES:
        optimizer.set_pass_active(name, passes_on)
    for clearing in (True, False):
        optimizer.clear_every_step = clearing
        print(f"passes {'on' if passes_on else 'off'}, clears {'on' if clearing else 'off'}: "
              f"{ms_per_step():.3f} ms/step", flush=True)
for region in optimizer.passes.render_regions:
    region.setClearDepthActive(False)
print(f"passes off, no clears at all (depth neither): {ms_per_step():.3f} ms/step")
