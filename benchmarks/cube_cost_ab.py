"""Interleaved cost of the cube's noise-floor defaults (issue 24) against main's settings:
5 rounds of 300 steps at R = 64 each, alternating, one process; prints the medians.

    python benchmarks/cube_cost_ab.py
"""
import statistics, json
from optimizer.gpu import GpuContext
from optimizer.scenarios.cube import CubeScenario, CubeSettings
M = dict(learning_rate_floor=0.01, average_eta=None, dithered_sums=False, flip_weight_power=None)
ctx = GpuContext.headless()
scs = {"main_settings": CubeScenario(ctx, 64, settings=CubeSettings(**M)), "defaults": CubeScenario(ctx, 64)}
for sc in scs.values(): sc.optimizer.set_active(False)
times = {k: [] for k in scs}
for r in range(5):
    for k, sc in scs.items():
        sc.optimizer.set_active(True)
        times[k].append(sc.run(r, 300).ms_per_step)
        sc.optimizer.set_active(False)
print(json.dumps({k: {"median_ms": statistics.median(v), "all": [round(x, 2) for x in v]} for k, v in times.items()}))
