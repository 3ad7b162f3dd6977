"""Screening the cube's noise floor: one cube run (R, steps, seeds) with CubeSettings
changed by a JSON object, reading theta back every STRIDE steps (outside the product's
step loop: this script is a measurement) to compare, from the same trajectory, the raw
iterate with host-side iterate averages (polynomial-decay, eta = 2, 4, 8, 16; as
perturb.comp's THETA_AVERAGE does on the GPU every step, here every STRIDE steps).

    python benchmarks/cube_floor.py '{"position_epsilon": 0.04}' [R] [steps] [seeds]

Prints one JSON line: mean err over seeds at 1000/2000/4000/8000 (and the last step) of
the iterate ("iterate") and of each average ("eta=K").
"""
import json
import sys

import numpy as np

from optimizer.gpu import GpuContext
from optimizer.scenarios.cube import CubeScenario, CubeSettings, geometric_error

STRIDE = 10
ETAS = (2, 4, 8, 16)
kw = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
# "start_exact": start at the true cube (positions and colors), to see where the estimator
# settles: a drift of the average away from the truth is bias, of the iterate alone noise.
start_exact = kw.pop("start_exact", False)
resolution = int(sys.argv[2]) if len(sys.argv) > 2 else 64
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 8000
seeds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
marks = sorted({s for s in (1000, 2000, 4000, 8000, 16000) if s <= steps} | {steps})
ctx = GpuContext.headless()
sc = CubeScenario(ctx, resolution, settings=CubeSettings(**kw))
table = {name: {m: [] for m in marks} for name in ["iterate"] + [f"eta={e}" for e in ETAS]}
for seed in range(seeds):
    positions, colors = sc.initial_state(seed)
    if start_exact:
        from optimizer.scenarios.cube import CORNERS, COLORS
        positions, colors = CORNERS.copy(), COLORS.copy()
    sc.mesh.positions.load(positions)
    sc.mesh.colors.load(colors)
    sc.optimizer.reset(seed)
    views = sc.views(seed)
    averages = {e: None for e in ETAS}
    for k in range(1, steps // STRIDE + 1):
        sc.optimizer.steps([next(views) for _ in range(STRIDE)])
        sc.optimizer.finish()
        theta = sc.mesh.positions.values(ctx).astype(np.float64)
        for e in ETAS:
            a = averages[e]
            averages[e] = theta if a is None else a + (e + 1.0) / (k + e) * (theta - a)
        if k * STRIDE in marks:
            table["iterate"][k * STRIDE].append(geometric_error(theta))
            for e in ETAS:
                table[f"eta={e}"][k * STRIDE].append(geometric_error(averages[e]))
    print(f"seed {seed}: " + ", ".join(f"{n} {v[steps][-1]:.2e}" for n, v in table.items()), file=sys.stderr, flush=True)
print(json.dumps({"settings": kw, "start_exact": start_exact, "res": resolution, "steps": steps, "seeds": seeds,
                  **{n: {str(m): float(f"{np.mean(v):.3g}") for m, v in rows.items()} for n, rows in table.items()}}),
      flush=True)
