"""One run of SPEC's splats scenario with some SplatSettings changed (the comparisons in
docs/BENCHMARKS.md, "Gaussian splats"): prints one JSON line with the held-out figures
at step 0 and after STEPS, and ms/step.

    python benchmarks/splats_settings.py '{"mean_learning_rate": 0.1}' 600 [SPLATS] [--profile]
"""

import json
import sys

from optimizer.gpu import GpuContext
from optimizer.splats.kind import SplatSettings
from optimizer.splats.scenario import SplatsScenario

overrides = json.loads(sys.argv[1])
steps = int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 and not sys.argv[3].startswith("--") else 5000
context = GpuContext.headless()
scenario = SplatsScenario(context, count, 128, SplatSettings(**overrides))
run = scenario.run(steps)
print(json.dumps({"settings": overrides, "steps": steps, "start": run.start, "end": run.end,
                  "ms_per_step": run.ms_per_step}), flush=True)
if "--profile" in sys.argv:
    from optimizer.profile import profile_passes
    views = scenario.views(0)
    print(json.dumps(profile_passes(scenario.optimizer, lambda: scenario.optimizer.step(next(views)), 40, 1)))
