"""One row of docs/BENCHMARKS.md's ablation table: the cube at R = 64, 1000 steps, seeds
0-3, with CubeSettings changed by a JSON object, e.g.

    python benchmarks/cube_ablation.py '{"supersampling": 1}'

Prints one JSON line. Run it with the package installed (or from the repository root).
"""
import sys, json
import numpy as np
from optimizer.gpu import GpuContext
from optimizer.scenarios.cube import CubeScenario, CubeSettings
kw = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
ctx = GpuContext.headless()
sc = CubeScenario(ctx, 64, settings=CubeSettings(**kw))
errs = [sc.run(seed, 1000).errors for seed in range(4)]
print(json.dumps({"settings": kw, "err": {k: round(float(np.mean([e[k] for e in errs])), 4) for k in errs[0]},
                  "err1000_per_seed": [round(e[1000], 4) for e in errs]}), flush=True)
